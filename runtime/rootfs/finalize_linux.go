package rootfs

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Finalize runs after Pivot (and MountConsole), with the container's "/"
// as root, and locks the filesystem down:
//
//  1. linux.readonlyPaths are bound onto themselves and remounted
//     read-only, keeping the nosuid, nodev and noexec they had;
//  2. linux.maskedPaths are hidden: a directory under an empty read-only
//     tmpfs, anything else under a bind of /dev/null; missing paths are
//     skipped;
//  3. read-only tmpfs mounts and a read-only /dev, mounted writable by
//     Prepare, become read-only;
//  4. with root.readonly, "/" is remounted read-only (keeping the flags
//     a user namespace cannot change);
//  5. a shared or unbindable linux.rootfsPropagation is applied to "/".
func Finalize(c *Config) error {
	pl, err := newPlan(c)
	if err != nil {
		return err
	}
	sys := c.sys()
	for _, p := range pl.readonlyPaths {
		if err := readonlyPath(sys, p); err != nil {
			return fmt.Errorf("readonly path %s: %w", p, err)
		}
	}
	if err := maskPaths(sys, pl.maskedPaths); err != nil {
		return err
	}
	for _, m := range pl.mounts {
		if deferReadonly(m) {
			if err := remountReadonly(sys, m); err != nil {
				return fmt.Errorf("remount %s read-only: %w", m.dest, err)
			}
		}
	}
	if pl.readonlyRoot {
		if err := readonlyRoot(sys); err != nil {
			return fmt.Errorf("remount / read-only: %w", err)
		}
	}
	if pl.finalProp != 0 {
		if err := sys.Mount("", "/", "", pl.finalProp, ""); err != nil {
			return fmt.Errorf("rootfs propagation: %w", err)
		}
	}
	return nil
}

func readonlyPath(sys Syscalls, p string) error {
	if err := sys.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	var st unix.Statfs_t
	if err := sys.Statfs(p, &st); err != nil {
		return err
	}
	keep := statfsFlags(&st) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	return sys.Mount(p, p, "", keep|unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
}

func maskPaths(sys Syscalls, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	var null unix.Stat_t
	if err := sys.Stat("/dev/null", &null); err != nil {
		return fmt.Errorf("masked paths: %w", err)
	}
	if !isDevNull(&null) {
		return fmt.Errorf("masked paths: %w: /dev/null is not the null device", ErrInvalid)
	}
	done := make(map[string]bool)
	for _, p := range paths {
		if done[p] {
			continue
		}
		done[p] = true
		if err := maskPath(sys, p); err != nil {
			return fmt.Errorf("masked path %s: %w", p, err)
		}
	}
	return nil
}

func maskPath(sys Syscalls, p string) error {
	var st unix.Stat_t
	if err := sys.Stat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return sys.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	return sys.Mount("/dev/null", p, "", unix.MS_BIND, "")
}

// remountReadonly makes a mount Prepare left writable read-only, with its
// other flags. MS_BIND|MS_REMOUNT changes only the mount's flags, which a
// user namespace may do. EBUSY (a file still open for writing, e.g. by a
// hook) is retried for a short while.
func remountReadonly(sys Syscalls, m mountEntry) error {
	flags := m.opts.flags&^(unix.MS_REC|unix.MS_BIND|unix.MS_REMOUNT) | unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY
	var err error
	for range 5 {
		if err = sys.Mount("", m.dest, "", flags, ""); !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// readonlyRoot remounts "/" read-only; if the kernel refuses because some
// flags are locked (user namespace), the current flags are kept.
func readonlyRoot(sys Syscalls) error {
	const flags = unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY
	err := sys.Mount("", "/", "", flags, "")
	if err == nil || !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if err := sys.Statfs("/", &st); err != nil {
		return err
	}
	return sys.Mount("", "/", "", flags|statfsFlags(&st)&lockableFlags, "")
}
