package cgroups

import (
	"fmt"
	"math"
	"strconv"
)

// The runtime spec describes resources in cgroup v1 terms. The functions
// below convert them to the values the v2 files expect.

const (
	minCPUShares   = 2
	maxCPUShares   = 262144 // 1 << 18, the kernel's MAX_SHARES
	maxCPUWeight   = 10000
	minBlkioWeight = 10
	maxBlkioWeight = 1000
)

// CPUSharesToWeight converts v1 cpu.shares (2..262144, default 1024) to v2
// cpu.weight (1..10000, default 100). 0 means "not set" and stays 0.
//
// The curve is the one runc and crun adopted in 2025: in log2 space a
// quadratic through the three points (2→1, 1024→100, 262144→10000), so the
// v1 default lands on the v2 default. The older linear formula mapped 1024
// to 39, starving containers next to system services.
func CPUSharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= minCPUShares:
		return 1
	case shares >= maxCPUShares:
		return maxCPUWeight
	}
	l := math.Log2(float64(shares))
	exp := (l*l+125*l)/612 - 7.0/34
	return uint64(math.Ceil(math.Pow(10, exp)))
}

// BlkioWeightToIOWeight converts a v1 blkio weight (10..1000) to v2
// io.weight (1..10000), linearly. 0 means "not set" and stays 0.
func BlkioWeightToIOWeight(weight uint16) uint64 {
	if weight == 0 {
		return 0
	}
	if weight < minBlkioWeight {
		weight = minBlkioWeight
	}
	return 1 + (uint64(weight)-minBlkioWeight)*(maxCPUWeight-1)/(maxBlkioWeight-minBlkioWeight)
}

// SwapToV2 converts the spec's memory.swap (memory+swap, v1
// memory.memsw.limit_in_bytes) to v2 memory.swap.max (swap alone). -1 means
// unlimited and 0 "not set", in and out. An unlimited memory limit with no
// swap value gives unlimited swap, as on v1, where memsw follows memory.
func SwapToV2(memSwap, memory int64) (int64, error) {
	switch {
	case memory == -1 && memSwap == 0:
		return -1, nil
	case memSwap == -1 || memSwap == 0:
		return memSwap, nil
	case memory == 0 || memory == -1:
		return 0, fmt.Errorf("%w: memory+swap limit %d needs a finite memory limit", ErrInvalid, memSwap)
	case memSwap < memory:
		return 0, fmt.Errorf("%w: memory+swap limit %d is below the memory limit %d", ErrInvalid, memSwap, memory)
	}
	return memSwap - memory, nil
}

// SwapFromV2 converts v2 memory.swap.max back to the spec's memory+swap
// value. Unlimited (-1) on either side gives -1.
func SwapFromV2(swapMax, memory int64) int64 {
	if swapMax == -1 || memory == -1 {
		return -1
	}
	return swapMax + memory
}

// formatV2Limit renders a spec limit for a v2 file: -1 is "max".
func formatV2Limit(v int64) string {
	if v == -1 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// parseV2Limit parses a v2 limit file value: "max" is -1.
func parseV2Limit(s string) (int64, error) {
	if s == "max" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}
