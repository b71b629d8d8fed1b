package cgroups

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"berth.dev/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSetEverythingTheHostHas applies every resource whose controller the
// host has, in one Set on a real cgroup, and reads back what the kernel
// stored: the kernel parses our formats (devices, throttle lines, cpu.max)
// and accepts the write order (memory before memsw, period before quota).
func TestSetEverythingTheHostHas(t *testing.T) {
	testutil.RequiresRoot(t)
	m := newTestCgroup(t, target{name: "host"})
	v2 := len(m.Paths()) == 1 && m.Paths()[""] != ""
	has := func(controller string) bool {
		if !v2 {
			return m.Path(controller) != ""
		}
		text, err := readFile(m.Paths()[""], "cgroup.controllers")
		return err == nil && fieldSet(text)[controller]
	}
	dev := blockDevice(t)
	r := &specs.LinuxResources{}
	// want maps controller → file → a substring the file must contain.
	want := map[string]map[string]string{}
	expect := func(controller, file, s string) {
		if want[controller] == nil {
			want[controller] = map[string]string{}
		}
		want[controller][file] = s
	}
	if has("memory") {
		r.Memory = &specs.LinuxMemory{Limit: ptr[int64](256 << 20), Reservation: ptr[int64](128 << 20),
			Swap: ptr[int64](512 << 20), Kernel: ptr[int64](64 << 20)}
		if !v2 {
			r.Memory.KernelTCP, r.Memory.Swappiness = ptr[int64](16<<20), ptr[uint64](10)
			r.Memory.DisableOOMKiller, r.Memory.UseHierarchy = ptr(true), ptr(true)
			expect("memory", "memory.limit_in_bytes", "268435456")
			expect("memory", "memory.soft_limit_in_bytes", "134217728")
			expect("memory", "memory.memsw.limit_in_bytes", "536870912")
			expect("memory", "memory.kmem.tcp.limit_in_bytes", "16777216")
			expect("memory", "memory.swappiness", "10")
			expect("memory", "memory.oom_control", "oom_kill_disable 1")
		} else {
			expect("memory", "memory.max", "268435456")
			expect("memory", "memory.low", "134217728")
			expect("memory", "memory.swap.max", "268435456")
		}
	}
	if has("cpu") {
		r.CPU = &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
			Burst: ptr[uint64](10000), Idle: ptr[int64](0)}
		if !v2 {
			r.CPU.RealtimePeriod, r.CPU.RealtimeRuntime = ptr[uint64](1000000), ptr[int64](10000)
			expect("cpu", "cpu.shares", "512")
			expect("cpu", "cpu.cfs_quota_us", "50000")
			expect("cpu", "cpu.cfs_period_us", "100000")
			expect("cpu", "cpu.cfs_burst_us", "10000")
			expect("cpu", "cpu.rt_runtime_us", "10000")
		} else {
			expect("cpu", "cpu.weight", "59")
			expect("cpu", "cpu.max", "50000 100000")
			expect("cpu", "cpu.max.burst", "10000")
		}
	}
	if has("cpuset") {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		r.CPU.Cpus, r.CPU.Mems = "0", "0"
		expect("cpuset", "cpuset.cpus", "0")
	}
	if has("pids") {
		r.Pids = &specs.LinuxPids{Limit: ptr[int64](100)}
		expect("pids", "pids.max", "100")
	}
	if has("blkio") || has("io") {
		d := specs.LinuxBlockIODevice{Major: dev[0], Minor: dev[1]}
		r.BlockIO = &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: d, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: d, Rate: 100}},
		}
		num := strconv.FormatInt(dev[0], 10) + ":" + strconv.FormatInt(dev[1], 10)
		if !v2 {
			expect("blkio", "blkio.throttle.read_bps_device", num+" 1048576")
			expect("blkio", "blkio.throttle.write_iops_device", num+" 100")
		} else {
			expect("io", "io.max", num+" rbps=1048576 wbps=max riops=max wiops=100")
		}
	}
	if has("devices") || v2 {
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"}}
		if !v2 {
			expect("devices", "devices.list", "c 1:3 rwm\nc 1:5 r")
		}
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	for controller, files := range want {
		dir := m.Paths()[controller]
		if v2 {
			dir = m.Paths()[""]
		}
		for file, s := range files {
			got, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Errorf("read %s: %v", file, err)
				continue
			}
			if !strings.Contains(string(got), s) {
				t.Errorf("%s = %q, want it to contain %q", file, got, s)
			}
		}
	}
}

// blockDevice returns the major and minor number of a real disk.
func blockDevice(t *testing.T) [2]int64 {
	t.Helper()
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "loop") || strings.HasPrefix(e.Name(), "zram") || strings.HasPrefix(e.Name(), "ram") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev"))
		if err != nil {
			continue
		}
		major, minor, err := parseDevNumber(strings.TrimSpace(string(b)))
		if err == nil {
			return [2]int64{int64(major), int64(minor)}
		}
	}
	t.Skip("no disk in /sys/block")
	return [2]int64{}
}

// TestMemoryUpdateBothWays raises and lowers memory and memory+swap
// together: on v1 the kernel refuses any moment where the memory limit
// exceeds memory+swap, so the write order must follow the direction.
func TestMemoryUpdateBothWays(t *testing.T) {
	testutil.RequiresRoot(t)
	m := newTestCgroup(t, target{name: "host"})
	const mb = 1 << 20
	for _, step := range []struct{ limit, swap int64 }{
		{64 * mb, 128 * mb},
		{256 * mb, 512 * mb}, // both above the old memory+swap
		{32 * mb, 48 * mb},   // both below the old memory limit
		{-1, -1},
		{16 * mb, 16 * mb},
	} {
		r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(step.limit), Swap: ptr(step.swap)}}
		setOrSkip(t, m, r)
		s, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if step.limit > 0 && (s.Memory.Usage.Limit != uint64(step.limit) || s.Memory.Swap.Limit != uint64(step.swap)) {
			t.Errorf("after Set(%d, %d): limit %d, memory+swap limit %d", step.limit, step.swap,
				s.Memory.Usage.Limit, s.Memory.Swap.Limit)
		}
		if step.limit == -1 && s.Memory.Usage.Limit < 1<<50 {
			t.Errorf("after Set(-1, -1): limit %d, want unlimited", s.Memory.Usage.Limit)
		}
	}
}
