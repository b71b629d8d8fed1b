package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
)

// threadNetNS names the network namespace of the calling thread (not of the
// process: in Go the threads of one process may sit in different ones).
const threadNetNS = "/proc/thread-self/ns/net"

// loopbackIndex is the interface index the kernel gives lo in every network
// namespace (LOOPBACK_IFINDEX).
const loopbackIndex = 1

// New makes a new network namespace and pins it at path by a bind mount of its
// nsfs file (the file is created; the parent directory is created 0700 if
// missing and made a shared bind mount of itself once, as `ip netns` does with
// /run/netns, so the pin's unmount reaches mount namespaces made later). The
// loopback inside is brought up (Docker's --network none has lo UP). On error
// nothing is left (no file, no mount). Path existing already: ErrAlreadyExists.
//
// The directory must be shared because every container's mount namespace is a
// copy of the host's taken while pins exist: with a private parent the copy of
// a pin would keep its namespace alive after Remove; under a shared (or, in
// the container, slave) parent the unmount propagates and the namespace dies
// with its last user.
func New(path string) error {
	if path == "" {
		return fmt.Errorf("new netns: empty path: %w", errdefs.ErrInvalidArgument)
	}
	if err := shareDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("new netns %s: %w", path, err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("new netns %s: %w", path, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("new netns: create pin: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	unix.Close(fd)
	enter := func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
		}
		return nil
	}
	if err := onThread(enter, func() error { return pin(path) }); err != nil {
		unix.Unlink(path)
		return fmt.Errorf("new netns %s: %w", path, err)
	}
	return nil
}

// pin bind-mounts the calling thread's network namespace on path and brings
// its loopback up; on error it leaves no mount.
func pin(path string) error {
	if err := unix.Mount(threadNetNS, path, "", unix.MS_BIND, ""); err != nil {
		return &os.PathError{Op: "bind mount " + threadNetNS + " on", Path: path, Err: err}
	}
	// The package-level call opens a socket for this one request, in this
	// thread's namespace; lo's index is fixed, so no lookup is needed.
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: loopbackIndex}}
	if err := netlink.LinkSetUp(lo); err != nil {
		unix.Unmount(path, unix.MNT_DETACH)
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// shareDir creates dir 0700 if missing and makes it a shared mount,
// bind-mounting it on itself first when it is no mount point yet. The common
// case, a directory shared already, costs one mount(2). The first bind is
// taken under a lock on the directory so that concurrent callers (in this
// process or another) do not stack binds.
func shareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	err := unix.Mount("", dir, "", unix.MS_SHARED, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) { // EINVAL: dir is no mount point
		return &os.PathError{Op: "make shared", Path: dir, Err: err}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return &os.PathError{Op: "lock", Path: dir, Err: err}
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err == nil {
		return nil // another caller made it while we waited
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &os.PathError{Op: "bind mount on itself", Path: dir, Err: err}
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return &os.PathError{Op: "make shared", Path: dir, Err: err}
	}
	return nil
}

// Remove unmounts (MNT_DETACH) and unlinks the pin. A missing path is not an
// error. The namespace itself lives on while a process or an open file still
// holds it.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		// EINVAL: not a mount point (a pin left half-made by a crash).
		return fmt.Errorf("remove netns: %w", &os.PathError{Op: "unmount", Path: path, Err: err})
	}
	if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove netns: %w", &os.PathError{Op: "unlink", Path: path, Err: err})
	}
	return nil
}

// Do runs fn on a locked OS thread that has entered the namespace pinned (or
// named by a /proc/<pid>/ns/net path) at path, and returns to the caller's
// namespace after. If the thread cannot return it stays locked (Go then ends
// it), never leaking a wrong-namespace thread.
//
// fn runs on a goroutine of its own: it must not call t.FailNow and the like,
// and goroutines it starts do not run in the namespace (they run on other
// threads); a panic in fn is raised again in the caller. Sockets and netlink handles opened by fn stay in the
// namespace after Do returns. A path that does not exist: ErrNotFound; one
// that names no network namespace: ErrInvalidArgument.
func Do(path string, fn func() error) error {
	fd, err := open(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	enter := func() error {
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("enter netns %s: not a network namespace: %w", path, errdefs.ErrInvalidArgument)
			}
			return fmt.Errorf("enter netns %s: setns: %w", path, err)
		}
		return nil
	}
	return onThread(enter, fn)
}

// Handle opens a netlink handle (NETLINK_ROUTE only) inside the namespace at
// path (caller closes it). Its socket stays in that namespace whatever thread
// later uses it.
func Handle(path string) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := Do(path, func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink handle in %s: %w", path, err)
		}
		return nil
	})
	return h, err
}

// open opens a namespace file for setns.
func open(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		perr := &os.PathError{Op: "open netns", Path: path, Err: err}
		if errors.Is(err, unix.ENOENT) {
			return -1, fmt.Errorf("%w: %w", perr, errdefs.ErrNotFound)
		}
		return -1, perr
	}
	return fd, nil
}

// onThread runs enter and then fn on a fresh goroutine locked to its OS
// thread, and moves that thread back to the network namespace it started in.
// When enter fails the thread has not moved. When the thread cannot move back
// the goroutine ends still locked, which makes the Go runtime end the thread
// rather than hand it to other goroutines. A panic in fn is raised again in
// the caller's goroutine once the thread is back (or discarded).
func onThread(enter, fn func() error) error {
	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(threadNetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("open current netns: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.panicked, r.value = true, p
				}
			}()
			r.err = fn()
		}()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			r.err = errors.Join(r.err, fmt.Errorf("return to original netns: setns: %w", err))
			done <- r
			return // still locked: the thread is discarded
		}
		runtime.UnlockOSThread()
		done <- r
	}()
	r := <-done
	if r.panicked {
		panic(r.value)
	}
	return r.err
}
