package main

import (
	"os"

	"berth.dev/runtime/caps"
	"berth.dev/runtime/rootfs"
	"berth.dev/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func runFeatures(g *globals, args []string) error {
	if _, err := parseArgs(newFlags("features", ""), args, 0, 0); err != nil {
		return err
	}
	yes, no := true, false
	_, apparmor := os.Stat("/sys/kernel/security/apparmor")
	_, selinux := os.Stat("/sys/fs/selinux/enforce")
	sc := seccomp.Features()
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  rootfs.MountOptions(),
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"},
			Capabilities: caps.Known(),
			Cgroup: &features.Cgroup{
				V1:          &yes,
				V2:          &yes,
				Systemd:     &no,
				SystemdUser: &no,
				Rdma:        &yes,
			},
			Seccomp:  &sc,
			Apparmor: &features.Apparmor{Enabled: boolPtr(apparmor == nil)},
			Selinux:  &features.Selinux{Enabled: boolPtr(selinux == nil)},
			IntelRdt: &features.IntelRdt{Enabled: &no},
		},
		Annotations: map[string]string{
			"dev.berth.runtime.version":         version,
			seccomp.LibseccompVersionAnnotation: seccomp.LibseccompVersion(),
		},
	}
	return printJSON(f)
}

func boolPtr(b bool) *bool { return &b }
