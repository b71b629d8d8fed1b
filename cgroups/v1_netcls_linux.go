package cgroups

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1NetCls drives the v1 net_cls controller: the class id that tags the
// container's packets.
type v1NetCls struct{}

func (v1NetCls) Name() string { return "net_cls" }

func (v1NetCls) Wants(r *specs.LinuxResources) bool {
	return r.Network != nil && r.Network.ClassID != nil
}

func (v1NetCls) Set(dir string, r *specs.LinuxResources) error {
	return setValue(dir, "net_cls.classid", strconv.FormatUint(uint64(*r.Network.ClassID), 10))
}

func (v1NetCls) Stat(string, *Stats) error { return nil }
