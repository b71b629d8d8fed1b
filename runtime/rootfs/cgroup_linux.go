package rootfs

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupHierarchy is a cgroup hierarchy the container's init belongs to,
// as the host has it mounted.
type cgroupHierarchy struct {
	name   string // directory under the container's cgroup mount: base name of the host mount point
	fstype string // "cgroup" (v1) or "cgroup2"
	data   string // mount data naming the hierarchy: "cpu", "cpu,cpuacct", "name=systemd"; "" for cgroup2
	source string // host directory of the init's own cgroup, or "" if the host mount does not show it
}

// CgroupLayout is which cgroup hierarchies a process is in and where the
// host mounts them (Config.CgroupLayout).
type CgroupLayout struct {
	unified     bool
	hierarchies []cgroupHierarchy
}

// ParseCgroupLayout works out a process's CgroupLayout from its
// /proc/<pid>/mountinfo and /proc/<pid>/cgroup.
func ParseCgroupLayout(mountinfo, cgroup []byte) (*CgroupLayout, error) {
	unified, hs, err := cgroupLayout(mountinfo, cgroup)
	if err != nil {
		return nil, err
	}
	return &CgroupLayout{unified, hs}, nil
}

// cgroupLayout works out, from /proc/self/mountinfo and /proc/self/cgroup,
// which hierarchies the process is in and where they are mounted.
// unified is true on a cgroup v2 only host.
func cgroupLayout(mountinfo, selfCgroup []byte) (unified bool, hs []cgroupHierarchy, err error) {
	mounts, err := parseMountInfo(mountinfo)
	if err != nil {
		return false, nil, err
	}
	v1 := false
	for _, line := range strings.Split(string(selfCgroup), "\n") {
		id, ctrls, cgPath, ok := splitCgroupLine(line)
		if !ok {
			continue
		}
		h, found := findHierarchy(mounts, id == "0" && ctrls == "", ctrls, cgPath)
		if !found {
			continue // listed but not mounted on the host (e.g. net_cls)
		}
		v1 = v1 || h.fstype == "cgroup"
		hs = append(hs, h)
	}
	if len(hs) == 0 {
		return false, nil, errors.New("the host has none of this process's cgroup hierarchies mounted")
	}
	if !v1 {
		return true, hs[:1], nil
	}
	return false, hs, nil
}

func splitCgroupLine(line string) (id, ctrls, cgPath string, ok bool) {
	id, rest, ok1 := strings.Cut(line, ":")
	ctrls, cgPath, ok2 := strings.Cut(rest, ":")
	return id, ctrls, cgPath, ok1 && ok2
}

// findHierarchy finds the host mount of a hierarchy: for v2 a cgroup2
// mount, for v1 a cgroup mount whose superblock options name all of
// ctrls. A mount that shows the process's cgroup is preferred; the
// first mount of the hierarchy is used otherwise (with no source).
func findHierarchy(mounts []mountInfo, v2 bool, ctrls, cgPath string) (cgroupHierarchy, bool) {
	var h cgroupHierarchy
	found := false
	for _, m := range mounts {
		if !isHierarchyMount(m, v2, ctrls) {
			continue
		}
		if !found {
			h = cgroupHierarchy{name: path.Base(m.mountpoint), fstype: m.fstype, data: ctrls}
			found = true
		}
		if sub, ok := underRoot(m.root, cgPath); ok {
			h.name = path.Base(m.mountpoint)
			h.source = path.Join(m.mountpoint, sub)
			return h, true
		}
	}
	return h, found
}

func isHierarchyMount(m mountInfo, v2 bool, ctrls string) bool {
	if v2 {
		return m.fstype == "cgroup2"
	}
	if m.fstype != "cgroup" {
		return false
	}
	have := make(map[string]bool)
	for _, o := range strings.Split(m.superOptions, ",") {
		have[o] = true
	}
	for _, c := range strings.Split(ctrls, ",") {
		if !have[c] {
			return false
		}
	}
	return true
}

// underRoot returns where cgPath lies below a mount's root, if it does.
// Roots outside the process's cgroup namespace show as "/.." and match
// nothing.
func underRoot(root, cgPath string) (string, bool) {
	if root == "/" {
		return cgPath, strings.HasPrefix(cgPath, "/")
	}
	if cgPath == root {
		return "/", true
	}
	sub, ok := strings.CutPrefix(cgPath, root+"/")
	return "/" + sub, ok
}

func (p *preparer) hostCgroups() (bool, []cgroupHierarchy, error) {
	if f := p.cfg.CgroupLayout; f != nil {
		l, err := f()
		if err != nil {
			return false, nil, err
		}
		return l.unified, l.hierarchies, nil
	}
	mi, err := p.sys.ReadFile(p.cfg.procDir() + "/mountinfo")
	if err != nil {
		return false, nil, err
	}
	cg, err := p.sys.ReadFile(p.cfg.procDir() + "/cgroup")
	if err != nil {
		return false, nil, err
	}
	return cgroupLayout(mi, cg)
}

// mountCgroup gives the container the cgroup hierarchies it is in. On a
// cgroup v2 host that is one cgroup2 mount; on a v1 (or hybrid) host, a
// tmpfs with one directory per hierarchy, named as on the host, and links
// for co-mounted controllers (cpu -> cpu,cpuacct). With a cgroup
// namespace these are real cgroup mounts (showing the namespace's root);
// without one they are binds of the container's own cgroup directories,
// so the container sees nothing above them.
func (p *preparer) mountCgroup(m mountEntry) error {
	unified, hs, err := p.hostCgroups()
	if err != nil {
		return fmt.Errorf("find host cgroups: %w", err)
	}
	if unified {
		return p.mountHierarchy(m, m.dest, hs[0])
	}
	return p.mountCgroupV1(m, hs)
}

func (p *preparer) mountCgroupV1(m mountEntry, hs []cgroupHierarchy) error {
	tmpfs := mountEntry{kind: "tmpfs", source: "tmpfs", dest: m.dest, opts: mountOptions{
		flags:       unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
		data:        []string{"mode=755"},
		propagation: m.opts.propagation,
	}}
	if err := p.mountFilesystem(tmpfs); err != nil {
		return err
	}
	attr, oneCall := treeAttr(m.opts)
	oneCall = oneCall && !p.cfg.CgroupNS
	if oneCall {
		// Plain binds now, made in the new tmpfs through its handle
		// (nothing else can be there yet); their flags all at once
		// below.
		err := p.bindHierarchies(m.dest, hs, attr)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errTreeAttr) {
			return err
		}
		// Refused (a user namespace whose host mounts carry locked
		// flags, a kernel before 5.12): the remount of each bind, which
		// knows how to keep locked flags, and of the tmpfs.
		for _, h := range hs {
			if err := p.remountAt(path.Join(m.dest, h.name), m.opts); err != nil {
				return fmt.Errorf("hierarchy %s: %w", h.data, err)
			}
		}
	} else {
		for _, h := range hs {
			if err := p.mountHierarchy(m, path.Join(m.dest, h.name), h); err != nil {
				return fmt.Errorf("hierarchy %s: %w", h.data, err)
			}
			if err := p.coMountLinks(m.dest, h.name); err != nil {
				return err
			}
		}
	}
	if m.opts.flags&unix.MS_RDONLY == 0 {
		return nil
	}
	t, err := p.root.mountpoint(m.dest, false)
	if err != nil {
		return err
	}
	defer p.sys.Close(t.fd)
	return p.sys.Mount("", procFd(t.fd), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|tmpfs.opts.flags, "")
}

// errTreeAttr is bindHierarchies's report that the binds are made but the
// kernel refused to set attr on them all at once.
var errTreeAttr = errors.New("recursive mount attributes refused")

// bindHierarchies bind-mounts each hierarchy's cgroup directory into the
// tmpfs just mounted at dest, links the co-mounted controllers, and sets
// attr on the tmpfs and every bind. Each hierarchy costs a mkdir, an open, a
// mount and a close on the tmpfs's handle.
func (p *preparer) bindHierarchies(dest string, hs []cgroupHierarchy, attr unix.MountAttr) error {
	t, err := p.root.mountpoint(dest, false)
	if err != nil {
		return err
	}
	defer p.sys.Close(t.fd)
	beneath := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	for _, h := range hs {
		if h.source == "" {
			return fmt.Errorf("hierarchy %s: the host's %s mount does not show this process's cgroup", h.data, h.fstype)
		}
		if err := p.sys.Mkdirat(t.fd, h.name, 0o755); err != nil {
			return fmt.Errorf("hierarchy %s: mkdir: %w", h.data, err)
		}
		fd, err := p.sys.Openat2(t.fd, h.name, beneath)
		if err != nil {
			return fmt.Errorf("hierarchy %s: %w", h.data, err)
		}
		err = p.sys.Mount(h.source, procFd(fd), "", unix.MS_BIND|unix.MS_REC, "")
		p.sys.Close(fd)
		if err != nil {
			return fmt.Errorf("hierarchy %s: bind %s: %w", h.data, h.source, err)
		}
		if strings.Contains(h.name, ",") {
			for _, c := range strings.Split(h.name, ",") {
				if err := p.sys.Symlinkat(h.name, t.fd, c); err != nil && !errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("link %s/%s: %w", dest, c, err)
				}
			}
		}
	}
	if err := p.sys.MountSetattr(t.fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("%w: %w", errTreeAttr, err)
	}
	return nil
}

// treeAttr turns the options of a read-only cgroup mount into the
// attributes one recursive mount_setattr(2) gives the tmpfs and every bind
// under it: nine binds then cost one call instead of nine remounts and
// the tmpfs's own (each remount about 0.1 ms). ok is false when the
// options hold anything else (propagation, other flags, or not the
// usual ro,nosuid,nodev,noexec that the tmpfs has too), which keeps the
// remount of each mount.
func treeAttr(o mountOptions) (attr unix.MountAttr, ok bool) {
	const need = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	const known = need | atimeFlags | unix.MS_BIND | unix.MS_REC
	if o.flags&need != need || o.flags&^known != 0 || o.cleared&^atimeFlags != 0 ||
		len(o.propagation) > 0 || o.hasRecAttr || o.copyUp {
		return attr, false
	}
	attr.Attr_set = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	attr.Attr_clr = unix.MOUNT_ATTR__ATIME | unix.MOUNT_ATTR_NODIRATIME
	// The atime mode a remount without one gets is relatime.
	switch {
	case o.flags&unix.MS_NOATIME != 0:
		attr.Attr_set |= unix.MOUNT_ATTR_NOATIME
	case o.flags&unix.MS_STRICTATIME != 0:
		attr.Attr_set |= unix.MOUNT_ATTR_STRICTATIME
	default:
		attr.Attr_set |= unix.MOUNT_ATTR_RELATIME
	}
	if o.flags&unix.MS_NODIRATIME != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_NODIRATIME
	}
	return attr, true
}

// remountAt gives the bind mount at dest the flags of opts.
func (p *preparer) remountAt(dest string, opts mountOptions) error {
	top, err := p.root.reopen(dest, unix.O_PATH)
	if err != nil {
		return err
	}
	defer p.sys.Close(top)
	return p.remountBind(opts, top)
}

// mountHierarchy mounts one hierarchy at dest: a real cgroup filesystem
// with a cgroup namespace, else a bind of the container's cgroup. A
// cgroup2 mount refused with EPERM or EBUSY (a user namespace without its
// own cgroup namespace) falls back to the bind.
func (p *preparer) mountHierarchy(m mountEntry, dest string, h cgroupHierarchy) error {
	if p.cfg.CgroupNS {
		e := mountEntry{kind: h.fstype, source: h.fstype, dest: dest, opts: mountOptions{
			flags:       m.opts.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT),
			propagation: m.opts.propagation,
		}}
		if h.data != "" {
			e.opts.data = []string{h.data}
		}
		err := p.mountFilesystem(e)
		if err == nil || h.fstype != "cgroup2" || !(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
			return err
		}
	}
	if h.source == "" {
		return fmt.Errorf("the host's %s mount does not show this process's cgroup", h.fstype)
	}
	b := mountEntry{kind: kindBind, source: h.source, dest: dest, opts: m.opts}
	b.opts.flags |= unix.MS_BIND | unix.MS_REC
	b.opts.data = nil
	return p.mountBind(b)
}

// coMountLinks links each controller of a co-mounted hierarchy
// ("cpu,cpuacct") to its directory, as hosts do.
func (p *preparer) coMountLinks(dest, name string) error {
	if !strings.Contains(name, ",") {
		return nil
	}
	dir, err := p.root.mkdirAll(dest, 0o755)
	if err != nil {
		return err
	}
	defer p.sys.Close(dir)
	for _, c := range strings.Split(name, ",") {
		if err := p.sys.Symlinkat(name, dir, c); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("link %s/%s: %w", dest, c, err)
		}
	}
	return nil
}
