package ocispec

import (
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ParseSignal reads a signal number or name, with or without SIG, in any
// case, as --stop-signal and docker kill --signal take it ("SIGTERM",
// "term", "15", "SIGRTMIN+3").
func ParseSignal(sig string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(sig); err == nil {
		if n > 0 && n <= 64 {
			return syscall.Signal(n), nil
		}
		return 0, invalidf("invalid signal: %s", sig)
	}
	name := strings.ToUpper(sig)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return n, nil
	}
	// SIGRTMIN is 34 as the C library reserves two real-time signals.
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 30 {
			return syscall.Signal(34 + n), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX-"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 30 {
			return syscall.Signal(64 - n), nil
		}
	}
	return 0, invalidf("invalid signal: %s", sig)
}

func checkSignal(sig string) error {
	_, err := ParseSignal(sig)
	return err
}
