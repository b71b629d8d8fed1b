// Package runtime_test drives the real berth-runtime binary through runc's
// command line against busybox bundles, and checks what a user of the
// runtime would observe: from inside the container (namespaces, mounts,
// credentials, limits) and from the host (state, cgroups, leftovers).
package runtime_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth.dev/internal/testutil"
	"berth.dev/tests/fixtures"
)

// binary is the berth-runtime built for this test run.
var binary string

func TestMain(m *testing.M) {
	code := run(m)
	fixtures.Cleanup()
	os.Exit(code)
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("skipping runtime integration tests: they need root")
		return 0
	}
	// BERTH_RUNTIME_BINARY tests a binary built elsewhere (make's bin/).
	if binary = os.Getenv("BERTH_RUNTIME_BINARY"); binary != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "berth-test-runtime-bin-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Reachable by the unprivileged user of the rootless test.
	os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "berth-runtime")
	build := exec.Command("go", "build", "-o", binary, "berth.dev/cmd/berth-runtime")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("build berth-runtime:", err)
		return 1
	}
	return m.Run()
}

// rt is one state root, with helpers to run berth-runtime commands in it.
type rt struct {
	t    *testing.T
	root string
}

func newRT(t *testing.T) *rt {
	t.Helper()
	testutil.RequiresRoot(t)
	r := &rt{t: t, root: t.TempDir()}
	t.Cleanup(r.cleanup)
	return r
}

// result is what a command printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

func (r *rt) cmd(stdin string, args ...string) result {
	r.t.Helper()
	c := exec.Command(binary, append([]string{"--root", r.root}, args...)...)
	// Files, not pipes: a detached container keeps its stdio open, and
	// waiting for a pipe's end would wait for the container.
	dir := r.t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	errf, _ := os.Create(filepath.Join(dir, "stderr"))
	defer out.Close()
	defer errf.Close()
	c.Stdout, c.Stderr = out, errf
	c.Stdin = strings.NewReader(stdin)
	err := c.Run()
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	res := result{stdout: string(o), stderr: string(e)}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("berth-runtime %v: %v", args, err)
	}
	return res
}

// ok runs a command that must succeed and returns its stdout.
func (r *rt) ok(args ...string) string {
	r.t.Helper()
	res := r.cmd("", args...)
	if res.code != 0 {
		r.t.Fatalf("berth-runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// cleanup force-deletes whatever containers a test left in its root.
func (r *rt) cleanup() {
	entries, _ := os.ReadDir(r.root)
	for _, e := range entries {
		exec.Command(binary, "--root", r.root, "delete", "--force", e.Name()).Run()
	}
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unified reports whether the host runs cgroup v2 only.
func unified() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupDir is the directory of cgroup path p for a v1 controller, or the
// one v2 directory.
func cgroupDir(controller, p string) string {
	if unified() {
		return filepath.Join("/sys/fs/cgroup", p)
	}
	return filepath.Join("/sys/fs/cgroup", controller, p)
}

// cgroupValue reads a limit of cgroup p: the v1 file of a controller, or
// the v2 file (whose first field is compared).
func cgroupValue(t *testing.T, controller, p, v1file, v2file string) string {
	t.Helper()
	file := v1file
	if unified() {
		file = v2file
	}
	data, err := os.ReadFile(filepath.Join(cgroupDir(controller, p), file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
