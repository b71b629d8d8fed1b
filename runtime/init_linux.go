package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"berth.dev/runtime/caps"
	"berth.dev/runtime/nsenter"
	"berth.dev/runtime/rootfs"
	"berth.dev/runtime/seccomp"
	"berth.dev/runtime/wire"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Init is the Go part of the container init. The runtime binary's main
// calls it when started as "init"; stage 0 (nsenter.c) has already put the
// process in its namespaces. Init never returns: it execs the user program
// or reports an error to the runtime and exits.
func Init() {
	// Capabilities, no_new_privs and the seccomp filter belong to a thread;
	// all of them, and the final execve, happen on this one.
	goruntime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(nsenter.Env))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime init: not started by the runtime")
		os.Exit(1)
	}
	sock := os.NewFile(uintptr(fd), "init-sock")
	in := &initState{sock: sock}
	if err := wire.ReadFrame(sock, &in.cfg); err != nil {
		os.Exit(1)
	}
	err = in.run()
	if in.ready {
		// The runtime has gone; the container's stderr is all there is.
		fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
	} else {
		in.send(message{Type: msgError, Error: err.Error()})
	}
	os.Exit(1)
}

type initState struct {
	sock *os.File
	cfg  initConfig
	// ready: the runtime was told the container is created and no longer
	// listens.
	ready bool
}

func (in *initState) run() error {
	cfg := &in.cfg
	s := cfg.Spec
	if cfg.Mode == modeCreate {
		if err := in.setupContainer(); err != nil {
			return err
		}
	} else {
		if cfg.RootFD >= 0 {
			// The container shares the runtime's mount namespace, so
			// joining it did not change our root: enter the init's.
			if err := unix.Fchdir(cfg.RootFD); err != nil {
				return fmt.Errorf("enter the container's root: %w", err)
			}
			if err := unix.Chroot("."); err != nil {
				return fmt.Errorf("enter the container's root: %w", err)
			}
		}
		if cfg.Process.Terminal {
			if err := in.setupConsole(); err != nil {
				return err
			}
		}
	}
	// Nothing the runtime holds may reach the user program: descriptors
	// past stdio and the preserved ones close on exec (CVE-2024-21626).
	// Before the seccomp filter, which may not allow close_range.
	if err := closeExecFrom(3 + cfg.PreserveFDs); err != nil {
		return err
	}
	argv0, env, err := in.prepareProcess(cfg.Process)
	if err != nil {
		return err
	}
	if cfg.Mode == modeCreate {
		if err := in.waitStart(); err != nil {
			return err
		}
		if err := runHooks("startContainer", hooksOf(s).StartContainer, in.state(Running)); err != nil {
			return err
		}
	}
	if err := unix.Exec(argv0, cfg.Process.Args, env); err != nil {
		return fmt.Errorf("exec %s: %w", cfg.Process.Args[0], err)
	}
	return nil
}

// send writes one message to the runtime.
func (in *initState) send(m message) error { return wire.WriteFrame(in.sock, m) }

func (in *initState) state(st Status) *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          in.cfg.ID,
		Status:      specs.ContainerState(st),
		Pid:         in.cfg.Pid,
		Bundle:      in.cfg.Bundle,
		Annotations: in.cfg.Spec.Annotations,
	}
}

// setupContainer builds the container's world: keyring, root filesystem,
// hooks, console, hostname and sysctls.
func (in *initState) setupContainer() error {
	cfg := &in.cfg
	s := cfg.Spec
	if !cfg.NoNewKeyring {
		// A session keyring of its own, so the container cannot read the
		// host's keys through the inherited one.
		if _, err := unix.KeyctlJoinSessionKeyring(cfg.ID); err != nil && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	rc := rootfsConfig(s, cfg)
	if !cfg.RootfsPrepared {
		if err := rootfs.Prepare(rc); err != nil {
			return err
		}
	}
	if s.Hooks != nil && len(s.Hooks.Prestart)+len(s.Hooks.CreateRuntime) > 0 { //nolint:staticcheck
		if err := in.send(message{Type: msgHooks}); err != nil {
			return err
		}
		var m message
		if err := wire.ReadFrame(in.sock, &m); err != nil {
			return err
		}
		if m.Type != msgOK {
			return errors.New(m.Error)
		}
	}
	if s.Hooks != nil {
		if err := runHooks("createContainer", s.Hooks.CreateContainer, in.state(Creating)); err != nil {
			return err
		}
	}
	if err := rootfs.Pivot(rc); err != nil {
		return err
	}
	if cfg.Process.Terminal {
		if err := in.setupConsole(); err != nil {
			return err
		}
	}
	return finishRoot(s, rc)
}

// finishRoot is the end of the container's world, once its root is "/":
// sysctls, then rootfs.Finalize (read-only and masked paths, a read-only
// root: /proc/sys is usually among the read-only paths), then the host and
// domain names.
func finishRoot(s *specs.Spec, rc *rootfs.Config) error {
	for k, v := range s.Linux.Sysctl {
		path := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	if err := rootfs.Finalize(rc); err != nil {
		return err
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("setdomainname: %w", err)
		}
	}
	return nil
}

// setupConsole opens a pty inside the container, hands its master to the
// console socket and makes its slave the process's controlling terminal and
// stdio.
func (in *initState) setupConsole() error {
	cfg := &in.cfg
	if cfg.ConsoleSocketFD < 0 {
		return fmt.Errorf("%w: terminal requested without a console socket", ErrInvalid)
	}
	sock := os.NewFile(uintptr(cfg.ConsoleSocketFD), "console-socket")
	defer sock.Close()
	master, slavePath, err := openPty()
	if err != nil {
		return err
	}
	defer master.Close()
	if cs := cfg.Process.ConsoleSize; cs != nil {
		if err := setWinsize(master, uint16(cs.Height), uint16(cs.Width)); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	if cfg.Mode == modeCreate {
		if err := rootfs.MountConsole(slavePath); err != nil {
			return err
		}
	}
	if err := sendFd(sock, master.Name(), master); err != nil {
		return fmt.Errorf("send console: %w", err)
	}
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: slavePath, Err: err}
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for i := 0; i <= 2; i++ {
		if err := unix.Dup3(slave, i, 0); err != nil {
			return fmt.Errorf("dup console: %w", err)
		}
	}
	if slave > 2 {
		unix.Close(slave)
	}
	return nil
}

// prepareProcess applies the process's attributes in the order the kernel
// needs: what requires privilege first, then the user switch and the final
// capability sets, the seccomp filter last. It returns the resolved program
// path and its environment.
func (in *initState) prepareProcess(p *specs.Process) (string, []string, error) {
	if p.OOMScoreAdj != nil {
		v := strconv.Itoa(*p.OOMScoreAdj)
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(v), 0); err != nil {
			return "", nil, fmt.Errorf("set oom_score_adj %s: %w", v, err)
		}
	}
	if err := setScheduling(p); err != nil {
		return "", nil, err
	}
	if err := setPersonality(in.cfg.Spec.Linux.Personality); err != nil {
		return "", nil, err
	}
	if err := applyLSM(p); err != nil {
		return "", nil, err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", nil, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	// The working directory is entered and checked before the seccomp
	// filter, which may forbid getcwd (runtime-tools' seccomp test does).
	// Only a directory that root cannot enter (root squashed by NFS, or
	// a user namespace) waits until after the user switch.
	chdirLate := false
	if err := unix.Chdir(p.Cwd); errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		chdirLate = true
	} else if err != nil {
		return "", nil, &os.PathError{Op: "chdir", Path: p.Cwd, Err: err}
	} else if err := checkCwd(); err != nil {
		return "", nil, err
	}
	sc := in.cfg.Spec.Linux.Seccomp
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
	// user switch below may drop: load it now. With no_new_privs it waits
	// until the end, so it filters as little of the setup as possible.
	if sc != nil && !p.NoNewPrivileges {
		if err := in.loadSeccomp(sc); err != nil {
			return "", nil, err
		}
	}
	if err := switchUser(p); err != nil {
		return "", nil, err
	}
	if chdirLate {
		if err := unix.Chdir(p.Cwd); err != nil {
			return "", nil, &os.PathError{Op: "chdir", Path: p.Cwd, Err: err}
		}
		if err := checkCwd(); err != nil {
			return "", nil, err
		}
	}
	env := processEnv(p)
	argv0, err := lookPath(p.Args[0], env)
	if err != nil {
		return "", nil, err
	}
	// Limits late: an address-space limit would starve the filter's
	// construction and the Go runtime's own allocations.
	if err := setRlimits(p.Rlimits); err != nil {
		return "", nil, err
	}
	if sc != nil && p.NoNewPrivileges {
		if err := in.loadSeccomp(sc); err != nil {
			return "", nil, err
		}
	}
	return argv0, env, nil
}

func (in *initState) loadSeccomp(sc *specs.LinuxSeccomp) error {
	var fd int
	var err error
	if len(in.cfg.SeccompBPF) > 0 {
		var prog []unix.SockFilter
		if prog, err = seccomp.DecodeProgram(in.cfg.SeccompBPF); err == nil {
			fd, err = seccomp.Install(prog, sc)
		}
	} else {
		fd, err = seccomp.Load(sc)
	}
	if err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	if in.cfg.SeccompAgentFD < 0 {
		return fmt.Errorf("%w: seccomp listener without a connection to the agent", ErrInvalid)
	}
	agent := os.NewFile(uintptr(in.cfg.SeccompAgentFD), "seccomp-agent")
	return sendSeccompListener(agent, sc, fd, in.state(Creating))
}

// switchUser drops the bounding set, changes uid, gid and groups, and sets
// the final capability sets.
func switchUser(p *specs.Process) error {
	// No capabilities object means "leave them as they are", as in runc:
	// a process that stays root keeps root's sets.
	c := p.Capabilities
	if c != nil {
		if err := caps.DropBounding(c.Bounding); err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set keepcaps: %w", err)
		}
	}
	groups := make([]int, len(p.User.AdditionalGids))
	for i, g := range p.User.AdditionalGids {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil {
		// In a user namespace whose setgroups is "deny" only an empty
		// list is refused for lack of need: ignore EPERM then.
		if !(errors.Is(err, unix.EPERM) && len(groups) == 0) {
			return fmt.Errorf("setgroups %v: %w", groups, err)
		}
	}
	if err := unix.Setresgid(int(p.User.GID), int(p.User.GID), int(p.User.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", p.User.GID, err)
	}
	if err := unix.Setresuid(int(p.User.UID), int(p.User.UID), int(p.User.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", p.User.UID, err)
	}
	if c != nil {
		if err := caps.Apply(c); err != nil {
			return err
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	return nil
}

// checkCwd refuses a working directory outside the container's root: a
// leaked host descriptor used as cwd would show as "(unreachable)".
func checkCwd() error {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return fmt.Errorf("current working directory is outside of container mount namespace root: %w", err)
	}
	if n == 0 || buf[0] != '/' {
		return errors.New("current working directory is outside of container mount namespace root")
	}
	return nil
}

// processEnv returns the process's environment with HOME set from the
// container's /etc/passwd when missing, as runc does.
func processEnv(p *specs.Process) []string {
	env := append([]string(nil), p.Env...)
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	return append(env, "HOME="+homeDir(p.User.UID))
}

func homeDir(uid uint32) string {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "/"
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 6 && f[2] == strconv.FormatUint(uint64(uid), 10) && f[5] != "" {
			return f[5]
		}
	}
	return "/"
}

// lookPath resolves the program like execvp, with the container's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			// Engines map this to exit status 126, as with runc.
			return "", fmt.Errorf("exec: %q: %w", name, fs.ErrPermission)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = e[5:]
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: %w", name, exec.ErrNotFound)
}

// waitStart tells the runtime the container is created, then blocks until
// start opens the exec fifo. The fifo stays open (close-on-exec): start
// waits for it to close, which tells it the program is executed.
func (in *initState) waitStart() error {
	if err := in.send(message{Type: msgReady}); err != nil {
		return err
	}
	in.ready = true
	in.sock.Close()
	path := "/proc/self/fd/" + strconv.Itoa(in.cfg.FifoFD)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open exec fifo", Path: path, Err: err}
	}
	if _, err := unix.Write(fd, []byte{0}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	return nil
}

// closeExecFrom marks every descriptor from first on close-on-exec.
func closeExecFrom(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	// Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: walk the table.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}
