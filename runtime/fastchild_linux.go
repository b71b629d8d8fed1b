package runtime

import (
	"syscall"
	"unsafe"
	_ "unsafe" // go:linkname

	"golang.org/x/sys/unix"
)

// The fast init is a child forked from the runtime itself (no exec, no Go
// runtime of its own): between fork and exec it may only make system
// calls, from functions that cannot grow the stack (go:nosplit) and
// allocate nothing. Everything it needs is worked out before the fork, in
// a fastArgs, and what comes later (the program's argv and environment)
// comes over its socket into a buffer allocated before.

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

// fastArgs is the fast init's whole input. Pointers are uintptrs into
// memory allocated before the fork: the child has its own copy of it.
type fastArgs struct {
	sock  uintptr
	tasks []uintptr // NUL-terminated v1 "tasks" paths to write "0" to
	zero  uintptr   // "0"

	unshare     uintptr // namespaces the child makes itself, in parallel with the runtime
	newCgroupNS bool
	procName    uintptr // "proc"
	keyring     uintptr // session keyring name, 0 for none

	cwd       uintptr
	cwdBuf    unsafe.Pointer
	cwdBufLen uintptr

	nnp          bool
	seccomp      uintptr // *unix.SockFprog, 0 for none
	seccompFlags uintptr

	caps    bool
	capDrop []uintptr
	capHdr  uintptr // *unix.CapUserHeader
	capData uintptr // *[2]unix.CapUserData
	ambient []uintptr

	groups, ngroups uintptr
	uid, gid        uintptr
	rlimits         []fastRlimit
	umask           int

	closeFrom uintptr
	fifoFD    uintptr
	exe       uintptr // "/proc/self/fd/<trampoline>"

	// buf receives the program's block (see fastProgram); ptrs, with
	// room for its argv and environment and their NULLs, is filled from it.
	buf    unsafe.Pointer
	bufLen uintptr
	ptrs   []uintptr
}

type fastRlimit struct {
	resource uintptr
	limit    uintptr // *unix.Rlimit
}

// Steps of the fast init, reported with the errno of the one that failed.
const (
	stepDumpable = iota + 1
	stepUnshare
	stepWaitCgroup
	stepJoinCgroup
	stepCgroupNS
	stepProcfs
	stepReport
	stepWaitRootfs
	stepChdir
	stepCwd
	stepKeyring
	stepNoNewPrivs
	stepSeccomp
	stepBounding
	stepKeepCaps
	stepSetgroups
	stepSetgid
	stepSetuid
	stepCapset
	stepAmbient
	stepRlimit
	stepCloseRange
	stepFifo
	stepExec
)

// Records the fast init writes to its socket: 8 bytes, a kind and a value.
const (
	recJoined     = 1 // in the cgroup, and its cgroup namespace made
	recExec       = 2 // about to execute the trampoline
	recError      = 3 // value: step<<16 | errno
	recNamespaces = 4 // the namespaces but the cgroup one are made; value: the procfs context's descriptor, or 0
)

// cloneArgs is struct clone_args of clone3(2), up to its cgroup field.
type cloneArgs struct {
	flags      uint64
	pidfd      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

//go:norace
//go:nosplit
func rawRecord(fd, kind, val uintptr) syscall.Errno {
	var b [8]byte
	*(*uint32)(unsafe.Pointer(&b[0])) = uint32(kind)
	*(*uint32)(unsafe.Pointer(&b[4])) = uint32(val)
	_, _, e := syscall.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), 8)
	return e
}

//go:norace
//go:nosplit
func fastFail(a *fastArgs, step uintptr, e syscall.Errno) {
	fastFailAt(a, step, 0, e)
}

// fastFailAt reports the failure of step for item i (a capability, a
// limit's index) and ends the process.
//
//go:norace
//go:nosplit
func fastFailAt(a *fastArgs, step, i uintptr, e syscall.Errno) {
	rawRecord(a.sock, recError|i<<8, step<<16|uintptr(e))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 1, 0, 0)
	}
}

// rawReadFull reads n bytes into p.
//
//go:norace
//go:nosplit
func rawReadFull(fd, p, n uintptr) syscall.Errno {
	for n > 0 {
		r, _, e := syscall.RawSyscall(unix.SYS_READ, fd, p, n)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		if r == 0 {
			return unix.EPIPE
		}
		p += r
		n -= r
	}
	return 0
}

// fastCheckCwd fails if the working directory is outside the root: it
// shows as "(unreachable)..." (CVE-2024-21626).
//
//go:norace
//go:nosplit
func fastCheckCwd(a *fastArgs) {
	if _, _, e := syscall.RawSyscall(unix.SYS_GETCWD, uintptr(a.cwdBuf), a.cwdBufLen, 0); e != 0 {
		fastFail(a, stepCwd, e)
	}
	if *(*byte)(a.cwdBuf) != '/' {
		fastFail(a, stepCwd, unix.ENOENT)
	}
}

//go:norace
//go:nosplit
func fastChild(a *fastArgs) {
	// Not dumpable until exec: processes entering the container cannot
	// reach this one's memory or descriptors.
	if _, _, e := syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0); e != 0 {
		fastFail(a, stepDumpable, e)
	}
	if a.unshare != 0 {
		if _, _, e := syscall.RawSyscall(unix.SYS_UNSHARE, a.unshare, 0, 0); e != 0 {
			fastFail(a, stepUnshare, e)
		}
	}
	// A procfs shows the PID namespace of the process that opens it: the
	// runtime mounts the container's from this context.
	procfs := uintptr(0)
	if a.procName != 0 {
		fd, _, e := syscall.RawSyscall(unix.SYS_FSOPEN, a.procName, unix.FSOPEN_CLOEXEC, 0)
		if e != 0 {
			fastFail(a, stepProcfs, e)
		}
		procfs = fd
	}
	if e := rawRecord(a.sock, recNamespaces, procfs); e != 0 {
		fastFail(a, stepReport, e)
	}
	var c [8]byte
	cp := uintptr(unsafe.Pointer(&c[0]))
	if len(a.tasks) > 0 {
		if e := rawReadFull(a.sock, cp, 1); e != 0 {
			fastFail(a, stepWaitCgroup, e)
		}
		for _, t := range a.tasks {
			fd, _, e := syscall.RawSyscall6(unix.SYS_OPENAT, ^uintptr(99) /* AT_FDCWD */, t, unix.O_WRONLY|unix.O_CLOEXEC, 0, 0, 0)
			if e != 0 {
				fastFail(a, stepJoinCgroup, e)
			}
			_, _, e = syscall.RawSyscall(unix.SYS_WRITE, fd, a.zero, 1)
			syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
			if e != 0 {
				fastFail(a, stepJoinCgroup, e)
			}
		}
	}
	if a.newCgroupNS {
		if _, _, e := syscall.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWCGROUP, 0, 0); e != 0 {
			fastFail(a, stepCgroupNS, e)
		}
	}
	if e := rawRecord(a.sock, recJoined, 0); e != 0 {
		fastFail(a, stepReport, e)
	}
	// The runtime builds the root filesystem and switches this process's
	// root (pivot_root moves every process of the namespace), then sends
	// the program's block: its length, then the block.
	if e := rawReadFull(a.sock, cp, 4); e != 0 {
		fastFail(a, stepWaitRootfs, e)
	}
	n := uintptr(*(*uint32)(unsafe.Pointer(&c[0])))
	if n > a.bufLen {
		fastFail(a, stepWaitRootfs, unix.E2BIG)
	}
	if e := rawReadFull(a.sock, uintptr(a.buf), n); e != 0 {
		fastFail(a, stepWaitRootfs, e)
	}
	if procfs != 0 {
		syscall.RawSyscall(unix.SYS_CLOSE, procfs, 0, 0)
	}
	// The block: argc, envc (uint32), then argc+envc offsets (uint32) of
	// NUL-terminated strings in the block.
	argc := uintptr(*(*uint32)(a.buf))
	envc := uintptr(*(*uint32)(unsafe.Add(a.buf, 4)))
	if argc+envc+2 > uintptr(len(a.ptrs)) || 8+4*(argc+envc) > n {
		fastFail(a, stepWaitRootfs, unix.EINVAL)
	}
	for i := uintptr(0); i < argc+envc; i++ {
		off := uintptr(*(*uint32)(unsafe.Add(a.buf, 8+4*i)))
		if off >= n {
			fastFail(a, stepWaitRootfs, unix.EINVAL)
		}
		slot := i
		if i >= argc {
			slot++ // past argv's NULL
		}
		a.ptrs[slot] = uintptr(unsafe.Add(a.buf, off))
	}
	a.ptrs[argc] = 0
	a.ptrs[argc+1+envc] = 0
	ptrs := uintptr(unsafe.Pointer(&a.ptrs[0]))

	// Nothing of the runtime's reaches the program (CVE-2024-21626): all
	// but stdio, the preserved descriptors and the exec fifo close on exec.
	// Before any seccomp filter, which may not allow close_range.
	if _, _, e := syscall.RawSyscall(unix.SYS_CLOSE_RANGE, a.closeFrom, ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC); e != 0 {
		fastFail(a, stepCloseRange, e)
	}
	if _, _, e := syscall.RawSyscall(unix.SYS_FCNTL, a.fifoFD, unix.F_SETFD, 0); e != 0 {
		fastFail(a, stepFifo, e)
	}
	// The working directory is entered and checked before the seccomp
	// filter, which may forbid getcwd; only one root cannot enter (root
	// squashed by NFS) waits until after the user switch.
	chdirLate := false
	if _, _, e := syscall.RawSyscall(unix.SYS_CHDIR, a.cwd, 0, 0); e == unix.EACCES || e == unix.EPERM {
		chdirLate = true
	} else if e != 0 {
		fastFail(a, stepChdir, e)
	} else {
		fastCheckCwd(a)
	}
	if a.keyring != 0 {
		if _, _, e := syscall.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, a.keyring, 0); e != 0 && e != unix.ENOSYS {
			fastFail(a, stepKeyring, e)
		}
	}
	if a.nnp {
		if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
			fastFail(a, stepNoNewPrivs, e)
		}
	} else if a.seccomp != 0 {
		// Without no_new_privs loading needs CAP_SYS_ADMIN: before the
		// user switch.
		if _, _, e := syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, a.seccompFlags, a.seccomp); e != 0 {
			fastFail(a, stepSeccomp, e)
		}
	}
	if a.caps {
		for _, x := range a.capDrop {
			if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, x, 0, 0, 0, 0); e != 0 {
				// Refused for want of CAP_SETPCAP: fine if it is gone.
				if in, _, _ := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAPBSET_READ, x, 0, 0, 0, 0); in != 0 {
					fastFailAt(a, stepBounding, x, e)
				}
			}
		}
		if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0, 0, 0, 0); e != 0 {
			fastFail(a, stepKeepCaps, e)
		}
	}
	if _, _, e := syscall.RawSyscall(unix.SYS_SETGROUPS, a.ngroups, a.groups, 0); e != 0 {
		fastFail(a, stepSetgroups, e)
	}
	if _, _, e := syscall.RawSyscall(unix.SYS_SETRESGID, a.gid, a.gid, a.gid); e != 0 {
		fastFail(a, stepSetgid, e)
	}
	if _, _, e := syscall.RawSyscall(unix.SYS_SETRESUID, a.uid, a.uid, a.uid); e != 0 {
		fastFail(a, stepSetuid, e)
	}
	if a.caps {
		if _, _, e := syscall.RawSyscall(unix.SYS_CAPSET, a.capHdr, a.capData, 0); e != 0 {
			fastFail(a, stepCapset, e)
		}
		_, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0)
		if e != 0 && !(e == unix.EINVAL && len(a.ambient) == 0) {
			fastFail(a, stepAmbient, e)
		}
		for _, x := range a.ambient {
			if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, x, 0, 0, 0); e != 0 {
				fastFailAt(a, stepAmbient, x+1, e)
			}
		}
		if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0, 0, 0, 0); e != 0 {
			fastFail(a, stepKeepCaps, e)
		}
	}
	if chdirLate {
		if _, _, e := syscall.RawSyscall(unix.SYS_CHDIR, a.cwd, 0, 0); e != 0 {
			fastFail(a, stepChdir, e)
		}
		fastCheckCwd(a)
	}
	if a.umask >= 0 {
		syscall.RawSyscall(unix.SYS_UMASK, uintptr(a.umask), 0, 0)
	}
	for i, r := range a.rlimits {
		if _, _, e := syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, r.resource, r.limit, 0, 0, 0); e != 0 {
			fastFailAt(a, stepRlimit, uintptr(i), e)
		}
	}
	if a.nnp && a.seccomp != 0 {
		if _, _, e := syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, a.seccompFlags, a.seccomp); e != 0 {
			fastFail(a, stepSeccomp, e)
		}
	}
	rawRecord(a.sock, recExec, 0)
	_, _, e := syscall.RawSyscall(unix.SYS_EXECVE, a.exe, ptrs, ptrs+8*(argc+1))
	fastFail(a, stepExec, e)
}
