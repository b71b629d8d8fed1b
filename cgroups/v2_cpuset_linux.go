package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Cpuset drives the v2 cpuset controller. Unlike v1, empty lists mean
// "inherit", so nothing needs copying from the parent.
type v2Cpuset struct{}

func (v2Cpuset) Name() string { return "cpuset" }

func (v2Cpuset) Wants(r *specs.LinuxResources) bool { return v1Cpuset{}.Wants(r) }

func (v2Cpuset) Set(dir string, r *specs.LinuxResources) error { return v1Cpuset{}.Set(dir, r) }

// Stat reports the effective lists, which are what the tasks get.
func (v2Cpuset) Stat(dir string, s *Stats) error {
	return statCpuset(dir, "cpuset.cpus.effective", "cpuset.mems.effective", &s.CPUSet)
}
