package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules are the device cgroup rules every container gets after
// the spec's own, as with runc: the default devices the runtime creates in
// /dev, the pty devices, and mknod of any device (creating a node is
// harmless while opening it is denied).
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Access: "m"},
	{Allow: true, Type: "b", Access: "m"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},    // /dev/null
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"},    // /dev/random
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"},    // /dev/full
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"},    // /dev/tty
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},    // /dev/zero
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"},    // /dev/urandom
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"},    // /dev/console
	{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},                 // /dev/pts/*
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"},    // /dev/ptmx
	{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"}, // /dev/net/tun
}

// cgroupResources returns the resources to apply at create: the spec's,
// with device rules completed so that the devices the container is given
// (the defaults and linux.devices) can be opened.
func cgroupResources(s *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if s.Linux.Resources != nil {
		r = *s.Linux.Resources
	}
	rules := append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	rules = append(rules, defaultDeviceRules...)
	for _, d := range s.Linux.Devices {
		typ := d.Type
		switch typ {
		case "p":
			// A FIFO is no device: the device cgroup has nothing to allow.
			continue
		case "u":
			typ = "c"
		}
		rules = append(rules, specs.LinuxDeviceCgroup{
			Allow:  true,
			Type:   typ,
			Major:  i64(d.Major),
			Minor:  i64(d.Minor),
			Access: "rwm",
		})
	}
	r.Devices = rules
	return &r
}
