// Command berthd is berth's engine daemon: it serves the Docker Engine API
// on a unix socket (/run/berth/berth.sock by default) for the berth CLI,
// the docker CLI and SDKs, and is the single writer of the engine's state
// under /var/lib/berth.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"berth.dev/api/docker"
	"berth.dev/engine"
	"golang.org/x/sys/unix"
)

var (
	version = "dev"
	commit  = ""
)

// The main goroutine keeps the main thread to itself. Work that changes a
// thread's namespaces or working directory ends with its thread locked, so
// that the thread is discarded; the main thread cannot be, and the kernel
// shows its state as the process's in /proc/self.
func init() { runtime.LockOSThread() }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "berthd: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("berthd", flag.ContinueOnError)
	configPath := fs.String("config", engine.DefaultConfigPath, "configuration file")
	root := fs.String("root", "", "root of persistent state (default from the config, /var/lib/berth)")
	execRoot := fs.String("exec-root", "", "root of run-time state (default /run/berth)")
	host := fs.String("host", "", "API socket, unix:///path (default unix:///run/berth/berth.sock)")
	fs.StringVar(host, "H", "", "shorthand for --host")
	debug := fs.Bool("debug", false, "log debug messages")
	fs.BoolVar(debug, "D", false, "shorthand for --debug")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Printf("berthd version %s\n", version)
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := engine.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	for flagValue, field := range map[string]*string{*root: &cfg.Root, *execRoot: &cfg.ExecRoot, *host: &cfg.Host} {
		if flagValue != "" {
			*field = flagValue
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// The shims daemonize: as a child subreaper berthd inherits them, and
	// reaps each after its container exits, rather than leaving them to
	// an init that may not.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	lock, err := lockDaemon(cfg.ExecRoot)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := os.MkdirAll(cfg.Root, 0o711); err != nil {
		return err
	}
	d, err := newDaemon(cfg, log)
	if err != nil {
		return err
	}
	defer d.close()

	l, err := listen(cfg.Host)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv := docker.NewServer(d.backends(), docker.WithEngineVersion(version), docker.WithLogger(log))
	log.Info("berthd listening", "host", cfg.Host, "root", cfg.Root, "version", version)
	err = srv.Serve(ctx, l)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("berthd stopped")
	return err
}
