package ocispec

// RunOptions are the options of one container, already parsed from the
// Docker API or the command line. The zero value asks for everything the
// image says and Docker's defaults; a field's comment names the docker run
// flag it carries.
type RunOptions struct {
	// ID is the container ID (required): it names the cgroup and gives the
	// default hostname (its first 12 characters).
	ID string
	// Hostname and Domainname (--hostname, --domainname) set the UTS names.
	Hostname, Domainname string
	// Env (-e, --env-file) is added to the image's environment, replacing
	// variables of the same name. An entry without "=" is kept as given.
	Env []string
	// Cmd replaces the image's Cmd when not nil. Entrypoint (--entrypoint)
	// replaces the image's Entrypoint when not nil, and then the image's Cmd
	// is not used either; []string{""} clears the entrypoint.
	Cmd, Entrypoint []string
	// User (-u) is name, uid, name:group, uid:gid (any mix), resolved in the
	// rootfs' /etc/passwd and /etc/group; empty means the image's user.
	User string
	// GroupAdd (--group-add) are supplementary groups, names or gids.
	GroupAdd []string
	// WorkingDir (-w) replaces the image's working directory; it must be
	// absolute.
	WorkingDir string
	// Tty (-t) gives the process a terminal. OpenStdin (-i) needs nothing
	// in the configuration (the shim holds stdin) and is kept for callers
	// that pass all options through.
	Tty, OpenStdin bool
	// ConsoleSize is the terminal's initial [height, width] (the client's
	// at create, as docker's CLI sends it); zero leaves the runtime's.
	ConsoleSize [2]uint
	// ReadOnly (--read-only) mounts the rootfs read-only.
	ReadOnly bool
	// Privileged (--privileged) grants all capabilities and host devices,
	// with no seccomp filter and no masked or read-only paths.
	Privileged bool
	// Init (--init) runs InitPath, a host path to an init binary such as
	// docker-init or tini, bind-mounted at InitDestination, as PID 1.
	Init     bool
	InitPath string
	// CapAdd and CapDrop (--cap-add, --cap-drop) take capability names with
	// or without the CAP_ prefix, in any case, or ALL.
	CapAdd, CapDrop []string
	// SecurityOpt (--security-opt): no-new-privileges[=true|false],
	// seccomp=unconfined, seccomp=<profile JSON>, systempaths=unconfined,
	// apparmor=<profile>, label=<...>. Key and value may also be separated
	// by ":" as older docker clients do.
	SecurityOpt []string
	// Memory and MemorySwap (--memory, --memory-swap) in bytes; MemorySwap
	// is memory plus swap, -1 unlimited, 0 twice Memory.
	Memory, MemorySwap int64
	// ShmSize (--shm-size) is the size of /dev/shm in bytes, 64 MiB if 0.
	ShmSize int64
	// NanoCPUs (--cpus) is the CPU quota in billionths of a CPU.
	NanoCPUs int64
	// CPUShares (--cpu-shares) is the relative CPU weight (v1 shares).
	CPUShares int64
	// CpusetCpus (--cpuset-cpus) lists the CPUs allowed, such as "0-2,4".
	CpusetCpus string
	// PidsLimit (--pids-limit): nil, 0 or -1 mean unlimited.
	PidsLimit *int64
	// BlkioWeight (--blkio-weight) is 10 to 1000, or 0 for the default.
	BlkioWeight uint16
	// OomScoreAdj (--oom-score-adj) is -1000 to 1000.
	OomScoreAdj int
	// Ulimits (--ulimit) set resource limits; none are set by default, so
	// the process inherits the runtime's.
	Ulimits []Ulimit
	// Devices (--device) are host device nodes made in the container.
	Devices []Device
	// Tmpfs (--tmpfs) maps a container path to tmpfs mount options
	// ("size=64m,exec"); noexec, nosuid and nodev apply unless overridden.
	Tmpfs map[string]string
	// Sysctls (--sysctl) are namespaced kernel parameters.
	Sysctls map[string]string
	// Labels (-l) become the configuration's annotations.
	Labels map[string]string
	// Mounts are binds and volumes, resolved by the engine to host paths.
	Mounts []Mount
	// NetworkMode is "", "bridge", "default", "none", "host" or
	// "container:<name>". With every mode but host the container gets a
	// network namespace; NetNSPath, when set, is the namespace to join (the
	// one the engine prepared, or the other container's: required for
	// container:).
	NetworkMode string
	NetNSPath   string
	// HostsPath, ResolvConfPath and HostnamePath are files the engine wrote
	// for the container, bind-mounted at /etc/hosts, /etc/resolv.conf and
	// /etc/hostname when set.
	HostsPath, ResolvConfPath, HostnamePath string
	// CgroupParent (--cgroup-parent) is the cgroup under which the
	// container's is made, "/berth" if empty.
	CgroupParent string
	// CgroupnsMode (--cgroupns) is "private" or "host"; empty means private
	// on cgroup v2 and host on v1, as docker does.
	CgroupnsMode string
	// StopSignal (--stop-signal) replaces the image's; it is recorded in the
	// StopSignalAnnotation annotation for the engine and the shim.
	StopSignal string
}

// Ulimit is one --ulimit: the name without RLIMIT_ ("nofile") and the soft
// and hard values.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Device is one --device: a host device node, the path it gets in the
// container (the host path if empty) and its cgroup permissions, a
// combination of r, w and m ("rwm" if empty).
type Device struct {
	PathOnHost, PathInContainer, CgroupPermissions string
}

// Mount is a bind mount or a volume, already resolved to a host path.
type Mount struct {
	// Source is the host path, Destination the absolute container path.
	Source, Destination string
	// ReadOnly mounts it read-only.
	ReadOnly bool
	// Propagation is one of private, rprivate (the default), shared,
	// rshared, slave or rslave.
	Propagation string
	// Options are further mount options (nosuid, noexec, nodev, ...).
	Options []string
}
