package cgroups

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestValidateResourcesRejects(t *testing.T) {
	tests := []struct {
		name string
		r    specs.LinuxResources
		// msg is a fragment the error must contain, so the user learns
		// which value is wrong.
		msg string
	}{
		{"negative memory limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-2)}}, "memory limit -2"},
		{"negative reservation", specs.LinuxResources{Memory: &specs.LinuxMemory{Reservation: ptr[int64](-5)}}, "reservation"},
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](200), Swap: ptr[int64](100)}}, "below the memory limit"},
		{"swap with unlimited memory", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](100)}}, "unlimited"},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](101)}}, "swappiness"},
		{"negative quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](-3)}}, "quota -3"},
		{"tiny quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](500)}}, "minimum"},
		{"period", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](2000000)}}, "period"},
		{"burst over quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](10000), Burst: ptr[uint64](20000)}}, "burst"},
		{"idle", specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: ptr[int64](2)}}, "idle"},
		{"rt runtime over period", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](2000), RealtimePeriod: ptr[uint64](1000)}}, "realtimeRuntime"},
		{"cpus", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-x"}}, "cpus"},
		{"mems", specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "3-1"}}, "mems"},
		{"pids", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-2)}}, "pids limit -2"},
		{"blkio weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](5)}}, "weight 5"},
		{"weight device without weights", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8}}}}}, "neither"},
		{"throttle device", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -8}, Rate: 1}}}}, "negative"},
		{"hugepage size", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2M", Limit: 1}}}, "2M"},
		{"interface name", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "eth 0"}}}}, "interface"},
		{"rdma empty", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {}}}, "mlx5_0"},
		{"device type", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "u", Access: "rwm"}}}, "unknown device type"},
		{"device access", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "c", Access: "rx"}}}, "access"},
		{"device major", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "c", Major: ptr[int64](-7)}}}, "major"},
		{"unified slash", specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, "must not contain"},
		{"unified dotdot", specs.LinuxResources{Unified: map[string]string{"memory..max": "1"}}, "must not contain"},
		{"unified empty", specs.LinuxResources{Unified: map[string]string{"": "1"}}, "not a cgroup file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateResources(&tt.r)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestValidateResourcesReportsEveryProblem(t *testing.T) {
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](-2)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](-9)},
	}
	err := ValidateResources(r)
	if err == nil || !strings.Contains(err.Error(), "memory limit") || !strings.Contains(err.Error(), "pids limit") {
		t.Errorf("error = %v, want both problems", err)
	}
}

func TestValidateResourcesAccepts(t *testing.T) {
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](100 << 20), Swap: ptr[int64](-1), Reservation: ptr[int64](-1),
			Kernel: ptr[int64](-1), Swappiness: ptr[uint64](60)},
		CPU: &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](-1), Period: ptr[uint64](100000),
			Cpus: "0-1", Mems: "0", Idle: ptr[int64](1)},
		Pids:           &specs.LinuxPids{Limit: ptr[int64](0)}, // 0 is a real limit
		BlockIO:        &specs.LinuxBlockIO{Weight: ptr[uint16](500)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rw"}},
		Unified: map[string]string{"memory.high": "max"},
	}
	if err := ValidateResources(r); err != nil {
		t.Errorf("valid resources rejected: %v", err)
	}
	if err := ValidateResources(nil); err != nil {
		t.Errorf("nil resources: %v", err)
	}
}
