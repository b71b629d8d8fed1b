package ocispec

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InitDestination is where --init's binary is bind-mounted, the path
// docker uses, so that process listings look the same.
const InitDestination = "/sbin/docker-init"

// ociVersion is the runtime-spec version the generated configurations
// declare: the one dockerd declares, which every runtime of --runtime
// takes (crun 1.8 refuses 1.3.0), and nothing berth generates needs more.
const ociVersion = "1.0.2-dev"

// StopSignalAnnotation records the signal that stops the container: the
// --stop-signal option, else the image's, else SIGTERM.
const StopSignalAnnotation = "dev.berth.stop-signal"

// DefaultShmSize is the size of /dev/shm when RunOptions.ShmSize is 0.
const DefaultShmSize = 64 << 20

// defaultCgroupParent holds the containers' cgroups when no parent is given.
const defaultCgroupParent = "/berth"

// defaultPath is the PATH of a process whose image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultCapabilities is docker's capability set for an unprivileged
// container: enough to change file owners, bind low ports, use raw sockets
// and switch users, not to administer the host.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// knownCapabilities are the Linux capabilities in the order of their
// numbers (capabilities(7)); the kernel may know fewer (cap_last_cap).
var knownCapabilities = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// maskedPaths hide kernel information and interfaces from the container:
// the runtime mounts /dev/null (files) or an empty read-only tmpfs (dirs)
// over them.
func maskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
		"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

// readonlyPaths are kernel interfaces the container may read, not write.
func readonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// defaultMounts are the kernel filesystems of every container. A
// privileged container gets /sys and its cgroup tree writable.
func defaultMounts(shmSize int64, privileged bool) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
		cgOpts = []string{"rw", "nosuid", "noexec", "nodev"}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize, 10)}},
	}
}

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// defaultDeviceRules deny every device but the ones each container gets
// (the runtime creates their nodes): null, zero, full, random, urandom,
// tty, the pty master and slaves, and tun; mknod of any node is allowed, as
// creating a node does not give access to it.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		devRule("c", -1, -1, "m"),
		devRule("b", -1, -1, "m"),
		devRule("c", 1, 3, "rwm"),    // /dev/null
		devRule("c", 1, 5, "rwm"),    // /dev/zero
		devRule("c", 1, 7, "rwm"),    // /dev/full
		devRule("c", 1, 8, "rwm"),    // /dev/random
		devRule("c", 1, 9, "rwm"),    // /dev/urandom
		devRule("c", 5, 0, "rwm"),    // /dev/tty
		devRule("c", 5, 1, "rwm"),    // /dev/console
		devRule("c", 5, 2, "rwm"),    // /dev/pts/ptmx
		devRule("c", 136, -1, "rwm"), // /dev/pts/*
		devRule("c", 10, 200, "rwm"), // /dev/net/tun
	}
}
