package cgroups

import (
	"errors"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Validation of linux.resources before anything is written, so that a bad
// value is reported with ErrInvalid and a clear message instead of leaving
// a cgroup half-configured. Checks that need the kernel's current state
// (usage vs. a new limit) live with the drivers.

// Kernel bounds on CFS bandwidth (kernel/sched/core.c).
const (
	minCFSQuotaUS  = 1000
	minCFSPeriodUS = 1000
	maxCFSPeriodUS = 1000000
)

// ValidateResources reports every problem in r, each wrapping ErrInvalid,
// joined into one error; nil if r is acceptable. It does not look at the
// host, so a valid r may still need controllers the host lacks.
func ValidateResources(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	validateMemory(r.Memory, add)
	validateCPU(r.CPU, add)
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit < -1 {
		add("pids limit %d is negative (use -1 for no limit)", *r.Pids.Limit)
	}
	validateBlockIO(r.BlockIO, add)
	for _, h := range r.HugepageLimits {
		if _, err := parseHugePageSize(h.Pagesize); err != nil {
			add("hugepage limit: %v", err)
		}
	}
	validateNetwork(r.Network, add)
	validateRdma(r.Rdma, add)
	if _, err := normalizeDeviceRules(r.Devices); err != nil {
		errs = append(errs, err)
	}
	for k := range r.Unified {
		if err := validateUnifiedKey(k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type addFunc func(format string, args ...any)

func validateMemory(m *specs.LinuxMemory, add addFunc) {
	if m == nil {
		return
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}, {"kernelTCP", m.KernelTCP}} {
		if f.v != nil && *f.v < -1 {
			add("memory %s %d is negative (use -1 for no limit)", f.name, *f.v)
		}
	}
	if m.Swappiness != nil && *m.Swappiness > 100 {
		add("memory swappiness %d is above 100", *m.Swappiness)
	}
	limit, swap := value(m.Limit), value(m.Swap)
	if swap > 0 && limit == -1 {
		add("memory+swap limit %d is set while the memory limit is unlimited", swap)
	}
	if swap > 0 && limit > 0 && swap < limit {
		add("memory+swap limit %d is below the memory limit %d (swap counts memory plus swap)", swap, limit)
	}
}

func validateCPU(c *specs.LinuxCPU, add addFunc) {
	if c == nil {
		return
	}
	quota := value(c.Quota)
	switch {
	case quota < -1:
		add("cpu quota %d is negative (use -1 for no limit)", quota)
	case quota > 0 && quota < minCFSQuotaUS:
		add("cpu quota %dµs is below the kernel minimum of %dµs", quota, minCFSQuotaUS)
	}
	if p := value(c.Period); p != 0 && (p < minCFSPeriodUS || p > maxCFSPeriodUS) {
		add("cpu period %dµs is outside %d..%dµs", p, minCFSPeriodUS, maxCFSPeriodUS)
	}
	if b := value(c.Burst); b > 0 && quota > 0 && b > uint64(quota) {
		add("cpu burst %dµs is larger than the quota %dµs", b, quota)
	}
	if c.Idle != nil && *c.Idle != 0 && *c.Idle != 1 {
		add("cpu idle %d is not 0 or 1", *c.Idle)
	}
	rt := value(c.RealtimeRuntime)
	if rt < -1 {
		add("cpu realtimeRuntime %d is negative (use -1 for no limit)", rt)
	}
	if p := value(c.RealtimePeriod); p > 0 && rt > 0 && uint64(rt) > p {
		add("cpu realtimeRuntime %dµs is longer than realtimePeriod %dµs", rt, p)
	}
	if _, err := parseCPUList(c.Cpus); err != nil {
		add("cpu cpus: %v", err)
	}
	if _, err := parseCPUList(c.Mems); err != nil {
		add("cpu mems: %v", err)
	}
}

func validateBlockIO(b *specs.LinuxBlockIO, add addFunc) {
	if b == nil {
		return
	}
	checkWeight := func(what string, w *uint16) {
		if v := value(w); v != 0 && (v < minBlkioWeight || v > maxBlkioWeight) {
			add("blockIO %s %d is outside %d..%d", what, v, minBlkioWeight, maxBlkioWeight)
		}
	}
	checkWeight("weight", b.Weight)
	checkWeight("leafWeight", b.LeafWeight)
	for _, d := range b.WeightDevice {
		checkDevice(add, "weightDevice", d.LinuxBlockIODevice)
		if d.Weight == nil && d.LeafWeight == nil {
			add("blockIO weightDevice %d:%d has neither weight nor leafWeight", d.Major, d.Minor)
		}
		checkWeight(fmt.Sprintf("weightDevice %d:%d weight", d.Major, d.Minor), d.Weight)
		checkWeight(fmt.Sprintf("weightDevice %d:%d leafWeight", d.Major, d.Minor), d.LeafWeight)
	}
	for name, list := range throttleLists(b) {
		for _, d := range list {
			checkDevice(add, name, d.LinuxBlockIODevice)
		}
	}
}

func checkDevice(add addFunc, what string, d specs.LinuxBlockIODevice) {
	if d.Major < 0 || d.Minor < 0 {
		add("blockIO %s device %d:%d has a negative number", what, d.Major, d.Minor)
	}
}

// throttleLists maps the v1 file name of each throttle list to the list.
func throttleLists(b *specs.LinuxBlockIO) map[string][]specs.LinuxThrottleDevice {
	return map[string][]specs.LinuxThrottleDevice{
		"blkio.throttle.read_bps_device":   b.ThrottleReadBpsDevice,
		"blkio.throttle.write_bps_device":  b.ThrottleWriteBpsDevice,
		"blkio.throttle.read_iops_device":  b.ThrottleReadIOPSDevice,
		"blkio.throttle.write_iops_device": b.ThrottleWriteIOPSDevice,
	}
}

func validateNetwork(n *specs.LinuxNetwork, add addFunc) {
	if n == nil {
		return
	}
	for _, p := range n.Priorities {
		if p.Name == "" || strings.ContainsAny(p.Name, " \t\n/") {
			add("network priority interface name %q is not a valid interface name", p.Name)
		}
	}
}

func validateRdma(r map[string]specs.LinuxRdma, add addFunc) {
	for dev, l := range r {
		if dev == "" || strings.ContainsAny(dev, " \t\n") {
			add("rdma device name %q is not valid", dev)
		}
		if l.HcaHandles == nil && l.HcaObjects == nil {
			add("rdma device %q has neither hcaHandles nor hcaObjects", dev)
		}
	}
}

// validateUnifiedKey accepts a key of linux.resources.unified: a plain
// file name inside the cgroup directory.
func validateUnifiedKey(k string) error {
	switch {
	case k == "", k == ".", k == "..":
		return fmt.Errorf("%w: unified key %q is not a cgroup file name", ErrInvalid, k)
	case strings.ContainsAny(k, "/\x00"), strings.Contains(k, ".."):
		return fmt.Errorf("%w: unified key %q must not contain '/' or '..'", ErrInvalid, k)
	}
	return nil
}

// value dereferences an optional spec field; nil is the zero value.
func value[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
