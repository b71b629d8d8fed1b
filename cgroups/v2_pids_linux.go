package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Pids drives the pids controller, whose files v1 and v2 share.
type v2Pids struct{}

func (v2Pids) Name() string                                  { return "pids" }
func (v2Pids) Wants(r *specs.LinuxResources) bool            { return v1Pids{}.Wants(r) }
func (v2Pids) Set(dir string, r *specs.LinuxResources) error { return v1Pids{}.Set(dir, r) }
func (v2Pids) Stat(dir string, s *Stats) error               { return statPids(dir, s) }
