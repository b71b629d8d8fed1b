package cgroups

import (
	"errors"
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Memory drives the v1 memory controller.
//
// Kernel memory limits (memory.kmem.limit_in_bytes) are ignored without
// error, as runc does: the kernel stopped enforcing them in 5.4 and newer
// kernels refuse the write. kernelTCP is still written when the file
// exists.
type v1Memory struct{}

func (v1Memory) Name() string { return "memory" }

func (v1Memory) Wants(r *specs.LinuxResources) bool {
	m := r.Memory
	return m != nil && (value(m.Limit) != 0 || value(m.Reservation) != 0 || value(m.Swap) != 0 ||
		value(m.KernelTCP) != 0 || m.Swappiness != nil || m.DisableOOMKiller != nil || m.UseHierarchy != nil)
}

func (v1Memory) Set(dir string, r *specs.LinuxResources) error {
	m := r.Memory
	if err := setMemoryLimits(dir, m); err != nil {
		return err
	}
	if v := value(m.Reservation); v != 0 {
		if err := setValue(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(v, 10)); err != nil {
			return err
		}
	}
	if v := value(m.KernelTCP); v != 0 && fileExists(dir, "memory.kmem.tcp.limit_in_bytes") {
		if err := setValue(dir, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(v, 10)); err != nil {
			return err
		}
	}
	if m.Swappiness != nil {
		if err := setValue(dir, "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10)); err != nil {
			return err
		}
	}
	if m.UseHierarchy != nil {
		if err := setValue(dir, "memory.use_hierarchy", boolString(*m.UseHierarchy)); err != nil {
			return err
		}
	}
	if m.DisableOOMKiller != nil {
		return setValue(dir, "memory.oom_control", boolString(*m.DisableOOMKiller))
	}
	return nil
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// setMemoryLimits writes memory.limit_in_bytes and
// memory.memsw.limit_in_bytes. The kernel keeps limit <= memsw at every
// moment, so when memsw grows it is written first and when it shrinks
// last. An unlimited memory limit with no swap value makes memsw
// unlimited too (otherwise the write would be refused).
func setMemoryLimits(dir string, m *specs.LinuxMemory) error {
	limit, swap := value(m.Limit), value(m.Swap)
	if limit == -1 && swap == 0 && fileExists(dir, "memory.memsw.limit_in_bytes") {
		swap = -1
	}
	if limit > 0 && value(m.CheckBeforeUpdate) {
		if err := checkUsageBelow(dir, "memory.usage_in_bytes", limit); err != nil {
			return err
		}
	}
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		err := setValue(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
		if errors.Is(err, ErrInvalid) && limit > 0 {
			usage, _ := readUint(dir, "memory.usage_in_bytes")
			return fmt.Errorf("memory limit %d: usage is %d and could not be reclaimed below it, or the limit exceeds memory+swap: %w", limit, usage, err)
		}
		return err
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		if !fileExists(dir, "memory.memsw.limit_in_bytes") {
			return fmt.Errorf("%w: memory+swap limit %d set, but the kernel has no swap accounting (memory.memsw.limit_in_bytes)", ErrUnsupported, swap)
		}
		return setValue(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
	}
	if swap != 0 && swapGrows(dir, swap) {
		if err := writeSwap(); err != nil {
			return err
		}
		return writeLimit()
	}
	if err := writeLimit(); err != nil {
		return err
	}
	return writeSwap()
}

// swapGrows reports whether the new memsw limit is at least the current
// one (-1 is unlimited, the largest).
func swapGrows(dir string, swap int64) bool {
	if swap == -1 {
		return true
	}
	cur, err := readUint(dir, "memory.memsw.limit_in_bytes")
	if err != nil {
		return false
	}
	return uint64(swap) >= cur
}

// checkUsageBelow implements checkBeforeUpdate: refuse a limit below what
// the cgroup uses now.
func checkUsageBelow(dir, usageFile string, limit int64) error {
	usage, err := readUint(dir, usageFile)
	if err != nil {
		return err
	}
	if uint64(limit) < usage {
		return fmt.Errorf("%w: memory limit %d is below the current usage %d (checkBeforeUpdate)", ErrInvalid, limit, usage)
	}
	return nil
}

func (v1Memory) Stat(dir string, s *Stats) error {
	text, err := readFile(dir, "memory.stat")
	if err != nil {
		return ignoreMissing(err)
	}
	s.Memory.Raw = parseFlatKeyed(text)
	s.Memory.Cache = s.Memory.Raw["total_cache"]
	entries := []struct {
		prefix string
		dst    *MemoryEntry
	}{
		{"memory.", &s.Memory.Usage},
		{"memory.memsw.", &s.Memory.Swap},
		{"memory.kmem.", &s.Memory.Kernel},
		{"memory.kmem.tcp.", &s.Memory.KernelTCP},
	}
	for _, e := range entries {
		if err := statMemoryEntry(dir, e.prefix, e.dst); err != nil {
			return err
		}
	}
	return nil
}

// statMemoryEntry reads <prefix>{usage_in_bytes,max_usage_in_bytes,
// failcnt,limit_in_bytes}; a missing usage file leaves the entry zero.
func statMemoryEntry(dir, prefix string, e *MemoryEntry) error {
	fields := []struct {
		file string
		dst  *uint64
	}{
		{"usage_in_bytes", &e.Usage}, {"max_usage_in_bytes", &e.Max},
		{"failcnt", &e.Failcnt}, {"limit_in_bytes", &e.Limit},
	}
	for _, f := range fields {
		v, err := readUint(dir, prefix+f.file)
		if err != nil {
			return ignoreMissing(err)
		}
		*f.dst = v
	}
	return nil
}

// oomKillCountV1 reads the oom_kill line of memory.oom_control.
func oomKillCountV1(dir string) (uint64, error) {
	text, err := readFile(dir, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	n, ok := parseFlatKeyed(text)["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("%w: memory.oom_control has no oom_kill counter (kernel before 4.13)", ErrUnsupported)
	}
	return n, nil
}
