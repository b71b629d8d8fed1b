package cgroups

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Blkio drives the v1 blkio controller. Weights go to the CFQ files
// (blkio.weight) where the kernel still has them, otherwise to BFQ's
// (blkio.bfq.weight); leaf weights exist only with CFQ.
type v1Blkio struct{}

func (v1Blkio) Name() string { return "blkio" }

func (v1Blkio) Wants(r *specs.LinuxResources) bool {
	b := r.BlockIO
	return b != nil && (value(b.Weight) != 0 || value(b.LeafWeight) != 0 || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
		len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0)
}

func (v1Blkio) Set(dir string, r *specs.LinuxResources) error {
	b := r.BlockIO
	weightFile := "blkio.weight"
	if !fileExists(dir, weightFile) && fileExists(dir, "blkio.bfq.weight") {
		weightFile = "blkio.bfq.weight"
	}
	if w := value(b.Weight); w != 0 {
		if err := setValue(dir, weightFile, strconv.Itoa(int(w))); err != nil {
			return err
		}
	}
	// Leaf weights belonged to the CFQ scheduler, gone since Linux 5.0:
	// where the file is missing there is nothing to weigh, as with BFQ.
	if w := value(b.LeafWeight); w != 0 && fileExists(dir, "blkio.leaf_weight") {
		if err := setValue(dir, "blkio.leaf_weight", strconv.Itoa(int(w))); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if err := setWeightDevice(dir, weightFile+"_device", d); err != nil {
			return err
		}
	}
	for _, file := range []string{"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
		"blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"} {
		for _, d := range throttleLists(b)[file] {
			if err := setValue(dir, file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func setWeightDevice(dir, file string, d specs.LinuxWeightDevice) error {
	if d.Weight != nil {
		if err := setValue(dir, file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight)); err != nil {
			return err
		}
	}
	if d.LeafWeight != nil {
		return setValue(dir, "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.LeafWeight))
	}
	return nil
}

// Stat prefers the CFQ statistics, then BFQ's, then the throttle layer's
// (which counts every bio, whatever the scheduler).
func (v1Blkio) Stat(dir string, s *Stats) error {
	for _, prefix := range []string{"blkio.", "blkio.bfq.", "blkio.throttle."} {
		if !fileExists(dir, prefix+"io_service_bytes_recursive") {
			continue
		}
		return statBlkioFiles(dir, prefix, &s.Blkio)
	}
	return nil
}

func statBlkioFiles(dir, prefix string, b *BlkioStats) error {
	files := []struct {
		name string
		dst  *[]BlkioEntry
	}{
		{"io_service_bytes_recursive", &b.IoServiceBytesRecursive},
		{"io_serviced_recursive", &b.IoServicedRecursive},
		{"io_queued_recursive", &b.IoQueuedRecursive},
		{"io_service_time_recursive", &b.IoServiceTimeRecursive},
		{"io_wait_time_recursive", &b.IoWaitTimeRecursive},
		{"io_merged_recursive", &b.IoMergedRecursive},
		{"time_recursive", &b.IoTimeRecursive},
		{"sectors_recursive", &b.SectorsRecursive},
	}
	for _, f := range files {
		text, err := readFile(dir, prefix+f.name)
		if err != nil {
			if err = ignoreMissing(err); err != nil {
				return err
			}
			continue
		}
		if *f.dst, err = parseBlkioV1(text); err != nil {
			return fmt.Errorf("parse %s: %w", prefix+f.name, err)
		}
	}
	return nil
}
