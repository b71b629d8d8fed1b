package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Pids drives the pids controller (the same files on v1 and v2).
type v1Pids struct{}

func (v1Pids) Name() string { return "pids" }

func (v1Pids) Wants(r *specs.LinuxResources) bool {
	return r.Pids != nil && r.Pids.Limit != nil
}

func (v1Pids) Set(dir string, r *specs.LinuxResources) error {
	return setPidsLimit(dir, *r.Pids.Limit)
}

func (v1Pids) Stat(dir string, s *Stats) error {
	return statPids(dir, s)
}

// setPidsLimit writes pids.max: -1 is "max"; 0 is a real limit of no
// tasks at all, as the runtime spec asks.
func setPidsLimit(dir string, limit int64) error {
	return setValue(dir, "pids.max", formatV2Limit(limit))
}

func statPids(dir string, s *Stats) error {
	cur, err := readUint(dir, "pids.current")
	if err != nil {
		return ignoreMissing(err)
	}
	s.Pids.Current = cur
	text, err := readFile(dir, "pids.max")
	if err != nil {
		return ignoreMissing(err)
	}
	limit, unlimited, err := parseLimitUint(text)
	if err != nil {
		return err
	}
	if !unlimited {
		s.Pids.Limit = limit
	}
	return nil
}
