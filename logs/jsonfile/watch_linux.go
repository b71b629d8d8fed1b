package jsonfile

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// inotifyWatcher wakes a follower on any change in the log's directory:
// writes to the live file, renames and creations of rotation.
type inotifyWatcher struct {
	f   *os.File
	buf []byte
}

// newWatcher watches path's directory with inotify, or falls back to polling
// when inotify is not available (no instances left, for example).
func newWatcher(path string) watcher {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return poller{}
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
		unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), mask); err != nil {
		unix.Close(fd)
		return poller{}
	}
	// A non-blocking descriptor handed to os.NewFile is served by the
	// runtime poller, so reads honour deadlines.
	return &inotifyWatcher{f: os.NewFile(uintptr(fd), "inotify"), buf: make([]byte, 4096)}
}

func (w *inotifyWatcher) Wait(ctx context.Context, done <-chan struct{}) (bool, error) {
	if err := w.f.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
		return poller{}.Wait(ctx, done)
	}
	quit := make(chan struct{})
	exited := make(chan struct{})
	closed := false
	go func() {
		defer close(exited)
		select {
		case <-ctx.Done():
		case <-done:
		case <-quit:
			return
		}
		// Wake the read below at once.
		w.f.SetReadDeadline(time.Unix(1, 0))
	}()
	// Events carry nothing the follower needs: it looks at the files anew.
	_, _ = w.f.Read(w.buf)
	close(quit)
	<-exited
	if err := ctx.Err(); err != nil {
		return false, err
	}
	select {
	case <-done:
		closed = true
	default:
	}
	return closed, nil
}

func (w *inotifyWatcher) Close() error { return w.f.Close() }
