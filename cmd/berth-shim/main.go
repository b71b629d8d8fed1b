// Command berth-shim monitors one container: it runs the OCI runtime's
// create, holds the container's stdio, writes its log, reaps it and records
// its exit, and serves attach, resize, exec, kill and wait on
// <dir>/shim.sock (see berth.dev/shim). The engine starts it with
// shim.Start; it daemonizes itself and reports readiness on --ready-fd.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"berth.dev/shim"
	"golang.org/x/sys/unix"
)

func main() {
	var cfg shim.Config
	var readyFD int
	fs := flag.NewFlagSet("berth-shim", flag.ExitOnError)
	fs.StringVar(&cfg.ID, "id", "", "container id")
	fs.StringVar(&cfg.Bundle, "bundle", "", "OCI bundle directory")
	fs.StringVar(&cfg.Dir, "dir", "", "shim directory (socket, exit files)")
	fs.StringVar(&cfg.Runtime, "runtime", "berth-runtime", "OCI runtime binary")
	fs.StringVar(&cfg.RuntimeRoot, "runtime-root", "", "state root passed to the runtime as --root")
	fs.StringVar(&cfg.LogPath, "log-path", "", "json-file log of the container's output")
	fs.Int64Var(&cfg.Log.MaxSize, "log-max-size", 0, "rotate the log at this many bytes (0: never)")
	fs.IntVar(&cfg.Log.MaxFiles, "log-max-files", 1, "log files to keep")
	fs.BoolVar(&cfg.Stdin, "stdin", false, "keep the container's stdin open for attach")
	fs.BoolVar(&cfg.Tty, "tty", false, "give the container a terminal")
	fs.BoolVar(&cfg.Deferred, "deferred", false, "create and start the container at the start request (runtime run --detach), not before")
	fs.IntVar(&readyFD, "ready-fd", -1, "descriptor on which to report the pid or the error, then close")
	fs.Parse(os.Args[1:])

	if os.Getenv(shim.DaemonEnv) == "" {
		if err := daemonize(cfg.Dir, readyFD); err != nil {
			report(readyFD, 0, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(cfg, readyFD))
}

// daemonize re-executes the shim in a new session with the ready
// descriptor as fd 3, its output in <dir>/shim.log, and returns at once:
// the shim is then nobody's child but init's (or a subreaper's), and the
// engine that started it has no zombie to reap.
func daemonize(dir string, readyFD int) error {
	if dir == "" {
		return fmt.Errorf("--dir is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "shim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := os.Args[1:]
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), shim.DaemonEnvironment()...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if readyFD >= 0 {
		cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(readyFD), "ready")}
		cmd.Args = append(cmd.Args, "--ready-fd", "3")
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

func run(cfg shim.Config, readyFD int) int {
	// Read by the Go runtime at start; not for the processes the shim runs.
	for _, name := range strings.Split(os.Getenv(shim.DaemonEnv), ",") {
		os.Unsetenv(name)
	}
	if readyFD >= 0 {
		unix.CloseOnExec(readyFD)
	}
	ctx := context.Background()
	s, err := shim.New(ctx, cfg)
	report(readyFD, pidOf(s), err)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		return 1
	}
	if err := s.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim:", err)
		return 1
	}
	return 0
}

func pidOf(s *shim.Shim) int {
	if s == nil {
		return 0
	}
	return s.Pid()
}

// report writes the ready message, {"pid":N} or {"error":"..."}, and
// closes the descriptor.
func report(fd, pid int, err error) {
	if fd < 0 {
		return
	}
	msg := shim.Ready{Pid: pid}
	if err != nil {
		msg = shim.Ready{Error: err.Error()}
	}
	data, _ := msg.MarshalJSON()
	f := os.NewFile(uintptr(fd), "ready-fd-"+strconv.Itoa(fd))
	f.Write(append(data, '\n'))
	f.Close()
}
