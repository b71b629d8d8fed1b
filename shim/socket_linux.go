package shim

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The shim's sockets (its own, the console socket, and the client's end)
// use plain system calls on *os.File descriptors, which join Go's poller as
// net's do, rather than package net, which berth-shim then does not link:
// net's package initialization alone costs every shim 40 kB of anonymous
// memory, its listener and connections allocate addresses and wrappers at
// every accept that an idle shim keeps as garbage (about 0.5 kB per
// request), and its listener reads somaxconn through a 64 kB buffer.

// listenBacklog is the socket's backlog; the kernel caps it at somaxconn.
const listenBacklog = 4096

// listenUnix listens on a stream socket at path, non-blocking.
func listenUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "listen", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// accept waits for a connection on l; it fails once l is closed.
func accept(l *os.File) (*os.File, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		// accept4 without an address: nothing to allocate.
		r, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, fd, 0, 0, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0, 0)
		if errno == unix.EAGAIN {
			return false
		}
		nfd = int(r)
		if errno != 0 {
			aerr = errno
		}
		return true
	})
	if err == nil {
		err = aerr
	}
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	return os.NewFile(uintptr(nfd), "shim-conn"), nil
}

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

// receiveFD reads one message from conn and returns the first descriptor
// it carries (close-on-exec); any others are closed.
func receiveFD(conn *os.File) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		_, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return -1, fmt.Errorf("receive: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return -1, fmt.Errorf("no descriptor received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return -1, fmt.Errorf("no descriptor received")
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	return fds[0], nil
}
