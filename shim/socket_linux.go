package shim

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The client's connections use plain system calls on *os.File descriptors,
// which join Go's poller as net's do.

// dialUnix connects to the stream socket at path; the connection joins
// Go's poller. A connect to a unix socket does not wait: it fails at once
// when nobody listens.
func dialUnix(ctx context.Context, path string) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// closeWrite shuts down the writing half of the connection conn: the peer
// reads the end of its input.
func closeWrite(conn *os.File) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}
