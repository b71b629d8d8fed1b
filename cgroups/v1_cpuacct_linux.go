package cgroups

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Cpuacct reads CPU accounting; it has nothing to set.
type v1Cpuacct struct{}

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on every Linux ABI).
const userHZ = 100

func (v1Cpuacct) Name() string                            { return "cpuacct" }
func (v1Cpuacct) Wants(*specs.LinuxResources) bool        { return false }
func (v1Cpuacct) Set(string, *specs.LinuxResources) error { return nil }

func (v1Cpuacct) Stat(dir string, s *Stats) error {
	u := &s.CPU.Usage
	total, err := readUint(dir, "cpuacct.usage")
	if err != nil {
		return ignoreMissing(err)
	}
	u.Total = total
	if text, err := readFile(dir, "cpuacct.usage_percpu"); err == nil {
		if u.Percpu, err = parseUintList(text); err != nil {
			return fmt.Errorf("parse cpuacct.usage_percpu: %w", err)
		}
	}
	if text, err := readFile(dir, "cpuacct.usage_all"); err == nil {
		if u.PercpuUser, u.PercpuKernel, err = parseUsageAll(text); err != nil {
			return err
		}
	}
	if text, err := readFile(dir, "cpuacct.stat"); err == nil {
		kv := parseFlatKeyed(text)
		const nsPerTick = 1e9 / userHZ
		u.User = kv["user"] * nsPerTick
		u.Kernel = kv["system"] * nsPerTick
	}
	return nil
}

// parseUsageAll parses cpuacct.usage_all:
//
//	cpu user system
//	0 123 456
func parseUsageAll(text string) (user, kernel []uint64, err error) {
	lines := strings.Split(text, "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		nums, perr := parseUintList(f[1] + " " + f[2])
		if perr != nil {
			return nil, nil, fmt.Errorf("parse cpuacct.usage_all: %w", perr)
		}
		user = append(user, nums[0])
		kernel = append(kernel, nums[1])
	}
	return user, kernel, nil
}
