package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Hugetlb drives the v2 hugetlb controller: hugetlb.<size>.max and,
// where the kernel has it, the reservation limit hugetlb.<size>.rsvd.max.
type v2Hugetlb struct{}

func (v2Hugetlb) Name() string { return "hugetlb" }

func (v2Hugetlb) Wants(r *specs.LinuxResources) bool { return len(r.HugepageLimits) > 0 }

func (v2Hugetlb) Set(dir string, r *specs.LinuxResources) error {
	return setHugetlb(dir, r.HugepageLimits, "max", "rsvd.max")
}

// Stat reads usage (current) and the failure count (the "max" line of
// hugetlb.<size>.events). v2 keeps no peak usage, so Max stays 0.
func (v2Hugetlb) Stat(dir string, s *Stats) error {
	for _, size := range hugePageSizes() {
		prefix := "hugetlb." + size + "."
		usage, err := readUint(dir, prefix+"current")
		if err != nil {
			if err = ignoreMissing(err); err != nil {
				return err
			}
			continue
		}
		st := HugetlbStats{Usage: usage}
		if text, err := readFile(dir, prefix+"events"); err == nil {
			st.Failcnt = parseFlatKeyed(text)["max"]
		}
		s.Hugetlb[size] = st
	}
	return nil
}
