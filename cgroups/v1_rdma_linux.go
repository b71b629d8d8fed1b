package cgroups

import (
	"sort"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Rdma drives the rdma controller (the same rdma.max file on v1 and v2).
type v1Rdma struct{}

func (v1Rdma) Name() string { return "rdma" }

func (v1Rdma) Wants(r *specs.LinuxResources) bool { return len(r.Rdma) > 0 }

func (v1Rdma) Set(dir string, r *specs.LinuxResources) error { return setRdma(dir, r.Rdma) }

func (v1Rdma) Stat(string, *Stats) error { return nil }

// setRdma writes one rdma.max line per device, in name order:
// "mlx5_1 hca_handle=3 hca_object=max". An unset field is unlimited.
func setRdma(dir string, limits map[string]specs.LinuxRdma) error {
	devs := make([]string, 0, len(limits))
	for d := range limits {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		l := limits[d]
		line := d + " hca_handle=" + rdmaValue(l.HcaHandles) + " hca_object=" + rdmaValue(l.HcaObjects)
		if err := setValue(dir, "rdma.max", line); err != nil {
			return err
		}
	}
	return nil
}

func rdmaValue(v *uint32) string {
	if v == nil {
		return "max"
	}
	return strconv.FormatUint(uint64(*v), 10)
}
