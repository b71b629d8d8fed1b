package ocispec

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// checkSignal accepts a signal number or name, with or without SIG, as
// --stop-signal does ("SIGTERM", "term", "15", "SIGRTMIN+3").
func checkSignal(sig string) error {
	if n, err := strconv.Atoi(sig); err == nil {
		if n > 0 && n <= 64 {
			return nil
		}
		return invalidf("invalid signal: %s", sig)
	}
	name := strings.ToUpper(sig)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if unix.SignalNum(name) != 0 {
		return nil
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 30 {
			return nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX-"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 30 {
			return nil
		}
	}
	return invalidf("invalid signal: %s", sig)
}
