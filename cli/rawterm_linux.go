package cli

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// makeRaw puts the terminal f in raw mode (no echo, no line editing, no
// signals from keys, 8-bit bytes, no output processing: the container's
// terminal already turned "\n" into "\r\n") and
// returns the function that restores its previous state. The restore
// function may be called more than once; only the first call acts.
func makeRaw(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) })
	}, nil
}

// terminalSize is the height and width of the terminal behind stream, or
// zeros when it is not one.
func terminalSize(stream any) (height, width uint) {
	f, ok := terminal(stream)
	if !ok {
		return 0, 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return uint(ws.Row), uint(ws.Col)
}

// resizeSignal is the signal that tells a process its terminal changed size.
const resizeSignal = unix.SIGWINCH
