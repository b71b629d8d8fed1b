package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"berth.dev/runtime"
	json "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func runExec(g *globals, args []string) error {
	fs := newFlags("exec", "<container-id> <command> [command options]  || -p process.json <container-id>")
	var (
		env, caps, gids                                             stringList
		consoleSocket, cwd, user, process, pidFile, label, apparmor string
		tty, detach, noNewPrivs                                     bool
		preserveFDs                                                 int
	)
	fs.StringVar(&consoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal")
	fs.StringVar(&cwd, "cwd", "", "current working directory in the container")
	fs.Var(&env, "env", "set environment variables")
	fs.Var(&env, "e", "set environment variables")
	fs.BoolVar(&tty, "tty", false, "allocate a pseudo-TTY")
	fs.BoolVar(&tty, "t", false, "allocate a pseudo-TTY")
	fs.StringVar(&user, "user", "", "UID (format: <uid>[:<gid>])")
	fs.StringVar(&user, "u", "", "UID (format: <uid>[:<gid>])")
	fs.Var(&gids, "additional-gids", "additional gids")
	fs.Var(&gids, "g", "additional gids")
	fs.StringVar(&process, "process", "", "path to the process.json")
	fs.StringVar(&process, "p", "", "path to the process.json")
	fs.BoolVar(&detach, "detach", false, "detach from the container's process")
	fs.BoolVar(&detach, "d", false, "detach from the container's process")
	fs.StringVar(&pidFile, "pid-file", "", "specify the file to write the process id to")
	fs.StringVar(&label, "process-label", "", "set the asm process label for the process commonly used with selinux")
	fs.StringVar(&apparmor, "apparmor", "", "set the apparmor profile for the process")
	fs.BoolVar(&noNewPrivs, "no-new-privs", false, "set the no new privileges value for the process")
	fs.Var(&caps, "cap", "add a capability to the bounding set for the process")
	fs.Var(&caps, "c", "add a capability to the bounding set for the process")
	fs.IntVar(&preserveFDs, "preserve-fds", 0, "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)")
	fs.Bool("ignore-paused", false, "allow exec in a paused container")
	fs.String("cgroup", "", "run the process in a sub-cgroup (not supported yet)")
	minArgs := 2
	for _, a := range args {
		if a == "-p" || a == "--process" || strings.HasPrefix(a, "-p=") || strings.HasPrefix(a, "--process=") {
			minArgs = 1
		}
	}
	pos, err := parseArgs(fs, args, minArgs, -1)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	var p *specs.Process
	if process != "" {
		data, err := os.ReadFile(process)
		if err != nil {
			return err
		}
		p = &specs.Process{}
		if err := json.Unmarshal(data, p); err != nil {
			return fmt.Errorf("parse process %s: %w", process, err)
		}
		if len(pos) > 1 {
			p.Args = pos[1:]
		}
	} else {
		s, err := c.Spec()
		if err != nil {
			return err
		}
		p = copyProcess(s.Process)
		p.Args = pos[1:]
		p.Terminal = tty
		p.ConsoleSize = nil
	}
	if cwd != "" {
		p.Cwd = cwd
	}
	p.Env = append(p.Env, env...)
	if user != "" {
		if err := parseUser(user, &p.User); err != nil {
			return err
		}
	}
	for _, s := range gids {
		gid, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("invalid additional gid %q", s)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	if label != "" {
		p.SelinuxLabel = label
	}
	if apparmor != "" {
		p.ApparmorProfile = apparmor
	}
	if noNewPrivs {
		p.NoNewPrivileges = true
	}
	if len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, name := range caps {
			name = strings.ToUpper(name)
			if !strings.HasPrefix(name, "CAP_") {
				name = "CAP_" + name
			}
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, name)
			p.Capabilities.Effective = append(p.Capabilities.Effective, name)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, name)
		}
	}
	if p.Terminal && detach && consoleSocket == "" {
		return fmt.Errorf("cannot allocate tty if berth-runtime will detach without setting console socket")
	}
	o := runtime.ExecOptions{Process: p, ConsoleSocket: consoleSocket, PidFile: pidFile, PreserveFDs: preserveFDs}
	if detach {
		_, err := c.Exec(o)
		return err
	}
	terminal := p.Terminal && consoleSocket == ""
	fg, err := newForeground(terminal, nil)
	if err != nil {
		return err
	}
	var pid int
	err = fg.launch(func(console *os.File) error {
		o.ConsoleConn = console
		var err error
		pid, err = c.Exec(o)
		return err
	})
	if err != nil {
		return err
	}
	return exitError(fg.wait(pid))
}

func copyProcess(p *specs.Process) *specs.Process {
	data, _ := json.Marshal(p)
	var out specs.Process
	json.Unmarshal(data, &out)
	return &out
}

// parseUser reads <uid>[:<gid>].
func parseUser(s string, u *specs.User) error {
	uidStr, gidStr, hasGid := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidStr, 10, 32)
	if err != nil {
		return fmt.Errorf("invalid --user %q: uid must be a number", s)
	}
	u.UID = uint32(uid)
	if hasGid {
		gid, err := strconv.ParseUint(gidStr, 10, 32)
		if err != nil {
			return fmt.Errorf("invalid --user %q: gid must be a number", s)
		}
		u.GID = uint32(gid)
	}
	return nil
}
