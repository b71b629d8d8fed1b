// Command berth-runtime is berth's OCI runtime. Its command line is runc's,
// so that Podman, containerd and dockerd can use it in place of runc:
//
//	berth-runtime [global options] command [command options] <container-id> ...
//
// Each command is one file of this package over the runtime library.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"sort"
	"strings"

	"berth.dev/runtime"
	_ "berth.dev/runtime/nsenter" // stage 0 of the container init
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// globals are the options that come before the command.
type globals struct {
	root          string
	log           *logger
	debug         bool
	systemdCgroup bool
	rootless      string
}

// isRootless reads --rootless: "auto" means rootless when not running as
// root on the host.
func (g *globals) isRootless() bool {
	switch g.rootless {
	case "true":
		return true
	case "false":
		return false
	}
	return os.Geteuid() != 0
}

type command struct {
	name    string
	summary string
	run     func(g *globals, args []string) error
}

func commands() []command {
	return []command{
		{"create", "create a container", runCreate},
		{"start", "executes the user defined process in a created container", runStart},
		{"run", "create and run a container", runRun},
		{"state", "output the state of a container", runState},
		{"kill", "kill sends the specified signal (default: SIGTERM) to the container's init process", runKill},
		{"delete", "delete any resources held by the container often used with detached container", runDelete},
		{"exec", "execute new process inside the container", runExec},
		{"pause", "pause suspends all processes inside the container", runPause},
		{"resume", "resumes all processes that have been previously paused", runResume},
		{"ps", "ps displays the processes running inside a container", runPs},
		{"list", "lists containers started by berth-runtime with the given root", runList},
		{"spec", "create a new specification file", runSpec},
		{"features", "show the enabled features", runFeatures},
		{"update", "update container resource constraints", runUpdate},
		{"events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics", runEvents},
	}
}

// The main goroutine keeps the main thread to itself. Work that changes a
// thread's namespaces ends with its thread locked, so that the thread is
// discarded; the main thread cannot be, and the kernel shows its state as
// the process's in /proc/self.
func init() { goruntime.LockOSThread() }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.Init() // never returns
	}
	os.Exit(realMain(os.Args[1:], os.Stderr))
}

func realMain(args []string, stderr io.Writer) int {
	g := &globals{}
	fs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultRoot := "/run/berth-runtime"
	if os.Geteuid() != 0 {
		if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" {
			defaultRoot = xdg + "/berth-runtime"
		}
	}
	fs.StringVar(&g.root, "root", defaultRoot, "root directory for storage of container state (this should be located in tmpfs)")
	logPath := fs.String("log", "", "set the log file to write berth-runtime logs to (default is stderr)")
	logFormat := fs.String("log-format", "text", "set the log format ('text' (default), or 'json')")
	fs.BoolVar(&g.debug, "debug", false, "enable debug logging")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "enable systemd cgroup support")
	fs.StringVar(&g.rootless, "rootless", "auto", "ignore cgroup permission errors ('true', 'false', or 'auto')")
	fs.String("criu", "criu", "(unsupported) path to the criu binary")
	showVersion := fs.Bool("version", false, "print the version")
	fs.BoolVar(showVersion, "v", false, "print the version")
	fs.Usage = func() { usage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Printf("berth-runtime version %s\nspec: %s\n", version, specVersion())
		return 0
	}
	var err error
	g.log, err = newLogger(*logPath, *logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "berth-runtime: %v\n", err)
		return 1
	}
	defer g.log.close()
	rest := fs.Args()
	if len(rest) == 0 {
		usage(fs, stderr)
		return 1
	}
	if g.systemdCgroup {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			g.log.errorf("systemd cgroup driver requested (--systemd-cgroup) but systemd is not running on this host")
			return 1
		}
		g.log.errorf("the systemd cgroup driver is not supported yet; run without --systemd-cgroup")
		return 1
	}
	if rest[0] == "help" {
		usage(fs, stderr)
		return 0
	}
	for _, c := range commands() {
		if c.name == rest[0] {
			if err := c.run(g, rest[1:]); err != nil {
				var ex exitError
				if errors.As(err, &ex) {
					return int(ex)
				}
				if errors.Is(err, flag.ErrHelp) {
					return 0
				}
				g.log.errorf("%v", err)
				return 1
			}
			return 0
		}
	}
	g.log.errorf("no such command: %s", rest[0])
	return 1
}

// exitError carries a status to exit with and no message: the container's
// own exit status for run and exec.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "usage: berth-runtime [global options] command [command options] [arguments...]\n\nCommands:\n")
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "   %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nGlobal options:\n")
	fs.PrintDefaults()
}

// newFlags makes a command's flag set; aliases lets one flag have a short
// and a long name, as runc's do.
func newFlags(name, argsUsage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: berth-runtime %s [command options] %s\n", name, argsUsage)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags that may come before or between the positional
// arguments, the way runc's command line accepts them, and checks the
// number of positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		// Past the container id, the rest belongs to the command (exec's
		// process args, ps's options): flags come before the id.
		if max < 0 && len(pos) >= 1 {
			pos = append(pos, args...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, fmt.Errorf("%s: %s", fs.Name(), argCountMessage(min, max, len(pos)))
	}
	return pos, nil
}

func argCountMessage(min, max, got int) string {
	switch {
	case min == max:
		return fmt.Sprintf("requires exactly %d argument(s), got %d", min, got)
	case got < min:
		return fmt.Sprintf("requires at least %d argument(s), got %d", min, got)
	default:
		return fmt.Sprintf("requires at most %d argument(s), got %d", max, got)
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
