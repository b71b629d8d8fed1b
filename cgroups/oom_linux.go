package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// OOM notification. v1: an eventfd registered through cgroup.event_control
// on memory.oom_control, which the kernel signals on every OOM in the
// cgroup (and once more when the cgroup is removed). v2: inotify on
// memory.events, which the kernel touches when a counter changes; an event
// is sent when oom_kill grows.

// oomPollInterval is how often a watcher wakes without an event to check
// that the cgroup still exists.
const oomPollInterval = time.Second

func oomEventsV1(ctx context.Context, dir string) (<-chan struct{}, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, &os.PathError{Op: "eventfd", Path: dir, Err: err}
	}
	// Non-blocking, so reads go through the runtime poller and Close
	// from another goroutine wakes them.
	ev := os.NewFile(uintptr(efd), filepath.Join(dir, "memory.oom_control eventfd"))
	ctl, err := openFile(dir, "memory.oom_control", unix.O_RDONLY)
	if err != nil {
		ev.Close()
		return nil, err
	}
	// The kernel takes its own reference to both files; ctl can be closed
	// once registered.
	err = writeFile(dir, "cgroup.event_control", fmt.Sprintf("%d %d", efd, ctl.Fd()))
	ctl.Close()
	if err != nil {
		ev.Close()
		return nil, fmt.Errorf("register OOM eventfd: %w", err)
	}
	ch := make(chan struct{}, 1)
	go watchOOM(ctx, ev, dir, ch, func() (bool, error) { return true, nil })
	return ch, nil
}

func oomEventsV2(ctx context.Context, dir string) (<-chan struct{}, error) {
	last, err := oomKillCountV2(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, &os.PathError{Op: "inotify_init1", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), "inotify "+dir)
	events := filepath.Join(dir, "memory.events")
	if _, err := unix.InotifyAddWatch(fd, events, unix.IN_MODIFY); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "inotify_add_watch", Path: events, Err: err}
	}
	grew := func() (bool, error) {
		n, err := oomKillCountV2(dir)
		if err != nil {
			return false, err
		}
		// The kernel's count only grows: a lower reading (a file caught
		// while rewritten, as in the fake trees of the tests) is no reset,
		// or its next reading would pass for a new OOM kill.
		if n <= last {
			return false, nil
		}
		last = n
		return true, nil
	}
	ch := make(chan struct{}, 1)
	go watchOOM(ctx, f, dir, ch, grew)
	return ch, nil
}

// watchOOM reads notifications from f until ctx is done, f fails or dir
// disappears, then closes f and ch. After each notification, isOOM says
// whether it was an OOM kill. Sends never block: a pending event absorbs
// later ones.
func watchOOM(ctx context.Context, f *os.File, dir string, ch chan<- struct{}, isOOM func() (bool, error)) {
	defer close(ch)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		f.Close()
	}()
	buf := make([]byte, 4096)
	for {
		_ = f.SetReadDeadline(time.Now().Add(oomPollInterval))
		_, err := f.Read(buf)
		if checkDir(dir) != nil {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return
		}
		oom, err := isOOM()
		if err != nil {
			return
		}
		if oom {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
