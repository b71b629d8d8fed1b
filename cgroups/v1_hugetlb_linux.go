package cgroups

import (
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Hugetlb drives the v1 hugetlb controller. A limit goes to both the
// reservation file (rsvd, kernel 5.7+, which the spec prefers) and the
// page-fault file, so either accounting is bounded.
type v1Hugetlb struct{}

func (v1Hugetlb) Name() string { return "hugetlb" }

func (v1Hugetlb) Wants(r *specs.LinuxResources) bool { return len(r.HugepageLimits) > 0 }

func (v1Hugetlb) Set(dir string, r *specs.LinuxResources) error {
	return setHugetlb(dir, r.HugepageLimits, "limit_in_bytes", "rsvd.limit_in_bytes")
}

// setHugetlb writes hugetlb.<size>.<limitSuffix> and, where it exists,
// hugetlb.<size>.<rsvdSuffix>. Page sizes are normalised to the kernel's
// spelling first ("2048KB" → "2MB").
func setHugetlb(dir string, limits []specs.LinuxHugepageLimit, limitSuffix, rsvdSuffix string) error {
	for _, l := range limits {
		size, err := parseHugePageSize(l.Pagesize)
		if err != nil {
			return err
		}
		prefix := "hugetlb." + hugePageName(size) + "."
		v := strconv.FormatUint(l.Limit, 10)
		if err := setValue(dir, prefix+limitSuffix, v); err != nil {
			return err
		}
		if fileExists(dir, prefix+rsvdSuffix) {
			if err := setValue(dir, prefix+rsvdSuffix, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v1Hugetlb) Stat(dir string, s *Stats) error {
	for _, size := range hugePageSizes() {
		prefix := "hugetlb." + size + "."
		usage, err := readUint(dir, prefix+"usage_in_bytes")
		if err != nil {
			if err = ignoreMissing(err); err != nil {
				return err
			}
			continue
		}
		max, _ := readUint(dir, prefix+"max_usage_in_bytes")
		failcnt, _ := readUint(dir, prefix+"failcnt")
		s.Hugetlb[size] = HugetlbStats{Usage: usage, Max: max, Failcnt: failcnt}
	}
	return nil
}

// hugePageSizes lists the host's huge page sizes in the kernel's hugetlb
// file spelling, from /sys/kernel/mm/hugepages/hugepages-<n>kB.
func hugePageSizes() []string {
	entries, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		kb, ok2 := strings.CutSuffix(kb, "kB")
		n, err := strconv.ParseUint(kb, 10, 64)
		if ok && ok2 && err == nil {
			out = append(out, hugePageName(n*1024))
		}
	}
	return out
}
