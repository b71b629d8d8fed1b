package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The v1 driver against plain files: hierarchies cpu,cpuacct (co-mounted),
// cpuset, memory, pids and devices under a temporary root, with the leaf
// /ctr already present (plain mkdir would give it no files).
func newFakeV1(t *testing.T) (Manager, string) {
	t.Helper()
	root := t.TempDir()
	var mountinfo string
	for i, h := range []string{"cpu,cpuacct", "cpuset", "memory", "pids", "devices"} {
		mountinfo += fmt.Sprintf("%d 31 0:%d / %s/%s rw - cgroup cgroup rw,%s\n", 40+i, 40+i, root, h, h)
	}
	writeTree(t, root, map[string]string{
		"cpuset/cpuset.cpus":                     "0-3",
		"cpuset/cpuset.mems":                     "0",
		"cpuset/ctr/cpuset.cpus":                 "",
		"cpuset/ctr/cpuset.mems":                 "",
		"cpuset/ctr/cgroup.procs":                "",
		"cpu,cpuacct/ctr/cgroup.procs":           "",
		"cpu,cpuacct/ctr/cpu.shares":             "1024",
		"cpu,cpuacct/ctr/cpu.cfs_quota_us":       "-1",
		"cpu,cpuacct/ctr/cpu.cfs_period_us":      "100000",
		"cpu,cpuacct/ctr/cpu.stat":               "nr_periods 7\nnr_throttled 2\nthrottled_time 900\n",
		"cpu,cpuacct/ctr/cpuacct.usage":          "3000000000",
		"cpu,cpuacct/ctr/cpuacct.usage_percpu":   "1000000000 2000000000",
		"cpu,cpuacct/ctr/cpuacct.usage_all":      "cpu user system\n0 600 400\n1 1500 500\n",
		"cpu,cpuacct/ctr/cpuacct.stat":           "user 250\nsystem 50\n",
		"memory/ctr/cgroup.procs":                "",
		"memory/ctr/memory.limit_in_bytes":       "9223372036854771712",
		"memory/ctr/memory.memsw.limit_in_bytes": "9223372036854771712",
		"memory/ctr/memory.usage_in_bytes":       "8192",
		"memory/ctr/memory.max_usage_in_bytes":   "16384",
		"memory/ctr/memory.failcnt":              "0",
		"memory/ctr/memory.memsw.usage_in_bytes": "8192",
		"memory/ctr/memory.stat":                 "cache 4096\nrss 4096\ntotal_cache 4096\n",
		"memory/ctr/memory.oom_control":          "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
		"memory/ctr/memory.soft_limit_in_bytes":  "0",
		"memory/ctr/memory.swappiness":           "60",
		"pids/ctr/cgroup.procs":                  "",
		"pids/ctr/pids.max":                      "max",
		"pids/ctr/pids.current":                  "2",
		"devices/ctr/cgroup.procs":               "",
		"devices/ctr/devices.allow":              "",
		"devices/ctr/devices.deny":               "",
	})
	opts := append(fakeProc(t, "", mountinfo), WithMode(Legacy), WithMountRoot(root))
	m, err := New("/ctr", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, root
}

func TestV1ApplyFillsEmptyCpuset(t *testing.T) {
	m, root := newFakeV1(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, root, "cpuset/ctr/cpuset.cpus"); got != "0-3" {
		t.Errorf("cpuset.cpus = %q, want the parent's 0-3", got)
	}
	if got := readTree(t, root, "cpuset/ctr/cpuset.mems"); got != "0" {
		t.Errorf("cpuset.mems = %q, want the parent's 0", got)
	}
	if err := m.Apply(777); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"cpu,cpuacct", "cpuset", "memory", "pids", "devices"} {
		if got := readTree(t, root, filepath.Join(h, "ctr/cgroup.procs")); got != "777" {
			t.Errorf("%s cgroup.procs = %q", h, got)
		}
	}
}

func TestV1Set(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name string
		r    specs.LinuxResources
		want map[string]string
	}{
		{"memory", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 * mb), Swap: ptr[int64](128 * mb),
			Reservation: ptr[int64](32 * mb), Swappiness: ptr[uint64](0), Kernel: ptr[int64](mb)}},
			map[string]string{"memory/ctr/memory.limit_in_bytes": "67108864", "memory/ctr/memory.memsw.limit_in_bytes": "134217728",
				"memory/ctr/memory.soft_limit_in_bytes": "33554432", "memory/ctr/memory.swappiness": "0"}},
		{"unlimited memory lifts memsw", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1)}},
			map[string]string{"memory/ctr/memory.limit_in_bytes": "-1", "memory/ctr/memory.memsw.limit_in_bytes": "-1"}},
		{"cpu", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](20000), Period: ptr[uint64](50000)}},
			map[string]string{"cpu,cpuacct/ctr/cpu.shares": "512", "cpu,cpuacct/ctr/cpu.cfs_quota_us": "20000",
				"cpu,cpuacct/ctr/cpu.cfs_period_us": "50000"}},
		{"cpuset", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1", Mems: "0"}},
			map[string]string{"cpuset/ctr/cpuset.cpus": "1", "cpuset/ctr/cpuset.mems": "0"}},
		{"pids", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](5)}}, map[string]string{"pids/ctr/pids.max": "5"}},
		{"devices", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rw"}}},
			map[string]string{"devices/ctr/devices.deny": "a", "devices/ctr/devices.allow": "c 1:3 rw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, root := newFakeV1(t)
			if err := m.Set(&tt.r); err != nil {
				t.Fatal(err)
			}
			for file, want := range tt.want {
				if got := readTree(t, root, file); got != want {
					t.Errorf("%s = %q, want %q", file, got, want)
				}
			}
		})
	}
}

func TestV1SetRefusesBeforeWriting(t *testing.T) {
	limit := ptr[int64](64 << 20)
	tests := []struct {
		name string
		r    specs.LinuxResources
		want error
	}{
		{"hugetlb not mounted", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: limit},
			HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}}, ErrUnsupported},
		{"blkio not mounted", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: limit},
			BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](100)}}, ErrUnsupported},
		{"unified on v1", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: limit},
			Unified: map[string]string{"memory.high": "1"}}, ErrUnsupported},
		{"invalid swap", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: limit, Swap: ptr[int64](1)}}, ErrInvalid},
		{"checkBeforeUpdate", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](4096),
			CheckBeforeUpdate: ptr(true)}}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, root := newFakeV1(t)
			if err := m.Set(&tt.r); !errors.Is(err, tt.want) {
				t.Fatalf("Set error = %v, want %v", err, tt.want)
			}
			if got := readTree(t, root, "memory/ctr/memory.limit_in_bytes"); got != "9223372036854771712" {
				t.Errorf("memory limit written despite the error: %q", got)
			}
		})
	}
}

func TestV1Stats(t *testing.T) {
	m, _ := newFakeV1(t)
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	u := s.CPU.Usage
	if u.Total != 3e9 || fmt.Sprint(u.Percpu) != "[1000000000 2000000000]" ||
		fmt.Sprint(u.PercpuUser) != "[600 1500]" || fmt.Sprint(u.PercpuKernel) != "[400 500]" {
		t.Errorf("cpu usage = %+v", u)
	}
	if u.User != 2.5e9 || u.Kernel != 0.5e9 {
		t.Errorf("cpuacct.stat ticks → ns: user %d kernel %d", u.User, u.Kernel)
	}
	if th := s.CPU.Throttling; th.Periods != 7 || th.ThrottledPeriods != 2 || th.ThrottledTime != 900 {
		t.Errorf("throttling = %+v", th)
	}
	if mem := s.Memory; mem.Usage.Usage != 8192 || mem.Usage.Max != 16384 || mem.Swap.Usage != 8192 || mem.Cache != 4096 || mem.Raw["rss"] != 4096 {
		t.Errorf("memory = %+v", mem)
	}
	if s.Pids.Current != 2 || s.Pids.Limit != 0 {
		t.Errorf("pids = %+v", s.Pids)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 3 {
		t.Errorf("OOMKillCount = %d, %v; want 3", n, err)
	}
}
