package engine_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/tests/enginetest"
)

// openPty opens a pseudo-terminal pair through /dev/ptmx.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// ptyReader collects what the master side reads.
type ptyReader struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *ptyReader) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// run -it on a pseudo-terminal: arithmetic, Ctrl-C to the container, a
// resize that stty sees, and the exit code of exit 3.
func TestRunInteractiveTTY(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	d.MustBerth("pull", "busybox")
	master, slave := openPty(t)
	defer master.Close()
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	cmd := d.BerthCommand("run", "-it", "--rm", "busybox", "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	out := &ptyReader{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			s := out.String()
			t.Logf("terminal output (last 400 bytes): %q", s[max(0, len(s)-400):])
		}
	})
	expect := func(what string) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%q on the terminal (got %q)", what, out.String()), func() bool { return strings.Contains(out.String(), what) })
	}
	typeIn := func(s string) {
		t.Helper()
		if _, err := master.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	typeIn("echo $((6*7))\r")
	expect("\n42\r\n")
	if strings.Contains(out.String(), "\r\r\n") {
		t.Errorf("output went through two ONLCR translations (raw mode left OPOST on): %q", out.String())
	}

	typeIn("trap 'echo caught-int' INT; sleep 1000\r")
	// No timing assertion: Ctrl-C is sent until the trap answers, in
	// case it comes before sleep runs.
	waitFor(t, "Ctrl-C to reach the container: no caught-int", func() bool {
		typeIn("\x03")
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(out.String(), "^Ccaught-int\r\n") // not the echo of the typed trap
	})

	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101})
	cmd.Process.Signal(syscall.SIGWINCH)
	waitFor(t, "stty size to show the resize", func() bool {
		typeIn("stty size\r")
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(out.String(), "33 101")
	})

	typeIn("exit 3\r")
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("berth run -it did not end a minute after exit 3")
	}
	if ee, ok := waitErr.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("run -it after exit 3: %v, want exit status 3", waitErr)
	}
}
