package rootfs

import (
	"berth.dev/internal/mountopt"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrInvalid marks errors caused by a configuration that cannot be
// honoured as given (a bad option, path, device type...). Such errors are
// reported before anything is mounted or created.
var ErrInvalid = errors.New("invalid root filesystem configuration")

// Config describes the root filesystem to set up. The same Config is passed
// to Prepare, Pivot and Finalize.
type Config struct {
	// Spec is the container's configuration: root, mounts and the linux
	// devices, maskedPaths, readonlyPaths and rootfsPropagation.
	Spec *specs.Spec
	// Rootfs is the absolute host path of the root filesystem
	// (Spec.Root.Path made absolute).
	Rootfs string
	// Bundle is the directory relative bind-mount sources are resolved
	// against. Empty means the current directory.
	Bundle string
	// NoPivot switches the root with MS_MOVE and chroot instead of
	// pivot_root (runc's --no-pivot).
	NoPivot bool
	// SharedMountNS says the container has no mount namespace of its own
	// and works in the runtime's: Prepare leaves the propagation of "/"
	// alone and makes only the rootfs bind private, Pivot just chroots,
	// and the container's mounts stay in that namespace until Unmount.
	SharedMountNS bool
	// UserNS says the container has its own user namespace: device nodes
	// are bind-mounted from the host instead of created, remounts keep the
	// flags the kernel locked, and sysfs falls back to a bind of /sys when
	// it cannot be mounted.
	UserNS bool
	// CgroupNS says the container has its own cgroup namespace: "cgroup"
	// mounts are real cgroup filesystems instead of binds of the
	// container's cgroup directories.
	CgroupNS bool
	// ProcDir is the /proc directory of the container's init, where
	// Prepare reads its cgroups and mount table; empty means /proc/self
	// (Prepare runs in the init).
	ProcDir string
	// ProcFS, when positive, is a procfs filesystem context (fsopen(2))
	// made in the container's PID namespace: the procfs mount is made
	// from it. A procfs shows the PID namespace of the process that
	// creates it, and a Prepare outside the init (CanPrepareOutside)
	// runs in a thread that cannot enter that namespace.
	ProcFS int
	// CgroupLayout, if set, gives the init's cgroups as
	// ParseCgroupLayout makes them of its mountinfo and cgroup files
	// (what Prepare would read from ProcDir for the cgroup mounts): the
	// caller may work them out while Prepare makes the mounts before.
	CgroupLayout func() (*CgroupLayout, error)
	// Sys performs the kernel calls; nil means the real kernel.
	Sys Syscalls

	// plan is the plan Prepare, Pivot and Finalize work from, made by
	// the first of them: the Config must not change between them.
	plan *plan
}

// CanPrepareOutside reports whether Prepare may run outside the init, in
// a thread of another process that has entered the container's mount,
// network, IPC and cgroup namespaces, with ProcDir and ProcFS set: the
// container has its own mount namespace and no user namespace (a thread
// cannot enter one), its rootfs is an absolute path, and it has at most
// one procfs mount (one context makes one), whose flags mount attributes
// express.
func CanPrepareOutside(c *Config) bool {
	if c.UserNS || c.SharedMountNS || !filepath.IsAbs(c.Rootfs) {
		return false
	}
	pl, err := newPlan(c)
	if err != nil {
		return false
	}
	procs := 0
	for _, m := range pl.mounts {
		if m.kind == "proc" {
			procs++
			if _, ok := mountAttrs(m.opts.flags); !ok {
				return false
			}
		}
	}
	return procs <= 1
}

// NeedsProcFS reports whether Prepare mounts a procfs (for which a Prepare
// outside the init needs Config.ProcFS): the mounts as Prepare reads them,
// where a "proc" entry with bind options is a bind.
func NeedsProcFS(c *Config) bool {
	pl, err := newPlan(c)
	if err != nil {
		return false
	}
	for _, m := range pl.mounts {
		if m.kind == "proc" {
			return true
		}
	}
	return false
}

// mountAttrs turns the MS_* flags of a new mount into the MOUNT_ATTR_*
// flags of fsmount(2); ok is false for a flag that has none.
func mountAttrs(flags uintptr) (attrs int, ok bool) {
	table := [...]struct {
		ms   uintptr
		attr int
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME},
		{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
		{unix.MS_RELATIME, unix.MOUNT_ATTR_RELATIME},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{unix.MS_NOSYMFOLLOW, unix.MOUNT_ATTR_NOSYMFOLLOW},
	}
	for _, t := range table {
		if flags&t.ms != 0 {
			attrs |= t.attr
			flags &^= t.ms
		}
	}
	return attrs, flags == 0
}

// procDir is where the init's /proc files are read.
func (c *Config) procDir() string {
	if c.ProcDir == "" {
		return "/proc/self"
	}
	return c.ProcDir
}

func (c *Config) sys() Syscalls {
	if c.Sys == nil {
		return kernel{}
	}
	return c.Sys
}

// kindBind is the kind of a mount whose options contain bind or rbind.
const kindBind = "bind"

// mountEntry is a spec mount, validated and parsed.
type mountEntry struct {
	kind   string // filesystem type, or kindBind
	source string
	dest   string // clean absolute path inside the container
	opts   mountOptions
}

// device is a validated linux.devices entry (or a default device).
type device struct {
	path     string // clean absolute path inside the container
	mode     uint32 // S_IF* type | permission bits
	major    int64
	minor    int64
	uid, gid int
}

// plan is everything Prepare, Pivot and Finalize do, checked up front so
// bad input fails before the first mount.
type plan struct {
	rootfs        string
	mounts        []mountEntry
	devices       []device
	setupDev      bool    // no bind mount on /dev: create devices and links
	prepareProp   uintptr // propagation applied to "/" before the rootfs bind
	parentProp    uintptr // propagation applied to the mount holding the rootfs
	finalProp     uintptr // propagation applied to the new "/" at the end, or 0
	maskedPaths   []string
	readonlyPaths []string
	readonlyRoot  bool
}

func newPlan(c *Config) (*plan, error) {
	if c != nil && c.plan != nil {
		return c.plan, nil
	}
	if c == nil || c.Spec == nil || c.Spec.Root == nil {
		return nil, fmt.Errorf("%w: no spec or no root", ErrInvalid)
	}
	rootfs := filepath.Clean(c.Rootfs)
	if !filepath.IsAbs(rootfs) || rootfs == "/" {
		return nil, fmt.Errorf("%w: rootfs %q must be an absolute path other than /", ErrInvalid, c.Rootfs)
	}
	p := &plan{rootfs: rootfs, readonlyRoot: c.Spec.Root.Readonly}
	var err error
	if p.mounts, err = parseMounts(c.Spec.Mounts, c.Bundle); err != nil {
		return nil, err
	}
	p.setupDev = true
	for _, m := range p.mounts {
		if m.kind == kindBind && m.dest == "/dev" {
			p.setupDev = false
		}
	}
	if lx := c.Spec.Linux; lx != nil {
		if err := p.addLinux(lx, c.NoPivot); err != nil {
			return nil, err
		}
	} else {
		p.prepareProp, p.parentProp = unix.MS_SLAVE|unix.MS_REC, unix.MS_PRIVATE
	}
	if p.devices, err = withDefaultDevices(p.devices); err != nil {
		return nil, err
	}
	c.plan = p
	return p, nil
}

func (p *plan) addLinux(lx *specs.Linux, noPivot bool) error {
	if err := p.setPropagation(lx.RootfsPropagation, noPivot); err != nil {
		return err
	}
	for _, d := range lx.Devices {
		dev, err := parseDevice(d)
		if err != nil {
			return err
		}
		p.devices = append(p.devices, dev)
	}
	var err error
	if p.maskedPaths, err = containerPaths("maskedPaths", lx.MaskedPaths); err != nil {
		return err
	}
	p.readonlyPaths, err = containerPaths("readonlyPaths", lx.ReadonlyPaths)
	return err
}

// setPropagation decides the propagation of "/" as runc does: by default
// the whole tree becomes a slave of the host so mounts made for the
// container never reach the host. The mount holding the rootfs must not be
// shared (pivot_root refuses a shared parent, and the rootfs bind would
// propagate to the host). Shared and unbindable are applied to the
// container's "/" once it is set up: an unbindable "/" would refuse the
// rootfs bind, and the rootfs bind of a private parent is private.
func (p *plan) setPropagation(name string, noPivot bool) error {
	flag, err := rootPropagation(name)
	if err != nil {
		return err
	}
	p.prepareProp, p.parentProp = unix.MS_SLAVE|unix.MS_REC, unix.MS_PRIVATE
	switch {
	case flag&unix.MS_PRIVATE != 0 && noPivot:
		return fmt.Errorf("%w: rootfsPropagation %q is not safe without pivot_root", ErrInvalid, name)
	case flag&unix.MS_PRIVATE != 0:
		p.prepareProp = flag
	case flag&unix.MS_SLAVE != 0:
		p.prepareProp, p.parentProp = flag, unix.MS_SLAVE
	case flag&unix.MS_SHARED != 0:
		p.prepareProp, p.finalProp = flag, flag
	case flag&unix.MS_UNBINDABLE != 0:
		p.finalProp = flag
	}
	return nil
}

func parseMounts(mounts []specs.Mount, bundle string) ([]mountEntry, error) {
	table := mountopt.Table()
	out := make([]mountEntry, 0, len(mounts))
	for i, m := range mounts {
		e, err := parseMount(table, m, bundle)
		if err != nil {
			return nil, fmt.Errorf("%w: mounts[%d] (%s on %q): %w", ErrInvalid, i, m.Type, m.Destination, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseMount(table map[string]mountopt.Option, m specs.Mount, bundle string) (mountEntry, error) {
	if m.Destination == "" {
		return mountEntry{}, errors.New("empty destination")
	}
	// Relative destinations are deprecated but mean relative to "/".
	e := mountEntry{kind: m.Type, source: m.Source, dest: path.Clean("/" + m.Destination)}
	if e.dest == "/" {
		return mountEntry{}, errors.New("cannot mount on top of the root filesystem")
	}
	if len(m.UIDMappings)+len(m.GIDMappings) > 0 {
		return mountEntry{}, fmt.Errorf("uidMappings/gidMappings (idmapped mounts): %w", errors.ErrUnsupported)
	}
	var err error
	if e.opts, err = parseMountOptions(table, m.Options); err != nil {
		return mountEntry{}, err
	}
	if e.opts.isBind() {
		e.kind = kindBind
		if e.source == "" {
			return mountEntry{}, errors.New("bind mount without a source")
		}
		if !filepath.IsAbs(e.source) && bundle != "" {
			e.source = filepath.Join(bundle, e.source)
		}
	}
	if e.kind == "" || strings.ContainsRune(e.kind, 0) {
		return mountEntry{}, errors.New("no filesystem type (and not a bind mount)")
	}
	if e.opts.copyUp && e.kind != "tmpfs" {
		return mountEntry{}, errors.New("tmpcopyup is only valid for tmpfs")
	}
	return e, nil
}

// containerPaths checks that every path is absolute and returns them clean.
func containerPaths(field string, paths []string) ([]string, error) {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("%w: linux.%s: %q is not an absolute path", ErrInvalid, field, p)
		}
		out = append(out, path.Clean(p))
	}
	return out, nil
}
