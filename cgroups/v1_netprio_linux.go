package cgroups

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1NetPrio drives the v1 net_prio controller: a priority per interface.
type v1NetPrio struct{}

func (v1NetPrio) Name() string { return "net_prio" }

func (v1NetPrio) Wants(r *specs.LinuxResources) bool {
	return r.Network != nil && len(r.Network.Priorities) > 0
}

func (v1NetPrio) Set(dir string, r *specs.LinuxResources) error {
	for _, p := range r.Network.Priorities {
		if err := setValue(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
			return err
		}
	}
	return nil
}

func (v1NetPrio) Stat(string, *Stats) error { return nil }
