package cgroups

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Behaviour tests: real processes in real cgroups, observed through the
// kernel. They use only the Manager interface, so they run unchanged on a
// v1, hybrid or v2 host. A test whose resource the host cannot provide
// skips on ErrUnsupported.
//
// Every cgroup is /berth-test-<random> at the hierarchy root, created and
// destroyed by the test; only the test's own child processes are moved
// into it.

const busybox = "/bin/busybox"

// target is a place behaviour tests make cgroups in.
type target struct {
	name string
	opts []Option
}

// behaviourTargets is the host's own layout and, on a hybrid host, also
// the v2 driver on the (controller-less) unified mount, which still has
// the freezer, cgroup.kill, device programs and cpu.stat. There the
// driver must not enable controllers: that would write the root's
// cgroup.subtree_control, which the test does not own.
func behaviourTargets(t *testing.T) []target {
	targets := []target{{name: "host"}}
	if mode, err := DetectMode(DefaultMountRoot); err == nil && mode == Hybrid {
		targets = append(targets, target{name: "unified-mount", opts: []Option{
			WithMode(Unified), WithMountRoot(filepath.Join(DefaultMountRoot, "unified")),
			func(c *config) { c.skipEnable = true },
		}})
	}
	return targets
}

func TestBehaviour(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := os.Stat(busybox); err != nil {
		t.Skip("needs " + busybox)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, tg target)
	}{
		{"MemoryLimitOOMKills", testMemoryLimitOOMKills},
		{"CheckBeforeUpdate", testCheckBeforeUpdate},
		{"PidsLimitStopsForks", testPidsLimitStopsForks},
		{"CPUQuota", testCPUQuota},
		{"FreezeStopsCPU", testFreezeStopsCPU},
		{"DeviceDeny", testDeviceDeny},
		{"DeviceAllowlist", testDeviceAllowlist},
		{"DeviceUpdateKeepsAccess", testDeviceUpdateKeepsAccess},
		{"Stats", testStats},
		{"KillAndDestroy", testKillAndDestroy},
		{"OOMEventsEndWithCgroup", testOOMEventsEndWithCgroup},
		{"NestedPathDestroy", testNestedPathDestroy},
		{"ApplyFailureLeavesNothing", testApplyFailureLeavesNothing},
		{"FailedSetWritesNothing", testFailedSetWritesNothing},
	}
	for _, tg := range behaviourTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, tg) })
			}
		})
	}
}

// newTestCgroup creates /berth-test-<random> and removes it when the test
// ends, checking that nothing is left.
func newTestCgroup(t *testing.T, tg target) Manager {
	t.Helper()
	m, err := New("/"+testutil.UniqueName(t), tg.opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAndCheck(t, m) })
	return m
}

func destroyAndCheck(t *testing.T, m Manager) {
	t.Helper()
	_ = m.Kill(int(unix.SIGKILL))
	if err := m.Destroy(); err != nil {
		t.Errorf("Destroy: %v", err)
	}
	for c, dir := range m.Paths() {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s cgroup %s left behind (%v)", c, dir, err)
		}
	}
}

// setOrSkip applies r and skips the test if the host lacks what it needs.
func setOrSkip(t *testing.T, m Manager, r *specs.LinuxResources) {
	t.Helper()
	err := m.Set(r)
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("host cannot: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// child is a busybox shell started by the test and moved into its cgroup.
type child struct {
	cmd   *exec.Cmd
	stdin *os.File
	out   testutil.Buffer
	done  chan struct{}
	err   error
}

// startInCgroup starts `sh -c script` held on a read from stdin, moves it
// into m, then lets it run, so everything the script does happens inside
// the cgroup.
func startInCgroup(t *testing.T, m Manager, script string) *child {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{stdin: w, done: make(chan struct{})}
	c.cmd = exec.Command(busybox, "sh", "-c", "read x; "+script)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = r, &c.out, &c.out
	c.cmd.WaitDelay = 5 * time.Second
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		_ = m.Kill(int(unix.SIGKILL)) // grandchildren hold the output pipe
		_ = c.cmd.Process.Kill()
		<-c.done
		w.Close()
	})
	if err := m.Apply(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func (c *child) waitOutput(t *testing.T, s string) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool { return strings.Contains(c.out.String(), s) || c.exited() }) ||
		!strings.Contains(c.out.String(), s) {
		t.Fatalf("child never printed %q; output:\n%s", s, c.out.String())
	}
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func cpuUsage(t *testing.T, m Manager) time.Duration {
	t.Helper()
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(s.CPU.Usage.Total)
}

func testMemoryLimitOOMKills(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	limit := int64(32 << 20)
	setOrSkip(t, m, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}})
	// No swap either, so the limit is hit rather than swapped around.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}); err != nil && !errors.Is(err, ErrUnsupported) {
		t.Fatal(err)
	}
	before, err := m.OOMKillCount()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := m.OOMEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// tail keeps the endless line of /dev/zero in memory.
	c := startInCgroup(t, m, "exec "+busybox+" tail /dev/zero")
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatal("process allocating past the limit still runs after 30s")
	}
	var exitErr *exec.ExitError
	if !errors.As(c.err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("child ended with %v, want killed by SIGKILL", c.err)
	}
	after, err := m.OOMKillCount()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("OOMKillCount %d → %d, want it to grow", before, after)
	}
	select {
	case _, ok := <-events:
		if !ok {
			t.Error("OOM event channel closed without an event")
		}
	case <-time.After(5 * time.Second):
		t.Error("no OOM event")
	}
}

func testCheckBeforeUpdate(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	big := int64(256 << 20)
	setOrSkip(t, m, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &big}})
	c := startInCgroup(t, m, "x=$("+busybox+" head -c 4000000 /dev/zero | "+busybox+" tr '\\0' a); echo ready; read y")
	c.waitOutput(t, "ready")
	small := int64(1 << 20)
	err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &small, CheckBeforeUpdate: ptr(true)}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "below the current usage") {
		t.Fatalf("Set(limit below usage, checkBeforeUpdate) = %v, want ErrInvalid naming the usage", err)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.Usage.Limit != uint64(big) {
		t.Errorf("limit is %d after the refused update, want %d", s.Memory.Usage.Limit, big)
	}
	if c.exited() {
		t.Errorf("child died: %v\n%s", c.err, c.out.String())
	}
}

func testPidsLimitStopsForks(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	limit := int64(4)
	setOrSkip(t, m, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}})
	c := startInCgroup(t, m, `i=0; while [ $i -lt 10 ]; do `+busybox+` sleep 30 & i=$((i+1)); done; echo all-forked; read y`)
	if !waitFor(10*time.Second, func() bool {
		return strings.Contains(c.out.String(), "fork") || strings.Contains(c.out.String(), "all-forked")
	}) {
		t.Fatalf("no fork failure reported; output:\n%s", c.out.String())
	}
	if !strings.Contains(c.out.String(), "can't fork") {
		t.Errorf("forks were not refused; output:\n%s", c.out.String())
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > int(limit) || len(pids) < 2 {
		t.Errorf("%d processes in the cgroup (%v), want 2..%d", len(pids), pids, limit)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Pids.Limit != uint64(limit) || s.Pids.Current > uint64(limit) {
		t.Errorf("pids stats %+v, want limit %d and current at most that", s.Pids, limit)
	}
}

func testCPUQuota(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	quota, period := int64(20000), uint64(100000)
	setOrSkip(t, m, &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}})
	startInCgroup(t, m, "while :; do :; done")
	time.Sleep(300 * time.Millisecond)
	u1, t1 := cpuUsage(t, m), time.Now()
	time.Sleep(1500 * time.Millisecond)
	u2, t2 := cpuUsage(t, m), time.Now()
	share := float64(u2-u1) / float64(t2.Sub(t1))
	t.Logf("busy loop used %.2f of a CPU under a 0.2 quota", share)
	if share < 0.1 || share > 0.3 {
		t.Errorf("busy loop used %.2f of a CPU, want about 0.2", share)
	}
}

func testFreezeStopsCPU(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	c := startInCgroup(t, m, "while :; do :; done")
	time.Sleep(100 * time.Millisecond)
	if err := m.Freeze(Frozen); errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	if st, err := m.FreezerState(); err != nil || st != Frozen {
		t.Fatalf("FreezerState = %v, %v; want FROZEN", st, err)
	}
	u1 := cpuUsage(t, m)
	time.Sleep(300 * time.Millisecond)
	u2 := cpuUsage(t, m)
	if u2-u1 > 10*time.Millisecond {
		t.Errorf("frozen busy loop used %v of CPU in 300ms", u2-u1)
	}
	if err := m.Freeze(Thawed); err != nil {
		t.Fatal(err)
	}
	if st, err := m.FreezerState(); err != nil || st != Thawed {
		t.Fatalf("FreezerState = %v, %v; want THAWED", st, err)
	}
	time.Sleep(300 * time.Millisecond)
	if u3 := cpuUsage(t, m); u3-u2 < 50*time.Millisecond {
		t.Errorf("thawed busy loop used only %v of CPU in 300ms", u3-u2)
	}
	if c.exited() {
		t.Errorf("child died: %v", c.err)
	}
}

// deviceProbe is a script that reports, per check, "<name>-ok" or
// "<name>-denied". Each check runs in a subshell: a failed redirection on
// a special built-in would end the shell itself.
func deviceProbe(checks map[string]string) string {
	var b strings.Builder
	for name, cmd := range checks {
		b.WriteString("if ( " + cmd + " ); then echo " + name + "-ok; else echo " + name + "-denied; fi; ")
	}
	return b.String() + "echo probe-done"
}

func runDeviceProbe(t *testing.T, tg target, rules []specs.LinuxDeviceCgroup, want map[string]bool) {
	m := newTestCgroup(t, tg)
	setOrSkip(t, m, &specs.LinuxResources{Devices: rules})
	c := startInCgroup(t, m, deviceProbe(map[string]string{
		"null-read":  ": < /dev/null",
		"null-write": "echo x > /dev/null",
		"zero-read":  ": < /dev/zero",
	}))
	c.waitOutput(t, "probe-done")
	for name, ok := range want {
		word := name + "-denied"
		if ok {
			word = name + "-ok"
		}
		if !strings.Contains(c.out.String(), word) {
			t.Errorf("want %s; output:\n%s", word, c.out.String())
		}
	}
}

func testDeviceDeny(t *testing.T, tg target) {
	nullMajor, nullMinor := int64(1), int64(3)
	runDeviceProbe(t, tg, []specs.LinuxDeviceCgroup{
		{Allow: false, Type: "c", Major: &nullMajor, Minor: &nullMinor, Access: "rwm"},
	}, map[string]bool{"null-read": false, "null-write": false, "zero-read": true})
}

func testDeviceAllowlist(t *testing.T, tg target) {
	nullMajor, nullMinor := int64(1), int64(3)
	runDeviceProbe(t, tg, []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: &nullMajor, Minor: &nullMinor, Access: "r"},
	}, map[string]bool{"null-read": true, "null-write": false, "zero-read": false})
}

// Regression: an update that swaps one allowlist for another must not
// deny, even for a moment, a device both lists allow. A process opens
// /dev/null in a tight loop while the rules change back and forth.
func testDeviceUpdateKeepsAccess(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	num := func(n int64) *int64 { return &n }
	list := func(other int64) *specs.LinuxResources {
		return &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: num(1), Minor: num(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: num(1), Minor: num(other), Access: "r"},
		}}
	}
	setOrSkip(t, m, list(5))
	c := startInCgroup(t, m, "echo looping; while :; do true < /dev/null || echo DENIED; done")
	c.waitOutput(t, "looping")
	for i := 0; i < 300; i++ {
		if err := m.Set(list(5 + int64(i%2)*2)); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(c.out.String(), "DENIED") {
		t.Fatalf("/dev/null was denied during an update:\n%s", c.out.String())
	}
}

func testStats(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	c := startInCgroup(t, m, "x=$("+busybox+" head -c 2000000 /dev/zero | "+busybox+" tr '\\0' a); echo ready; while :; do :; done")
	c.waitOutput(t, "ready")
	time.Sleep(200 * time.Millisecond)
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU.Usage.Total < uint64(50*time.Millisecond) {
		t.Errorf("cpu usage %v after a busy loop", time.Duration(s.CPU.Usage.Total))
	}
	if s.Memory.Raw != nil && s.Memory.Usage.Usage < 1<<20 {
		t.Errorf("memory usage %d after allocating 2MB", s.Memory.Usage.Usage)
	}
	if s.Pids.Current == 0 && m.Path("pids") != "" {
		t.Errorf("pids.current is 0 with a process inside")
	}
	// The JSON has the shape of `runc events --stats`.
	b, err := json.Marshal(Event{Type: "stats", ID: "ctr", Data: s})
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Type string `json:"type"`
		Data struct {
			CPU struct {
				Usage map[string]any `json:"usage"`
			} `json:"cpu"`
			Memory map[string]any `json:"memory"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Type != "stats" || decoded.Data.CPU.Usage["total"] == nil || decoded.Data.Memory == nil {
		t.Errorf("JSON does not have runc's shape: %s", b)
	}
}

func testKillAndDestroy(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	c := startInCgroup(t, m, busybox+" sleep 60 & "+busybox+" sleep 60 & "+busybox+" sleep 60 & echo started; wait")
	c.waitOutput(t, "started")
	if !waitFor(5*time.Second, func() bool { p, _ := m.Pids(); return len(p) == 4 }) {
		p, err := m.Pids()
		t.Fatalf("Pids = %v, %v; want the shell and 3 sleeps", p, err)
	}
	if err := m.Kill(int(unix.SIGKILL)); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { p, _ := m.Pids(); return len(p) == 0 }) {
		p, _ := m.Pids()
		t.Fatalf("processes left after Kill: %v", p)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("shell not reaped after Kill")
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range m.Paths() {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Destroy", dir)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if _, err := m.Stats(); !errors.Is(err, ErrNotExist) {
		t.Errorf("Stats after Destroy: %v, want ErrNotExist", err)
	}
}

func testNestedPathDestroy(t *testing.T, tg target) {
	top := "/" + testutil.UniqueName(t)
	leaf, err := New(path.Join(top, "a", "b"), tg.opts...)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := New(path.Join(top, "a"), tg.opts...)
	if err != nil {
		t.Fatal(err)
	}
	topM, err := New(top, tg.opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAndCheck(t, topM) })
	if err := leaf.Apply(-1); err != nil {
		t.Fatal(err)
	}
	// A sub-cgroup inside the leaf (as a container with its own cgroup
	// namespace might make) goes with it.
	for _, dir := range leaf.Paths() {
		if err := os.Mkdir(filepath.Join(dir, "inner"), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
	}
	if err := leaf.Destroy(); err != nil {
		t.Fatal(err)
	}
	for c, dir := range leaf.Paths() {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s leaf %s still exists", c, dir)
		}
	}
	for c, dir := range parent.Paths() {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s parent %s was removed (Destroy must keep parents): %v", c, dir, err)
		}
	}
}

func testApplyFailureLeavesNothing(t *testing.T, tg target) {
	dead := exec.Command(busybox, "true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	top := "/" + testutil.UniqueName(t)
	m, err := New(path.Join(top, "leaf"), tg.opts...)
	if err != nil {
		t.Fatal(err)
	}
	topM, err := New(top, tg.opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAndCheck(t, topM) })
	if err := m.Apply(dead.Process.Pid); err == nil {
		t.Fatalf("Apply of exited pid %d succeeded", dead.Process.Pid)
	}
	for c, dir := range topM.Paths() {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("failed Apply left the %s cgroup %s (%v)", c, dir, err)
		}
	}
}

func testFailedSetWritesNothing(t *testing.T, tg target) {
	m := newTestCgroup(t, tg)
	initial := int64(512 << 20)
	setOrSkip(t, m, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &initial}})
	newLimit, smallSwap := int64(64<<20), int64(32<<20)
	bad := []struct {
		name string
		r    specs.LinuxResources
		want error
	}{
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &newLimit, Swap: &smallSwap}}, ErrInvalid},
		{"unknown device type", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &newLimit},
			Devices: []specs.LinuxDeviceCgroup{{Type: "x", Access: "r"}}}, ErrInvalid},
	}
	// Add one resource this host lacks, whatever the host.
	for _, r := range []specs.LinuxResources{
		{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}},
		{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001)}},
		{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](1)}}},
	} {
		probe, err := New("/"+testutil.UniqueName(t), tg.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := probe.Set(&r); errors.Is(err, ErrUnsupported) {
			r.Memory = &specs.LinuxMemory{Limit: &newLimit}
			bad = append(bad, struct {
				name string
				r    specs.LinuxResources
				want error
			}{"unsupported resource", r, ErrUnsupported})
			break
		}
	}
	for _, b := range bad {
		if err := m.Set(&b.r); !errors.Is(err, b.want) {
			t.Errorf("%s: Set error = %v, want %v", b.name, err, b.want)
		}
		s, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Memory.Usage.Limit != uint64(initial) {
			t.Errorf("%s: memory limit is %d after the failed Set, want %d", b.name, s.Memory.Usage.Limit, initial)
		}
	}
}

func testOOMEventsEndWithCgroup(t *testing.T, tg target) {
	m, err := New("/"+testutil.UniqueName(t), tg.opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAndCheck(t, m) })
	events, err := m.OOMEvents(context.Background())
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-events:
		if ok {
			t.Error("OOM event from an empty cgroup being removed")
		}
	case <-time.After(3 * oomPollInterval):
		t.Error("OOM event channel still open after the cgroup was removed")
	}
}
