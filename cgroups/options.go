package cgroups

// DefaultMountRoot is where the host's cgroup filesystems are mounted.
const DefaultMountRoot = "/sys/fs/cgroup"

// Option adjusts how New finds and drives the cgroup filesystem.
type Option func(*config)

type config struct {
	mountRoot string
	mode      *Mode
	// procSelfCgroup and mountinfo let tests replace
	// /proc/self/cgroup and /proc/self/mountinfo.
	procSelfCgroup string
	mountinfo      string
	// skipEnable stops the v2 driver from writing cgroup.subtree_control:
	// used by tests on a shared hierarchy whose root they do not own.
	skipEnable bool
}

// WithMountRoot sets the directory under which the cgroup filesystems are
// mounted (default /sys/fs/cgroup). For v2 it is the cgroup2 mount itself;
// for v1 the directory that holds one mount per hierarchy.
func WithMountRoot(dir string) Option {
	return func(c *config) { c.mountRoot = dir }
}

// WithMode skips detection and drives the hierarchy as the given mode.
// Hybrid and Legacy both select the v1 driver.
func WithMode(m Mode) Option {
	return func(c *config) { c.mode = &m }
}

func newConfig(opts []Option) config {
	c := config{
		mountRoot:      DefaultMountRoot,
		procSelfCgroup: "/proc/self/cgroup",
		mountinfo:      "/proc/self/mountinfo",
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}
