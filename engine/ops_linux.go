package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/cgroups"
	"berth.dev/internal/errdefs"
)

// cgroup returns the manager of the running container's cgroup.
func (c *Containers) cgroup(rec *record) (cgroups.Manager, error) {
	data, err := os.ReadFile(filepath.Join(c.bundle(rec.ID), "config.json"))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, err
	}
	if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return nil, fmt.Errorf("%w: the container has no cgroup", errdefs.ErrFailedPrecondition)
	}
	return cgroups.New(spec.Linux.CgroupsPath)
}

// running returns the container's record, or ErrConflict when it is not
// running.
func (c *Containers) running(name string) (*ctr, record, error) {
	x, err := c.find(name)
	if err != nil {
		return nil, record{}, err
	}
	rec := x.snapshotRecord()
	if rec.State.Status != container.StateRunning && rec.State.Status != container.StatePaused {
		return nil, rec, errNotRunning(rec.ID)
	}
	return x, rec, nil
}

// Top lists the container's processes with ps.
func (c *Containers) Top(ctx context.Context, name string, psArgs string) (container.TopResponse, error) {
	_, rec, err := c.running(name)
	if err != nil {
		return container.TopResponse{}, err
	}
	cg, err := c.cgroup(&rec)
	if err != nil {
		return container.TopResponse{}, err
	}
	pids, err := cg.Pids()
	if err != nil {
		return container.TopResponse{}, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return container.TopResponse{}, fmt.Errorf("%w: ps %s: %w", errdefs.ErrInvalidArgument, psArgs, err)
	}
	return parsePS(string(out), pids)
}

// parsePS keeps the rows of ps's output whose PID is one of pids.
func parsePS(out string, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return container.TopResponse{}, fmt.Errorf("%w: Couldn't find PID field in ps output", errdefs.ErrInvalidArgument)
	}
	resp := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) <= col {
			continue
		}
		pid, err := strconv.Atoi(fields[col])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		// The last column (the command) keeps its spaces.
		if len(fields) > len(titles) {
			last := strings.Join(fields[len(titles)-1:], " ")
			fields = append(fields[:len(titles)-1], last)
		}
		resp.Processes = append(resp.Processes, fields)
	}
	return resp, nil
}

// Stats reports the container's resource usage from its cgroup.
func (c *Containers) Stats(ctx context.Context, name string, opts backend.StatsOptions, fn func(container.StatsResponse) error) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	// A single answer of a running container waits for a second reading,
	// so that it carries a previous one for its CPU percentage.
	st := x.snapshotRecord().State.Status
	skipFirst := !opts.Stream && !opts.OneShot && (st == container.StateRunning || st == container.StatePaused)
	var prev container.StatsResponse
	for {
		rec := x.snapshotRecord()
		s := container.StatsResponse{ID: rec.ID, Name: rec.Name, Read: time.Now().UTC(), PreRead: prev.Read, PreCPUStats: prev.CPUStats}
		if rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused {
			if cg, err := c.cgroup(&rec); err == nil {
				if st, err := cg.Stats(); err == nil {
					fillStats(&s, st)
				}
			}
		}
		if skipFirst {
			skipFirst = false
		} else if err := fn(s); err != nil || !opts.Stream {
			return err
		}
		prev = s
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// fillStats converts cgroup statistics to docker's.
func fillStats(s *container.StatsResponse, st *cgroups.Stats) {
	s.CPUStats.CPUUsage = container.CPUUsage{
		TotalUsage: st.CPU.Usage.Total, PercpuUsage: st.CPU.Usage.Percpu,
		UsageInKernelmode: st.CPU.Usage.Kernel, UsageInUsermode: st.CPU.Usage.User,
	}
	s.CPUStats.ThrottlingData = container.ThrottlingData{
		Periods: st.CPU.Throttling.Periods, ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods,
		ThrottledTime: st.CPU.Throttling.ThrottledTime,
	}
	s.CPUStats.SystemUsage = systemCPUUsage()
	s.CPUStats.OnlineCPUs = uint32(onlineCPUs())
	s.MemoryStats = container.MemoryStats{
		Usage: st.Memory.Usage.Usage, MaxUsage: st.Memory.Usage.Max, Failcnt: st.Memory.Usage.Failcnt,
		Limit: st.Memory.Usage.Limit, Stats: st.Memory.Raw,
	}
	if s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > 1<<62 {
		s.MemoryStats.Limit = hostMemory()
	}
	s.PidsStats = container.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	conv := func(in []cgroups.BlkioEntry) []container.BlkioStatEntry {
		out := make([]container.BlkioStatEntry, 0, len(in))
		for _, e := range in {
			out = append(out, container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
		}
		return out
	}
	s.BlkioStats = container.BlkioStats{
		IoServiceBytesRecursive: conv(st.Blkio.IoServiceBytesRecursive),
		IoServicedRecursive:     conv(st.Blkio.IoServicedRecursive),
	}
	s.Networks = map[string]container.NetworkStats{}
}

// systemCPUUsage is the host's CPU time in nanoseconds, from /proc/stat,
// as docker computes it.
func systemCPUUsage() uint64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "cpu" {
			continue
		}
		var total uint64
		for _, v := range f[1:8] {
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
		}
		return total * 1e9 / 100 // clock ticks (USER_HZ 100) to ns
	}
	return 0
}

func onlineCPUs() int {
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 1
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(data)), ",") {
		a, b, ok := strings.Cut(r, "-")
		lo, _ := strconv.Atoi(a)
		hi := lo
		if ok {
			hi, _ = strconv.Atoi(b)
		}
		n += hi - lo + 1
	}
	return max(n, 1)
}

func hostMemory() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// Pause freezes the container.
func (c *Containers) Pause(ctx context.Context, name string) error {
	x, rec, err := c.running(name)
	if err != nil {
		return err
	}
	if rec.State.Status == container.StatePaused {
		return fmt.Errorf("%w: Container %s is already paused", errdefs.ErrConflict, rec.ID)
	}
	if err := c.runtimeCmd(ctx, &rec, "pause", rec.ID); err != nil {
		return err
	}
	x.mu.Lock()
	if x.rec.State.Status == container.StateRunning {
		x.rec.State.Status = container.StatePaused
		c.save(ctx, &x.rec)
		x.notify()
	}
	x.mu.Unlock()
	c.publish(&rec, events.ActionPause, nil)
	return nil
}

// Unpause thaws the container.
func (c *Containers) Unpause(ctx context.Context, name string) error {
	x, rec, err := c.running(name)
	if err != nil {
		return err
	}
	if rec.State.Status != container.StatePaused {
		return fmt.Errorf("%w: Container %s is not paused", errdefs.ErrConflict, rec.ID)
	}
	if err := c.runtimeCmd(ctx, &rec, "resume", rec.ID); err != nil {
		return err
	}
	x.mu.Lock()
	if x.rec.State.Status == container.StatePaused {
		x.rec.State.Status = container.StateRunning
		c.save(ctx, &x.rec)
		x.notify()
	}
	x.mu.Unlock()
	c.publish(&rec, events.ActionUnPause, nil)
	return nil
}

// Rename gives the container a new name.
func (c *Containers) Rename(ctx context.Context, name, newName string) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	if newName == "" {
		return fmt.Errorf("%w: Neither old nor new names may be empty", errdefs.ErrInvalidArgument)
	}
	rec := x.snapshotRecord()
	if strings.TrimPrefix(newName, "/") == strings.TrimPrefix(rec.Name, "/") {
		return fmt.Errorf("%w: Renaming a container with the same name as its current name", errdefs.ErrInvalidArgument)
	}
	full, err := c.reserveName(newName, rec.ID)
	if err != nil {
		return err
	}
	x.mu.Lock()
	old := x.rec.Name
	x.rec.Name = full
	if err := c.save(ctx, &x.rec); err != nil {
		x.rec.Name = old
		x.mu.Unlock()
		c.releaseName(full)
		return err
	}
	rec = x.rec
	x.mu.Unlock()
	c.releaseName(old)
	if c.nets != nil {
		c.nets.rename(rec.ID, strings.TrimPrefix(full, "/"))
	}
	c.publish(&rec, events.ActionRename, map[string]string{"oldName": old})
	return nil
}

// Update changes the container's resources and restart policy. A running
// container gets the new limits at once through the runtime.
func (c *Containers) Update(ctx context.Context, name string, u container.UpdateConfig) (container.UpdateResponse, error) {
	resp := container.UpdateResponse{Warnings: []string{}}
	x, err := c.find(name)
	if err != nil {
		return resp, err
	}
	x.op.Lock()
	defer x.op.Unlock()
	rec := x.snapshotRecord()
	hc := *rec.HostConfig
	r := u.Resources
	if r.Memory != 0 {
		hc.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		hc.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		hc.MemoryReservation = r.MemoryReservation
	}
	if r.NanoCPUs != 0 {
		hc.NanoCPUs = r.NanoCPUs
	}
	if r.CPUShares != 0 {
		hc.CPUShares = r.CPUShares
	}
	if r.CPUPeriod != 0 {
		hc.CPUPeriod = r.CPUPeriod
	}
	if r.CPUQuota != 0 {
		hc.CPUQuota = r.CPUQuota
	}
	if r.CpusetCpus != "" {
		hc.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		hc.CpusetMems = r.CpusetMems
	}
	if r.PidsLimit != nil {
		hc.PidsLimit = r.PidsLimit
	}
	if r.BlkioWeight != 0 {
		hc.BlkioWeight = r.BlkioWeight
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return resp, fmt.Errorf("%w: Restart policy cannot be updated because AutoRemove is enabled for the container", errdefs.ErrInvalidArgument)
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	if hc.Memory > 0 && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory {
		return resp, fmt.Errorf("%w: Minimum memoryswap limit should be larger than memory limit, see usage", errdefs.ErrInvalidArgument)
	}
	if rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused {
		res := linuxResources(&hc)
		f, err := os.CreateTemp(c.dir(rec.ID), "update-*.json")
		if err != nil {
			return resp, err
		}
		defer os.Remove(f.Name())
		if err := json.NewEncoder(f).Encode(res); err != nil {
			f.Close()
			return resp, err
		}
		f.Close()
		if err := c.runtimeCmd(ctx, &rec, "update", "-r", f.Name(), rec.ID); err != nil {
			return resp, fmt.Errorf("%w: Cannot update container %s: %w", errdefs.ErrInvalidArgument, rec.ID, err)
		}
	}
	x.mu.Lock()
	x.rec.HostConfig = &hc
	err = c.save(ctx, &x.rec)
	rec = x.rec
	x.mu.Unlock()
	c.publish(&rec, events.ActionUpdate, nil)
	return resp, err
}

// linuxResources is the runtime update of a host config's resources.
func linuxResources(hc *container.HostConfig) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	if hc.Memory != 0 || hc.MemorySwap != 0 || hc.MemoryReservation != 0 {
		r.Memory = &specs.LinuxMemory{}
		if hc.Memory != 0 {
			r.Memory.Limit = &hc.Memory
		}
		if hc.MemorySwap != 0 {
			swap := hc.MemorySwap
			r.Memory.Swap = &swap
		} else if hc.Memory > 0 {
			swap := 2 * hc.Memory
			r.Memory.Swap = &swap
		}
		if hc.MemoryReservation != 0 {
			r.Memory.Reservation = &hc.MemoryReservation
		}
	}
	cpu := &specs.LinuxCPU{}
	set := false
	if hc.CPUShares != 0 {
		shares := uint64(hc.CPUShares)
		cpu.Shares, set = &shares, true
	}
	if hc.NanoCPUs != 0 {
		period := uint64(100000)
		quota := hc.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota, set = &period, &quota, true
	} else if hc.CPUQuota != 0 || hc.CPUPeriod != 0 {
		if hc.CPUPeriod != 0 {
			p := uint64(hc.CPUPeriod)
			cpu.Period = &p
		}
		if hc.CPUQuota != 0 {
			q := hc.CPUQuota
			cpu.Quota = &q
		}
		set = true
	}
	if hc.CpusetCpus != "" {
		cpu.Cpus, set = hc.CpusetCpus, true
	}
	if hc.CpusetMems != "" {
		cpu.Mems, set = hc.CpusetMems, true
	}
	if set {
		r.CPU = cpu
	}
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: hc.PidsLimit}
	}
	if hc.BlkioWeight != 0 {
		w := hc.BlkioWeight
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return r
}

// Prune removes the stopped containers the filters select.
func (c *Containers) Prune(ctx context.Context, f backend.ContainerFilters) (container.PruneReport, error) {
	report := container.PruneReport{ContainersDeleted: []string{}}
	for k := range f {
		switch k {
		case "label", "label!", "until":
		default:
			return report, fmt.Errorf("%w: invalid filter '%s'", errdefs.ErrInvalidArgument, k)
		}
	}
	match, err := c.matcher(f)
	if err != nil {
		return report, err
	}
	for _, x := range c.all() {
		rec := x.snapshotRecord()
		if rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused || rec.State.Status == container.StateRestarting {
			continue
		}
		if !match(&rec) {
			continue
		}
		rw, _ := c.sizes(ctx, &rec)
		if err := c.Remove(ctx, rec.ID, backend.ContainerRemoveOptions{}); err != nil {
			c.log.Warn("prune: remove container", "id", rec.ID, "err", err)
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, rec.ID)
		report.SpaceReclaimed += uint64(rw)
	}
	return report, nil
}

// Export returns a tar of the container's whole filesystem.
func (c *Containers) Export(ctx context.Context, name string) (io.ReadCloser, error) {
	x, err := c.find(name)
	if err != nil {
		return nil, err
	}
	root, release, err := c.mountedRootfs(ctx, x)
	if err != nil {
		return nil, err
	}
	rec := x.snapshotRecord()
	pr, pw := io.Pipe()
	go func() {
		err := archive.WriteTree(ctx, pw, root, "", false)
		release()
		pw.CloseWithError(err)
	}()
	c.publish(&rec, events.ActionExport, nil)
	return pr, nil
}
