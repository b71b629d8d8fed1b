package runtime

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"berth.dev/cgroups"
	"berth.dev/runtime/caps"
	"berth.dev/runtime/rootfs"
	"berth.dev/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The fast init: for the common container (its own mount and PID namespaces,
// nothing joined by path, no user or time namespace, no terminal, no hooks
// that run in the container, no seccomp listener or LSM label) the init is a
// child the runtime starts with vfork that runs no Go of its own
// (fastchild_linux.go, fastfork_amd64.go): no sealed binary to execute, no
// second Go runtime to start. The runtime's thread that builds the root
// filesystem also switches the root (pivot_root moves every process of the
// namespace), applies sysctls, read-only and masked paths and the host name,
// and finds the program; the child does what belongs to the process (working
// directory, keyring, credentials, capabilities, seccomp, limits) and
// executes a tiny sealed trampoline (trampoline_amd64.go) that waits on the
// exec fifo for start and executes the program. While the container exists,
// the init's /proc/<pid>/exe is that sealed memfd, never the runtime's
// binary (CVE-2019-5736). Everything else goes the way of spawn and Init.

// fastDisabled turns the fast init off (BERTH_RUNTIME_FAST_INIT=0), for
// comparisons.
var fastDisabled = os.Getenv("BERTH_RUNTIME_FAST_INIT") == "0"

// fastEligible reports whether the container can have the fast init.
func fastEligible(s *specs.Spec, o *CreateOptions, rc *rootfs.Config) bool {
	if fastDisabled || goruntime.GOARCH != "amd64" || o.Rootless || os.Geteuid() != 0 || o.NoPivot {
		return false
	}
	if o.Stdin != nil || o.Stdout != nil || o.Stderr != nil || o.ConsoleConn != nil || o.ConsoleSocket != "" {
		return false
	}
	p := s.Process
	if p.Terminal || p.ApparmorProfile != "" || p.SelinuxLabel != "" || p.Scheduler != nil ||
		p.IOPriority != nil || p.ExecCPUAffinity != nil || len(p.Args) == 0 {
		return false
	}
	if h := s.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer)+len(h.StartContainer) > 0 { //nolint:staticcheck
		return false
	}
	l := s.Linux
	if l == nil || l.Personality != nil || l.MountLabel != "" || l.IntelRdt != nil {
		return false
	}
	if sc := l.Seccomp; sc != nil && (sc.ListenerPath != "" || seccomp.HasNotify(sc)) {
		return false
	}
	mnt, pid := false, false
	for _, ns := range l.Namespaces {
		if ns.Path != "" {
			return false
		}
		switch ns.Type {
		case specs.MountNamespace:
			mnt = true
		case specs.PIDNamespace:
			pid = true
		case specs.UserNamespace, specs.TimeNamespace:
			return false
		}
	}
	if !mnt || !pid || !rootfs.CanPrepareOutside(rc) {
		return false
	}
	return kernelHasFastInit()
}

// kernelHasFastInit reports whether the kernel has what the fast init uses:
// fsopen(2) (5.2), pidfd_getfd(2) (5.6) and clone3(2) with
// CLONE_INTO_CGROUP (5.7).
func kernelHasFastInit() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 7
}

// fastInit is the runtime's side of a fast init.
type fastInit struct {
	process *specs.Process
	tid     int32 // the child's pid, written by clone3 (CLONE_PARENT_SETTID)
	sock    *os.File
	r       *bufio.Reader
	args    *fastArgs
	// keep holds what args points into, until the fork.
	keep []any
}

// cstr returns a NUL-terminated copy of s and remembers it.
func (f *fastInit) cstr(s string) uintptr {
	b := append([]byte(s), 0)
	f.keep = append(f.keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

// startFast creates the container's init as a fast init and drives it to
// "created".
func (c *Container) startFast(s *specs.Spec, o *CreateOptions, rc *rootfs.Config) (_ *initProcess, cg cgroups.Manager, err error) {
	// The cgroup is made while the rest is prepared and the child starts;
	// the child joins it by its tasks files once told it exists.
	if cg, err = cgroups.New(c.s.CgroupPath); err != nil {
		return nil, nil, fmt.Errorf("cgroup %s: %w", c.s.CgroupPath, err)
	}
	cgDone := make(chan error, 1)
	go func() { cgDone <- cg.Apply(-1) }()
	defer func() {
		if err != nil && cgDone != nil {
			<-cgDone // made or not, cg.Destroy removes it
		}
	}()
	fifoFile, err := c.makeExecFifo()
	if err != nil {
		return nil, cg, err
	}
	defer fifoFile.Close()
	if _, err := preservedFiles(o.PreserveFDs); err != nil {
		return nil, cg, err
	}
	tramp, err := trampolineFile(int(fifoFile.Fd()))
	if err != nil {
		return nil, cg, err
	}
	defer tramp.Close()

	p := s.Process
	f := &fastInit{process: p}
	a := &fastArgs{umask: -1}
	f.args = a
	a.zero = f.cstr("0")
	if rootfs.NeedsProcFS(rc) {
		a.procName = f.cstr("proc")
	}
	if !o.NoNewKeyring {
		a.keyring = f.cstr(c.s.ID)
	}
	a.cwd = f.cstr(p.Cwd)
	cwdBuf := make([]byte, unix.PathMax)
	f.keep = append(f.keep, cwdBuf)
	a.cwdBuf, a.cwdBufLen = unsafe.Pointer(&cwdBuf[0]), uintptr(len(cwdBuf))
	a.nnp = p.NoNewPrivileges
	if sc := s.Linux.Seccomp; sc != nil {
		prog, err := seccomp.Program(sc, filepath.Join(c.root, seccompCacheDir))
		if err != nil {
			return nil, cg, fmt.Errorf("seccomp: %w", err)
		}
		if len(prog) == 0 {
			return nil, cg, errors.New("seccomp: empty program")
		}
		fprog := &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		f.keep = append(f.keep, prog, fprog)
		a.seccomp = uintptr(unsafe.Pointer(fprog))
		a.seccompFlags = uintptr(seccomp.LoadFlags(sc))
	}
	if p.Capabilities != nil {
		raw, err := caps.RawOf(p.Capabilities)
		if err != nil {
			return nil, cg, err
		}
		hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		f.keep = append(f.keep, raw, hdr)
		a.caps = true
		a.capDrop, a.ambient = raw.Drop, raw.Ambient
		a.capHdr, a.capData = uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&raw.Data[0]))
	}
	groups := make([]uint32, len(p.User.AdditionalGids)+1)
	copy(groups, p.User.AdditionalGids)
	f.keep = append(f.keep, groups)
	a.groups, a.ngroups = uintptr(unsafe.Pointer(&groups[0])), uintptr(len(p.User.AdditionalGids))
	a.uid, a.gid = uintptr(p.User.UID), uintptr(p.User.GID)
	if p.User.Umask != nil {
		a.umask = int(*p.User.Umask)
	}
	for _, l := range p.Rlimits {
		res, ok := rlimitNames[l.Type]
		if !ok {
			return nil, cg, fmt.Errorf("%w: unknown rlimit %q", ErrInvalid, l.Type)
		}
		lim := &unix.Rlimit{Cur: l.Soft, Max: l.Hard}
		f.keep = append(f.keep, lim)
		a.rlimits = append(a.rlimits, fastRlimit{uintptr(res), uintptr(unsafe.Pointer(lim))})
	}
	a.closeFrom = uintptr(3 + o.PreserveFDs)
	a.fifoFD = fifoFile.Fd()
	a.exe = f.cstr("/proc/self/fd/" + strconv.Itoa(int(tramp.Fd())))
	// The program's block: its argv and environment (with HOME, and the
	// trampoline's path variable), the path found by a PATH lookup.
	size := 8 + 4096 + 2*unix.PathMax
	for _, v := range p.Args {
		size += 5 + len(v)
	}
	for _, v := range p.Env {
		size += 5 + len(v)
	}
	buf := make([]byte, size)
	a.buf, a.bufLen = unsafe.Pointer(&buf[0]), uintptr(len(buf))
	a.ptrs = make([]uintptr, len(p.Args)+len(p.Env)+4)
	f.keep = append(f.keep, buf, a.ptrs)

	ca := &cloneArgs{exitSignal: uint64(unix.SIGCHLD)}
	switch m := cg.(type) {
	case interface{ TaskFiles() []string }:
		for _, t := range m.TaskFiles() {
			a.tasks = append(a.tasks, f.cstr(t))
		}
	case interface{ Dir() string }:
		// v2: born in the cgroup (CLONE_INTO_CGROUP), which must exist
		// first.
		cgErr := <-cgDone
		cgDone = nil
		if cgErr != nil {
			return nil, cg, fmt.Errorf("create cgroup: %w", cgErr)
		}
		dir, err := os.OpenFile(m.Dir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, cg, fmt.Errorf("open cgroup: %w", err)
		}
		defer dir.Close()
		ca.flags |= unix.CLONE_INTO_CGROUP
		ca.cgroup = uint64(dir.Fd())
	default:
		return nil, cg, fmt.Errorf("cgroup %T cannot be joined", cg)
	}
	// The PID and mount namespaces come with the fork; the child makes
	// the network namespace (the slowest, 0.5 ms), IPC and UTS ones itself
	// while the runtime creates the cgroup, and a cgroup namespace once in
	// the cgroup.
	var flags uintptr
	for _, ns := range s.Linux.Namespaces {
		switch ns.Type {
		case specs.PIDNamespace, specs.MountNamespace:
			flags |= nsFlags[ns.Type]
		case specs.CgroupNamespace:
			a.newCgroupNS = true
		default:
			a.unshare |= nsFlags[ns.Type]
		}
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, cg, fmt.Errorf("socketpair: %w", err)
	}
	a.sock = uintptr(fds[1])
	f.sock = os.NewFile(uintptr(fds[0]), "fast-init")
	f.r = bufio.NewReader(f.sock)
	defer func() {
		if err != nil {
			f.sock.Close() // else the caller's, in the initProcess
		}
	}()

	// The thread that builds the rootfs starts now, and the cgroup is
	// made while the child starts.
	th := f.startThread(rc, s, p)
	defer func() {
		// After an error, once the init is killed: nothing may still be
		// mounting when the caller cleans up.
		th.stop()
		if err != nil && !th.waited {
			<-th.done
		}
	}()
	// The calling thread waits in forkFast while the child runs on its
	// stack: what the runtime does for the child meanwhile is drive's, on
	// a goroutine of its own. No garbage collection may start until then:
	// it would stop the world, waiting for this thread, which waits for
	// the child, which waits for the other goroutines.
	ca.flags |= uint64(flags) | unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_PARENT_SETTID
	ca.parentTID = uint64(uintptr(unsafe.Pointer(&f.tid)))
	gcPercent := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(gcPercent)
	driven := make(chan error, 1)
	init := &initProcess{sock: f.sock}
	go func() { driven <- c.drive(f, init, th, cg, &cgDone, s, p) }()
	_, errno := forkFast(a, ca)
	unix.Close(fds[1])
	if errno != 0 {
		unix.Shutdown(int(f.sock.Fd()), unix.SHUT_RDWR) // ends drive, which reads from it
		<-driven
		return nil, cg, fmt.Errorf("start container init: clone: %w", errno)
	}
	err = <-driven
	goruntime.KeepAlive(f.keep)
	goruntime.KeepAlive(ca)
	if err != nil {
		if init.pid > 0 {
			init.kill()
		}
		return nil, cg, err
	}
	return init, cg, nil
}

// drive does the runtime's part of starting the fast init, from its first
// report to the exec of the trampoline (then its socket reads EOF).
func (c *Container) drive(f *fastInit, init *initProcess, th *rootfsThread, cg cgroups.Manager, cgDone *chan error, s *specs.Spec, p *specs.Process) (err error) {
	defer func() {
		if err != nil && init.pid > 0 {
			// The child is killed, which returns forkFast.
			unix.Kill(init.pid, unix.SIGKILL)
		}
	}()
	// The thread builds the rootfs from now on; the init joins its cgroup
	// meanwhile (the thread waits for that only to enter a new cgroup
	// namespace).
	procfs, err := f.record(recNamespaces)
	if err != nil {
		return err
	}
	// The kernel wrote the child's pid before the child ran.
	init.pid = int(atomic.LoadInt32(&f.tid))
	th.pids <- init.pid
	th.ns <- int(procfs)
	if *cgDone != nil {
		cgErr := <-*cgDone
		*cgDone = nil
		if cgErr != nil {
			return fmt.Errorf("create cgroup: %w", cgErr)
		}
		if _, err := f.sock.Write([]byte{'C'}); err != nil {
			return fmt.Errorf("container init: %w", err)
		}
	}
	if _, err := f.record(recJoined); err != nil {
		return err
	}
	// The init is in its cgroup: which one, and where the host mounts it
	// (for the cgroup mounts), is worked out here while the thread makes
	// the mounts before them.
	th.joined <- true
	th.layouts <- func() (l cgroupLayout) {
		proc := "/proc/" + strconv.Itoa(init.pid)
		mi, err := os.ReadFile(proc + "/mountinfo")
		if err != nil {
			return cgroupLayout{err: err}
		}
		cgf, err := os.ReadFile(proc + "/cgroup")
		if err != nil {
			return cgroupLayout{err: err}
		}
		l.l, l.err = rootfs.ParseCgroupLayout(mi, cgf)
		return l
	}()
	err = cg.Set(cgroupResources(s))
	if err != nil {
		err = fmt.Errorf("apply resources: %w", err)
	}
	if err == nil && p.OOMScoreAdj != nil {
		err = os.WriteFile("/proc/"+strconv.Itoa(init.pid)+"/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0)
	}
	if err == nil {
		err = c.recordInit(init.pid)
	}
	perr := <-th.done
	th.waited = true
	if err == nil && perr != nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if _, err := f.record(recExec); err != nil {
		return err
	}
	// Then EOF: the socket closed on exec of the trampoline (and forkFast
	// returned, closing the runtime's copy of the child's end); an error
	// record means the exec failed.
	if _, err := f.record(0); err != nil && err != io.EOF {
		return err
	}
	return nil
}

// record reads the child's next record, which must be of kind want (0:
// none, only EOF). An error record becomes the error.
func (f *fastInit) record(want uint32) (uint32, error) {
	var b [8]byte
	if _, err := io.ReadFull(f.r, b[:]); err != nil {
		if err == io.EOF && want == 0 {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("container init exited without reporting: %w", err)
	}
	kind, val := binary.NativeEndian.Uint32(b[:]), binary.NativeEndian.Uint32(b[4:])
	if kind&0xff == recError {
		return 0, f.error(val>>16, int(kind>>8), syscall.Errno(val&0xffff))
	}
	if kind != want {
		return 0, fmt.Errorf("container init: unexpected report %d", kind)
	}
	return val, nil
}

var fastSteps = map[uint32]string{
	stepDumpable:   "prctl PR_SET_DUMPABLE",
	stepWaitCgroup: "wait for the cgroup",
	stepJoinCgroup: "join cgroup",
	stepCgroupNS:   "unshare cgroup namespace",
	stepProcfs:     "fsopen proc",
	stepReport:     "report to the runtime",
	stepWaitRootfs: "wait for the root filesystem",
	stepKeyring:    "join session keyring",
	stepNoNewPrivs: "set no_new_privs",
	stepSeccomp:    "load seccomp filter",
	stepBounding:   "drop from the bounding set",
	stepKeepCaps:   "prctl PR_SET_KEEPCAPS",
	stepSetgroups:  "setgroups",
	stepSetgid:     "setgid",
	stepSetuid:     "setuid",
	stepCapset:     "set capabilities",
	stepAmbient:    "set ambient capabilities",
	stepRlimit:     "set rlimits",
	stepCloseRange: "close_range",
	stepFifo:       "keep the exec fifo",
	stepExec:       "exec",
}

// error explains the failure of step (for item i) with errno e in the
// words of the sealed-exec init.
func (f *fastInit) error(step uint32, i int, e syscall.Errno) error {
	p := f.process
	switch step {
	case stepChdir:
		return &os.PathError{Op: "chdir", Path: p.Cwd, Err: e}
	case stepCwd:
		return errors.New("current working directory is outside of container mount namespace root")
	case stepRlimit:
		if i < len(p.Rlimits) {
			l := p.Rlimits[i]
			return rlimitError(l, rlimitNames[l.Type], e)
		}
	case stepBounding:
		return fmt.Errorf("drop %s from the bounding set: %w", caps.Cap(i), os.NewSyscallError("prctl PR_CAPBSET_DROP", e))
	case stepAmbient:
		if i > 0 {
			return fmt.Errorf("raise %s in the ambient set: %w", caps.Cap(i-1), os.NewSyscallError("prctl PR_CAP_AMBIENT_RAISE", e))
		}
	case stepSetgroups:
		return fmt.Errorf("setgroups %v: %w", p.User.AdditionalGids, e)
	case stepSetgid:
		return fmt.Errorf("setgid %d: %w", p.User.GID, e)
	case stepSetuid:
		return fmt.Errorf("setuid %d: %w", p.User.UID, e)
	case stepSeccomp:
		if e == unix.EACCES {
			return fmt.Errorf("load seccomp filter: set no_new_privs or hold CAP_SYS_ADMIN first: %w", os.NewSyscallError("seccomp", e))
		}
		return fmt.Errorf("load seccomp filter: %w", os.NewSyscallError("seccomp", e))
	}
	name := fastSteps[step]
	if name == "" {
		name = "step " + strconv.Itoa(int(step))
	}
	return fmt.Errorf("container init: %s: %w", name, e)
}

// rootfsThread builds the root filesystem from a thread of its own that
// enters the init's namespaces, switches the init's root to it, and sends
// the init the program's block. It is started before the fork and waits for
// the init's pid (to open its namespaces), then for its procfs context.
type rootfsThread struct {
	pids chan int
	// ns gets the init's procfs context (0: none), once it has made its
	// namespaces, or -1 to stop.
	ns chan int
	// joined: the init is in its cgroup and cgroup namespace (false:
	// stop).
	joined chan bool
	// layouts gets the init's cgroup layout (rootfs.Config.CgroupLayout),
	// worked out by the caller once the init is in its cgroup.
	layouts chan cgroupLayout
	done    chan error
	// waited: done was received (by drive, before it returns).
	waited bool
}

type cgroupLayout struct {
	l   *rootfs.CgroupLayout
	err error
}

func (f *fastInit) startThread(rc *rootfs.Config, s *specs.Spec, p *specs.Process) *rootfsThread {
	th := &rootfsThread{pids: make(chan int, 1), ns: make(chan int, 1), joined: make(chan bool, 1),
		layouts: make(chan cgroupLayout, 1), done: make(chan error, 1)}
	go func() {
		goruntime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			goruntime.UnlockOSThread()
			th.done <- errors.New("container init: rootfs thread is the main thread")
			return
		}
		// The thread ends with this goroutine, never to run Go code in the
		// host's namespaces again.
		th.done <- f.prepareInNamespaces(th, rc, s, p)
	}()
	return th
}

// stop ends the thread wherever it waits for the caller (after an error).
func (th *rootfsThread) stop() {
	select {
	case th.pids <- 0:
	default:
	}
	select {
	case th.ns <- -1:
	default:
	}
	select {
	case th.joined <- false:
	default:
	}
	select {
	case th.layouts <- cgroupLayout{err: errors.New("stopped")}:
	default:
	}
}

func (f *fastInit) prepareInNamespaces(th *rootfsThread, rc *rootfs.Config, s *specs.Spec, p *specs.Process) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	pid := <-th.pids
	if pid == 0 {
		return nil
	}
	c := *rc
	proc := "/proc/" + strconv.Itoa(pid)
	// The namespaces but the cgroup one are entered as soon as the child
	// has made them (while the cgroup is created and joined), the cgroup
	// one and procfs once the child has joined it.
	procfs := <-th.ns
	if procfs < 0 {
		return nil // stopped
	}
	for _, ns := range []struct {
		name string
		flag int
	}{{"net", unix.CLONE_NEWNET}, {"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"mnt", unix.CLONE_NEWNS}} {
		if err := enterNamespace(proc, ns.name, ns.flag); err != nil {
			return err
		}
	}
	if procfs > 0 {
		fs, err := takeFd(pid, procfs)
		if err != nil {
			return fmt.Errorf("take the init's procfs: %w", err)
		}
		defer unix.Close(fs)
		c.ProcFS = fs
	}
	if rc.CgroupNS {
		// Its cgroup namespace exists once the init is in its cgroup.
		if !<-th.joined {
			return nil // stopped
		}
		if err := enterNamespace(proc, "cgroup", unix.CLONE_NEWCGROUP); err != nil {
			return err
		}
	}
	c.CgroupLayout = func() (*rootfs.CgroupLayout, error) {
		l := <-th.layouts
		return l.l, l.err
	}
	if err := rootfs.Prepare(&c); err != nil {
		return err
	}
	// pivot_root moves the init's root too: not before it has joined its
	// cgroup through the host's paths.
	if !rc.CgroupNS && !<-th.joined {
		return nil // stopped
	}
	if err := rootfs.Pivot(&c); err != nil {
		return err
	}
	if err := finishRoot(s, &c); err != nil {
		return err
	}
	// This thread's root is now the container's: find the program there.
	env := processEnv(p)
	argv0, err := lookPath(p.Args[0], env)
	if err != nil {
		return err
	}
	block := fastProgram(p.Args, append(env, "P="+argv0))
	var n [4]byte
	binary.NativeEndian.PutUint32(n[:], uint32(len(block)))
	if _, err := f.sock.Write(append(n[:], block...)); err != nil {
		return fmt.Errorf("container init: %w", err)
	}
	return nil
}

// fastProgram lays out argv and env for the fast init: their counts, the
// offsets of their strings, the NUL-terminated strings.
func fastProgram(argv, env []string) []byte {
	n := len(argv) + len(env)
	b := make([]byte, 8+4*n)
	binary.NativeEndian.PutUint32(b, uint32(len(argv)))
	binary.NativeEndian.PutUint32(b[4:], uint32(len(env)))
	for i, s := range append(append([]string(nil), argv...), env...) {
		binary.NativeEndian.PutUint32(b[8+4*i:], uint32(len(b)))
		b = append(append(b, s...), 0)
	}
	return b
}

// trampolineFile returns a sealed memfd holding the trampoline for the
// exec fifo at descriptor fifo.
func trampolineFile(fifo int) (*os.File, error) {
	return sealedMemfd("berth-init", func(f *os.File) error {
		_, err := f.Write(trampolineELF(fifo))
		return err
	})
}
