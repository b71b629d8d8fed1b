package shim

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper reaps every child of the shim (the shim is a child subreaper, so
// the container's init and exec processes become its children when the
// runtime exits) and hands each status to whoever waits for that pid.
// Nothing else in the shim may wait for children: runtime commands are
// started with os.StartProcess and waited for here.
//
// It learns of exits from a pidfd of each process somebody waits for, in
// Go's poller, not from SIGCHLD: os/signal.Notify makes the Go runtime keep
// two more threads for good (one locked to the goroutine that manages
// signal masks, and the template thread that locking needs), with their
// stacks, in every idle shim. A child nobody waits for (an orphan handed
// to the subreaper) is reaped at the next exit of one that is waited for;
// the container's init is always waited for, and after its exit the shim
// itself exits, leaving whatever remains to init.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	exited  map[int]unix.WaitStatus // reaped before anyone asked
}

func newReaper() *reaper {
	return &reaper{
		waiters: map[int]chan unix.WaitStatus{},
		exited:  map[int]unix.WaitStatus{},
	}
}

// reap collects every child that has exited.
func (r *reaper) reap() {
	for {
		var st unix.WaitStatus
		pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- st
		} else {
			r.exited[pid] = st
		}
		r.mu.Unlock()
	}
}

// wait returns a channel that receives pid's status once it is reaped,
// including when that already happened. pid must be a child of the shim
// (or become one before it exits).
func (r *reaper) wait(pid int) <-chan unix.WaitStatus {
	ch := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.exited[pid]; ok {
		delete(r.exited, pid)
		ch <- st
		return ch
	}
	r.waiters[pid] = ch
	go r.watch(pid)
	return ch
}

// watch reaps once pid has exited.
func (r *reaper) watch(pid int) {
	defer r.reap()
	// A pid already reaped has no pidfd: its status was handed on by the
	// reap that collected it (wait registers before watching).
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// A pidfd polls readable once its process has exited; the poller wakes
	// this goroutine then, holding no thread meanwhile.
	rc.Read(func(fd uintptr) bool {
		pfd := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd[:], 0)
		return err != nil && err != unix.EINTR || n > 0
	})
}

// exitCode is Docker's exit code for a wait status.
func exitCode(st unix.WaitStatus) int {
	if st.Signaled() {
		return 128 + int(st.Signal())
	}
	return st.ExitStatus()
}
