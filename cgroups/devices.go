package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A device rule in the form both drivers use: v1 writes it to devices.allow
// or devices.deny, v2 compiles the list into an eBPF program.

// anyDevice is the wildcard major or minor number ("*").
const anyDevice = -1

// deviceRule is a validated linux.resources.devices entry.
type deviceRule struct {
	allow bool
	// typ is 'a' (all), 'b' (block) or 'c' (char).
	typ byte
	// major and minor are anyDevice for "*".
	major, minor int64
	// access is a non-empty subset of "rwm", in that order.
	access string
}

// String renders the rule in the v1 devices.allow/deny syntax
// ("c 1:3 rwm"; "a" for all devices: the kernel ignores the rest of an
// 'a' rule, access included).
func (d deviceRule) String() string {
	if d.typ == 'a' {
		return "a"
	}
	num := func(n int64) string {
		if n == anyDevice {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", d.typ, num(d.major), num(d.minor), d.access)
}

// matchesAll reports whether the rule covers every device. Only type 'a'
// does: its numbers are ignored, as by the v1 kernel, while "c *:*" still
// leaves block devices out.
func (d deviceRule) matchesAll() bool {
	return d.typ == 'a'
}

// normalizeDeviceRules validates spec device rules and fills the defaults
// the spec gives: no type means 'a', no number means '*', no access means
// "rwm". Errors wrap ErrInvalid.
func normalizeDeviceRules(in []specs.LinuxDeviceCgroup) ([]deviceRule, error) {
	out := make([]deviceRule, 0, len(in))
	for i, d := range in {
		r, err := normalizeDeviceRule(d)
		if err != nil {
			return nil, fmt.Errorf("%w: device rule %d: %v", ErrInvalid, i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func normalizeDeviceRule(d specs.LinuxDeviceCgroup) (deviceRule, error) {
	r := deviceRule{allow: d.Allow, major: anyDevice, minor: anyDevice}
	switch d.Type {
	case "", "a":
		r.typ = 'a'
	case "b", "c":
		r.typ = d.Type[0]
	default:
		return r, fmt.Errorf("unknown device type %q (want a, b or c)", d.Type)
	}
	for _, n := range []struct {
		name string
		src  *int64
		dst  *int64
	}{{"major", d.Major, &r.major}, {"minor", d.Minor, &r.minor}} {
		if n.src == nil {
			continue
		}
		if *n.src < anyDevice || *n.src > math.MaxInt32 {
			return r, fmt.Errorf("%s number %d is out of range", n.name, *n.src)
		}
		*n.dst = *n.src
	}
	access, err := normalizeAccess(d.Access)
	if err != nil {
		return r, err
	}
	r.access = access
	return r, nil
}

// normalizeAccess checks an access string and returns it in "rwm" order.
func normalizeAccess(s string) (string, error) {
	if s == "" {
		return "rwm", nil
	}
	for _, c := range s {
		if !strings.ContainsRune("rwm", c) {
			return "", fmt.Errorf("device access %q has %q (want a combination of r, w and m)", s, c)
		}
	}
	var b strings.Builder
	for _, c := range "rwm" {
		if strings.ContainsRune(s, c) {
			b.WriteRune(c)
		}
	}
	return b.String(), nil
}
