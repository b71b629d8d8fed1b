package spec

import (
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkLinux checks the linux section, which berth, a Linux runtime,
// requires.
func checkLinux(s *specs.Spec) error {
	if s.Linux == nil {
		return invalid("linux", "missing")
	}
	checks := []func(*specs.Spec) error{
		checkNamespaces,
		checkUserNamespace,
		checkTimeNamespace,
		checkUTS,
		checkSysctl,
		checkNetDevices,
		checkDevices,
		checkKernelPaths,
		checkRootfsPropagation,
		checkPersonality,
	}
	for _, check := range checks {
		if err := check(s); err != nil {
			return err
		}
	}
	return nil
}

// checkDevices checks the device nodes to create: a type mknod(2) knows
// (u is an unbuffered character device, the same as c) and an absolute path.
func checkDevices(s *specs.Spec) error {
	for i, d := range s.Linux.Devices {
		field := fmt.Sprintf("linux.devices[%d]", i)
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid(field+".type", "%q is not a device type (c, b, u or p)", d.Type)
		}
		if !filepath.IsAbs(d.Path) {
			return invalid(field+".path", "%q is not an absolute path", d.Path)
		}
	}
	return nil
}

// checkKernelPaths checks maskedPaths and readonlyPaths: absolute paths in
// the container, which the runtime can only cover with mounts of a mount
// namespace of the container's own.
func checkKernelPaths(s *specs.Spec) error {
	lists := []struct {
		name  string
		paths []string
	}{
		{"linux.maskedPaths", s.Linux.MaskedPaths},
		{"linux.readonlyPaths", s.Linux.ReadonlyPaths},
	}
	for _, l := range lists {
		if len(l.paths) > 0 && !hasNamespace(s, specs.MountNamespace) {
			return invalid(l.name, "needs a mount namespace")
		}
		for i, p := range l.paths {
			if !filepath.IsAbs(p) {
				return invalid(fmt.Sprintf("%s[%d]", l.name, i), "%q is not an absolute path", p)
			}
		}
	}
	return nil
}

func checkRootfsPropagation(s *specs.Spec) error {
	switch s.Linux.RootfsPropagation {
	case "", "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable":
		return nil
	}
	return invalid("linux.rootfsPropagation", "%q is not a propagation type", s.Linux.RootfsPropagation)
}

// checkPersonality accepts the execution domains of the runtime-spec. It
// defines no flags yet, so any flag is unsupported.
func checkPersonality(s *specs.Spec) error {
	p := s.Linux.Personality
	if p == nil {
		return nil
	}
	if p.Domain != specs.PerLinux && p.Domain != specs.PerLinux32 {
		return invalid("linux.personality.domain", "%q is not LINUX or LINUX32", p.Domain)
	}
	if len(p.Flags) > 0 {
		return invalid("linux.personality.flags", "no flags are supported")
	}
	return nil
}
