package cgroups

import (
	"fmt"
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Memory drives the v2 memory controller: memory.max (limit),
// memory.low (reservation) and memory.swap.max (swap alone, converted
// from the spec's memory+swap). Kernel and kernelTCP limits and
// useHierarchy have no v2 file and are ignored, as in runc; swappiness
// and disableOOMKiller are refused by v2Unsupported.
type v2Memory struct{}

func (v2Memory) Name() string { return "memory" }

func (v2Memory) Wants(r *specs.LinuxResources) bool {
	m := r.Memory
	return m != nil && (value(m.Limit) != 0 || value(m.Reservation) != 0 || value(m.Swap) != 0)
}

func (v2Memory) Set(dir string, r *specs.LinuxResources) error {
	m := r.Memory
	limit := value(m.Limit)
	swap, err := v2SwapValue(dir, value(m.Swap), limit)
	if err != nil {
		return err
	}
	if limit > 0 && value(m.CheckBeforeUpdate) {
		if err := checkUsageBelow(dir, "memory.current", limit); err != nil {
			return err
		}
	}
	// Swap first: a lower memory.max with the old, larger swap.max would
	// push pages out to swap that the new setting forbids. A memory+swap
	// equal to the memory limit converts to 0, which SwapToV2 also uses
	// for "not set", but it asks for no swap at all: memory.swap.max 0.
	noSwap := value(m.Swap) > 0 && fileExists(dir, "memory.swap.max")
	if swap != 0 || noSwap {
		if err := setValue(dir, "memory.swap.max", formatV2Limit(swap)); err != nil {
			return err
		}
	}
	if limit != 0 {
		if err := setValue(dir, "memory.max", formatV2Limit(limit)); err != nil {
			return err
		}
	}
	if res := value(m.Reservation); res != 0 {
		return setValue(dir, "memory.low", formatV2Limit(res))
	}
	return nil
}

// v2SwapValue converts the spec's memory+swap for memory.swap.max. With no
// memory limit in this update, the current memory.max is the base. 0 means
// "leave swap.max alone". Without swap accounting (no memory.swap.max) a
// finite swap limit is ErrUnsupported; an unlimited one is skipped.
func v2SwapValue(dir string, memSwap, limit int64) (int64, error) {
	if memSwap > 0 && limit == 0 {
		cur, err := readFile(dir, "memory.max")
		if err != nil {
			return 0, err
		}
		if limit, err = parseV2Limit(cur); err != nil {
			return 0, fmt.Errorf("parse memory.max %q: %w", cur, err)
		}
	}
	swap, err := SwapToV2(memSwap, limit)
	if err != nil || swap == 0 || fileExists(dir, "memory.swap.max") {
		return swap, err
	}
	if swap == -1 {
		return 0, nil
	}
	return 0, fmt.Errorf("%w: memory+swap limit %d set, but the kernel has no swap accounting (memory.swap.max)", ErrUnsupported, memSwap)
}

func (v2Memory) Stat(dir string, s *Stats) error {
	usage, err := readUint(dir, "memory.current")
	if err != nil {
		return ignoreMissing(err)
	}
	mem := &s.Memory
	mem.Usage.Usage = usage
	mem.Usage.Limit = readV2Max(dir, "memory.max")
	mem.Usage.Max, _ = readUint(dir, "memory.peak")
	if text, err := readFile(dir, "memory.events"); err == nil {
		mem.Usage.Failcnt = parseFlatKeyed(text)["max"]
	}
	if swap, err := readUint(dir, "memory.swap.current"); err == nil {
		mem.Swap.Usage = swap + usage
		mem.Swap.Limit = addLimits(readV2Max(dir, "memory.swap.max"), mem.Usage.Limit)
	}
	if text, err := readFile(dir, "memory.stat"); err == nil {
		mem.Raw = parseFlatKeyed(text)
		mem.Cache = mem.Raw["file"]
	}
	mem.PSI, err = readPSI(dir, "memory.pressure")
	return err
}

// readV2Max reads a limit file; "max" (or an unreadable file) is
// math.MaxUint64.
func readV2Max(dir, name string) uint64 {
	text, err := readFile(dir, name)
	if err != nil {
		return math.MaxUint64
	}
	v, unlimited, err := parseLimitUint(text)
	if err != nil || unlimited {
		return math.MaxUint64
	}
	return v
}

// addLimits adds two limits where MaxUint64 is unlimited.
func addLimits(a, b uint64) uint64 {
	if a == math.MaxUint64 || b == math.MaxUint64 || a+b < a {
		return math.MaxUint64
	}
	return a + b
}

// oomKillCountV2 reads oom_kill from memory.events (which counts the
// whole subtree).
func oomKillCountV2(dir string) (uint64, error) {
	text, err := readFile(dir, "memory.events")
	if err != nil {
		if e := checkDir(dir); e != nil {
			return 0, e
		}
		return 0, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return parseFlatKeyed(text)["oom_kill"], nil
}
