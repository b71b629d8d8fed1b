package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Devices drives the v1 devices controller: each rule, in the spec's
// order, is written to devices.allow or devices.deny.
//
// Known weakness: an update that starts with "deny all" briefly denies
// every device to running processes until the allow rules that follow are
// written. runc avoids that by diffing against devices.list; berth does
// not yet.
type v1Devices struct{}

func (v1Devices) Name() string { return "devices" }

func (v1Devices) Wants(r *specs.LinuxResources) bool { return len(r.Devices) > 0 }

func (v1Devices) Set(dir string, r *specs.LinuxResources) error {
	rules, err := normalizeDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	for _, rule := range rules {
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
