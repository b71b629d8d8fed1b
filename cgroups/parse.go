package cgroups

import (
	"bufio"

	"berth.dev/internal/mountinfo"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Parsers for the text formats of /proc and cgroupfs. They take strings or
// readers so they can be tested with literal input.

// parseProcCgroup parses /proc/<pid>/cgroup ("ID:controllers:path" lines)
// into controller → path. Each controller of a co-mounted hierarchy
// ("cpu,cpuacct") gets its own key; named hierarchies keep their
// "name=..." form; the v2 line ("0::/path") is stored under "".
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	paths := make(map[string]string)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return nil, fmt.Errorf("malformed cgroup line %q", line)
		}
		if parts[1] == "" {
			paths[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	return paths, sc.Err()
}

// mountInfo is the part of a /proc/self/mountinfo line that cgroups need.
type mountInfo struct {
	// Root is the path inside the filesystem that is mounted (for a
	// cgroup mount: the cgroup that appears at MountPoint).
	Root       string
	MountPoint string
	FSType     string
	// SuperOptions are the per-superblock options; for a v1 cgroup mount
	// they name its controllers.
	SuperOptions []string
}

// parseMountinfo parses /proc/self/mountinfo (see proc(5)).
func parseMountinfo(r io.Reader) ([]mountInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	infos, err := mountinfo.Parse(data)
	if err != nil {
		return nil, err
	}
	mounts := make([]mountInfo, len(infos))
	for i, mi := range infos {
		mounts[i] = mountInfo{
			Root:         mi.Root,
			MountPoint:   mi.Mountpoint,
			FSType:       mi.FSType,
			SuperOptions: strings.Split(mi.SuperOptions, ","),
		}
	}
	return mounts, nil
}

// parseCPUList parses a kernel list like "0-3,7" (cpuset.cpus, mems).
// An empty string is an empty list.
func parseCPUList(s string) ([]uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []uint16
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad list %q: %q is not a number", s, lo)
		}
		last := first
		if isRange {
			if last, err = strconv.ParseUint(hi, 10, 16); err != nil {
				return nil, fmt.Errorf("bad list %q: %q is not a number", s, hi)
			}
		}
		if last < first {
			return nil, fmt.Errorf("bad list %q: range %s is reversed", s, part)
		}
		if last-first > 4096 {
			return nil, fmt.Errorf("bad list %q: range %s is too large", s, part)
		}
		for v := first; v <= last; v++ {
			out = append(out, uint16(v))
		}
	}
	return out, nil
}

// parseFlatKeyed parses "key value" lines (memory.stat, cpu.stat,
// memory.events, cpuacct.stat). Lines whose value is not an unsigned
// number are skipped.
func parseFlatKeyed(text string) map[string]uint64 {
	out := make(map[string]uint64)
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

// parseUintList parses whitespace-separated numbers
// (cpuacct.usage_percpu).
func parseUintList(text string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Fields(text) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseLimitUint parses a limit file where "max" (v2) means unlimited:
// unlimited is returned as 0 with unlimited=true.
func parseLimitUint(s string) (v uint64, unlimited bool, err error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, true, nil
	}
	v, err = strconv.ParseUint(s, 10, 64)
	return v, false, err
}

// parseBlkioV1 parses a v1 blkio statistics file: "8:0 Read 1234" lines
// and a device-less "Total 5678" line, which is skipped. Files with two
// fields per line ("8:0 1234", e.g. blkio.sectors_recursive) get an empty
// Op.
func parseBlkioV1(text string) ([]BlkioEntry, error) {
	var out []BlkioEntry
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[0], ":") {
			continue
		}
		major, minor, err := parseDevNumber(f[0])
		if err != nil {
			return nil, err
		}
		e := BlkioEntry{Major: major, Minor: minor}
		valueField := f[1]
		if len(f) >= 3 {
			e.Op, valueField = f[1], f[2]
		}
		if e.Value, err = strconv.ParseUint(valueField, 10, 64); err != nil {
			return nil, fmt.Errorf("bad blkio line %q", line)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseDevNumber(s string) (major, minor uint64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("bad device number %q", s)
	}
	if major, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad device number %q", s)
	}
	if minor, err = strconv.ParseUint(b, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad device number %q", s)
	}
	return major, minor, nil
}

// parseIOStat parses v2 io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4
// dbytes=0 dios=0") into runc's bytes and I/O-count lists.
func parseIOStat(text string) (bytes, ios []BlkioEntry, err error) {
	ops := map[string]struct {
		op    string
		bytes bool
	}{
		"rbytes": {"Read", true}, "wbytes": {"Write", true}, "dbytes": {"Discard", true},
		"rios": {"Read", false}, "wios": {"Write", false}, "dios": {"Discard", false},
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		major, minor, err := parseDevNumber(f[0])
		if err != nil {
			return nil, nil, err
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			o, known := ops[k]
			n, perr := strconv.ParseUint(v, 10, 64)
			if !known || perr != nil {
				continue
			}
			e := BlkioEntry{Major: major, Minor: minor, Op: o.op, Value: n}
			if o.bytes {
				bytes = append(bytes, e)
			} else {
				ios = append(ios, e)
			}
		}
	}
	return bytes, ios, nil
}

// parsePSI parses a *.pressure file:
// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" (and a "full" line).
func parsePSI(text string) (*PSIStats, error) {
	var s PSIStats
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var d *PSIData
		switch f[0] {
		case "some":
			d = &s.Some
		case "full":
			d = &s.Full
		default:
			continue
		}
		for _, kv := range f[1:] {
			if err := setPSIField(d, kv); err != nil {
				return nil, fmt.Errorf("bad pressure line %q: %w", line, err)
			}
		}
	}
	return &s, nil
}

func setPSIField(d *PSIData, kv string) error {
	k, v, _ := strings.Cut(kv, "=")
	var err error
	switch k {
	case "avg10":
		d.Avg10, err = strconv.ParseFloat(v, 64)
	case "avg60":
		d.Avg60, err = strconv.ParseFloat(v, 64)
	case "avg300":
		d.Avg300, err = strconv.ParseFloat(v, 64)
	case "total":
		d.Total, err = strconv.ParseUint(v, 10, 64)
	}
	return err
}

// hugePageUnits are the suffixes of hugetlb file names, base 1024.
func hugePageUnits() []string { return []string{"KB", "MB", "GB", "TB", "PB"} }

// parseHugePageSize parses a spec pageSize ("2MB", "64KB", "1GB") into
// bytes.
func parseHugePageSize(s string) (uint64, error) {
	for i, unit := range hugePageUnits() {
		num, ok := strings.CutSuffix(s, unit)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil || n == 0 || num[0] == '0' {
			break
		}
		return n << (10 * (i + 1)), nil
	}
	return 0, fmt.Errorf("page size %q is not of the form <number><KB|MB|GB|TB|PB>", s)
}

// hugePageName renders a page size in bytes the way the kernel names
// hugetlb files: the largest unit that divides it ("2MB", "1GB").
func hugePageName(size uint64) string {
	units := hugePageUnits()
	unit := -1
	for size >= 1024 && size%1024 == 0 && unit < len(units)-1 {
		size /= 1024
		unit++
	}
	if unit < 0 {
		return strconv.FormatUint(size, 10) + "B"
	}
	return strconv.FormatUint(size, 10) + units[unit]
}
