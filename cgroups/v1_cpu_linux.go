package cgroups

import (
	"errors"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1CPU drives the v1 cpu controller: shares, CFS bandwidth (quota,
// period, burst), SCHED_IDLE and realtime bandwidth.
type v1CPU struct{}

func (v1CPU) Name() string { return "cpu" }

func (v1CPU) Wants(r *specs.LinuxResources) bool {
	c := r.CPU
	return c != nil && (value(c.Shares) != 0 || value(c.Quota) != 0 || value(c.Period) != 0 ||
		value(c.Burst) != 0 || c.Idle != nil || value(c.RealtimeRuntime) != 0 || value(c.RealtimePeriod) != 0)
}

func (v1CPU) Set(dir string, r *specs.LinuxResources) error {
	c := r.CPU
	if s := value(c.Shares); s != 0 {
		if err := setValue(dir, "cpu.shares", strconv.FormatUint(s, 10)); err != nil {
			return err
		}
	}
	if err := setPair(dir, "cpu.cfs_period_us", uintString(value(c.Period)),
		"cpu.cfs_quota_us", intString(value(c.Quota))); err != nil {
		return err
	}
	if b := c.Burst; b != nil {
		if err := setValue(dir, "cpu.cfs_burst_us", strconv.FormatUint(*b, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := setValue(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	return setPair(dir, "cpu.rt_period_us", uintString(value(c.RealtimePeriod)),
		"cpu.rt_runtime_us", intString(value(c.RealtimeRuntime)))
}

// setPair writes two interdependent values ("" = leave alone). The kernel
// checks each write against the current value of the other file (a
// runtime longer than the period, a quota the parent's bandwidth cannot
// fit), so the first order that works wins: first file first, and on
// EINVAL the other way round.
func setPair(dir, first, firstVal, second, secondVal string) error {
	write := func(name, v string) error {
		if v == "" {
			return nil
		}
		return setValue(dir, name, v)
	}
	err := write(first, firstVal)
	if err == nil {
		return write(second, secondVal)
	}
	if !errors.Is(err, ErrInvalid) || secondVal == "" {
		return err
	}
	if err2 := write(second, secondVal); err2 != nil {
		return err
	}
	return write(first, firstVal)
}

// uintString and intString render optional values, 0 meaning "not set".
func uintString(v uint64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatUint(v, 10)
}

func intString(v int64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatInt(v, 10)
}

func (v1CPU) Stat(dir string, s *Stats) error {
	text, err := readFile(dir, "cpu.stat")
	if err != nil {
		return ignoreMissing(err)
	}
	kv := parseFlatKeyed(text)
	s.CPU.Throttling = ThrottlingStats{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_time"],
	}
	return nil
}
