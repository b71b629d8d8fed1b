package shim

import (
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper reaps every child of the shim (the shim is a child subreaper, so
// the container's init and exec processes become its children when the
// runtime exits) and hands each status to whoever waits for that pid.
// Nothing else in the shim may wait for children: runtime commands are
// started with exec.Cmd.Start and waited for here.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	exited  map[int]unix.WaitStatus // reaped before anyone asked
	sigs    chan os.Signal
}

func newReaper() *reaper {
	r := &reaper{
		waiters: map[int]chan unix.WaitStatus{},
		exited:  map[int]unix.WaitStatus{},
		sigs:    make(chan os.Signal, 1),
	}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.loop()
	return r
}

func (r *reaper) loop() {
	for range r.sigs {
		r.reap()
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
// including when that already happened.
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
	return ch
}

// exitCode is Docker's exit code for a wait status.
func exitCode(st unix.WaitStatus) int {
	if st.Signaled() {
		return 128 + int(st.Signal())
	}
	return st.ExitStatus()
}
