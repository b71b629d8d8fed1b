package runtime

import (
	"berth.dev/internal/atomicfile"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"berth.dev/cgroups"
	"berth.dev/runtime/rootfs"
	"berth.dev/runtime/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CreateOptions are the inputs of Create; they mirror `runc create`'s flags.
type CreateOptions struct {
	Root   string // state root, e.g. /run/berth-runtime
	ID     string
	Bundle string
	// Spec is the bundle's config.json when the caller has loaded it
	// already; nil means Create loads it.
	Spec *specs.Spec
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master when process.terminal is set.
	ConsoleSocket string
	// ConsoleConn, when set, is used instead of ConsoleSocket (run uses it
	// to receive the master itself).
	ConsoleConn  *os.File
	PidFile      string
	NoPivot      bool
	NoNewKeyring bool
	// PreserveFDs descriptors after stdio (3, 4, ...) go to the container.
	PreserveFDs int
	// Rootless: the runtime runs without root on the host. A cgroup it
	// has no permission to create is then skipped, unless the spec asks
	// for resource limits.
	Rootless bool
	// Stdio of the container's process; nil means the runtime's own.
	Stdin, Stdout, Stderr *os.File
}

// Create makes a container from a bundle and leaves its init waiting to
// exec the user program (state "created"). On any error, everything it made
// (state directory, cgroup, processes) is removed again.
func Create(o CreateOptions) (c *Container, err error) {
	if err := ValidateID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	s := o.Spec
	if s == nil {
		if s, err = spec.Load(bundle); err != nil {
			return nil, err
		}
	}
	if err := spec.Validate(s, true); err != nil {
		return nil, err
	}
	if err := validateForRuntime(s); err != nil {
		return nil, err
	}
	if s.Process.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return nil, fmt.Errorf("%w: process.terminal is set but no --console-socket was given", ErrInvalid)
	}
	if !s.Process.Terminal && (o.ConsoleSocket != "" || o.ConsoleConn != nil) {
		return nil, fmt.Errorf("%w: --console-socket given but process.terminal is false", ErrInvalid)
	}
	if err := os.MkdirAll(o.Root, 0o711); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Root, o.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExist, o.ID)
		}
		return nil, err
	}
	c = &Container{root: o.Root, dir: dir, s: newSaved(s)}
	c.s.ID = o.ID
	c.s.Bundle = bundle
	c.s.Rootfs = s.Root.Path
	c.s.Created = time.Now().UTC()
	c.s.CgroupPath = cgroupPath(s, o.ID)
	if !hasNamespace(s, specs.MountNamespace) {
		c.s.SharedMountNS = true
		if c.s.RootfsMountID, err = rootfs.MountID(c.s.rootfsPath()); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	var init *initProcess
	var cg cgroups.Manager
	saved := c.s // c is nil once an error is returned
	defer func() {
		if err == nil {
			return
		}
		if init != nil {
			init.kill()
			init.sock.Close()
		}
		if saved.SharedMountNS {
			rootfs.Unmount(saved.rootfsPath(), saved.RootfsMountID)
		}
		if cg != nil {
			cg.Destroy()
		}
		os.RemoveAll(dir)
		c = nil
	}()
	if rc := rootfsConfig(s, &initConfig{Bundle: bundle, NoPivot: o.NoPivot, NewCgroupNS: hasNamespace(s, specs.CgroupNamespace)}); fastEligible(s, &o, rc) {
		if init, cg, err = c.startFast(s, &o, rc); err != nil {
			return nil, err
		}
	} else if err := c.startSlow(s, &o, &init, &cg); err != nil {
		return nil, err
	}
	c.cg = cg
	defer init.sock.Close()
	if err := c.s.save(dir, false); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := atomicfile.WriteBytes(o.PidFile, []byte(strconv.Itoa(init.pid)), 0o644); err != nil {
			return nil, fmt.Errorf("write pid file: %w", err)
		}
	}
	return c, nil
}

// startSlow starts the init from a sealed copy of this binary (spawn).
func (c *Container) startSlow(s *specs.Spec, o *CreateOptions, initp **initProcess, cgp *cgroups.Manager) (err error) {
	var late func() (cgroups.Manager, error)
	if joinCgroupLate(s) {
		late = func() (cgroups.Manager, error) { return c.makeCgroup(s, o.Rootless) }
	} else if *cgp, err = c.makeCgroup(s, o.Rootless); err != nil {
		return err
	}
	*initp, *cgp, err = c.startInit(s, *cgp, late, o)
	return err
}

// joinCgroupLate reports whether the init may join its cgroup after
// making its namespaces (spawnConfig.lateCgroup): on a cgroup v1 host, where
// it joins by writing its tasks files, and without a new user namespace,
// in which those files are not writable.
func joinCgroupLate(s *specs.Spec) bool {
	if hasNamespace(s, specs.UserNamespace) {
		return false
	}
	mode, err := cgroups.DetectMode(cgroups.DefaultMountRoot)
	return err == nil && mode != cgroups.Unified
}

// makeCgroup creates the container's cgroup (startInit applies its
// resources). A rootless runtime without permission to create it goes on
// without one (and records that), as long as the spec sets no limits.
func (c *Container) makeCgroup(s *specs.Spec, rootless bool) (cgroups.Manager, error) {
	cg, err := cgroups.New(c.s.CgroupPath)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", c.s.CgroupPath, err)
	}
	if err := cg.Apply(-1); err != nil {
		if rootless && errors.Is(err, os.ErrPermission) && !hasLimits(s.Linux.Resources) {
			c.s.CgroupPath = ""
			return nil, nil
		}
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	return cg, nil
}

// hasLimits reports whether r sets anything beyond device rules.
func hasLimits(r *specs.LinuxResources) bool {
	if r == nil {
		return false
	}
	return r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil ||
		len(r.HugepageLimits) > 0 || r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0
}

// makeExecFifo makes the state directory's exec fifo and returns it opened
// with O_PATH: the init reopens it for writing through /proc/self/fd once
// it is inside the container, which blocks until start opens it to read.
func (c *Container) makeExecFifo() (*os.File, error) {
	fifo := filepath.Join(c.dir, fifoName)
	if err := unix.Mkfifo(fifo, 0o622); err != nil {
		return nil, &os.PathError{Op: "mkfifo", Path: fifo, Err: err}
	}
	// Past the umask: the init may have switched to any uid by the time it
	// opens the fifo for writing.
	if err := os.Chmod(fifo, 0o622); err != nil {
		return nil, err
	}
	return os.OpenFile(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
}

// startInit starts the container's init and drives it to "created".
func (c *Container) startInit(s *specs.Spec, cg cgroups.Manager, late func() (cgroups.Manager, error), o *CreateOptions) (*initProcess, cgroups.Manager, error) {
	fifoFile, err := c.makeExecFifo()
	if err != nil {
		return nil, cg, err
	}
	defer fifoFile.Close()

	files, err := preservedFiles(o.PreserveFDs)
	if err != nil {
		return nil, cg, err
	}
	cfg := &initConfig{
		Mode:            modeCreate,
		ID:              c.s.ID,
		Bundle:          c.s.Bundle,
		Spec:            s,
		Process:         s.Process,
		NoPivot:         o.NoPivot,
		NoNewKeyring:    o.NoNewKeyring,
		FifoFD:          3 + len(files),
		RootFD:          -1,
		ConsoleSocketFD: -1,
		PreserveFDs:     o.PreserveFDs,
	}
	files = append(files, fifoFile)
	if s.Process.Terminal {
		console, err := consoleSocket(o)
		if err != nil {
			return nil, cg, err
		}
		defer console.Close()
		cfg.ConsoleSocketFD = 3 + len(files)
		files = append(files, console)
	}
	files, closeAgent, err := withSeccompAgent(s, cfg, files)
	if err != nil {
		return nil, cg, err
	}
	defer closeAgent()
	boot := bootstrapFor(s)
	cfg.UserNS = hasNamespace(s, specs.UserNamespace)
	cfg.NewCgroupNS = boot.cloneFlags&unix.CLONE_NEWCGROUP != 0
	// The runtime builds the rootfs itself when it can (prepareRootfs),
	// with a procfs context the init opens.
	rc := rootfsConfig(s, cfg)
	outside := rootfs.CanPrepareOutside(rc)
	sc := &spawnConfig{
		procfs:     outside && rootfs.NeedsProcFS(rc),
		boot:       boot,
		cgroup:     cg,
		lateCgroup: late,
		files:      files,
		stdin:      orStdio(o.Stdin, os.Stdin),
		stdout:     orStdio(o.Stdout, os.Stdout),
		stderr:     orStdio(o.Stderr, os.Stderr),
	}
	init, err := spawn(sc)
	cg = sc.cgroup
	if err != nil {
		return nil, cg, err
	}
	var prepared chan error
	if outside {
		prepared = make(chan error, 1)
		go func() {
			done, err := prepareRootfs(init, rc)
			cfg.RootfsPrepared = done
			prepared <- err
		}()
	}
	err = c.prepareWhileInitStarts(s, cg, cfg)
	if err == nil {
		err = c.recordInit(init.pid)
	}
	if prepared != nil {
		// Waited for even after an error: nothing may still be mounting
		// when the caller kills the init.
		if perr := <-prepared; err == nil && perr != nil {
			err = fmt.Errorf("prepare rootfs: %w", perr)
		}
	}
	if err != nil {
		return init, cg, err
	}
	cfg.Pid = init.pid
	if err := driveInit(init, cfg, c); err != nil {
		return init, cg, err
	}
	return init, cg, nil
}

// prepareWhileInitStarts applies the cgroup's resources and builds the
// seccomp program once the init exists, while its Go runtime starts (a
// millisecond or two the init spends on its own, in parallel on another
// CPU), instead of before: the init runs nothing of the container before
// it has its config, which is sent after both.
func (c *Container) prepareWhileInitStarts(s *specs.Spec, cg cgroups.Manager, cfg *initConfig) error {
	if cg != nil {
		if err := cg.Set(cgroupResources(s)); err != nil {
			return fmt.Errorf("apply resources: %w", err)
		}
	}
	if err := withSeccompProgram(s, cfg, c.root); err != nil {
		return err
	}
	cfg.Spec = initSpec(s, len(cfg.SeccompBPF) > 0)
	return nil
}

// recordInit notes the init's pid and start time and writes the container's
// config into its state directory, all the init does not wait for. The
// state itself (state.json) is written once the init is ready.
func (c *Container) recordInit(pid int) error {
	st, err := readProcStat(pid)
	if err != nil {
		return fmt.Errorf("container init exited early: %w", err)
	}
	c.s.Pid = pid
	c.s.StartTime = st.StartTime
	return c.s.saveSpec(c.dir)
}

// driveInit sends the init its config and answers its requests until it is
// ready (create) or has exec'd (exec).
func driveInit(init *initProcess, cfg *initConfig, c *Container) error {
	if err := init.send(cfg); err != nil {
		return fmt.Errorf("send config to init: %w", err)
	}
	for {
		m, err := init.recv()
		if err == io.EOF && cfg.Mode == modeExec {
			return nil
		}
		if err != nil {
			return fmt.Errorf("container init exited without reporting: %w", err)
		}
		switch m.Type {
		case msgReady:
			return nil
		case msgError:
			return errors.New(m.Error)
		case msgHooks:
			h := hooksOf(cfg.Spec)
			// Legacy prestart hooks were defined to run once the
			// container was created, and the runtime-tools suite still
			// expects them to see "created"; the createRuntime hooks that
			// replace them run during create and see "creating".
			err := runHooks("prestart", h.Prestart, c.ociState(Created, init.pid)) //nolint:staticcheck // legacy hooks still run
			if err == nil {
				err = runHooks("createRuntime", h.CreateRuntime, c.ociState(Creating, init.pid))
			}
			if err != nil {
				init.send(message{Type: msgError, Error: err.Error()})
				return err
			}
			if err := init.send(message{Type: msgOK}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("container init: unexpected message %q", m.Type)
		}
	}
}

func bootstrapFor(s *specs.Spec) bootstrap {
	var b bootstrap
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" {
			b.joins = append(b.joins, nsJoin{typ: ns.Type, path: ns.Path})
			continue
		}
		b.cloneFlags |= nsFlags[ns.Type]
	}
	b.timeOffsets = s.Linux.TimeOffsets
	b.uidMappings = s.Linux.UIDMappings
	b.gidMappings = s.Linux.GIDMappings
	return b
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// validateForRuntime checks what spec.Validate leaves to the runtime: the
// parts that depend on this runtime's abilities.
func validateForRuntime(s *specs.Spec) error {
	if s.Process.SelinuxLabel != "" && !selinuxEnabled() {
		return fmt.Errorf("%w: process.selinuxLabel is set but SELinux is not enabled on this host", ErrInvalid)
	}
	if s.Process.ApparmorProfile != "" && !apparmorEnabled() {
		return fmt.Errorf("%w: process.apparmorProfile is set but AppArmor is not enabled on this host", ErrInvalid)
	}
	if s.Linux.MountLabel != "" && !selinuxEnabled() {
		return fmt.Errorf("%w: linux.mountLabel is set but SELinux is not enabled on this host", ErrInvalid)
	}
	return nil
}

func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

func apparmorEnabled() bool {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(data) > 0 && data[0] == 'Y'
}

// cgroupPath is the spec's cgroupsPath, or /<id> when it has none.
func cgroupPath(s *specs.Spec, id string) string {
	if s.Linux != nil && s.Linux.CgroupsPath != "" {
		return s.Linux.CgroupsPath
	}
	return "/" + id
}

// preservedFiles returns the n descriptors after stdio that go to the
// container, and marks every other inherited descriptor close-on-exec so
// that nothing the runtime's caller leaked reaches the init (CVE-2024-21626).
func preservedFiles(n int) ([]*os.File, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: --preserve-fds must not be negative", ErrInvalid)
	}
	if err := closeExecFrom(3 + n); err != nil {
		return nil, err
	}
	var files []*os.File
	for i := 0; i < n; i++ {
		fd := 3 + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("%w: --preserve-fds=%d but descriptor %d is not open", ErrInvalid, n, fd)
		}
		files = append(files, os.NewFile(uintptr(fd), "preserved-"+strconv.Itoa(fd)))
	}
	return files, nil
}

// consoleSocket connects to the --console-socket path.
func consoleSocket(o *CreateOptions) (*os.File, error) {
	if o.ConsoleConn != nil {
		return o.ConsoleConn, nil
	}
	conn, err := dialUnix(o.ConsoleSocket)
	if err != nil {
		return nil, fmt.Errorf("connect to console socket: %w", err)
	}
	return conn, nil
}

func orStdio(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}
