package runtime

import (
	"os"

	"golang.org/x/sys/unix"
)

// dialUnix connects a stream socket to the unix socket at path and returns
// it as a file, blocking and close-on-exec, ready to pass to the init. It
// does what net.Dial("unix", path) followed by File() does, without the
// net package, whose initialisation every start of the runtime paid for.
func dialUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), "unix:"+path), nil
}
