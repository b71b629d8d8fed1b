package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"berth.dev/runtime"
	json "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func runUpdate(g *globals, args []string) error {
	fs := newFlags("update", "<container-id>")
	resources := fs.String("resources", "", "path to the file containing the resources to update or '-' to read from the standard input")
	fs.StringVar(resources, "r", "", "path to the file containing the resources to update or '-' to read from the standard input")
	var (
		blkioWeight, cpuPeriod, cpuQuota, cpuBurst, cpuShares, rtPeriod, rtRuntime string
		cpus, mems, memory, memoryReservation, memorySwap, pidsLimit               string
	)
	fs.StringVar(&blkioWeight, "blkio-weight", "", "specifies per cgroup weight, range is from 10 to 1000")
	fs.StringVar(&cpuPeriod, "cpu-period", "", "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default")
	fs.StringVar(&cpuQuota, "cpu-quota", "", "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period")
	fs.StringVar(&cpuBurst, "cpu-burst", "", "CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period")
	fs.StringVar(&cpuShares, "cpu-share", "", "CPU shares (relative weight vs. other containers)")
	fs.StringVar(&rtPeriod, "cpu-rt-period", "", "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default")
	fs.StringVar(&rtRuntime, "cpu-rt-runtime", "", "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period")
	fs.StringVar(&cpus, "cpuset-cpus", "", "CPU(s) to use")
	fs.StringVar(&mems, "cpuset-mems", "", "Memory node(s) to use")
	fs.StringVar(&memory, "memory", "", "Memory limit (in bytes)")
	fs.StringVar(&memoryReservation, "memory-reservation", "", "Memory reservation or soft_limit (in bytes)")
	fs.StringVar(&memorySwap, "memory-swap", "", "Total memory usage (memory + swap); set '-1' to enable unlimited swap")
	fs.StringVar(&pidsLimit, "pids-limit", "", "Maximum number of pids allowed in the container")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, pos[0])
	if err != nil {
		return err
	}
	r := &specs.LinuxResources{}
	if *resources != "" {
		var data []byte
		if *resources == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(*resources)
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, r); err != nil {
			return fmt.Errorf("parse resources: %w", err)
		}
	}
	p := &numParser{}
	if blkioWeight != "" {
		w := uint16(p.uint(blkioWeight, "blkio-weight", 16))
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	if cpuPeriod != "" {
		v := p.uint(cpuPeriod, "cpu-period", 64)
		cpu().Period = &v
	}
	if cpuQuota != "" {
		v := p.int(cpuQuota, "cpu-quota")
		cpu().Quota = &v
	}
	if cpuBurst != "" {
		v := p.uint(cpuBurst, "cpu-burst", 64)
		cpu().Burst = &v
	}
	if cpuShares != "" {
		v := p.uint(cpuShares, "cpu-share", 64)
		cpu().Shares = &v
	}
	if rtPeriod != "" {
		v := p.uint(rtPeriod, "cpu-rt-period", 64)
		cpu().RealtimePeriod = &v
	}
	if rtRuntime != "" {
		v := p.int(rtRuntime, "cpu-rt-runtime")
		cpu().RealtimeRuntime = &v
	}
	if cpus != "" {
		cpu().Cpus = cpus
	}
	if mems != "" {
		cpu().Mems = mems
	}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	if memory != "" {
		v := p.bytes(memory, "memory")
		mem().Limit = &v
	}
	if memoryReservation != "" {
		v := p.bytes(memoryReservation, "memory-reservation")
		mem().Reservation = &v
	}
	if memorySwap != "" {
		v := p.bytes(memorySwap, "memory-swap")
		mem().Swap = &v
	}
	if pidsLimit != "" {
		v := p.int(pidsLimit, "pids-limit")
		r.Pids = &specs.LinuxPids{Limit: &v}
	}
	if p.err != nil {
		return p.err
	}
	return c.Update(r)
}

// numParser parses flag values, keeping the first error.
type numParser struct{ err error }

func (p *numParser) fail(flag, v string) {
	if p.err == nil {
		p.err = fmt.Errorf("invalid value %q for --%s", v, flag)
	}
}

func (p *numParser) uint(v, flag string, bits int) uint64 {
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		p.fail(flag, v)
	}
	return n
}

func (p *numParser) int(v, flag string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.fail(flag, v)
	}
	return n
}

// bytes accepts a byte count with an optional k, m, g or t suffix (powers
// of 1024, as docker and runc read them), or -1 for unlimited.
func (p *numParser) bytes(v, flag string) int64 {
	if v == "-1" {
		return -1
	}
	s := strings.ToLower(strings.TrimSpace(v))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "b"), "i")
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		p.fail(flag, v)
		return 0
	}
	return int64(n * float64(mult))
}
