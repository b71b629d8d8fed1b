package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Rdma drives the rdma controller, whose rdma.max v1 and v2 share.
type v2Rdma struct{}

func (v2Rdma) Name() string                                  { return "rdma" }
func (v2Rdma) Wants(r *specs.LinuxResources) bool            { return len(r.Rdma) > 0 }
func (v2Rdma) Set(dir string, r *specs.LinuxResources) error { return setRdma(dir, r.Rdma) }
func (v2Rdma) Stat(string, *Stats) error                     { return nil }
