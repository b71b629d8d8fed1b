package rootfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// preparer carries the state of one Prepare call.
type preparer struct {
	cfg  *Config
	sys  Syscalls
	plan *plan
	root *root
}

// Prepare builds the container's filesystem tree under c.Rootfs. It runs
// in the container's new mount namespace, before the hooks that still need
// the host's "/":
//
//  1. "/" becomes a slave of the host recursively (or what
//     linux.rootfsPropagation asks), so nothing mounted below reaches
//     the host, and the mount holding the rootfs is made private;
//  2. the rootfs is bind-mounted onto itself, so it is a mount point
//     pivot_root can use;
//  3. every spec mount is performed, in order, on a target resolved
//     inside the rootfs (missing targets are created: an empty file for
//     the bind of a file, a directory otherwise);
//  4. unless a bind mount provides /dev: the default and linux.devices
//     nodes, /dev/ptmx -> pts/ptmx and the /dev/fd, stdin, stdout,
//     stderr (and core) links.
//
// Read-only tmpfs mounts and a read-only /dev are mounted writable here
// (so devices can be created in them) and made read-only by Finalize.
// The configuration is checked before the first change: on ErrInvalid
// nothing has been done.
func Prepare(c *Config) error {
	pl, err := newPlan(c)
	if err != nil {
		return err
	}
	p := &preparer{cfg: c, sys: c.sys(), plan: pl}
	if err := p.prepareRoot(); err != nil {
		return fmt.Errorf("prepare rootfs %s: %w", pl.rootfs, err)
	}
	if p.root, err = openRoot(p.sys, pl.rootfs); err != nil {
		return err
	}
	defer p.root.close()
	for _, m := range pl.mounts {
		if err := p.mount(m); err != nil {
			return fmt.Errorf("mount %s on %s (%s): %w", m.source, m.dest, m.kind, err)
		}
	}
	if pl.setupDev {
		if err := p.setupDev(); err != nil {
			return fmt.Errorf("set up /dev: %w", err)
		}
	}
	return nil
}

func (p *preparer) prepareRoot() error {
	if p.cfg.SharedMountNS {
		// The namespace is the runtime's: its "/" is not ours to change.
		// The rootfs bind is made private, so what is mounted below it
		// stays out of other namespaces.
		if err := p.sys.Mount(p.plan.rootfs, p.plan.rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		return p.sys.Mount("", p.plan.rootfs, "", unix.MS_PRIVATE|unix.MS_REC, "")
	}
	if err := p.sys.Mount("", "/", "", p.plan.prepareProp, ""); err != nil {
		return err
	}
	if err := p.privateParent(); err != nil {
		return err
	}
	return p.sys.Mount(p.plan.rootfs, p.plan.rootfs, "", unix.MS_BIND|unix.MS_REC, "")
}

// privateParent changes the propagation of the mount that holds the rootfs
// (the rootfs itself if it is a mount point). pivot_root(2) fails when
// that mount is shared, and a bind under a shared mount would propagate
// to the host. mount(2) answers EINVAL for a path that is not a mount
// point, so walk up until one is found.
func (p *preparer) privateParent() error {
	dir := p.plan.rootfs
	for {
		err := p.sys.Mount("", dir, "", p.plan.parentProp, "")
		if err == nil || !errors.Is(err, unix.EINVAL) || dir == "/" {
			return err
		}
		dir = filepath.Dir(dir)
	}
}

func (p *preparer) mount(m mountEntry) error {
	switch m.kind {
	case kindBind:
		return p.mountBind(m)
	case "proc", "sysfs":
		return p.mountPseudo(m)
	case "cgroup":
		return p.mountCgroup(m)
	default:
		return p.mountFilesystem(m)
	}
}

// deferReadonly reports whether m is mounted writable and made read-only
// by Finalize: tmpfs mounts may receive copied-up files, /dev receives
// the device nodes.
func deferReadonly(m mountEntry) bool {
	return m.opts.flags&unix.MS_RDONLY != 0 && (m.kind == "tmpfs" || m.dest == "/dev" && m.kind != kindBind)
}

// mountFilesystem mounts a new filesystem (tmpfs, mqueue, devpts, overlay,
// anything with a type), passing unknown options as data.
func (p *preparer) mountFilesystem(m mountEntry) error {
	t, err := p.root.mountpoint(m.dest, false)
	if err != nil {
		return err
	}
	defer p.sys.Close(t.fd)
	if err := p.checkProcMount(t.path, m); err != nil {
		return err
	}
	data := m.opts.data
	if m.kind == "tmpfs" && t.existed {
		// The tmpfs root takes the mode of the directory it covers
		// (/tmp stays 1777), unless the options say otherwise.
		var st unix.Stat_t
		if err := p.sys.Fstat(t.fd, &st); err != nil {
			return err
		}
		data = append([]string{fmt.Sprintf("mode=%04o", st.Mode&0o7777)}, data...)
	}
	under := -1
	if m.opts.copyUp {
		if under, err = p.root.reopen(t.path, unix.O_RDONLY|unix.O_DIRECTORY); err != nil {
			return err
		}
		defer p.sys.Close(under)
	}
	flags := m.opts.flags
	if deferReadonly(m) {
		flags &^= unix.MS_RDONLY
	}
	if err := p.mountData(m, t.fd, flags, data); err != nil {
		return err
	}
	return p.finish(m, t.path, under)
}

// mountData calls mount(2) for a new filesystem. In a user namespace a
// devpts "gid=" option naming an unmapped group fails with EINVAL; it is
// then retried without the gid (the ptys get the caller's group), as crun
// and podman do.
func (p *preparer) mountData(m mountEntry, fd int, flags uintptr, data []string) error {
	err := p.sys.Mount(m.source, procFd(fd), m.kind, flags, joinData(data))
	if err == nil || !p.cfg.UserNS || m.kind != "devpts" || !errors.Is(err, unix.EINVAL) {
		return err
	}
	var noGid []string
	for _, d := range data {
		if !strings.HasPrefix(d, "gid=") {
			noGid = append(noGid, d)
		}
	}
	if len(noGid) == len(data) {
		return err
	}
	return p.sys.Mount(m.source, procFd(fd), m.kind, flags, joinData(noGid))
}

func joinData(data []string) string { return strings.Join(data, ",") }

// finish applies what mount(2) cannot do in the same call: the copy-up of
// the covered directory, the propagation changes (each its own call) and
// the recursive attributes. It works on a fresh handle on the new mount.
func (p *preparer) finish(m mountEntry, at string, under int) error {
	if under < 0 && len(m.opts.propagation) == 0 && !m.opts.hasRecAttr {
		return nil
	}
	flags := uint64(unix.O_PATH)
	if under >= 0 {
		flags = unix.O_RDONLY | unix.O_DIRECTORY
	}
	top, err := p.root.reopen(at, flags)
	if err != nil {
		return fmt.Errorf("reopen after mount: %w", err)
	}
	defer p.sys.Close(top)
	if under >= 0 {
		if err := p.sys.CopyTree(under, top); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
	}
	return p.applyAttrs(m.opts, top)
}

func (p *preparer) applyAttrs(opts mountOptions, top int) error {
	for _, prop := range opts.propagation {
		if err := p.sys.Mount("", procFd(top), "", prop, ""); err != nil {
			return fmt.Errorf("propagation: %w", err)
		}
	}
	if !opts.hasRecAttr {
		return nil
	}
	attr := opts.recAttr
	if err := p.sys.MountSetattr(top, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("recursive mount attributes: %w", err)
	}
	return nil
}

// mountPseudo mounts procfs or sysfs on a real directory. In a user
// namespace without its own network namespace sysfs cannot be mounted;
// the host's /sys is bind-mounted instead (with the same options), as
// runc's rootless configurations do.
func (p *preparer) mountPseudo(m mountEntry) error {
	t, err := p.root.strictMountpoint(m.dest, m.kind)
	if err != nil {
		return err
	}
	defer p.sys.Close(t.fd)
	if err := p.checkProcMount(t.path, m); err != nil {
		return err
	}
	if m.kind == "proc" && p.cfg.ProcFS > 0 {
		err = p.sys.MountContext(p.cfg.ProcFS, m.source, m.kind, m.opts.flags, m.opts.data, t.fd)
	} else {
		err = p.sys.Mount(m.source, procFd(t.fd), m.kind, m.opts.flags, joinData(m.opts.data))
	}
	if err != nil && m.kind == "sysfs" && p.cfg.UserNS && errors.Is(err, unix.EPERM) {
		b := m
		b.kind, b.source = kindBind, "/sys"
		b.opts.flags |= unix.MS_BIND | unix.MS_REC
		return p.bindOnto(b, t)
	}
	if err != nil {
		return err
	}
	return p.finish(m, t.path, -1)
}
