package vm_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth.dev/cgroups"
	"berth.dev/internal/testutil"
	"berth.dev/tests/fixtures"
	"berth.dev/tests/runtimetest"
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
	var cleanup func()
	var err error
	if binary, cleanup, err = runtimetest.Build(); err != nil {
		fmt.Println(err)
		return 1
	}
	defer cleanup()
	return m.Run()
}

func newRuntime(t *testing.T) *runtimetest.Runtime { return runtimetest.New(t, binary) }

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
	r.OK("create", "--bundle", b, id)
	if got, want := cgroupFile(t, id, "cgroup.procs"), fmt.Sprint(r.State(id).Pid); got != want {
		t.Errorf("cgroup.procs = %q, want the init %s", got, want)
	}
	// memory+swap equal to the memory limit: no swap at all.
	checkFiles(t, id, map[string]string{"memory.max": "67108864", "memory.swap.max": "0",
		"pids.max": "50", "cpu.max": "20000 100000"})
	r.OK("delete", "--force", id)
	if _, err := os.Stat(filepath.Join(cgroups.DefaultMountRoot, id)); !os.IsNotExist(err) {
		t.Errorf("cgroup left behind after delete: %v", err)
	}
}

// update rewrites the v2 files, and events --stats reads them back.
func TestUpdateAndStats(t *testing.T) {
	r := newRuntime(t)
	id := testutil.UniqueName(t)
	r.OK("run", "-d", "--bundle", fixtures.Bundle(t, sleeper(id)...), id)
	r.OK("update", "--memory", "64m", "--pids-limit", "50", "--cpu-quota", "20000", "--cpu-period", "100000", id)
	checkFiles(t, id, map[string]string{"memory.max": "67108864", "pids.max": "50", "cpu.max": "20000 100000"})
	var ev struct {
		Data struct {
			Memory struct{ Usage struct{ Usage, Limit uint64 } }
			Pids   struct{ Current, Limit uint64 }
		}
	}
	if err := json.Unmarshal([]byte(r.OK("events", "--stats", id)), &ev); err != nil {
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
	r.OK("run", "-d", "--bundle", fixtures.Bundle(t, sleeper(id)...), id)
	r.OK("pause", id)
	checkFiles(t, id, map[string]string{"cgroup.freeze": "1"})
	if ev := cgroupFile(t, id, "cgroup.events"); !strings.Contains(ev, "frozen 1") {
		t.Errorf("after pause, cgroup.events = %q", ev)
	}
	r.OK("resume", id)
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
	lines := strings.Split(strings.TrimSpace(r.OK("run", "--bundle", b, id)), "\n")
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
	r.OK("run", "-d", "--bundle", b, id)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(r.OK("state", id), `"stopped"`) {
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
