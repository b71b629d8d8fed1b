package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func setWinsize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}

func canonical(t *testing.T, f *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&(unix.ICANON|unix.ECHO) == unix.ICANON|unix.ECHO
}

// masterReader collects what berth writes to the terminal and tells when
// a string has appeared.
type masterReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	cond *sync.Cond
}

func readMaster(m *os.File) *masterReader {
	r := &masterReader{}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		b := make([]byte, 256)
		for {
			n, err := m.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.cond.Broadcast()
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *masterReader) waitFor(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !strings.Contains(r.buf.String(), s) {
		r.cond.Wait()
	}
}

// TestRunInteractiveTTY runs "berth run -it" with its standard streams on
// a pseudo-terminal: the terminal is raw while the container runs and
// restored after, the daemon learns the terminal's size at creation, at
// start and on SIGWINCH, and berth exits with the container's status.
func TestRunInteractiveTTY(t *testing.T) {
	e, fe := newContainerTestEnv(t)
	master, slave := openPTY(t)
	setWinsize(t, slave, 40, 100)
	if !canonical(t, slave) {
		t.Fatal("new terminal is not in canonical mode")
	}
	out := readMaster(master)

	var errOut bytes.Buffer
	c := New(WithStreams(slave, slave, &errOut), WithEnv(func(k string) string { return e.env[k] }))
	done := make(chan int)
	go func() { done <- c.Run(context.Background(), []string{"run", "-it", "busybox", "exit", "5"}) }()

	out.waitFor("ready")
	if canonical(t, slave) {
		t.Error("terminal not in raw mode while attached")
	}
	// The container's terminal turns "\n" into "\r\n" already: this one
	// must not do it again.
	if tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS); err != nil || tio.Oflag&unix.OPOST != 0 {
		t.Errorf("output processing left on while attached (%v)", err)
	}
	if got := <-fe.resized; got != "40x100" {
		t.Errorf("first resize %s, want 40x100", got)
	}
	setWinsize(t, slave, 50, 120)
	syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	if got := <-fe.resized; got != "50x120" {
		t.Errorf("resize after SIGWINCH %s, want 50x120", got)
	}
	// Raw mode delivers the key at once, without a newline.
	master.Write([]byte("xq"))
	out.waitFor("x")
	if code := <-done; code != 5 {
		t.Errorf("exit status %d, want 5; stderr %q", code, errOut.String())
	}
	if !canonical(t, slave) {
		t.Error("terminal not restored after run")
	}
	var req container.CreateRequest
	creates := e.api.recorded("POST", "/containers/create")
	if len(creates) != 1 {
		t.Fatalf("%d creates", len(creates))
	}
	if err := json.Unmarshal([]byte(creates[0].Body), &req); err != nil {
		t.Fatal(err)
	}
	if req.HostConfig.ConsoleSize != [2]uint{40, 100} || !req.Tty || !req.OpenStdin || !req.StdinOnce {
		t.Errorf("create: console %v tty %v stdin %v once %v", req.HostConfig.ConsoleSize, req.Tty, req.OpenStdin, req.StdinOnce)
	}
}

// TestRunDetach: ctrl-p ctrl-q ends "run -it" with status 0 and leaves
// the container running (berth does not wait for it) and the terminal
// restored.
func TestRunDetach(t *testing.T) {
	e, fe := newContainerTestEnv(t)
	master, slave := openPTY(t)
	out := readMaster(master)
	c := New(WithStreams(slave, slave, io.Discard), WithEnv(func(k string) string { return e.env[k] }))
	done := make(chan int)
	go func() { done <- c.Run(context.Background(), []string{"run", "-it", "busybox", "exit", "5"}) }()
	out.waitFor("ready")
	master.Write([]byte{16, 17})
	if code := <-done; code != 0 {
		t.Errorf("exit status %d after detach, want 0", code)
	}
	if !canonical(t, slave) {
		t.Error("terminal not restored after detach")
	}
	id := <-fe.started
	if ctr := fe.lookupContainer(id); ctr.summary.State != container.StateRunning {
		t.Errorf("container %s after detach", ctr.summary.State)
	}
}

// TestExecInteractiveTTY: "exec -it" sizes the exec's terminal at
// creation and through ExecResize, and exits with the command's status.
func TestExecInteractiveTTY(t *testing.T) {
	e, fe := newContainerTestEnv(t)
	master, slave := openPTY(t)
	setWinsize(t, slave, 30, 90)
	out := readMaster(master)
	var errOut bytes.Buffer
	c := New(WithStreams(slave, slave, &errOut), WithEnv(func(k string) string { return e.env[k] }))
	code := c.Run(context.Background(), []string{"exec", "-it", "web", "sh"})
	if code != 7 {
		t.Errorf("exit status %d, want the fake's 7; stderr %q", code, errOut.String())
	}
	out.waitFor("exec out")
	if got := <-fe.resized; got != "30x90" {
		t.Errorf("resize %s, want 30x90", got)
	}
	if !canonical(t, slave) {
		t.Error("terminal not restored after exec")
	}
	creates := e.api.recorded("POST", "/containers/web/exec")
	if len(creates) != 1 {
		t.Fatalf("%d exec creates", len(creates))
	}
	var req struct {
		Tty, AttachStdin bool
		ConsoleSize      [2]uint
		Cmd              []string
	}
	json.Unmarshal([]byte(creates[0].Body), &req)
	if !req.Tty || !req.AttachStdin || req.ConsoleSize != [2]uint{30, 90} || len(req.Cmd) != 1 {
		t.Errorf("exec create %+v", req)
	}
}

// TestStatsStream: without --no-stream, stats draws the table from the
// streams and, when they end, draws the last figures once more.
func TestStatsStream(t *testing.T) {
	e, _ := newContainerTestEnv(t)
	once := e.berth("", "stats", "--no-stream", "web")
	stream := e.berth("", "stats", "web")
	if stream.code != 0 || !strings.HasSuffix(stream.stdout, once.stdout) {
		t.Errorf("stream %+v, one sample %+v", stream, once)
	}
	if !strings.Contains(once.stdout, "25.00%") || !strings.Contains(once.stdout, "80MiB / 1GiB") || !strings.Contains(once.stdout, "7.81%") {
		t.Errorf("figures: %s", once.stdout)
	}
}

// TestRunTTYNeedsTerminal: -it with a stdin that is not a terminal fails
// before anything is created, as docker's does.
func TestRunTTYNeedsTerminal(t *testing.T) {
	e, _ := newContainerTestEnv(t)
	res := e.berth("", "run", "-it", "busybox")
	if res.code != 1 || res.stderr != "the input device is not a TTY\n" {
		t.Errorf("got %d %q", res.code, res.stderr)
	}
	if n := len(e.api.recorded("POST", "/containers/create")); n != 0 {
		t.Errorf("%d creates", n)
	}
}

// TestRunStdinAndSignals: "run -i" sends standard input and proxies
// signals to the container; its output comes back split into stdout and
// stderr.
func TestRunStdinAndSignals(t *testing.T) {
	e, fe := newContainerTestEnv(t)
	pr, pw := io.Pipe()
	var out, errOut bytes.Buffer
	c := New(WithStreams(pr, &out, &errOut), WithEnv(func(k string) string { return e.env[k] }))
	done := make(chan int)
	go func() { done <- c.Run(context.Background(), []string{"run", "-i", "--rm", "busybox", "cat"}) }()
	<-fe.started
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	if got := <-fe.killed; got != "10" {
		t.Errorf("proxied signal %q, want 10 (SIGUSR1)", got)
	}
	io.WriteString(pw, "hello\n")
	pw.Close()
	if code := <-done; code != 0 {
		t.Errorf("exit status %d; stderr %q", code, errOut.String())
	}
	if out.String() != "in: hello\nout: cat\n" || errOut.String() != "err: cat\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
	waits := e.api.recorded("POST", "/containers/"+containerIDPrefix+"1/wait")
	if len(waits) != 1 || waits[0].Query.Get("condition") != "removed" {
		t.Errorf("--rm waits: %+v", waits)
	}
}

// containerIDPrefix is the fake's ID of its first created container, less
// the last digit.
const containerIDPrefix = "000000000000000000000000000000000000000000000000000000c0ffee000"

// TestStartErrorStatus maps the runtime's messages to docker's statuses.
func TestStartErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		code int
	}{
		{`exec: "foo": executable file not found in $PATH: unknown`, 127},
		{`exec: "/nope": stat /nope: no such file or directory: unknown`, 127},
		{`exec: "/etc": permission denied: unknown`, 126},
		{`exec: "/etc": is a directory: unknown`, 126},
		{`cgroup: no such controller`, 125},
	} {
		err := startError(errors.New("Error response from daemon: " + tc.msg))
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tc.code {
			t.Errorf("%s: %v, want status %d", tc.msg, err, tc.code)
		}
	}
}

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		bad  bool
	}{
		{"", []byte{16, 17}, false},
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-a,x", []byte{1, 'x'}, false},
		{"ctrl-@,ctrl-[,ctrl-_", []byte{0, 27, 31}, false},
		{"ctrl-", nil, true},
		{"ctrl-1", nil, true},
		{"ab", nil, true},
	} {
		got, err := parseDetachKeys(tc.in)
		if (err != nil) != tc.bad || !bytes.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// TestEscapeWatcher sees the detach sequence even when split across reads.
func TestEscapeWatcher(t *testing.T) {
	seen := false
	w := &escapeWatcher{r: io.MultiReader(strings.NewReader("ab\x10"), strings.NewReader("\x11")), keys: []byte{16, 17}, seen: func() { seen = true }}
	b, _ := io.ReadAll(w)
	if string(b) != "ab\x10\x11" || !seen {
		t.Errorf("passed %q, seen %v", b, seen)
	}
	seen = false
	w = &escapeWatcher{r: strings.NewReader("\x10a\x11"), keys: []byte{16, 17}, seen: func() { seen = true }}
	io.ReadAll(w)
	if seen {
		t.Error("sequence seen in ctrl-p a ctrl-q")
	}
}
