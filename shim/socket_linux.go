package shim

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The shim's socket is served with plain system calls on *os.File
// descriptors, which join Go's poller as net's do, rather than through
// package net: net's listener and connections allocate addresses and
// wrappers at every accept that an idle shim keeps as garbage (about 0.5 kB
// per request), and its listener reads somaxconn through a 64 kB buffer.

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
