package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Devices drives the v1 devices controller. It writes only the rules
// that take the cgroup from its current state (devices.list) to the state
// the spec's rules lead to, so an update never denies, even briefly, a
// device that both the old and the new rules allow (see
// devices_v1state.go).
type v1Devices struct{}

func (v1Devices) Name() string { return "devices" }

func (v1Devices) Wants(r *specs.LinuxResources) bool { return len(r.Devices) > 0 }

func (v1Devices) Set(dir string, r *specs.LinuxResources) error {
	rules, err := normalizeDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	want := emulateDeviceRules(rules)
	cur, known := v1DeviceState{}, false
	if list, err := readFile(dir, "devices.list"); err == nil {
		if cur, known, err = parseDevicesList(list); err != nil {
			return err
		}
	}
	for _, rule := range want.transition(cur, known) {
		file := "devices.deny"
		if rule.allow {
			file = "devices.allow"
		}
		if err := setValue(dir, file, rule.String()); err != nil {
			return err
		}
	}
	return nil
}

func (v1Devices) Stat(string, *Stats) error { return nil }
