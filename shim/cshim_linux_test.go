package shim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/shim"
)

// These tests cover what the protocol's tests leave out and the shim
// (shim/c) must get right: untrusted request lines, a flood of output to a
// client that does not read, and the command line as the Go flag package
// parses it (the engine's flags are Go's).

// rawRequest sends line on a connection of its own and returns the
// decoded response.
func rawRequest(t *testing.T, dir string, line []byte) map[string]any {
	t.Helper()
	conn, err := net.Dial("unix", filepath.Join(dir, shim.SocketFile))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Written apart: the shim may answer and close before it has read
	// all of a line it refuses.
	go conn.Write(line)
	resp, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		t.Fatalf("response to %.60q: %v", line, err)
	}
	var m map[string]any
	if err := json.Unmarshal(resp, &m); err != nil {
		t.Fatalf("response %q: %v", resp, err)
	}
	return m
}

// Bad request lines are answered with their category, and the shim goes on
// serving: nothing a client sends takes it down.
func TestBadRequestsKeepServing(t *testing.T) {
	c := newContainer(t, false, false, "sleep", "1000")
	cl, _ := c.start(t)
	ctx := context.Background()
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name, line, kind string
	}
	cases := []tc{
		{"not JSON", "hello\n", "invalid argument"},
		{"data after the object", `{"op":"state"} {}` + "\n", "invalid argument"},
		{"op of the wrong type", `{"op":5}` + "\n", "invalid argument"},
		{"width out of range", `{"op":"resize","width":70000}` + "\n", "invalid argument"},
		{"unterminated string", `{"op":"sta` + "\n", "invalid argument"},
		{"unknown op", `{"op":"frobnicate"}` + "\n", "not implemented"},
		{"exec process not an object", `{"op":"exec","id":"p","process":[1]}` + "\n", "invalid argument"},
		{"exec args not strings", `{"op":"exec","id":"p","process":{"args":[1],"cwd":"/"}}` + "\n", "invalid argument"},
		{"exec id with a slash", `{"op":"exec","id":"a/b","process":{"args":["true"],"cwd":"/"}}` + "\n", "invalid argument"},
		{"line too long", `{"op":"state","x":"` + strings.Repeat("a", 1<<20) + `"}` + "\n", "invalid argument"},
		{"nested too deep", `{"op":"state","x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}\n", "invalid argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := rawRequest(t, c.dir, []byte(tc.line))
			if m["kind"] != tc.kind || m["error"] == "" {
				t.Errorf("response %v, want an error of kind %q", m, tc.kind)
			}
		})
	}
	// A waiter that hangs up, and a client that leaves half a line.
	for _, line := range []string{`{"op":"wait"}` + "\n", `{"op":"st`} {
		conn, err := net.Dial("unix", filepath.Join(c.dir, shim.SocketFile))
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(line))
		conn.Close()
	}
	if st, err := cl.State(ctx); err != nil || st.Status != shim.StatusRunning {
		t.Fatalf("State after bad requests = %+v, %v", st, err)
	}
	killAndWait(t, cl)
}

// procStatusKB reads a kB field of /proc/<pid>/status.
func procStatusKB(t *testing.T, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// blockedWriter reports whether a descendant of pid sleeps writing to a
// full pipe.
func blockedWriter(pid int) bool {
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(kids)) {
		k, _ := strconv.Atoi(f)
		if k > 0 && blockedWriter(k) {
			return true
		}
	}
	wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
	return strings.HasSuffix(string(wchan), "pipe_write")
}

type countingWriter struct {
	n    int
	bad  bool
	want byte
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if bytes.IndexFunc(p, func(r rune) bool { return r != rune(w.want) }) >= 0 {
		w.bad = true
	}
	w.n += len(p)
	return len(p), nil
}

// An attached client that does not read holds the container back (its
// writes block) instead of making the shim buffer its output; once the
// client reads, it gets every byte, and the log has them too.
func TestFloodToClientThatDoesNotRead(t *testing.T) {
	const size = 8_000_000
	c := newContainer(t, false, false, "sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | tr '\0' a; echo done >&2`, size))
	cl, pid := c.start(t)
	data, err := os.ReadFile(filepath.Join(c.dir, shim.PidFile))
	if err != nil {
		t.Fatal(err)
	}
	shimPid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	conn, err := net.Dial("unix", filepath.Join(c.dir, shim.SocketFile))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(`{"op":"attach","stdout":true,"stderr":true}` + "\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if line, err := br.ReadBytes('\n'); err != nil || !bytes.Contains(line, []byte(`"status":"created"`)) {
		t.Fatalf("attach: %q, %v", line, err)
	}
	before := procStatusKB(t, shimPid, "VmRSS")
	ctx := context.Background()
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	// Until the container's writer sleeps on its full pipe.
	for !blockedWriter(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	if grown := procStatusKB(t, shimPid, "VmRSS") - before; grown > 4096 {
		t.Errorf("the shim grew by %d kB holding output for a client that does not read", grown)
	}
	stdout, stderr := &countingWriter{want: 'a'}, &bytes.Buffer{}
	if err := shim.Demux(br, stdout, stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.n != size || stdout.bad || stderr.String() != "done\n" {
		t.Fatalf("attach got %d bytes of stdout (bad bytes: %v), stderr %q; want %d and done", stdout.n, stdout.bad, stderr.String(), size)
	}
	if e, err := cl.Wait(ctx); err != nil || e.Code != 0 {
		t.Fatalf("Wait = %+v, %v", e, err)
	}
	waitShimGone(t, c.dir)
	f, err := os.Open(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	logged := &countingWriter{want: 'a'}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ Log, Stream string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %.80q: %v", sc.Text(), err)
		}
		if e.Stream == "stdout" {
			logged.Write([]byte(e.Log))
		}
	}
	if logged.n != size || logged.bad {
		t.Fatalf("the log holds %d bytes of stdout (bad bytes: %v), want %d", logged.n, logged.bad, size)
	}
}

// A container that floods its output with nobody attached costs the shim
// no memory beyond its fixed buffers: the output goes to the log as read.
func TestFloodWithoutClient(t *testing.T) {
	const size = 8_000_000
	c := newContainer(t, false, false, "sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | tr '\0' a; yes | head -n 100000; echo done >&2; exec sleep 1000`, size))
	cl, _ := c.start(t)
	data, err := os.ReadFile(filepath.Join(c.dir, shim.PidFile))
	if err != nil {
		t.Fatal(err)
	}
	shimPid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	before := procStatusKB(t, shimPid, "VmRSS")
	ctx := context.Background()
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	// Until the last line is in the log.
	for !strings.Contains(readFile(c.log), `{"log":"done\n","stream":"stderr"`) {
		time.Sleep(20 * time.Millisecond)
	}
	grown := procStatusKB(t, shimPid, "VmRSS") - before
	t.Logf("the shim grew by %d kB writing %d bytes of output to its log", grown, size)
	if grown > 1024 {
		t.Errorf("the shim grew by %d kB writing %d bytes of output to its log", grown, size)
	}
	killAndWait(t, cl)
}

// Started by hand, the shim daemonizes (the command returns at once, the
// shim leads a session of its own) and takes its flags in each form the
// Go flag package accepts.
func TestFlagFormsAndDaemonize(t *testing.T) {
	c := newContainer(t, false, true, "sh", "-c", "read x; echo got $x")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(shimBin, "-id", c.id, "--bundle="+c.opts.Bundle, "--dir", c.dir, "-runtime="+c.opts.Runtime,
		"--runtime-root", c.opts.RuntimeRoot, "-log-path", c.log, "--log-max-size=0x100000", "-log-max-files", "2",
		"--stdin", "-tty=false", "--ready-fd", "3")
	cmd.ExtraFiles = []*os.File{w}
	err = cmd.Run()
	w.Close()
	if err != nil {
		t.Fatalf("berth-shim: %v", err)
	}
	ready, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var msg shim.Ready
	if err := json.Unmarshal(ready, &msg); err != nil || msg.Pid <= 0 || !bytes.HasSuffix(ready, []byte("\n")) {
		t.Fatalf("ready message %q (%v), want a pid and a newline; shim.log: %s", ready, err, readFile(filepath.Join(c.dir, "shim.log")))
	}
	data, err := os.ReadFile(filepath.Join(c.dir, shim.PidFile))
	if err != nil {
		t.Fatal(err)
	}
	shimPid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if sid, err := unixGetsid(shimPid); err != nil || sid != shimPid {
		t.Errorf("shim %d is in session %d (%v), want its own", shimPid, sid, err)
	}
	ctx := context.Background()
	cl, err := shim.Connect(ctx, c.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a, err := cl.AttachStream(ctx, shim.Streams{Stdin: strings.NewReader("hi\n"), Stdout: &out, CloseStdin: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "got hi\n" {
		t.Fatalf("output %q, want %q", out.String(), "got hi\n")
	}
	if e, err := cl.Wait(ctx); err != nil || e.Code != 0 {
		t.Fatalf("Wait = %+v, %v", e, err)
	}

	for _, args := range [][]string{{"--no-such-flag"}, {"-log-max-size", "ten"}, {"-tty=maybe"}, {"-id"}} {
		err := exec.Command(shimBin, args...).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("berth-shim %q: %v, want exit status 2", args, err)
		}
	}
}

func unixGetsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}
