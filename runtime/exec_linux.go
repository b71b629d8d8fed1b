package runtime

import (
	"berth.dev/internal/atomicfile"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions are the inputs of Exec; they mirror `runc exec`'s flags.
type ExecOptions struct {
	Process               *specs.Process
	ConsoleSocket         string
	ConsoleConn           *os.File
	PidFile               string
	PreserveFDs           int
	Stdin, Stdout, Stderr *os.File
}

// nsProcName maps namespace types to their names under /proc/<pid>/ns.
var nsProcName = map[specs.LinuxNamespaceType]string{
	specs.UserNamespace:    "user",
	specs.MountNamespace:   "mnt",
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// Exec runs a new process in a created or running container: it joins every
// namespace of the container's init and its cgroup, then applies the
// process's own user, capabilities, rlimits, seccomp filter and terminal.
// It returns the new process's pid; the process is the caller's child.
func (c *Container) Exec(o ExecOptions) (int, error) {
	switch st := c.Status(); st {
	case Created, Running:
	case Paused:
		return 0, fmt.Errorf("%w: cannot exec in a paused container", ErrState)
	default:
		return 0, fmt.Errorf("%w: cannot exec in a %s container", ErrState, st)
	}
	p := o.Process
	if p == nil || len(p.Args) == 0 {
		return 0, fmt.Errorf("%w: exec needs a process with args", ErrInvalid)
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if p.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return 0, fmt.Errorf("%w: the process has a terminal but no --console-socket was given", ErrInvalid)
	}
	s, err := c.Spec()
	if err != nil {
		return 0, err
	}
	var boot bootstrap
	for _, ns := range s.Linux.Namespaces {
		boot.joins = append(boot.joins, nsJoin{
			typ:  ns.Type,
			path: "/proc/" + strconv.Itoa(c.s.Pid) + "/ns/" + nsProcName[ns.Type],
		})
	}
	cg, err := c.cgroup()
	if err != nil && !errors.Is(err, ErrNoCgroup) {
		return 0, err
	}
	files, err := preservedFiles(o.PreserveFDs)
	if err != nil {
		return 0, err
	}
	cfg := &initConfig{
		Mode:            modeExec,
		ID:              c.s.ID,
		Bundle:          c.s.Bundle,
		Spec:            s,
		Process:         p,
		FifoFD:          -1,
		ConsoleSocketFD: -1,
		PreserveFDs:     o.PreserveFDs,
		UserNS:          hasNamespace(s, specs.UserNamespace),
		RootFD:          -1,
	}
	if c.s.SharedMountNS {
		root, err := os.OpenFile("/proc/"+strconv.Itoa(c.s.Pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("open the container's root: %w", err)
		}
		defer root.Close()
		cfg.RootFD = 3 + len(files)
		files = append(files, root)
	}
	if p.Terminal {
		console, err := consoleSocket(&CreateOptions{ConsoleSocket: o.ConsoleSocket, ConsoleConn: o.ConsoleConn})
		if err != nil {
			return 0, err
		}
		defer console.Close()
		cfg.ConsoleSocketFD = 3 + len(files)
		files = append(files, console)
	}
	files, closeAgent, err := withSeccompAgent(s, cfg, files)
	if err != nil {
		return 0, err
	}
	defer closeAgent()
	sc := &spawnConfig{
		boot:   boot,
		cgroup: cg,
		files:  files,
		stdin:  orStdio(o.Stdin, os.Stdin),
		stdout: orStdio(o.Stdout, os.Stdout),
		stderr: orStdio(o.Stderr, os.Stderr),
	}
	proc, err := spawn(sc)
	if err != nil {
		return 0, err
	}
	defer proc.sock.Close()
	// The seccomp program is built while the process's Go runtime starts.
	err = withSeccompProgram(s, cfg, c.root)
	cfg.Spec = initSpec(s, len(cfg.SeccompBPF) > 0)
	cfg.Pid = proc.pid
	if err == nil {
		err = driveInit(proc, cfg, c)
	}
	if err != nil {
		proc.kill()
		return 0, err
	}
	if o.PidFile != "" {
		if err := atomicfile.WriteBytes(o.PidFile, []byte(strconv.Itoa(proc.pid)), 0o644); err != nil {
			return proc.pid, fmt.Errorf("write pid file: %w", err)
		}
	}
	return proc.pid, nil
}
