package ocispec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

// Generate returns the OCI runtime configuration of a container created
// from the image config img with the options o. rootfs is the container's
// mounted root filesystem: it becomes root.path, and the user of -u or of
// the image is resolved in its /etc/passwd and /etc/group, which are never
// read outside it even through symlinks. HOME comes from the passwd entry
// ("/" without one) unless the environment sets it.
//
// Errors wrap errdefs.ErrInvalidArgument for options docker would refuse
// (an unknown user or capability, a memory limit below 6 MB, a seccomp
// profile that does not parse, an AppArmor profile or SELinux label on a
// host without that security module...) and errdefs.ErrNotImplemented for
// SELinux labels on a host that has SELinux.
//
// The result passes berth.dev/runtime/spec.Validate for creation.
func Generate(img image.Config, rootfs string, o RunOptions) (*specs.Spec, error) {
	if !validID(o.ID) {
		return nil, invalidf("container ID %q: want letters, digits, '_', '.' and '-', starting with a letter or digit", o.ID)
	}
	if !path.IsAbs(rootfs) {
		return nil, invalidf("rootfs %q is not an absolute path", rootfs)
	}
	host := readHostFacts()
	sec, err := parseSecurityOpts(o.SecurityOpt)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version:     ociVersion,
		Root:        &specs.Root{Path: rootfs, Readonly: o.ReadOnly},
		Hostname:    o.Hostname,
		Domainname:  o.Domainname,
		Annotations: map[string]string{},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath(o),
			Resources:   &specs.LinuxResources{Devices: defaultDeviceRules()},
		},
	}
	if s.Hostname == "" {
		s.Hostname = o.ID[:min(12, len(o.ID))]
	}
	steps := []func() error{
		func() error { return process(s, img, rootfs, o, sec) },
		func() error { return namespaces(s, o, host) },
		func() error { return mounts(s, o) },
		func() error { return linuxResources(s, o) },
		func() error { return privileges(s, o, sec, host) },
		func() error { return annotations(s, img, o) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// validID accepts the IDs that can name a cgroup directory without
// leaving the parent: no "/", no "." or "..".
func validID(id string) bool {
	if id == "" || !isAlnum(id[0]) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// cgroupsPath is <parent>/<id>, the parent being /berth by default.
func cgroupsPath(o RunOptions) string {
	parent := o.CgroupParent
	if parent == "" {
		parent = defaultCgroupParent
	}
	return path.Join("/", parent, o.ID)
}

// process fills in what runs: arguments, environment, user, working
// directory, terminal and rlimits.
func process(s *specs.Spec, img image.Config, rootfs string, o RunOptions, sec securityOpts) error {
	args, err := arguments(img, o)
	if err != nil {
		return err
	}
	if o.Init {
		args = append([]string{InitDestination, "--"}, args...)
	}
	cwd := o.WorkingDir
	if cwd == "" {
		cwd = img.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return invalidf("the working directory %q is invalid, it needs to be an absolute path", cwd)
	}
	userSpec := o.User
	if userSpec == "" {
		userSpec = img.Config.User
	}
	u, err := resolveUser(rootfs, userSpec, o.GroupAdd)
	if err != nil {
		return err
	}
	rl, err := rlimits(o.Ulimits)
	if err != nil {
		return err
	}
	if err := checkRlimitCeilings(rl); err != nil {
		return err
	}
	if o.OomScoreAdj < -1000 || o.OomScoreAdj > 1000 {
		return invalidf("invalid value %d, range for oom score adj is [-1000, 1000]", o.OomScoreAdj)
	}
	oom := o.OomScoreAdj
	var console *specs.Box
	if o.Tty && o.ConsoleSize[0] > 0 && o.ConsoleSize[1] > 0 {
		console = &specs.Box{Height: o.ConsoleSize[0], Width: o.ConsoleSize[1]}
	}
	s.Process = &specs.Process{
		ConsoleSize:     console,
		Terminal:        o.Tty,
		User:            u.user,
		Args:            args,
		Env:             environment(img.Config.Env, o, s.Hostname, u.home),
		Cwd:             path.Clean(cwd),
		Rlimits:         rl,
		NoNewPrivileges: sec.noNewPrivileges,
		OOMScoreAdj:     &oom,
	}
	return nil
}

// arguments joins entrypoint and command as docker does: --entrypoint
// replaces the image's entrypoint and drops its Cmd; [""] clears it.
func arguments(img image.Config, o RunOptions) ([]string, error) {
	entrypoint, cmd := img.Config.Entrypoint, img.Config.Cmd
	if o.Entrypoint != nil {
		entrypoint, cmd = o.Entrypoint, nil
		if len(entrypoint) == 1 && entrypoint[0] == "" {
			entrypoint = nil
		}
	}
	if o.Cmd != nil {
		cmd = o.Cmd
	}
	args := append(append([]string(nil), entrypoint...), cmd...)
	if len(args) == 0 || args[0] == "" {
		return nil, invalidf("no command specified")
	}
	return args, nil
}

// environment is PATH (the default when the image has none), HOSTNAME,
// TERM=xterm with a terminal, the image's variables and then the options',
// a later one replacing an earlier one of the same name and a name without
// "=" removing it (as docker does with -e NAME when the client has no NAME),
// and HOME from the user's passwd entry when nothing set it.
func environment(imageEnv []string, o RunOptions, hostname, home string) []string {
	base := []string{"PATH=" + defaultPath, "HOSTNAME=" + hostname}
	if o.Tty {
		base = append(base, "TERM=xterm")
	}
	var env []string
	for _, kv := range append(append(base, imageEnv...), o.Env...) {
		k, _, hasValue := strings.Cut(kv, "=")
		i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		switch {
		case !hasValue && i >= 0:
			env = slices.Delete(env, i, i+1)
		case !hasValue:
		case i >= 0:
			env[i] = kv
		default:
			env = append(env, kv)
		}
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		env = append(env, "HOME="+home)
	}
	return env
}

// namespaces gives the container new pid, ipc, uts and mount namespaces, a
// network namespace unless it uses the host's, and a cgroup namespace of
// its own when private (docker's default on cgroup v2).
func namespaces(s *specs.Spec, o RunOptions, host hostFacts) error {
	ns := []specs.LinuxNamespace{
		{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
	}
	mode := o.NetworkMode
	switch {
	case mode == "host":
		if o.NetNSPath != "" {
			return invalidf("network mode host does not take a network namespace path")
		}
		ns = slicesDelete(ns, specs.NetworkNamespace)
	case mode == "", mode == "default", mode == "bridge", mode == "none":
		ns[1].Path = o.NetNSPath
	case strings.HasPrefix(mode, "container:"):
		if o.NetNSPath == "" {
			return invalidf("network mode %s needs the path of that container's network namespace", mode)
		}
		ns[1].Path = o.NetNSPath
	default:
		// A user-defined network: the engine made the namespace.
		ns[1].Path = o.NetNSPath
	}
	if o.NetNSPath != "" && !path.IsAbs(o.NetNSPath) {
		return invalidf("network namespace path %q is not absolute", o.NetNSPath)
	}
	switch o.CgroupnsMode {
	case "private":
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	case "host":
	case "":
		if host.cgroup2 {
			ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
	default:
		return invalidf("invalid cgroup namespace mode %q: private or host", o.CgroupnsMode)
	}
	s.Linux.Namespaces = ns
	return nil
}

func slicesDelete(ns []specs.LinuxNamespace, t specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, n := range ns {
		if n.Type != t {
			out = append(out, n)
		}
	}
	return out
}

func mounts(s *specs.Spec, o RunOptions) error {
	shm := o.ShmSize
	if shm < 0 {
		return invalidf("shm size %d is negative", shm)
	}
	if shm == 0 {
		shm = DefaultShmSize
	}
	user, err := userMounts(o)
	if err != nil {
		return err
	}
	s.Mounts = mergeMounts(defaultMounts(shm, o.Privileged), user)
	s.Linux.RootfsPropagation = rootfsPropagation(s.Mounts)
	return nil
}

func linuxResources(s *specs.Spec, o RunOptions) error {
	if err := resources(s.Linux.Resources, o); err != nil {
		return err
	}
	nodes, rules, err := userDevices(o.Devices)
	if err != nil {
		return err
	}
	s.Linux.Devices = nodes
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rules...)
	_, hasNet := namespaceOf(s, specs.NetworkNamespace)
	sc, err := sysctls(o.Sysctls, !hasNet)
	if err != nil {
		return err
	}
	if hasNet && !strings.HasPrefix(o.NetworkMode, "container:") {
		sc = privateNetSysctls(sc)
	}
	s.Linux.Sysctl = sc
	return nil
}

// privateNetSysctls adds what docker sets in a network namespace of the
// container's own, unless the user set it: any port may be bound without
// CAP_NET_BIND_SERVICE, and any group may open ICMP echo sockets (ping
// without CAP_NET_RAW). Both only concern the container's namespace.
func privateNetSysctls(sc map[string]string) map[string]string {
	if sc == nil {
		sc = map[string]string{}
	}
	for k, v := range map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "0",
		"net.ipv4.ping_group_range":           "0 2147483647",
	} {
		if _, ok := sc[k]; !ok {
			sc[k] = v
		}
	}
	return sc
}

func namespaceOf(s *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	for _, n := range s.Linux.Namespaces {
		if n.Type == t {
			return n, true
		}
	}
	return specs.LinuxNamespace{}, false
}

// privileges sets capabilities, kernel path masking, devices, seccomp and
// the security modules. --privileged lifts all of them but an explicit
// no-new-privileges.
func privileges(s *specs.Spec, o RunOptions, sec securityOpts, host hostFacts) error {
	caps, err := capabilities(o.CapAdd, o.CapDrop, host.allCaps, o.Privileged)
	if err != nil {
		return err
	}
	// Like docker, a process of another user than root only keeps the
	// bounding set: it may regain capabilities through file capabilities
	// or setuid binaries (unless no-new-privileges), not start with them.
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps}
	if s.Process.User.UID == 0 {
		s.Process.Capabilities.Effective = caps
		s.Process.Capabilities.Permitted = caps
	}
	if !o.Privileged && !sec.systemPathsUnconfined {
		s.Linux.MaskedPaths = maskedPaths()
		s.Linux.ReadonlyPaths = readonlyPaths()
	}
	if o.Privileged {
		devs, err := hostDevices()
		if err != nil {
			return fmt.Errorf("list host devices for a privileged container: %w", err)
		}
		s.Linux.Devices = append(devs, s.Linux.Devices...)
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	if err := seccompProfile(s, o, sec); err != nil {
		return err
	}
	return securityModules(s, sec, host)
}

// seccompProfile applies moby's default profile, filtered for the
// container's capabilities and this architecture, or the profile given.
// A privileged container runs without a filter, as in docker.
func seccompProfile(s *specs.Spec, o RunOptions, sec securityOpts) error {
	if o.Privileged || sec.seccomp == "unconfined" {
		return nil
	}
	var (
		prof *specs.LinuxSeccomp
		err  error
	)
	if sec.seccomp == "" {
		prof, err = seccomp.GetDefaultProfile(s)
	} else {
		prof, err = seccomp.LoadProfile(sec.seccomp, s)
	}
	if err != nil {
		return fmt.Errorf("%w: seccomp profile: %w", errdefs.ErrInvalidArgument, err)
	}
	s.Linux.Seccomp = prof
	return nil
}

// securityModules honours apparmor= and label= only where the host runs
// that module; berth loads no AppArmor profile of its own, so without
// apparmor= none is set.
func securityModules(s *specs.Spec, sec securityOpts, host hostFacts) error {
	if sec.apparmor != "" {
		if !host.apparmor {
			return invalidf("apparmor=%s: AppArmor is not enabled on this host", sec.apparmor)
		}
		s.Process.ApparmorProfile = sec.apparmor
	}
	if len(sec.labels) > 0 {
		if !host.selinux {
			return invalidf("label=%s: SELinux is not enabled on this host", sec.labels[0])
		}
		return fmt.Errorf("%w: SELinux labels (label=%s)", errdefs.ErrNotImplemented, sec.labels[0])
	}
	return nil
}

// annotations are the labels, and the stop signal for the engine.
func annotations(s *specs.Spec, img image.Config, o RunOptions) error {
	for k, v := range o.Labels {
		if k == "" {
			return invalidf("label with an empty key")
		}
		s.Annotations[k] = v
	}
	sig := o.StopSignal
	if sig == "" {
		sig = img.Config.StopSignal
	}
	if sig == "" {
		sig = "SIGTERM"
	}
	if err := checkSignal(sig); err != nil {
		return err
	}
	s.Annotations[StopSignalAnnotation] = sig
	return nil
}
