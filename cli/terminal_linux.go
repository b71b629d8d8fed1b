package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// terminal returns the file behind a stream when it is a terminal.
func terminal(stream any) (*os.File, bool) {
	f, ok := stream.(*os.File)
	if !ok {
		return nil, false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return f, err == nil
}

// isTerminal reports whether stream is a terminal.
func isTerminal(stream any) bool {
	_, ok := terminal(stream)
	return ok
}

// terminalWidth is the terminal's width in columns, or 0.
func terminalWidth(stream any) int {
	f, ok := terminal(stream)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// readLine reads one line from in without its line ending. It reads a
// byte at a time so that nothing after the line is consumed.
func readLine(in io.Reader) (string, error) {
	var b strings.Builder
	var c [1]byte
	for {
		n, err := in.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				break
			}
			b.WriteByte(c[0])
			continue
		}
		if err == io.EOF && b.Len() > 0 {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return strings.TrimRight(b.String(), "\r"), nil
}

// readSecret reads a line from a terminal with echo turned off.
func readSecret(in io.Reader, out io.Writer) (string, error) {
	f, ok := terminal(in)
	if !ok {
		return readLine(in)
	}
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", err
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	s, err := readLine(in)
	fmt.Fprintln(out)
	return s, err
}
