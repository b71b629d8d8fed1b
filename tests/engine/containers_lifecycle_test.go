package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"berth.dev/internal/testutil"
	"berth.dev/tests/enginetest"
)

// waitFor polls cond until it holds; it fails the test after a minute (a
// bound against hangs, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

func inspect(d *enginetest.Daemon, format, name string) string {
	d.T.Helper()
	return strings.TrimSpace(d.MustBerth("inspect", "-f", format, name))
}

// Detached containers outlive a berthd killed with SIGKILL: after the
// restart ps shows the live one running, the one that exited meanwhile has
// its exit code, and stop works on the live one.
func TestContainersSurviveDaemonKill(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	d.MustBerth("run", "-d", "--name", "live", "busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")
	d.MustBerth("run", "-d", "--name", "quits", "busybox", "sleep", "1000")
	pid, _ := strconv.Atoi(inspect(d, "{{.State.Pid}}", "quits"))
	d.Kill()
	// The container is killed while no berthd runs: 128+SIGKILL.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the container's process %d: %v", pid, err)
	}
	d.Restart()
	waitFor(t, "quits to be seen exited", func() bool { return inspect(d, "{{.State.Status}}", "quits") == "exited" })
	if got := inspect(d, "{{.State.ExitCode}}", "quits"); got != "137" {
		t.Errorf("exit code of a container killed while berthd was down: %s, want 137", got)
	}
	if out := d.MustBerth("ps", "--format", "{{.Names}} {{.State}}"); strings.TrimSpace(out) != "live running" {
		t.Errorf("ps after the restart:\n%s", out)
	}
	d.MustBerth("stop", "live")
	if got := inspect(d, "{{.State.Status}} {{.State.ExitCode}}", "live"); got != "exited 0" {
		t.Errorf("after stop: %s", got)
	}
}

// A container that exits on its own while berthd is down keeps its own
// exit code.
func TestExitWhileDaemonDown(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	dir := t.TempDir()
	d.MustBerth("run", "-d", "--name", "exits", "-v", dir+":/sig", "busybox", "sh", "-c", "while [ ! -e /sig/go ]; do sleep 0.1; done; exit 7")
	pid, _ := strconv.Atoi(strings.TrimSpace(string(must(os.ReadFile(filepath.Join(d.ExecRoot, "s", inspectID(d, "exits"), "shim.pid"))))))
	d.Kill()
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	waitFor(t, "the shim to exit after its container", func() bool { return syscall.Kill(pid, 0) != nil })
	d.Restart()
	if got := inspect(d, "{{.State.Status}} {{.State.ExitCode}}", "exits"); got != "exited 7" {
		t.Errorf("container that exited while berthd was down: %s, want exited 7", got)
	}
}

func inspectID(d *enginetest.Daemon, name string) string {
	d.T.Helper()
	return inspect(d, "{{.Id}}", name)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestMemoryLimitOOMKilled(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	_, _, code := d.Berth("run", "--name", "oom", "--memory", "32m", "busybox", "sh", "-c", `x=$(head -c 67108864 /dev/zero | tr '\0' a); echo survived`)
	if code != 137 {
		t.Errorf("run exit %d, want 137", code)
	}
	if got := inspect(d, "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"); got != "true 137" {
		t.Errorf("OOMKilled and exit code: %s, want true 137", got)
	}
}

// Logs rotate at max-size into max-file files; what is kept is contiguous.
func TestLogRotation(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	const n = 20000
	d.MustBerth("run", "-d", "--name", "lg", "--log-opt", "max-size=10k", "--log-opt", "max-file=3", "busybox",
		"sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo line $i; done", n))
	follow := d.BerthCommand("logs", "-f", "lg")
	var followed testutil.Buffer
	follow.Stdout = &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	d.MustBerth("wait", "lg")
	follow.Wait()
	kept := d.MustBerth("logs", "lg")
	checkContiguous(t, "logs", kept, n)
	// logs -f read while the files rotated: a follower that falls more
	// than max-file files behind may miss a dropped file (docker's too),
	// but what it shows is in order, without duplicates, and ends with
	// every kept line.
	checkIncreasing(t, "logs -f", followed.String())
	if !strings.HasSuffix(followed.String(), kept) {
		t.Errorf("logs -f does not end with the %d kept lines", strings.Count(kept, "\n"))
	}
	files, _ := filepath.Glob(inspect(d, "{{.LogPath}}", "lg") + "*")
	if len(files) == 0 || len(files) > 3 {
		t.Errorf("log files %v, want 1 to 3", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 10*1024 {
			t.Errorf("log file %s: %v bytes (limit 10240), %v", f, fi.Size(), err)
		}
	}
}

// checkContiguous asserts the lines are "line k" ... "line last" with no
// gap nor duplicate, ending at last. -f may also show earlier lines that
// rotated away afterwards, so only the order is checked there.
func checkContiguous(t *testing.T, what, out string, last int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 100 {
		t.Fatalf("%s: only %d lines", what, len(lines))
	}
	prev := 0
	for i, l := range lines {
		k, err := strconv.Atoi(strings.TrimPrefix(l, "line "))
		if err != nil || (i > 0 && k != prev+1) {
			t.Fatalf("%s: line %d is %q after line %d", what, i, l, prev)
		}
		prev = k
	}
	if prev != last {
		t.Errorf("%s: last line %d, want %d", what, prev, last)
	}
}

func checkIncreasing(t *testing.T, what, out string) {
	t.Helper()
	prev := 0
	for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, err := strconv.Atoi(strings.TrimPrefix(l, "line "))
		if err != nil || k <= prev {
			t.Fatalf("%s: line %d is %q after line %d", what, i, l, prev)
		}
		prev = k
	}
}

func TestRunErrorsExitCodes(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	d.MustBerth("pull", "busybox")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown flag", []string{"run", "--bogus", "busybox"}, 125, "unknown flag: --bogus"},
		{"unknown image", []string{"run", "berth-test-nosuch.invalid/img:1"}, 125, "Error response from daemon"},
		{"bad memory", []string{"run", "--memory", "lots", "busybox"}, 125, "lots"},
		{"bad restart policy", []string{"run", "--restart", "sometimes", "busybox"}, 125, "restart policy"},
		{"not executable", []string{"run", "busybox", "/etc/passwd"}, 126, "permission denied"},
		{"not found", []string{"run", "busybox", "nosuchcmd"}, 127, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := d.Berth(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Errorf("exit %d, want %d; stderr %q wants %q", code, tc.code, errOut, tc.msg)
			}
			if tc.args[1] == "--restart" {
				return // --rm conflicts with --restart
			}
			_, _, code = d.Berth(append(tc.args[:1:1], append([]string{"--rm"}, tc.args[1:]...)...)...)
			if code != tc.code {
				t.Errorf("with --rm: exit %d, want %d", code, tc.code)
			}
		})
	}
	// Without --rm a container that failed to start stays (as docker's,
	// in Created state); remove them and nothing may be left.
	if ids := strings.Fields(d.MustBerth("ps", "-aq")); len(ids) > 0 {
		d.MustBerth(append([]string{"rm", "-f"}, ids...)...)
	}
	if m := d.Mounts(); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if out, err := os.ReadDir(filepath.Join(d.ExecRoot, "containers")); err == nil && len(out) != 0 {
		t.Errorf("container dirs left under the exec root: %d", len(out))
	}
}

// 50 containers started at once all run; rm -f leaves no shim, mount or
// cgroup.
func TestManyConcurrentContainers(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	d.MustBerth("pull", "busybox")
	parent := "/" + testutil.UniqueName(t)
	t.Cleanup(func() { removeCgroups(parent) })
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errOut, code := d.Berth("run", "-d", "--name", fmt.Sprintf("c%d", i), "--cgroup-parent", parent, "busybox", "sleep", "30")
			if code != 0 {
				errs <- fmt.Sprintf("c%d: exit %d: %s", i, code, errOut)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := len(strings.Fields(d.MustBerth("ps", "-q"))); got != n {
		t.Errorf("%d containers running, want %d", got, n)
	}
	shims := d.ShimPids()
	if len(shims) != n {
		t.Errorf("%d shim pid files, want %d", len(shims), n)
	}
	ids := strings.Fields(d.MustBerth("ps", "-aq"))
	d.MustBerth(append([]string{"rm", "-f"}, ids...)...)
	if out := d.MustBerth("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %s", out)
	}
	for _, pid := range shims {
		waitFor(t, fmt.Sprintf("shim %d to exit", pid), func() bool { return syscall.Kill(pid, 0) != nil })
	}
	if m := d.Mounts(); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if left := cgroupsUnder(parent); len(left) != 0 {
		t.Errorf("cgroups left under %s: %v", parent, left)
	}
}

// cgroupsUnder lists the cgroup directories below parent in every
// hierarchy.
func cgroupsUnder(parent string) []string {
	var left []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		subs, _ := os.ReadDir(filepath.Join(r, parent))
		for _, s := range subs {
			if s.IsDir() {
				left = append(left, filepath.Join(r, parent, s.Name()))
			}
		}
	}
	return left
}

func removeCgroups(parent string) {
	for _, c := range cgroupsUnder(parent) {
		os.Remove(c)
	}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range append(roots, "/sys/fs/cgroup") {
		os.Remove(filepath.Join(r, parent))
	}
}

func TestRestartPolicies(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	d.MustBerth("run", "-d", "--name", "onfail", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	waitFor(t, "on-failure:2 to give up", func() bool {
		return inspect(d, "{{.State.Status}} {{.RestartCount}}", "onfail") == "exited 2"
	})
	if got := inspect(d, "{{.State.ExitCode}}", "onfail"); got != "1" {
		t.Errorf("exit code %s", got)
	}

	// restart=always: its container dies while berthd is down; the next
	// berthd starts it again.
	d.MustBerth("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
	pid, _ := strconv.Atoi(inspect(d, "{{.State.Pid}}", "always"))
	d.Kill()
	syscall.Kill(pid, syscall.SIGKILL)
	d.Restart()
	waitFor(t, "the always container to run again", func() bool {
		st := inspect(d, "{{.State.Status}} {{.State.Pid}}", "always")
		return strings.HasPrefix(st, "running ") && st != fmt.Sprintf("running %d", pid)
	})
}

func TestOtherRuntimes(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	for _, rt := range []string{"runc", "crun"} {
		t.Run(rt, func(t *testing.T) {
			if _, err := os.Stat("/usr/bin/" + rt); err != nil {
				t.Skipf("%s is not installed", rt)
			}
			if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil && rt == "crun" {
				t.Skip("crun refuses a hybrid cgroup hierarchy (v1 with cgroup2 at /sys/fs/cgroup/unified), as this host has")
			}
			out, errOut, code := d.Berth("run", "--rm", "--runtime", rt, "busybox", "sh", "-c", "echo hi from $0; exit 3")
			if code != 3 || strings.TrimSpace(out) != "hi from sh" {
				t.Errorf("run --runtime %s: exit %d, out %q, err %s", rt, code, out, errOut)
			}
		})
	}
}
