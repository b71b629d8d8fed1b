package runtime

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// openPty opens a new pseudo-terminal in the devpts instance behind
// /dev/ptmx and returns its master and the path of its slave.
func openPty() (*os.File, string, error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", &os.PathError{Op: "open", Path: "/dev/ptmx", Err: err}
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, "", &os.PathError{Op: "ioctl TIOCSPTLCK", Path: "/dev/ptmx", Err: err}
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, "", &os.PathError{Op: "ioctl TIOCGPTN", Path: "/dev/ptmx", Err: err}
	}
	return master, "/dev/pts/" + strconv.FormatUint(uint64(n), 10), nil
}

// sendFd sends f over the unix socket sock with SCM_RIGHTS; name travels as
// the payload, as runc does for its console socket.
func sendFd(sock *os.File, name string, f *os.File) error {
	rights := unix.UnixRights(int(f.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), []byte(name), rights, nil, 0); err != nil {
		return &os.PathError{Op: "sendmsg", Path: sock.Name(), Err: err}
	}
	return nil
}

// RecvFd receives one file descriptor sent over a unix socket with
// SCM_RIGHTS, as on a console socket.
func RecvFd(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "recvmsg", Path: sock.Name(), Err: err}
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("parse control message: %w", err)
		}
		if len(msgs) != 1 {
			return nil, fmt.Errorf("expected one control message, got %d", len(msgs))
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil {
			return nil, err
		}
		if len(fds) != 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("expected one file descriptor, got %d", len(fds))
		}
		return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
	}
}

// setWinsize sets the terminal size of a pty.
func setWinsize(f *os.File, rows, cols uint16) error {
	ws := &unix.Winsize{Row: rows, Col: cols}
	return unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, ws)
}
