package rootfs

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountBind bind-mounts a host path (a file or a directory) into the
// rootfs. The target is created to match the source if missing.
func (p *preparer) mountBind(m mountEntry) error {
	var st unix.Stat_t
	if err := p.sys.Stat(m.source, &st); err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	t, err := p.root.mountpoint(m.dest, st.Mode&unix.S_IFMT != unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer p.sys.Close(t.fd)
	if err := p.checkProcMount(t.path, m); err != nil {
		return err
	}
	return p.bindOnto(m, t)
}

// bindOnto performs the bind on an opened target: MS_BIND (with MS_REC
// for rbind) first, which ignores every other flag, then, if the options
// set or clear any flag, MS_BIND|MS_REMOUNT with them, then propagation
// and recursive attributes.
func (p *preparer) bindOnto(m mountEntry, t target) error {
	if err := p.sys.Mount(m.source, procFd(t.fd), "", unix.MS_BIND|m.opts.flags&unix.MS_REC, ""); err != nil {
		return err
	}
	if !m.opts.needsRemount() && len(m.opts.propagation) == 0 && !m.opts.hasRecAttr {
		return nil
	}
	top, err := p.root.reopen(t.path, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("reopen after mount: %w", err)
	}
	defer p.sys.Close(top)
	if m.opts.needsRemount() {
		if err := p.remountBind(m.opts, top); err != nil {
			return err
		}
	}
	return p.applyAttrs(m.opts, top)
}

// remountBind sets the bind mount's flags to the requested ones. Inside a
// user namespace the kernel refuses (EPERM) to change flags it locked on
// the source mount (ro, nodev, nosuid, noexec, atime): then the current
// values of those flags are kept, unless the options explicitly ask to
// clear or change one of them, which is an error rather than a silent
// mismatch.
func (p *preparer) remountBind(opts mountOptions, top int) error {
	flags := opts.flags&^unix.MS_REC | unix.MS_BIND | unix.MS_REMOUNT
	err := p.sys.Mount("", procFd(top), "", flags, "")
	if err == nil || !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if err := p.sys.Fstatfs(top, &st); err != nil {
		return err
	}
	locked := statfsFlags(&st) & lockableFlags
	if bad := locked & opts.cleared; bad != 0 {
		return fmt.Errorf("cannot clear locked mount flags %s: %w", flagNames(bad), err)
	}
	if !atimeCompatible(opts.flags, locked) {
		return fmt.Errorf("cannot change locked atime flags %s: %w", flagNames(locked&atimeFlags), err)
	}
	if err := p.sys.Mount("", procFd(top), "", flags|locked, ""); err != nil {
		return fmt.Errorf("remount keeping locked flags %s: %w", flagNames(locked), err)
	}
	return nil
}

// atimeCompatible reports whether the requested atime flags agree with
// the locked ones: the mode (noatime, relatime, strictatime) if one is
// requested, and nodiratime if requested.
func atimeCompatible(want, locked uintptr) bool {
	if mode := want & atimeEnumFlags; mode != 0 && mode != locked&atimeEnumFlags {
		return false
	}
	return want&unix.MS_NODIRATIME == 0 || locked&unix.MS_NODIRATIME != 0
}

// checkProcMount refuses mounts that would hide or replace parts of
// /proc (whose files the runtime and the kernel's protections rely on):
// /proc itself takes only procfs (or the bind of a procfs), and below
// /proc only the files lxcfs emulates may be covered. at is the resolved
// container path of the target.
func (p *preparer) checkProcMount(at string, m mountEntry) error {
	switch {
	case at != "/proc" && !strings.HasPrefix(at, "/proc/"):
		return nil
	case at == "/proc" && m.kind == "proc":
		return nil
	case at == "/proc" && m.kind == kindBind:
		var st unix.Statfs_t
		if err := p.sys.Statfs(m.source, &st); err != nil {
			return err
		}
		if st.Type == unix.PROC_SUPER_MAGIC {
			return nil
		}
	}
	// The files lxcfs emulates may be covered (as runc allows).
	allowed := [...]string{
		"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
		"/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
		"/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled",
	}
	for _, ok := range allowed {
		if at == ok {
			return nil
		}
	}
	return fmt.Errorf("%w: %s would be mounted on %s: only procfs may be mounted on /proc, and only lxcfs-emulated files inside it", ErrInvalid, m.kind, at)
}

// flagNames spells MS_* flags for error messages.
func flagNames(f uintptr) string {
	names := [...]struct {
		f uintptr
		n string
	}{
		{unix.MS_RDONLY, "ro"}, {unix.MS_NOSUID, "nosuid"}, {unix.MS_NODEV, "nodev"},
		{unix.MS_NOEXEC, "noexec"}, {unix.MS_SYNCHRONOUS, "sync"}, {unix.MS_REMOUNT, "remount"},
		{unix.MS_MANDLOCK, "mand"}, {unix.MS_DIRSYNC, "dirsync"}, {unix.MS_NOSYMFOLLOW, "nosymfollow"},
		{unix.MS_NOATIME, "noatime"}, {unix.MS_NODIRATIME, "nodiratime"}, {unix.MS_BIND, "bind"},
		{unix.MS_MOVE, "move"}, {unix.MS_REC, "rec"}, {unix.MS_SILENT, "silent"},
		{unix.MS_UNBINDABLE, "unbindable"}, {unix.MS_PRIVATE, "private"}, {unix.MS_SLAVE, "slave"},
		{unix.MS_SHARED, "shared"}, {unix.MS_RELATIME, "relatime"}, {unix.MS_I_VERSION, "iversion"},
		{unix.MS_STRICTATIME, "strictatime"}, {unix.MS_LAZYTIME, "lazytime"},
	}
	var out []string
	for _, n := range names {
		if f&n.f != 0 {
			out = append(out, n.n)
			f &^= n.f
		}
	}
	if f != 0 || len(out) == 0 {
		out = append(out, fmt.Sprintf("%#x", f))
	}
	return strings.Join(out, ",")
}
