package rootfs

import (
	"errors"
	"fmt"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are the nodes config-linux.md "Default Devices" says every
// container has. A linux.devices entry with the same path replaces one.
func defaultDevices() []device {
	dev := func(p string, major, minor int64) device {
		return device{path: p, mode: unix.S_IFCHR | 0o666, major: major, minor: minor}
	}
	return []device{
		dev("/dev/null", 1, 3),
		dev("/dev/zero", 1, 5),
		dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8),
		dev("/dev/urandom", 1, 9),
		dev("/dev/tty", 5, 0),
	}
}

func withDefaultDevices(spec []device) ([]device, error) {
	seen := make(map[string]bool, len(spec))
	for _, d := range spec {
		if seen[d.path] {
			return nil, fmt.Errorf("%w: linux.devices: %s listed twice", ErrInvalid, d.path)
		}
		seen[d.path] = true
	}
	var out []device
	for _, d := range defaultDevices() {
		if !seen[d.path] {
			out = append(out, d)
		}
	}
	return append(out, spec...), nil
}

// parseDevice validates a linux.devices entry. The file mode defaults to
// 0666 and the owner to 0:0, as in runc.
func parseDevice(d specs.LinuxDevice) (device, error) {
	bad := func(format string, a ...any) (device, error) {
		return device{}, fmt.Errorf("%w: linux.devices %q: %s", ErrInvalid, d.Path, fmt.Sprintf(format, a...))
	}
	if !path.IsAbs(d.Path) || path.Clean(d.Path) == "/" {
		return bad("path must be absolute")
	}
	dev := device{path: path.Clean(d.Path), mode: 0o666, major: d.Major, minor: d.Minor}
	switch d.Type {
	case "c", "u":
		dev.mode = unix.S_IFCHR
	case "b":
		dev.mode = unix.S_IFBLK
	case "p":
		dev.mode = unix.S_IFIFO
		dev.major, dev.minor = 0, 0
	default:
		return bad("type %q is not one of c, b, u, p", d.Type)
	}
	if dev.major < 0 || dev.minor < 0 || dev.major > 0xfff || dev.minor > 0xfffff {
		return bad("major:minor %d:%d out of range", d.Major, d.Minor)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		// Podman writes the file type into fileMode too (020666 for a
		// character device): accept it when it agrees with the type.
		m := uint32(*d.FileMode)
		if ft := m & unix.S_IFMT; ft != 0 && ft != dev.mode {
			return bad("fileMode %#o has a file type other than %q", m, d.Type)
		}
		if m&^(0o7777|unix.S_IFMT) != 0 {
			return bad("fileMode %#o has bits other than permissions", m)
		}
		perm = m & 0o7777
	}
	dev.mode |= perm
	if d.UID != nil {
		dev.uid = int(*d.UID)
	}
	if d.GID != nil {
		dev.gid = int(*d.GID)
	}
	return dev, nil
}

func (d device) rdev() uint64 { return unix.Mkdev(uint32(d.major), uint32(d.minor)) }

// setupDev creates the device nodes, /dev/ptmx and the /dev links.
func (p *preparer) setupDev() error {
	for _, d := range p.plan.devices {
		if d.path == "/dev/ptmx" {
			continue // always the devpts one, see ptmx
		}
		if err := p.createDevice(d); err != nil {
			return fmt.Errorf("device %s: %w", d.path, err)
		}
	}
	if err := p.ptmx(); err != nil {
		return fmt.Errorf("/dev/ptmx: %w", err)
	}
	return p.devLinks()
}

// createDevice makes a device node with mknod, or, where mknod is not
// allowed (a user namespace), bind-mounts the host's node of the same path.
func (p *preparer) createDevice(d device) error {
	dir, name, err := p.root.parent(d.path)
	if err != nil {
		return err
	}
	defer p.sys.Close(dir)
	if p.cfg.UserNS {
		return p.bindDevice(dir, name, d)
	}
	err = p.sys.Mknodat(dir, name, d.mode, d.rdev())
	switch {
	case errors.Is(err, unix.EEXIST):
		err = p.checkExisting(dir, name, d)
	case errors.Is(err, unix.EPERM):
		return p.bindDevice(dir, name, d)
	}
	if err != nil {
		return err
	}
	// mknod applied the umask; set the exact mode and the owner.
	if err := p.sys.Fchmodat(dir, name, d.mode&0o7777); err != nil {
		return err
	}
	return p.sys.Fchownat(dir, name, d.uid, d.gid)
}

// checkExisting accepts a node already in the image only if it is the
// requested device (config-linux.md: anything else MUST be an error).
func (p *preparer) checkExisting(dir int, name string, d device) error {
	var st unix.Stat_t
	if err := p.sys.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != d.mode&unix.S_IFMT || (d.mode&unix.S_IFMT != unix.S_IFIFO && st.Rdev != d.rdev()) {
		return fmt.Errorf("%w: a different file (mode %#o, device %d:%d) already exists there",
			ErrInvalid, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return nil
}

// bindDevice bind-mounts the host node at d.path onto an empty file, or
// onto what the image has there, provided it is neither a symlink (the
// node must be at d.path, not wherever a link points) nor a directory.
func (p *preparer) bindDevice(dir int, name string, d device) error {
	var st unix.Stat_t
	err := p.sys.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && (st.Mode&unix.S_IFMT == unix.S_IFLNK || st.Mode&unix.S_IFMT == unix.S_IFDIR) {
		return fmt.Errorf("%w: a symlink or directory is already there", ErrInvalid)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	t, err := p.root.mountpoint(d.path, true)
	if err != nil {
		return err
	}
	defer p.sys.Close(t.fd)
	return p.sys.Mount(d.path, procFd(t.fd), "", unix.MS_BIND, "")
}

// ptmx makes /dev/ptmx the link to pts/ptmx so the container's devpts
// instance (newinstance) serves its ptys.
func (p *preparer) ptmx() error {
	dir, err := p.root.mkdirAll("/dev", 0o755)
	if err != nil {
		return err
	}
	defer p.sys.Close(dir)
	if err := p.sys.Unlinkat(dir, "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return p.sys.Symlinkat("pts/ptmx", dir, "ptmx")
}

// devLinks creates the /dev/fd, stdin, stdout, stderr links, and /dev/core
// when the kernel has /proc/kcore. Existing entries are left alone.
func (p *preparer) devLinks() error {
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	var st unix.Stat_t
	if p.sys.Stat("/proc/kcore", &st) == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	dir, err := p.root.mkdirAll("/dev", 0o755)
	if err != nil {
		return err
	}
	defer p.sys.Close(dir)
	for _, l := range links {
		if err := p.sys.Symlinkat(l[0], dir, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("/dev/%s: %w", l[1], err)
		}
	}
	return nil
}
