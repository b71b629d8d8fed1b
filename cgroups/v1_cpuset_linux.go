package cgroups

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Cpuset drives the v1 cpuset controller: cpus and mems.
type v1Cpuset struct{}

func (v1Cpuset) Name() string { return "cpuset" }

func (v1Cpuset) Wants(r *specs.LinuxResources) bool {
	return r.CPU != nil && (r.CPU.Cpus != "" || r.CPU.Mems != "")
}

func (v1Cpuset) Set(dir string, r *specs.LinuxResources) error {
	// mems first: a task may need memory from a node before its cpus move.
	if r.CPU.Mems != "" {
		if err := setValue(dir, "cpuset.mems", r.CPU.Mems); err != nil {
			return err
		}
	}
	if r.CPU.Cpus != "" {
		return setValue(dir, "cpuset.cpus", r.CPU.Cpus)
	}
	return nil
}

func (v1Cpuset) Stat(dir string, s *Stats) error {
	return statCpuset(dir, "cpuset.cpus", "cpuset.mems", &s.CPUSet)
}

// statCpuset fills the lists and the v1 flag files that exist.
func statCpuset(dir, cpusFile, memsFile string, out *CPUSetStats) error {
	for _, l := range []struct {
		file string
		dst  *[]uint16
	}{{cpusFile, &out.CPUs}, {memsFile, &out.Mems}} {
		text, err := readFile(dir, l.file)
		if err != nil {
			return ignoreMissing(err)
		}
		if *l.dst, err = parseCPUList(text); err != nil {
			return fmt.Errorf("parse %s: %w", l.file, err)
		}
	}
	flags := map[string]*uint64{
		"cpuset.cpu_exclusive": &out.CPUExclusive, "cpuset.mem_exclusive": &out.MemExclusive,
		"cpuset.mem_hardwall": &out.MemHardwall, "cpuset.memory_migrate": &out.MemoryMigrate,
		"cpuset.memory_spread_page": &out.MemorySpreadPage, "cpuset.memory_spread_slab": &out.MemorySpreadSlab,
		"cpuset.memory_pressure": &out.MemoryPressure, "cpuset.sched_load_balance": &out.SchedLoadBalance,
	}
	for file, dst := range flags {
		v, err := readUint(dir, file)
		if err != nil {
			if err = ignoreMissing(err); err != nil {
				return err
			}
			continue
		}
		*dst = v
	}
	if v, err := readInt(dir, "cpuset.sched_relax_domain_level"); err == nil {
		out.SchedRelaxDomainLevel = v
	}
	return nil
}

// initCpuset gives each cpuset cgroup that Apply created, and the leaf,
// the cpus and mems of its parent when they are empty: a v1 cpuset with
// an empty list accepts no tasks (the write to cgroup.procs fails with
// ENOSPC).
func initCpuset(h v1Hierarchy, created []string) error {
	isCreated := make(map[string]bool, len(created))
	for _, d := range created {
		isCreated[d] = true
	}
	leaf := h.dir()
	parent := h.mountPoint
	for _, elem := range strings.Split(strings.Trim(h.relToMount(h.path), "/"), "/") {
		dir := filepath.Join(parent, elem)
		if isCreated[dir] || dir == leaf {
			if err := copyCpusetFromParent(parent, dir); err != nil {
				return err
			}
		}
		parent = dir
	}
	return nil
}

func copyCpusetFromParent(parent, dir string) error {
	for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(dir, file)
		if err != nil {
			return err
		}
		if strings.TrimSpace(cur) != "" {
			continue
		}
		v, err := readFile(parent, file)
		if err != nil {
			return err
		}
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s of %s is empty: cannot fill %s", file, parent, dir)
		}
		if err := writeFile(dir, file, v); err != nil {
			return err
		}
	}
	return nil
}
