package cgroups

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The v2 driver against a tree of plain files shaped like cgroup2: what it
// writes is read back from the files.

// newFakeV2 builds root/ (offering cpu, io, memory, pids, hugetlb), root/a/
// and the leaf root/a/b/, and returns the manager for /a/b.
func newFakeV2(t *testing.T, leafControllers string) (Manager, string) {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"cgroup.controllers":       "cpuset cpu io memory hugetlb pids rdma misc",
		"cgroup.subtree_control":   "",
		"a/cgroup.controllers":     "cpu io memory pids",
		"a/cgroup.subtree_control": "memory",
		"a/b/cgroup.controllers":   leafControllers,
		"a/b/cgroup.procs":         "",
		"a/b/cgroup.events":        "populated 0\nfrozen 0\n",
		"a/b/cgroup.freeze":        "0",
		"a/b/memory.max":           "max",
		"a/b/memory.swap.max":      "0",
		"a/b/memory.low":           "0",
		"a/b/memory.high":          "max",
		"a/b/memory.current":       "1048576",
		"a/b/memory.events":        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"a/b/cpu.max":              "max 100000",
		"a/b/cpu.weight":           "100",
		"a/b/cpu.max.burst":        "0",
		"a/b/cpu.idle":             "0",
		"a/b/io.weight":            "default 100",
		"a/b/io.max":               "",
		"a/b/pids.max":             "100",
	})
	m, err := New("/a/b", WithMode(Unified), WithMountRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	return m, root
}

func TestV2ApplyEnablesControllersDownThePath(t *testing.T) {
	m, root := newFakeV2(t, "cpu io memory pids")
	if err := m.Apply(4242); err != nil {
		t.Fatal(err)
	}
	// The root offers everything; it gets all known controllers, in one
	// write. /a has memory on already; it gets the rest it offers. The
	// leaf's subtree_control is not touched (it would hold processes).
	if got := readTree(t, root, "cgroup.subtree_control"); got != "+cpuset +cpu +io +memory +pids +hugetlb +rdma +misc" {
		t.Errorf("root subtree_control = %q", got)
	}
	if got := readTree(t, root, "a/cgroup.subtree_control"); got != "+cpu +io +pids" {
		t.Errorf("a subtree_control = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "a/b/cgroup.subtree_control")); err == nil {
		t.Error("leaf subtree_control was written")
	}
	if got := readTree(t, root, "a/b/cgroup.procs"); got != "4242" {
		t.Errorf("cgroup.procs = %q", got)
	}
}

func TestV2ApplyFailureRemovesCreatedDirs(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": "", "cgroup.subtree_control": ""})
	m, err := New("/new/leaf", WithMode(Unified), WithMountRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	// The plain directories Apply makes have no cgroup.procs, so moving
	// the pid fails, as it would for a vanished process.
	if err := m.Apply(4242); err == nil {
		t.Fatal("Apply succeeded without cgroup.procs")
	}
	if _, err := os.Stat(filepath.Join(root, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("created parent left behind: %v", err)
	}
}

func TestV2Set(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name string
		r    specs.LinuxResources
		want map[string]string // file → content after Set
	}{
		{"memory and swap", specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: ptr[int64](100 * mb), Swap: ptr[int64](150 * mb), Reservation: ptr[int64](50 * mb)}},
			map[string]string{"memory.max": "104857600", "memory.swap.max": "52428800", "memory.low": "52428800"}},
		{"unlimited memory makes swap unlimited", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1)}},
			map[string]string{"memory.max": "max", "memory.swap.max": "max"}},
		{"kernel memory ignored", specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: ptr[int64](1 * mb), KernelTCP: ptr[int64](mb)}},
			map[string]string{"memory.max": "max"}},
		{"cpu", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](50000),
			Period: ptr[uint64](200000), Burst: ptr[uint64](10000), Idle: ptr[int64](1)}},
			map[string]string{"cpu.weight": "100", "cpu.max": "50000 200000", "cpu.max.burst": "10000", "cpu.idle": "1"}},
		{"quota alone keeps the period", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](20000)}},
			map[string]string{"cpu.max": "20000 100000"}},
		{"pids", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-1)}}, map[string]string{"pids.max": "max"}},
		{"pids zero is a limit", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](0)}}, map[string]string{"pids.max": "0"}},
		{"io weight converted", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](500)}},
			map[string]string{"io.weight": "4950"}},
		{"io throttle", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 300}}}},
			map[string]string{"io.max": "8:16 wiops=300"}},
		{"unified verbatim, after the rest", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](mb)},
			Unified: map[string]string{"memory.max": "2097152", "memory.high": "1048576"}},
			map[string]string{"memory.max": "2097152", "memory.high": "1048576"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, root := newFakeV2(t, "cpu io memory pids")
			if err := m.Set(&tt.r); err != nil {
				t.Fatal(err)
			}
			for file, want := range tt.want {
				if got := readTree(t, root, "a/b/"+file); got != want {
					t.Errorf("%s = %q, want %q", file, got, want)
				}
			}
		})
	}
}

func TestV2SetRefusesBeforeWriting(t *testing.T) {
	limit := &specs.LinuxMemory{Limit: ptr[int64](64 << 20)}
	tests := []struct {
		name string
		r    specs.LinuxResources
		want error
	}{
		{"controller not enabled", specs.LinuxResources{Memory: limit,
			HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}}, ErrUnsupported},
		{"network", specs.LinuxResources{Memory: limit, Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}, ErrUnsupported},
		{"realtime", specs.LinuxResources{Memory: limit, CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000)}}, ErrUnsupported},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: limit.Limit, Swappiness: ptr[uint64](10)}}, ErrUnsupported},
		{"unified key of a missing controller", specs.LinuxResources{Memory: limit,
			Unified: map[string]string{"hugetlb.2MB.max": "0"}}, ErrUnsupported},
		{"unified key with a slash", specs.LinuxResources{Memory: limit,
			Unified: map[string]string{"../memory.max": "0"}}, ErrInvalid},
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: limit.Limit, Swap: ptr[int64](1 << 20)}}, ErrInvalid},
		{"limit below usage with checkBeforeUpdate", specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: ptr[int64](4096), CheckBeforeUpdate: ptr(true)}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, root := newFakeV2(t, "cpu io memory pids")
			err := m.Set(&tt.r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Set error = %v, want %v", err, tt.want)
			}
			if got := readTree(t, root, "a/b/memory.max"); got != "max" {
				t.Errorf("memory.max = %q: written despite the error", got)
			}
		})
	}
}

func TestV2SetUnifiedMissingFile(t *testing.T) {
	m, _ := newFakeV2(t, "cpu io memory pids")
	err := m.Set(&specs.LinuxResources{Unified: map[string]string{"memory.oom.group": "1"}})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("error = %v, want ErrUnsupported", err)
	}
}

func TestV2SetMissingCgroup(t *testing.T) {
	root := t.TempDir()
	m, err := New("/gone", WithMode(Unified), WithMountRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	err = m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](5)}})
	if !errors.Is(err, ErrNotExist) {
		t.Errorf("error = %v, want ErrNotExist", err)
	}
}

func TestV2Stats(t *testing.T) {
	m, root := newFakeV2(t, "cpu io memory pids")
	writeTree(t, root, map[string]string{
		"a/b/cpu.stat":              "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 30\n",
		"a/b/memory.stat":           "anon 4096\nfile 8192\n",
		"a/b/memory.peak":           "2097152",
		"a/b/memory.max":            "4194304",
		"a/b/memory.swap.current":   "4096",
		"a/b/memory.swap.max":       "1048576",
		"a/b/pids.current":          "3",
		"a/b/pids.max":              "10",
		"a/b/io.stat":               "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
		"a/b/cpuset.cpus.effective": "0-1",
		"a/b/cpuset.mems.effective": "0",
		"a/b/memory.pressure":       "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2\n",
	})
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"cpu total ns", s.CPU.Usage.Total, 2500000},
		{"cpu user ns", s.CPU.Usage.User, 2000000},
		{"cpu kernel ns", s.CPU.Usage.Kernel, 500000},
		{"throttled periods", s.CPU.Throttling.ThrottledPeriods, 4},
		{"throttled ns", s.CPU.Throttling.ThrottledTime, 30000},
		{"memory usage", s.Memory.Usage.Usage, 1048576},
		{"memory limit", s.Memory.Usage.Limit, 4194304},
		{"memory peak", s.Memory.Usage.Max, 2097152},
		{"memory failcnt (events max)", s.Memory.Usage.Failcnt, 3},
		{"memory+swap usage", s.Memory.Swap.Usage, 1048576 + 4096},
		{"memory+swap limit", s.Memory.Swap.Limit, 4194304 + 1048576},
		{"cache", s.Memory.Cache, 8192},
		{"pids", s.Pids.Current, 3},
		{"pids limit", s.Pids.Limit, 10},
		{"psi total", s.Memory.PSI.Full.Total, 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if len(s.Blkio.IoServiceBytesRecursive) != 3 || s.Blkio.IoServiceBytesRecursive[1].Value != 200 {
		t.Errorf("io bytes = %+v", s.Blkio.IoServiceBytesRecursive)
	}
	if len(s.CPUSet.CPUs) != 2 {
		t.Errorf("cpuset cpus = %v", s.CPUSet.CPUs)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 1 {
		t.Errorf("OOMKillCount = %d, %v; want 1", n, err)
	}
}

func TestV2OOMEventsFromMemoryEvents(t *testing.T) {
	m, root := newFakeV2(t, "memory")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(root, "a/b/memory.events")
	// A change that is not an OOM kill sends nothing.
	if err := os.WriteFile(events, []byte("max 4\noom 1\noom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("event without an OOM kill")
	case <-time.After(200 * time.Millisecond):
	}
	if err := os.WriteFile(events, []byte("max 5\noom 2\noom_kill 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("channel closed instead of an event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after oom_kill grew")
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestV2FreezeWaitsForEvents(t *testing.T) {
	m, root := newFakeV2(t, "")
	// The "kernel" reports frozen at once.
	writeTree(t, root, map[string]string{"a/b/cgroup.events": "populated 1\nfrozen 1\n"})
	if err := m.Freeze(Frozen); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, root, "a/b/cgroup.freeze"); got != "1" {
		t.Errorf("cgroup.freeze = %q", got)
	}
	if st, err := m.FreezerState(); err != nil || st != Frozen {
		t.Errorf("FreezerState = %v, %v", st, err)
	}
	// A freeze the kernel never completes is undone and reported.
	writeTree(t, root, map[string]string{"a/b/cgroup.events": "populated 1\nfrozen 0\n"})
	start := time.Now()
	err := m.Freeze(Frozen)
	if err == nil || !strings.Contains(err.Error(), "thawed again") {
		t.Fatalf("Freeze error = %v", err)
	}
	if d := time.Since(start); d > freezeTimeout+time.Second {
		t.Errorf("Freeze took %v", d)
	}
	if got := readTree(t, root, "a/b/cgroup.freeze"); got != "0" {
		t.Errorf("cgroup.freeze after a failed freeze = %q, want 0", got)
	}
	if err := m.Freeze("PAUSED"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad state: error = %v", err)
	}
}

func TestDestroyOfMissingOrForeignDirectory(t *testing.T) {
	root := t.TempDir()
	m, err := New("/never-created", WithMode(Unified), WithMountRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("Destroy of a missing cgroup: %v", err)
	}
	// A directory of plain files is not a cgroup: rmdir fails at once
	// and Destroy must say so rather than retry until its deadline.
	fake, root := newFakeV2(t, "")
	start := time.Now()
	if err := fake.Destroy(); err == nil {
		t.Error("Destroy of plain files succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Destroy took %v", d)
	}
	if _, err := os.Stat(filepath.Join(root, "a/b/memory.max")); err != nil {
		t.Errorf("Destroy removed a file: %v", err)
	}
}

// Regression: memory+swap equal to the memory limit left memory.swap.max
// as it was ("max" after an unlimited update) instead of writing 0, so a
// container asked to have no swap could swap without limit.
func TestV2SwapEqualToLimitDisablesSwap(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name string
		mem  *specs.LinuxMemory
	}{
		{"with a memory limit", &specs.LinuxMemory{Limit: ptr[int64](16 * mb), Swap: ptr[int64](16 * mb)}},
		{"against the current memory.max", &specs.LinuxMemory{Swap: ptr[int64](32 * mb)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, root := newFakeV2(t, "cpu io memory pids")
			writeTree(t, root, map[string]string{"a/b/memory.max": "33554432", "a/b/memory.swap.max": "max"})
			if err := m.Set(&specs.LinuxResources{Memory: tt.mem}); err != nil {
				t.Fatal(err)
			}
			if got := readTree(t, root, "a/b/memory.swap.max"); got != "0" {
				t.Errorf("memory.swap.max = %q, want 0", got)
			}
		})
	}
}
