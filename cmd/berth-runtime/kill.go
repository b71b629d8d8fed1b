package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"berth.dev/runtime"
	"golang.org/x/sys/unix"
)

func runKill(g *globals, args []string) error {
	fs := newFlags("kill", "<container-id> [signal]")
	all := fs.Bool("all", false, "send the specified signal to all processes inside the container")
	fs.BoolVar(all, "a", false, "send the specified signal to all processes inside the container")
	pos, err := parseArgs(fs, args, 1, 2)
	if err != nil {
		return err
	}
	sig := unix.SIGTERM
	if len(pos) == 2 {
		if sig, err = parseSignal(pos[1]); err != nil {
			return err
		}
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	return c.Signal(sig, *all)
}

// parseSignal accepts a number, a name (KILL) or a name with the SIG prefix
// (SIGKILL), as runc does.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	// Real-time signals by offset: SIGRTMIN+3, SIGRTMAX-1.
	const rtmin, rtmax = 34, 64
	for base, sign := range map[string]int{"SIGRTMIN": 1, "SIGRTMAX": -1} {
		rest, ok := strings.CutPrefix(name, base)
		if !ok {
			continue
		}
		n := 0
		if rest != "" {
			var err error
			if n, err = strconv.Atoi(rest); err != nil || (n > 0) != (sign > 0) && n != 0 {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
			if n < 0 {
				n = -n
			}
		}
		sig := rtmin + n
		if sign < 0 {
			sig = rtmax - n
		}
		if sig < rtmin || sig > rtmax {
			return 0, fmt.Errorf("unknown signal %q", s)
		}
		return syscall.Signal(sig), nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
