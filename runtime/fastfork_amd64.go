package runtime

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vforkSyscall is in vfork_amd64.s.
func vforkSyscall(trap, a1, a2, a3 uintptr) (r1 uintptr, err syscall.Errno)

// forkFast starts the fast init with clone3(2) as ca says, which must
// include CLONE_VM and CLONE_VFORK: the child runs fastChild on this
// goroutine's stack, in this address space, while the calling thread waits
// until it executes the trampoline or dies. No page of the runtime is
// copied on write, in the child or after it in the runtime (on this VM
// that was 3 ms of CPU per container: faults and TLB shootdowns). Everything
// else the runtime does for the child runs on other goroutines meanwhile.
// It returns the child's pid in the parent, as vfork does, once the child
// is gone from this address space.
//
//go:norace
//go:nosplit
func forkFast(a *fastArgs, ca *cloneArgs) (pid uintptr, err syscall.Errno) {
	runtimeBeforeFork()
	pid, err = vforkSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(ca)), unsafe.Sizeof(*ca), 0)
	if err != 0 || pid != 0 {
		// The parent: return at once, using nothing of this frame,
		// which the child has used.
		runtimeAfterFork()
		return pid, err
	}
	runtimeAfterForkInChild()
	fastChild(a)
	return 0, 0 // not reached
}
