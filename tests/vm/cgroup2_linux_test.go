package vm_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth.dev/cgroups"
	"berth.dev/internal/testutil"
	"berth.dev/tests/fixtures"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// binary is the berth-runtime under test.
var binary string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if mode, err := cgroups.DetectMode(cgroups.DefaultMountRoot); err != nil || mode != cgroups.Unified {
		fmt.Printf("skipping the cgroup v2 runtime tests: the host is not cgroup v2 only (%v, %v); make test-cgroup2 runs them\n", mode, err)
		return 0
	}
	if os.Geteuid() != 0 {
		fmt.Println("skipping the cgroup v2 runtime tests: they need root")
		return 0
	}
	if binary = os.Getenv("BERTH_RUNTIME_BINARY"); binary != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "berth-test-vm-bin-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "berth-runtime")
	build := exec.Command("go", "build", "-o", binary, "berth.dev/cmd/berth-runtime")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("build berth-runtime:", err)
		return 1
	}
	return m.Run()
}

// runtime runs berth-runtime commands with a state root of its own.
type runtime struct {
	t    *testing.T
	root string
}

func newRuntime(t *testing.T) *runtime {
	t.Helper()
	testutil.RequiresRoot(t)
	r := &runtime{t: t, root: t.TempDir()}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(r.root)
		for _, e := range entries {
			exec.Command(binary, "--root", r.root, "delete", "--force", e.Name()).Run()
		}
	})
	return r
}

// cmd runs a command and returns its stdout, stderr and exit status.
// Output goes to files: a detached container keeps its stdio open.
func (r *runtime) cmd(args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	dir := r.t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	errf, _ := os.Create(filepath.Join(dir, "stderr"))
	defer out.Close()
	defer errf.Close()
	c := exec.Command(binary, append([]string{"--root", r.root}, args...)...)
	c.Stdout, c.Stderr = out, errf
	err := c.Run()
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	if ee, ok := err.(*exec.ExitError); ok {
		return string(o), string(e), ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("berth-runtime %v: %v", args, err)
	}
	return string(o), string(e), 0
}

func (r *runtime) ok(args ...string) string {
	r.t.Helper()
	out, errOut, code := r.cmd(args...)
	if code != 0 {
		r.t.Fatalf("berth-runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// pid returns the container's init pid from its state.
func (r *runtime) pid(id string) int {
	r.t.Helper()
	var st struct{ Pid int }
	if err := json.Unmarshal([]byte(r.ok("state", id)), &st); err != nil {
		r.t.Fatal(err)
	}
	return st.Pid
}

// cgroupFile reads a file of the container's cgroup /<id>.
func cgroupFile(t *testing.T, id, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cgroups.DefaultMountRoot, id, name))
	if err != nil {
		t.Errorf("read %s: %v", name, err)
	}
	return strings.TrimSpace(string(data))
}

// checkFiles compares files of the container's cgroup with want.
func checkFiles(t *testing.T, id string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got := cgroupFile(t, id, name); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func sleeper(id string, mod ...func(*specs.Spec)) []func(*specs.Spec) {
	return append([]func(*specs.Spec){fixtures.WithArgs("sleep", "1000"), func(s *specs.Spec) {
		s.Linux.CgroupsPath = "/" + id
	}}, mod...)
}

// create places the init in the cgroup with the spec's resources, and
// delete removes the cgroup.
func TestCreateAppliesResourcesAndDeleteRemovesCgroup(t *testing.T) {
	r := newRuntime(t)
	id := testutil.UniqueName(t)
	const limit = 64 << 20
	b := fixtures.Bundle(t, sleeper(id, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](limit), Swap: ptr[int64](limit)}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](50)}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr[int64](20000), Period: ptr[uint64](100000)}
	})...)
	r.ok("create", "--bundle", b, id)
	if got, want := cgroupFile(t, id, "cgroup.procs"), fmt.Sprint(r.pid(id)); got != want {
		t.Errorf("cgroup.procs = %q, want the init %s", got, want)
	}
	// memory+swap equal to the memory limit: no swap at all.
	checkFiles(t, id, map[string]string{"memory.max": "67108864", "memory.swap.max": "0",
		"pids.max": "50", "cpu.max": "20000 100000"})
	r.ok("delete", "--force", id)
	if _, err := os.Stat(filepath.Join(cgroups.DefaultMountRoot, id)); !os.IsNotExist(err) {
		t.Errorf("cgroup left behind after delete: %v", err)
	}
}

// update rewrites the v2 files, and events --stats reads them back.
func TestUpdateAndStats(t *testing.T) {
	r := newRuntime(t)
	id := testutil.UniqueName(t)
	r.ok("run", "-d", "--bundle", fixtures.Bundle(t, sleeper(id)...), id)
	r.ok("update", "--memory", "64m", "--pids-limit", "50", "--cpu-quota", "20000", "--cpu-period", "100000", id)
	checkFiles(t, id, map[string]string{"memory.max": "67108864", "pids.max": "50", "cpu.max": "20000 100000"})
	var ev struct {
		Data struct {
			Memory struct{ Usage struct{ Usage, Limit uint64 } }
			Pids   struct{ Current, Limit uint64 }
		}
	}
	if err := json.Unmarshal([]byte(r.ok("events", "--stats", id)), &ev); err != nil {
		t.Fatal(err)
	}
	if m, p := ev.Data.Memory.Usage, ev.Data.Pids; m.Limit != 64<<20 || m.Usage == 0 || p.Current != 1 || p.Limit != 50 {
		t.Errorf("events --stats: memory %+v, pids %+v", m, p)
	}
}

// pause freezes the cgroup through cgroup.freeze and resume thaws it.
func TestPauseResumeFreezesCgroup(t *testing.T) {
	r := newRuntime(t)
	id := testutil.UniqueName(t)
	r.ok("run", "-d", "--bundle", fixtures.Bundle(t, sleeper(id)...), id)
	r.ok("pause", id)
	checkFiles(t, id, map[string]string{"cgroup.freeze": "1"})
	if ev := cgroupFile(t, id, "cgroup.events"); !strings.Contains(ev, "frozen 1") {
		t.Errorf("after pause, cgroup.events = %q", ev)
	}
	r.ok("resume", id)
	checkFiles(t, id, map[string]string{"cgroup.freeze": "0"})
	if ev := cgroupFile(t, id, "cgroup.events"); !strings.Contains(ev, "frozen 0") {
		t.Errorf("after resume, cgroup.events = %q", ev)
	}
}

// Inside, the container sees its own cgroup as the root of a read-only
// cgroup2 mount, with its limits.
func TestContainerSeesItsCgroup(t *testing.T) {
	r := newRuntime(t)
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, fixtures.WithArgs("sh", "-c", "cat /proc/self/cgroup; grep ' /sys/fs/cgroup ' /proc/self/mountinfo; cat /sys/fs/cgroup/pids.max"),
		func(s *specs.Spec) {
			s.Linux.CgroupsPath = "/" + id
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](42)}
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		})
	lines := strings.Split(strings.TrimSpace(r.ok("run", "--bundle", b, id)), "\n")
	if len(lines) != 3 {
		t.Fatalf("container printed %q", lines)
	}
	if lines[0] != "0::/" {
		t.Errorf("/proc/self/cgroup = %q, want 0::/ (the namespace root)", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) < 10 || f[3] != "/" || !strings.Contains(lines[1], " - cgroup2 ") || !strings.HasPrefix(f[5], "ro,") {
		t.Errorf("/sys/fs/cgroup mount %q, want read-only cgroup2 rooted at the container's cgroup", lines[1])
	}
	if lines[2] != "42" {
		t.Errorf("pids.max inside = %q, want 42", lines[2])
	}
}

// A container over its memory limit is OOM-killed by the kernel, which
// counts the kill in the cgroup's memory.events.
func TestMemoryLimitOOMKills(t *testing.T) {
	r := newRuntime(t)
	id := testutil.UniqueName(t)
	const limit = 16 << 20
	// tail keeps a line that never ends in memory.
	b := fixtures.Bundle(t, fixtures.WithArgs("sh", "-c", "head -c 64m /dev/zero | tail -n 1 >/dev/null"), func(s *specs.Spec) {
		s.Linux.CgroupsPath = "/" + id
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](limit), Swap: ptr[int64](limit)}
	})
	r.ok("run", "-d", "--bundle", b, id)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(r.ok("state", id), `"stopped"`) {
		if time.Now().After(deadline) {
			t.Fatal("the container did not stop within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	events := cgroupFile(t, id, "memory.events")
	var kills int
	for _, line := range strings.Split(events, "\n") {
		fmt.Sscanf(line, "oom_kill %d", &kills)
	}
	if kills < 1 {
		t.Errorf("memory.events = %q, want an oom_kill", events)
	}
}
