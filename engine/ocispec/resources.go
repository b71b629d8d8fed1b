package ocispec

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/internal/errdefs"
)

// Limits docker enforces on resource flags.
const (
	minMemory    = 6 << 20 // the kernel needs some memory to start a process
	minCPUShares = 2
	maxCPUShares = 262144
	cpuPeriod    = 100000 // µs, the CFS default
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errdefs.ErrInvalidArgument}, args...)...)
}

// resources maps the cgroup flags of o into r.
func resources(r *specs.LinuxResources, o RunOptions) error {
	if err := memory(r, o); err != nil {
		return err
	}
	if err := cpu(r, o); err != nil {
		return err
	}
	if o.PidsLimit != nil && *o.PidsLimit > 0 {
		limit := *o.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if o.BlkioWeight != 0 {
		if o.BlkioWeight < 10 || o.BlkioWeight > 1000 {
			return invalidf("blkio weight %d: range is 10 to 1000", o.BlkioWeight)
		}
		w := o.BlkioWeight
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return nil
}

// memory follows docker: --memory-swap needs --memory, is at least
// --memory, and is twice --memory when not given; -1 means unlimited swap.
func memory(r *specs.LinuxResources, o RunOptions) error {
	if o.Memory < 0 {
		return invalidf("memory limit %d is negative", o.Memory)
	}
	if o.Memory == 0 {
		if o.MemorySwap > 0 {
			return invalidf("you should always set the memory limit when using the memory-swap limit")
		}
		return nil
	}
	if o.Memory < minMemory {
		return invalidf("minimum memory limit allowed is 6MB")
	}
	swap := o.MemorySwap
	switch {
	case swap == 0:
		swap = 2 * o.Memory
	case swap > 0 && swap < o.Memory:
		return invalidf("minimum memoryswap limit should be larger than memory limit, see usage")
	case swap < -1:
		return invalidf("memory-swap %d: -1 is the only negative value (unlimited)", swap)
	}
	limit := o.Memory
	r.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	return nil
}

func cpu(r *specs.LinuxResources, o RunOptions) error {
	var c specs.LinuxCPU
	set := false
	if o.NanoCPUs != 0 {
		ncpu := int64(runtime.NumCPU())
		if o.NanoCPUs < 1e7 || o.NanoCPUs > ncpu*1e9 {
			return invalidf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", ncpu, ncpu)
		}
		period := uint64(cpuPeriod)
		quota := o.NanoCPUs * cpuPeriod / 1e9
		c.Period, c.Quota, set = &period, &quota, true
	}
	if o.CPUShares != 0 {
		if o.CPUShares < 0 {
			return invalidf("cpu shares %d is negative", o.CPUShares)
		}
		shares := uint64(min(max(o.CPUShares, minCPUShares), maxCPUShares))
		c.Shares, set = &shares, true
	}
	if o.CpusetCpus != "" {
		if err := checkCPUList(o.CpusetCpus); err != nil {
			return err
		}
		c.Cpus, set = o.CpusetCpus, true
	}
	if set {
		r.CPU = &c
	}
	return nil
}

// checkCPUList accepts the kernel's list format: "0-2,4,7-8".
func checkCPUList(list string) error {
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return invalidf("invalid value %q for cpuset cpus", list)
		}
	}
	return nil
}

// rlimitNames are the resource limits --ulimit may set.
var rlimitNames = map[string]bool{
	"as": true, "core": true, "cpu": true, "data": true, "fsize": true,
	"locks": true, "memlock": true, "msgqueue": true, "nice": true,
	"nofile": true, "nproc": true, "rss": true, "rtprio": true,
	"rttime": true, "sigpending": true, "stack": true,
}

func rlimits(ulimits []Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range ulimits {
		name := strings.ToLower(u.Name)
		if !rlimitNames[name] {
			return nil, invalidf("invalid ulimit type: %s", u.Name)
		}
		if u.Soft > u.Hard && u.Hard != -1 {
			return nil, invalidf("ulimit %s: soft limit %d is greater than hard limit %d", name, u.Soft, u.Hard)
		}
		out = append(out, specs.POSIXRlimit{
			Type: "RLIMIT_" + strings.ToUpper(name),
			Soft: uint64(u.Soft), // -1 becomes RLIM_INFINITY
			Hard: uint64(u.Hard),
		})
	}
	return out, nil
}

// sysctls checks that each sysctl is one docker allows, scoped to a
// namespace the container owns: IPC ones, and net.* with a network
// namespace that is not the host's.
func sysctls(in map[string]string, hostNetwork bool) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch {
		case strings.HasPrefix(k, "net."):
			if hostNetwork {
				return nil, invalidf("sysctl %q is not allowed in the host network namespace", k)
			}
		case strings.HasPrefix(k, "fs.mqueue."), k == "kernel.msgmax", k == "kernel.msgmnb",
			k == "kernel.msgmni", k == "kernel.sem", k == "kernel.shmall", k == "kernel.shmmax",
			k == "kernel.shmmni", k == "kernel.shm_rmid_forced", k == "kernel.domainname":
		default:
			return nil, invalidf("sysctl %q is not allowed: not in a namespace of the container", k)
		}
		out[k] = v
	}
	return out, nil
}
