package cgroups

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2IO drives the v2 io controller. Weights go to io.bfq.weight (the v1
// scale, 1..1000) when the BFQ scheduler provides it, otherwise to
// io.weight (converted to 1..10000). Throttles become io.max lines.
type v2IO struct{}

func (v2IO) Name() string { return "io" }

func (v2IO) Wants(r *specs.LinuxResources) bool { return v1Blkio{}.Wants(r) }

func (v2IO) Set(dir string, r *specs.LinuxResources) error {
	b := r.BlockIO
	bfq := fileExists(dir, "io.bfq.weight")
	weight := func(w uint16) string {
		if bfq {
			return strconv.Itoa(int(w))
		}
		return strconv.FormatUint(BlkioWeightToIOWeight(w), 10)
	}
	file := "io.weight"
	if bfq {
		file = "io.bfq.weight"
	}
	if w := value(b.Weight); w != 0 {
		if err := setValue(dir, file, weight(w)); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight == nil {
			continue
		}
		if err := setValue(dir, file, fmt.Sprintf("%d:%d %s", d.Major, d.Minor, weight(*d.Weight))); err != nil {
			return err
		}
	}
	return setIOMax(dir, b)
}

// setIOMax writes one io.max line per throttle entry; a rate of 0 removes
// the limit ("max"), as writing 0 does on v1.
func setIOMax(dir string, b *specs.LinuxBlockIO) error {
	lists := []struct {
		key  string
		list []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
	}
	for _, l := range lists {
		for _, d := range l.list {
			rate := "max"
			if d.Rate != 0 {
				rate = strconv.FormatUint(d.Rate, 10)
			}
			if err := setValue(dir, "io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, l.key, rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v2IO) Stat(dir string, s *Stats) error {
	text, err := readFile(dir, "io.stat")
	if err != nil {
		return ignoreMissing(err)
	}
	if s.Blkio.IoServiceBytesRecursive, s.Blkio.IoServicedRecursive, err = parseIOStat(text); err != nil {
		return fmt.Errorf("parse io.stat: %w", err)
	}
	s.Blkio.PSI, err = readPSI(dir, "io.pressure")
	return err
}
