package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns the master and the slave end of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// berthOnTTY runs the CLI with the given streams and returns the status
// and what it wrote to standard error.
func (e *testEnv) berthOnTTY(in io.Reader, out io.Writer, args ...string) (int, string) {
	var errOut bytes.Buffer
	c := New(WithStreams(in, out, &errOut), WithEnv(func(k string) string { return e.env[k] }))
	return c.Run(context.Background(), args), errOut.String()
}

func TestTerminalRefusals(t *testing.T) {
	e := newTestEnv(t)
	_, tty := openPTY(t)
	code, stderr := e.berthOnTTY(strings.NewReader(""), tty, "save", "busybox")
	if code != 1 || stderr != "cowardly refusing to save to a terminal. Use the -o flag or redirect\n" {
		t.Errorf("save to a terminal: %d %q", code, stderr)
	}
	code, stderr = e.berthOnTTY(tty, io.Discard, "load")
	if code != 1 || stderr != "requested load from stdin, but stdin is empty\n" {
		t.Errorf("load from a terminal: %d %q", code, stderr)
	}
	if n := len(e.api.recorded("GET", "/images/get")) + len(e.api.recorded("POST", "/images/load")); n != 0 {
		t.Errorf("%d requests reached the daemon", n)
	}
}

func TestPullOnTerminalUpdatesLinesInPlace(t *testing.T) {
	e := newTestEnv(t)
	master, tty := openPTY(t)
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the slave is closed
		done <- b
	}()
	code, stderr := e.berthOnTTY(strings.NewReader(""), tty, "pull", "busybox")
	tty.Close()
	out := string(<-done)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The layer's line is written once, then rewritten with cursor moves.
	if strings.Count(out, "90b9666d4aed: Pulling fs layer") != 1 || !strings.Contains(out, "\x1b[1A\r\x1b[2K90b9666d4aed: Downloading [") ||
		!strings.Contains(out, "\x1b[1A\r\x1b[2K90b9666d4aed: Pull complete") {
		t.Errorf("terminal output:\n%q", out)
	}
	// The reference follows the progress (the terminal turns \n into \r\n).
	if !strings.HasSuffix(out, "docker.io/library/busybox:latest\r\n") {
		t.Errorf("output does not end with the reference: %q", out)
	}
}
