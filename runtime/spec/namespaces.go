package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxIDMappings is the kernel's limit on lines in uid_map and gid_map
// (user_namespaces(7)).
const maxIDMappings = 340

func isNamespaceType(t specs.LinuxNamespaceType) bool {
	switch t {
	case specs.MountNamespace, specs.NetworkNamespace, specs.PIDNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
		return true
	}
	return false
}

// namespace returns the entry of type t in linux.namespaces.
func namespace(s *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

// hasNamespace tells whether the container gets a namespace of type t other
// than the runtime's: a new one or one joined by path.
func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	_, ok := namespace(s, t)
	return ok
}

// hasNewNamespace tells whether the runtime creates a namespace of type t.
func hasNewNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	ns, ok := namespace(s, t)
	return ok && ns.Path == ""
}

func checkNamespaces(s *specs.Spec) error {
	seen := make(map[specs.LinuxNamespaceType]bool)
	for i, ns := range s.Linux.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		if !isNamespaceType(ns.Type) {
			return invalid(field+".type", "%q is not a namespace type", ns.Type)
		}
		if seen[ns.Type] {
			return invalid(field+".type", "%s namespace is listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if err := checkNamespacePath(field, ns); err != nil {
			return err
		}
	}
	return nil
}

// checkNamespacePath requires a namespace to join to be a namespace file of
// the declared type, and a namespace to create to be supported by the kernel.
func checkNamespacePath(field string, ns specs.LinuxNamespace) error {
	if ns.Path == "" {
		if err := kernelHasNamespace(ns.Type); err != nil {
			return &FieldError{Field: field + ".type", Reason: "the kernel cannot create a " + string(ns.Type) + " namespace", Err: err}
		}
		return nil
	}
	if !filepath.IsAbs(ns.Path) {
		return invalid(field+".path", "%q is not an absolute path", ns.Path)
	}
	got, err := namespaceFileType(ns.Path)
	if err != nil {
		return &FieldError{Field: field + ".path", Reason: "not a namespace file", Err: err}
	}
	if got != ns.Type {
		return invalid(field+".path", "%s is a namespace of type %s, not %s", ns.Path, got, ns.Type)
	}
	return nil
}

// checkUserNamespace ties the id mappings to the user namespace: mappings
// need one, and a new one needs both mappings (the kernel leaves unmapped ids
// unusable, so setuid/setgid in the container would fail).
func checkUserNamespace(s *specs.Spec) error {
	l := s.Linux
	hasMaps := len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0
	switch {
	case !hasNamespace(s, specs.UserNamespace) && hasMaps:
		return invalid("linux.uidMappings", "id mappings are set but there is no user namespace")
	case hasNewNamespace(s, specs.UserNamespace) && len(l.UIDMappings) == 0:
		return invalid("linux.uidMappings", "a new user namespace needs uid mappings")
	case hasNewNamespace(s, specs.UserNamespace) && len(l.GIDMappings) == 0:
		return invalid("linux.gidMappings", "a new user namespace needs gid mappings")
	}
	if err := checkIDMappings("linux.uidMappings", l.UIDMappings); err != nil {
		return err
	}
	return checkIDMappings("linux.gidMappings", l.GIDMappings)
}

// checkIDMappings applies the kernel's rules for uid_map/gid_map: at most
// maxIDMappings non-empty ranges within 32 bits, overlapping neither on the
// container side nor on the host side.
func checkIDMappings(field string, maps []specs.LinuxIDMapping) error {
	if len(maps) > maxIDMappings {
		return invalid(field, "%d mappings, the kernel takes at most %d", len(maps), maxIDMappings)
	}
	for i, m := range maps {
		f := fmt.Sprintf("%s[%d]", field, i)
		if m.Size == 0 {
			return invalid(f+".size", "must not be zero")
		}
		if uint64(m.ContainerID)+uint64(m.Size) > 1<<32 || uint64(m.HostID)+uint64(m.Size) > 1<<32 {
			return invalid(f, "range %d+%d / %d+%d goes beyond 32-bit ids", m.ContainerID, m.Size, m.HostID, m.Size)
		}
		for j, o := range maps[:i] {
			if overlaps(m.ContainerID, o.ContainerID, m.Size, o.Size) || overlaps(m.HostID, o.HostID, m.Size, o.Size) {
				return invalid(f, "overlaps %s[%d]", field, j)
			}
		}
	}
	return nil
}

func overlaps(a, b, sizeA, sizeB uint32) bool {
	return uint64(a) < uint64(b)+uint64(sizeB) && uint64(b) < uint64(a)+uint64(sizeA)
}

// checkTimeNamespace allows offsets only for a new time namespace, and only
// for the clocks time_namespaces(7) can offset.
func checkTimeNamespace(s *specs.Spec) error {
	if len(s.Linux.TimeOffsets) == 0 {
		return nil
	}
	ns, ok := namespace(s, specs.TimeNamespace)
	if !ok {
		return invalid("linux.timeOffsets", "offsets are set but there is no time namespace")
	}
	if ns.Path != "" {
		return invalid("linux.timeOffsets", "offsets cannot be applied to the joined time namespace %s", ns.Path)
	}
	for clock, off := range s.Linux.TimeOffsets {
		if clock != "monotonic" && clock != "boottime" {
			return invalid("linux.timeOffsets."+clock, "only the monotonic and boottime clocks can be offset")
		}
		if off.Nanosecs >= 1e9 {
			return invalid("linux.timeOffsets."+clock+".nanosecs", "%d is not below one second", off.Nanosecs)
		}
	}
	return nil
}

// checkUTS requires a UTS namespace of the container's own for a host or
// domain name, so that the runtime never renames the host.
func checkUTS(s *specs.Spec) error {
	if hasNamespace(s, specs.UTSNamespace) {
		return nil
	}
	if s.Hostname != "" {
		return invalid("hostname", "setting it needs a uts namespace")
	}
	if s.Domainname != "" {
		return invalid("domainname", "setting it needs a uts namespace")
	}
	return nil
}

// isIPCSysctl tells whether a sysctl belongs to the IPC namespace.
func isIPCSysctl(key string) bool {
	switch key {
	case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced":
		return true
	}
	return strings.HasPrefix(key, "fs.mqueue.")
}

// checkSysctl allows only the sysctls that are scoped to a namespace the
// container does not share with the runtime: /proc/sys is mostly global, and
// writing anything else would change the host.
func checkSysctl(s *specs.Spec) error {
	for key := range s.Linux.Sysctl {
		if err := checkSysctlKey(s, sysctlDotted(key)); err != nil {
			return err
		}
	}
	return nil
}

func checkSysctlKey(s *specs.Spec, key string) error {
	field := "linux.sysctl." + key
	switch {
	case isIPCSysctl(key):
		if !hasNamespace(s, specs.IPCNamespace) {
			return invalid(field, "needs an ipc namespace")
		}
		return nil
	case strings.HasPrefix(key, "net."):
		return checkNetSysctl(s, field)
	case key == "kernel.hostname":
		return invalid(field, "use the hostname field instead")
	case key == "kernel.domainname":
		if !hasNamespace(s, specs.UTSNamespace) {
			return invalid(field, "needs a uts namespace")
		}
		return nil
	case strings.HasPrefix(key, "user."):
		if !hasNamespace(s, specs.UserNamespace) {
			return invalid(field, "needs a user namespace")
		}
		return nil
	}
	return invalid(field, "not scoped to a namespace of the container")
}

// checkNetSysctl requires a network namespace that is not the runtime's own:
// a new one, or a joined one other than the current.
func checkNetSysctl(s *specs.Spec, field string) error {
	ns, ok := namespace(s, specs.NetworkNamespace)
	if !ok {
		return invalid(field, "needs a network namespace")
	}
	if ns.Path == "" {
		return nil
	}
	same, err := sameFile(ns.Path, "/proc/self/ns/net")
	if err != nil {
		return &FieldError{Field: field, Reason: "cannot compare network namespaces", Err: err}
	}
	if same {
		return invalid(field, "the joined network namespace %s is the runtime's own", ns.Path)
	}
	return nil
}

// sysctlDotted normalises a sysctl name written with slashes
// ("net/ipv4/conf/eth0.100/rp_filter") to the dotted form
// ("net.ipv4.conf.eth0/100.rp_filter"), as sysctl(8) does: the first
// separator decides which form is used.
func sysctlDotted(key string) string {
	i := strings.IndexAny(key, "./")
	if i < 0 || key[i] == '.' {
		return key
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, key)
}

// checkNetDevices requires a network namespace to move devices into, and
// names the kernel accepts for interfaces (dev_valid_name).
func checkNetDevices(s *specs.Spec) error {
	if len(s.Linux.NetDevices) == 0 {
		return nil
	}
	if !hasNamespace(s, specs.NetworkNamespace) {
		return invalid("linux.netDevices", "moving devices needs a network namespace")
	}
	for host, d := range s.Linux.NetDevices {
		if !validIfName(host) {
			return invalid("linux.netDevices", "%q is not a valid interface name", host)
		}
		if d.Name != "" && !validIfName(d.Name) {
			return invalid("linux.netDevices."+host+".name", "%q is not a valid interface name", d.Name)
		}
	}
	return nil
}

// validIfName mirrors the kernel's dev_valid_name: 1 to 15 bytes (IFNAMSIZ
// less the NUL), not "." or "..", no '/', ':' or whitespace.
func validIfName(name string) bool {
	if name == "" || len(name) >= 16 || name == "." || name == ".." {
		return false
	}
	return !strings.ContainsAny(name, "/: \t\n\v\f\r")
}
