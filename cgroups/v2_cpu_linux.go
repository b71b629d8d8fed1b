package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2CPU drives the v2 cpu controller: cpu.weight (converted from shares),
// cpu.max (quota and period), cpu.max.burst and cpu.idle.
type v2CPU struct{}

func (v2CPU) Name() string { return "cpu" }

func (v2CPU) Wants(r *specs.LinuxResources) bool {
	c := r.CPU
	return c != nil && (value(c.Shares) != 0 || value(c.Quota) != 0 || value(c.Period) != 0 ||
		value(c.Burst) != 0 || c.Idle != nil)
}

func (v2CPU) Set(dir string, r *specs.LinuxResources) error {
	c := r.CPU
	if w := CPUSharesToWeight(value(c.Shares)); w != 0 {
		if err := setValue(dir, "cpu.weight", strconv.FormatUint(w, 10)); err != nil {
			return err
		}
	}
	if value(c.Quota) != 0 || value(c.Period) != 0 {
		if err := setCPUMax(dir, value(c.Quota), value(c.Period)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := setValue(dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		return setValue(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10))
	}
	return nil
}

// setCPUMax writes "quota period" to cpu.max; a value not given (0) keeps
// what the file holds now, -1 quota is "max".
func setCPUMax(dir string, quota int64, period uint64) error {
	cur, err := readFile(dir, "cpu.max")
	if err != nil {
		return err
	}
	f := strings.Fields(cur)
	if len(f) != 2 {
		return fmt.Errorf("parse cpu.max %q", cur)
	}
	q, p := f[0], f[1]
	if quota != 0 {
		q = formatV2Limit(quota)
	}
	if period != 0 {
		p = strconv.FormatUint(period, 10)
	}
	return setValue(dir, "cpu.max", q+" "+p)
}

// Stat reads cpu.stat, which cgroup2 keeps (usage at least) even without
// the cpu controller. Times there are in microseconds.
func (v2CPU) Stat(dir string, s *Stats) error {
	text, err := readFile(dir, "cpu.stat")
	if err != nil {
		return ignoreMissing(err)
	}
	kv := parseFlatKeyed(text)
	s.CPU.Usage.Total = kv["usage_usec"] * 1000
	s.CPU.Usage.User = kv["user_usec"] * 1000
	s.CPU.Usage.Kernel = kv["system_usec"] * 1000
	s.CPU.Throttling = ThrottlingStats{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_usec"] * 1000,
	}
	s.CPU.PSI, err = readPSI(dir, "cpu.pressure")
	return err
}

// readPSI reads a pressure file; nil if the kernel has none.
func readPSI(dir, name string) (*PSIStats, error) {
	text, err := readFile(dir, name)
	if err != nil {
		return nil, ignoreMissing(err)
	}
	return parsePSI(text)
}
