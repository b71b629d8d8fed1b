package cgroups

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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
	// One descriptor per file, one write per rule (the kernel parses one
	// rule per write): a container's dozen default rules cost a dozen
	// writes, not a dozen opens.
	var allow, deny *os.File
	defer func() {
		for _, f := range []*os.File{allow, deny} {
			if f != nil {
				f.Close()
			}
		}
	}()
	for _, rule := range want.transition(cur, known) {
		name, f := "devices.deny", &deny
		if rule.allow {
			name, f = "devices.allow", &allow
		}
		value := rule.String()
		if *f == nil {
			if *f, err = openFile(dir, name, unix.O_WRONLY|unix.O_TRUNC); err != nil {
				return classifyWriteError(dir, name, value, err)
			}
		}
		if _, err := (*f).WriteString(value); err != nil {
			return classifyWriteError(dir, name, value, err)
		}
	}
	return nil
}

func (v1Devices) Stat(string, *Stats) error { return nil }
