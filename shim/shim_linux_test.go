package shim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"berth.dev/shim"
	"berth.dev/tests/fixtures"
	"berth.dev/tests/runtimetest"
	"berth.dev/tests/shimtest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var shimBin, runtimeBin string

// starterEnv makes the test binary a process that starts a shim, prints
// its container pid and waits to be killed (TestShimSurvivesStarter).
const starterEnv = "BERTH_SHIM_TEST_STARTER"

func TestMain(m *testing.M) {
	if opts := os.Getenv(starterEnv); opts != "" {
		runStarter(opts)
		return
	}
	// Shims leave their starter's family; made a subreaper, this process
	// inherits them, so that waitShimGone can reap them instead of leaving
	// zombies to an init that may not reap.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	fixtures.Cleanup()
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var cleanup func()
	var err error
	if runtimeBin, cleanup, err = runtimetest.Build(); err != nil {
		return 1, err
	}
	defer cleanup()
	var shimCleanup func()
	if shimBin, shimCleanup, err = shimtest.Build(); err != nil {
		return 1, err
	}
	defer shimCleanup()
	return m.Run(), nil
}

func runStarter(opts string) {
	var o shim.StartOptions
	if err := json.Unmarshal([]byte(opts), &o); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	_, pid, err := shim.Start(context.Background(), o)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(pid)
	select {}
}

// container is one shim under test.
type container struct {
	id, dir, log string
	opts         shim.StartOptions
	rt           *runtimetest.Runtime
}

// newContainer prepares a bundle running args and a shim directory. The
// cleanup force-deletes the container and then waits for its shim to exit.
func newContainer(t *testing.T, tty, stdin bool, args ...string) *container {
	t.Helper()
	testutil.RequiresRoot(t)
	bundle := fixtures.Bundle(t, fixtures.WithArgs(args...), func(s *specs.Spec) { s.Process.Terminal = tty })
	dir := t.TempDir()
	c := &container{id: testutil.UniqueName(t), dir: dir, log: filepath.Join(dir, "json.log")}
	t.Cleanup(func() { checkNoCgroup(t, c.id) })
	t.Cleanup(func() { waitShimGone(t, dir) })
	c.rt = runtimetest.New(t, runtimeBin)
	c.opts = shim.StartOptions{
		Binary: shimBin, ID: c.id, Bundle: bundle, Dir: dir, Runtime: runtimeBin,
		RuntimeRoot: c.rt.Root, LogPath: c.log, Stdin: stdin, Tty: tty,
	}
	return c
}

func (c *container) start(t *testing.T) (*shim.Client, int) {
	t.Helper()
	cl, pid, err := shim.Start(context.Background(), c.opts)
	if err != nil {
		t.Fatalf("shim.Start: %v\nshim.log: %s", err, readFile(filepath.Join(c.dir, "shim.log")))
	}
	if pid <= 0 {
		t.Fatalf("shim.Start: pid %d", pid)
	}
	return cl, pid
}

// checkNoCgroup fails the test if a cgroup named id (the runtimes' default
// path, /<id>) is left in any hierarchy.
func checkNoCgroup(t *testing.T, id string) {
	left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", id))
	more, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", id))
	if left = append(left, more...); len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// waitShimGone blocks until the shim whose pid file is in dir has exited,
// and reaps it.
func waitShimGone(t *testing.T, dir string) {
	data, err := os.ReadFile(filepath.Join(dir, shim.PidFile))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid <= 0 {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if err != unix.EINTR {
			break
		}
	}
	var info unix.Siginfo
	unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED, nil)
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		kill bool
		want int
	}{
		{"zero", []string{"true"}, false, 0},
		{"three", []string{"sh", "-c", "exit 3"}, false, 3},
		{"sigkill", []string{"sleep", "1000"}, true, 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newContainer(t, false, false, tc.args...)
			cl, _ := c.start(t)
			ctx := context.Background()
			if err := cl.StartContainer(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.kill {
				if err := cl.Kill(ctx, syscall.SIGKILL, false); err != nil {
					t.Fatal(err)
				}
			}
			e, err := cl.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if e.Code != tc.want || e.ExitedAt.IsZero() || e.OOM {
				t.Fatalf("Wait = %+v, want code %d, a time and no OOM", e, tc.want)
			}
			waitShimGone(t, c.dir)
			fe, err := shim.ReadExit(c.dir)
			if err != nil || fe.Code != tc.want || !fe.ExitedAt.Equal(e.ExitedAt) {
				t.Fatalf("ReadExit = %+v, %v; Wait said %+v", fe, err, e)
			}
			if _, err := shim.Connect(ctx, c.dir); !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatalf("Connect after exit: %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestLogJSONFile(t *testing.T) {
	c := newContainer(t, false, false, "sh", "-c", "echo hello; echo err >&2; printf partial")
	cl, _ := c.start(t)
	ctx := context.Background()
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitShimGone(t, c.dir)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(c.log)), "\n") {
		var e struct {
			Log, Stream, Time string
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e.Time == "" {
			t.Errorf("log line %q has no time", line)
		}
		got[e.Stream] += e.Log
	}
	if got["stdout"] != "hello\npartial" || got["stderr"] != "err\n" {
		t.Fatalf("log streams = %q, want stdout %q, stderr %q", got, "hello\npartial", "err\n")
	}
}

func TestAttachStdin(t *testing.T) {
	c := newContainer(t, false, true, "sh", "-c", "cat; echo done >&2")
	cl, _ := c.start(t)
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	a, err := cl.AttachStream(ctx, shim.Streams{
		Stdin: strings.NewReader("ping\npong\n"), Stdout: &stdout, Stderr: &stderr, CloseStdin: true,
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "ping\npong\n" || stderr.String() != "done\n" {
		t.Fatalf("attach got stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if e, err := cl.Wait(ctx); err != nil || e.Code != 0 {
		t.Fatalf("Wait = %+v, %v", e, err)
	}
}

func TestTTYResize(t *testing.T) {
	c := newContainer(t, true, false, "sh", "-c", "stty size; tty")
	cl, _ := c.start(t)
	ctx := context.Background()
	if err := cl.Resize(ctx, "", 123, 45); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a, err := cl.AttachStream(ctx, shim.Streams{Stdout: &out}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "45 123\r\n") || !strings.Contains(got, "/dev/pts/") {
		t.Fatalf("tty output %q, want the size 45 123 and a /dev/pts tty", got)
	}
	if _, err := cl.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitShimGone(t, c.dir)
	if log := readFile(c.log); !strings.Contains(log, `45 123\r\n`) {
		t.Fatalf("log %q lacks the tty output", log)
	}
}

func TestResizeWithoutTTY(t *testing.T) {
	c := newContainer(t, false, false, "true")
	cl, _ := c.start(t)
	if err := cl.Resize(context.Background(), "", 80, 24); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Resize without a tty: %v, want ErrFailedPrecondition", err)
	}
}

func TestExec(t *testing.T) {
	c := newContainer(t, false, false, "sleep", "1000")
	cl, _ := c.start(t)
	ctx := context.Background()
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	proc := func(args ...string) *specs.Process {
		return &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin:/usr/bin"}}
	}
	for _, tc := range []struct {
		name           string
		args           []string
		stdin          string
		tty            bool
		stdout, stderr string
		code           int
	}{
		{"output and code", []string{"sh", "-c", "echo out; echo err >&2; exit 5"}, "", false, "out\n", "err\n", 5},
		{"stdin", []string{"cat"}, "abc", false, "abc", "", 0},
		{"tty", []string{"tty"}, "", true, "/dev/pts/", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			o := shim.ExecOptions{ID: strings.ReplaceAll(tc.name, " ", "-"), Process: proc(tc.args...), Tty: tc.tty,
				Streams: shim.Streams{Stdout: &stdout, Stderr: &stderr}}
			if tc.stdin != "" {
				o.Stdin = strings.NewReader(tc.stdin)
			}
			code, err := cl.Exec(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.HasPrefix(stdout.String(), tc.stdout) || stderr.String() != tc.stderr {
				t.Fatalf("exec = %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	if st, err := cl.State(ctx); err != nil || st.Status != shim.StatusRunning {
		t.Fatalf("State after execs = %+v, %v", st, err)
	}
	killAndWait(t, cl)
}

func TestCreateError(t *testing.T) {
	c := newContainer(t, false, false, "true")
	os.Remove(filepath.Join(c.opts.Bundle, "config.json"))
	_, _, err := shim.Start(context.Background(), c.opts)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("Start with no config.json: %v, want ErrFailedPrecondition naming config.json", err)
	}
	waitShimGone(t, c.dir)
	if _, err := shim.ReadExit(c.dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("ReadExit after a failed create: %v, want ErrNotFound", err)
	}
}

// The shim is detached: killing whoever started it does not touch it, and
// a new client finds it by its directory.
func TestShimSurvivesStarter(t *testing.T) {
	c := newContainer(t, false, false, "sh", "-c", "echo survived")
	opts, _ := json.Marshal(c.opts)
	starter := exec.Command(os.Args[0], "-test.run=^$")
	starter.Env = append(os.Environ(), starterEnv+"="+string(opts))
	out, err := starter.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := starter.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if pid, err := strconv.Atoi(strings.TrimSpace(line)); err != nil || pid <= 0 {
		starter.Process.Kill()
		starter.Wait()
		t.Fatalf("starter said %q", line)
	}
	starter.Process.Kill()
	starter.Wait()

	ctx := context.Background()
	cl, err := shim.Connect(ctx, c.dir)
	if err != nil {
		t.Fatalf("Connect after the starter died: %v", err)
	}
	if st, err := cl.State(ctx); err != nil || st.Status != shim.StatusCreated {
		t.Fatalf("State = %+v, %v; want created", st, err)
	}
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err := cl.Wait(ctx); err != nil || e.Code != 0 {
		t.Fatalf("Wait = %+v, %v", e, err)
	}
	waitShimGone(t, c.dir)
	if log := readFile(c.log); !strings.Contains(log, `"survived\n"`) {
		t.Fatalf("log %q", log)
	}
}

func TestOOMKill(t *testing.T) {
	c := newContainer(t, false, false, "sh", "-c", `x=$(dd if=/dev/zero bs=1M count=256 2>/dev/null | tr '\0' a); echo survived`)
	limit := int64(16 << 20)
	if err := setSpec(c.opts.Bundle, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	}); err != nil {
		t.Fatal(err)
	}
	cl, _ := c.start(t)
	ctx := context.Background()
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := cl.Wait(ctx)
	if err != nil || !e.OOM {
		t.Fatalf("Wait = %+v, %v; want an OOM kill", e, err)
	}
	waitShimGone(t, c.dir)
	if fe, err := shim.ReadExit(c.dir); err != nil || !fe.OOM || fe.Code != e.Code {
		t.Fatalf("ReadExit = %+v, %v; Wait said %+v", fe, err, e)
	}
}

// setSpec rewrites the bundle's config.json through mod.
func setSpec(bundle string, mod func(*specs.Spec)) error {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	mod(&s)
	return fixtures.WriteConfig(bundle, &s)
}

// The live log file is never lost to rotation: with max-size and two files
// the log holds the newest lines across json.log.1 and json.log.
func TestLogRotation(t *testing.T) {
	c := newContainer(t, false, false, "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done")
	c.opts.Log = shim.LogOptions{MaxSize: 2048, MaxFiles: 2}
	cl, _ := c.start(t)
	ctx := context.Background()
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err := cl.Wait(ctx); err != nil || e.Code != 0 {
		t.Fatalf("Wait = %+v, %v", e, err)
	}
	waitShimGone(t, c.dir)
	live, rotated := readFile(c.log), readFile(c.log+".1")
	if _, err := os.Stat(c.log + ".2"); err == nil {
		t.Errorf("%s.2 exists with max-files 2", c.log)
	}
	if int64(len(live)) > 2048 || int64(len(rotated)) > 2048 || rotated == "" {
		t.Fatalf("live %d bytes, rotated %d bytes; want both within 2048 and a rotation", len(live), len(rotated))
	}
	if !strings.Contains(live, `"line299\n"`) {
		t.Fatalf("live log lacks the last line: %q", live)
	}
	if strings.Contains(rotated+live, `"line0\n"`) {
		t.Fatalf("line0 should have rotated away")
	}
}

// Other OCI runtimes work in place of berth-runtime.
func TestOtherRuntimes(t *testing.T) {
	for _, name := range []string{"runc", "crun"} {
		t.Run(name, func(t *testing.T) {
			bin, err := exec.LookPath(name)
			if err != nil {
				t.Skipf("%s is not installed", name)
			}
			if data, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers"); name == "crun" && len(bytes.TrimSpace(data)) > 0 {
				t.Skip("crun refuses a hybrid cgroup host whose cgroup2 mount has controllers")
			}
			testutil.RequiresRoot(t)
			for _, tty := range []bool{false, true} {
				t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
					c := newContainer(t, tty, false, "sh", "-c", "echo hi; exit 4")
					if err := setSpec(c.opts.Bundle, func(s *specs.Spec) { s.Version = "1.0.2" }); err != nil {
						t.Fatal(err)
					}
					c.opts.Runtime = bin
					t.Cleanup(func() { exec.Command(bin, "--root", c.rt.Root, "delete", "--force", c.id).Run() })
					cl, _ := c.start(t)
					ctx := context.Background()
					if err := cl.StartContainer(ctx); err != nil {
						t.Fatal(err)
					}
					if e, err := cl.Wait(ctx); err != nil || e.Code != 4 {
						t.Fatalf("Wait = %+v, %v; want code 4", e, err)
					}
					waitShimGone(t, c.dir)
					if log := readFile(c.log); !strings.Contains(log, `"hi\n"`) && !strings.Contains(log, `"hi\r\n"`) {
						t.Fatalf("log %q lacks hi", log)
					}
				})
			}
		})
	}
}

// Requests that do not fit the container's state fail with its category.
func TestStateErrors(t *testing.T) {
	c := newContainer(t, false, false, "sleep", "1000")
	cl, _ := c.start(t)
	ctx := context.Background()
	if _, err := cl.Exec(ctx, shim.ExecOptions{ID: "early", Process: &specs.Process{Args: []string{"true"}, Cwd: "/"}}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Exec before start: %v, want ErrFailedPrecondition", err)
	}
	if err := cl.StartContainer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.StartContainer(ctx); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second start: %v, want ErrConflict", err)
	}
	if _, err := cl.Exec(ctx, shim.ExecOptions{ID: "../x", Process: &specs.Process{Args: []string{"true"}, Cwd: "/"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("exec id ../x: %v, want ErrInvalidArgument", err)
	}
	killAndWait(t, cl)
	waitShimGone(t, c.dir)
	if err := cl.Kill(ctx, syscall.SIGKILL, false); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Kill after the shim exited: %v, want ErrUnavailable", err)
	}
	if e, err := cl.Wait(ctx); err != nil || e.Code != 137 {
		t.Errorf("Wait after the shim exited = %+v, %v; want 137 from the exit files", e, err)
	}
}

// startDeferred starts c's shim with the container left uncreated until
// StartProcess.
func (c *container) startDeferred(t *testing.T) *shim.Client {
	t.Helper()
	c.opts.Deferred = true
	cl, pid, err := shim.Start(context.Background(), c.opts)
	if err != nil {
		t.Fatalf("shim.Start: %v\nshim.log: %s", err, readFile(filepath.Join(c.dir, "shim.log")))
	}
	if pid != 0 {
		t.Fatalf("a deferred shim reported pid %d before the start", pid)
	}
	return cl
}

// A deferred shim creates and starts the container at the start request
// (one `runtime run --detach`): before it, nothing runs and nothing can be
// signalled; a client attached before sees all the output and feeds stdin.
func TestDeferredStart(t *testing.T) {
	c := newContainer(t, false, true, "sh", "-c", "cat; echo done >&2; exit 4")
	cl := c.startDeferred(t)
	ctx := context.Background()
	if st, err := cl.State(ctx); err != nil || st.Status != shim.StatusCreated || st.Pid != 0 {
		t.Fatalf("State before the start = %+v, %v; want created, no pid", st, err)
	}
	if err := cl.Kill(ctx, syscall.SIGKILL, false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Kill before the start: %v, want ErrFailedPrecondition", err)
	}
	var stdout, stderr testutil.Buffer
	in, inw := io.Pipe()
	a, err := cl.AttachStream(ctx, shim.Streams{Stdin: in, Stdout: &stdout, Stderr: &stderr, CloseStdin: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := cl.StartProcess(ctx)
	if err != nil || pid <= 0 {
		t.Fatalf("StartProcess = %d, %v", pid, err)
	}
	// The container waits for its input: it is still there.
	if _, err := cl.StartProcess(ctx); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("a second start: %v, want ErrConflict", err)
	}
	inw.Write([]byte("ping\n"))
	inw.Close()
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "ping\n" || stderr.String() != "done\n" {
		t.Fatalf("attach got stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if e, err := cl.Wait(ctx); err != nil || e.Code != 4 {
		t.Fatalf("Wait = %+v, %v; want code 4", e, err)
	}
	waitShimGone(t, c.dir)
}

// A resize before a deferred start reaches the terminal when it comes.
func TestDeferredTTYResize(t *testing.T) {
	c := newContainer(t, true, true, "sh", "-c", "read x; stty size")
	cl := c.startDeferred(t)
	ctx := context.Background()
	if err := cl.Resize(ctx, "", 123, 45); err != nil {
		t.Fatal(err)
	}
	in, inw := io.Pipe()
	var out testutil.Buffer
	a, err := cl.AttachStream(ctx, shim.Streams{Stdin: in, Stdout: &out}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartProcess(ctx); err != nil {
		t.Fatal(err)
	}
	inw.Write([]byte("go\n"))
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	inw.Close()
	if got := out.String(); !strings.Contains(got, "45 123\r\n") {
		t.Fatalf("tty output %q, want the size 45 123", got)
	}
	if _, err := cl.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// A deferred start that fails answers with the runtime's message and the
// shim goes, leaving no exit files (nothing ran).
func TestDeferredStartError(t *testing.T) {
	c := newContainer(t, false, false, "/no/such/program")
	cl := c.startDeferred(t)
	ctx := context.Background()
	var out bytes.Buffer
	a, err := cl.AttachStream(ctx, shim.Streams{Stdout: &out}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartProcess(ctx); !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("StartProcess of a missing program: %v, want ErrFailedPrecondition naming it", err)
	}
	if err := a.Wait(); err != nil {
		t.Errorf("the attached client after the failed start: %v", err)
	}
	waitShimGone(t, c.dir)
	if _, err := shim.ReadExit(c.dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("ReadExit after a failed start: %v, want ErrNotFound", err)
	}
}

// killAndWait SIGKILLs the container and checks that its shim reports the
// exit (137).
func killAndWait(t *testing.T, cl *shim.Client) {
	t.Helper()
	ctx := context.Background()
	if err := cl.Kill(ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if e, err := cl.Wait(ctx); err != nil || e.Code != 137 {
		t.Fatalf("Wait = %+v, %v", e, err)
	}
}
