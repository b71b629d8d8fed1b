package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Pivot makes the prepared rootfs the process's "/" and its working
// directory. It uses pivot_root(".", ".") and then detaches the old root
// (made a recursive slave first, so the unmount cannot propagate to the
// host). With c.NoPivot, or when the current root is the initramfs
// "rootfs" (which pivot_root cannot move), it moves the rootfs mount onto
// "/" and chroots instead; full procfs and sysfs mounts of the host are
// detached first, because a reachable host procfs would let the container
// mount a new one. When Prepare created /dev, standard streams open on
// the host's /dev/null are reopened on the container's.
func Pivot(c *Config) error {
	pl, err := newPlan(c)
	if err != nil {
		return err
	}
	sys := c.sys()
	if c.SharedMountNS {
		// pivot_root or MS_MOVE would change the root of every process
		// in the runtime's namespace: chroot changes only ours.
		if err := chrootOnly(sys, pl.rootfs); err != nil {
			return fmt.Errorf("chroot to %s: %w", pl.rootfs, err)
		}
		if pl.setupDev {
			return reopenDevNull(sys)
		}
		return nil
	}
	move := c.NoPivot
	if !move {
		if move, err = onInitramfs(sys); err != nil {
			return err
		}
	}
	if move {
		err = moveRoot(sys, pl.rootfs)
	} else {
		err = pivotRoot(sys, pl.rootfs)
	}
	if err != nil {
		return fmt.Errorf("switch root to %s: %w", pl.rootfs, err)
	}
	if pl.setupDev {
		if err := reopenDevNull(sys); err != nil {
			return fmt.Errorf("reopen /dev/null: %w", err)
		}
	}
	return nil
}

// onInitramfs reports whether "/" is the initramfs rootfs. That is a
// ramfs or tmpfs: any other root is answered by one statfs, without
// reading the mount table.
func onInitramfs(sys Syscalls) (bool, error) {
	var st unix.Statfs_t
	if err := sys.Statfs("/", &st); err != nil {
		return false, err
	}
	if st.Type != unix.RAMFS_MAGIC && st.Type != unix.TMPFS_MAGIC {
		return false, nil
	}
	data, err := sys.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	mounts, err := parseMountInfo(data)
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m.mountpoint == "/" && m.fstype == "rootfs" {
			return true, nil
		}
	}
	return false, nil
}

func pivotRoot(sys Syscalls, rootfs string) error {
	dir := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY}
	oldRoot, err := sys.Openat2(unix.AT_FDCWD, "/", dir)
	if err != nil {
		return err
	}
	defer sys.Close(oldRoot)
	newRoot, err := sys.Openat2(unix.AT_FDCWD, rootfs, dir)
	if err != nil {
		return err
	}
	defer sys.Close(newRoot)
	if err := sys.Fchdir(newRoot); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on top of the new one at
	// the same place, so no directory for the old root is needed in the
	// image. Our cwd is then the old root; fchdir to be sure.
	if err := sys.PivotRoot(".", "."); err != nil {
		return err
	}
	if err := sys.Fchdir(oldRoot); err != nil {
		return err
	}
	// rslave, not rprivate: the host may still be using mounts we hold
	// references to, and must keep being able to unmount them.
	if err := sys.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := sys.Unmount(".", unix.MNT_DETACH); err != nil {
		return err
	}
	return sys.Chdir("/")
}

func chrootOnly(sys Syscalls, rootfs string) error {
	if err := sys.Chdir(rootfs); err != nil {
		return err
	}
	if err := sys.Chroot("."); err != nil {
		return err
	}
	return sys.Chdir("/")
}

// MountID returns the id of the mount that path is on (the top one if
// mounts are stacked there).
func MountID(path string) (uint64, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
		return 0, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return 0, &os.PathError{Op: "statx", Path: path, Err: unix.ENOSYS}
	}
	return st.Mnt_id, nil
}

// Unmount detaches the rootfs bind that Prepare made, and everything
// mounted below it, for a container that shared the runtime's mount
// namespace (SharedMountNS): there the mounts outlive the container's
// processes. before is MountID(rootfs) from before Prepare: mounts are
// detached from the top until rootfs is on that mount again, so a mount
// the rootfs already was (an image's overlay) stays.
func Unmount(rootfs string, before uint64) error {
	for i := 0; i < 16; i++ {
		id, err := MountID(rootfs)
		if errors.Is(err, unix.ENOENT) || err == nil && id == before {
			return nil
		}
		if err != nil {
			return err
		}
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			return &os.PathError{Op: "umount", Path: rootfs, Err: err}
		}
	}
	return fmt.Errorf("umount %s: still not the original mount after 16 detaches", rootfs)
}

func moveRoot(sys Syscalls, rootfs string) error {
	r, err := openRoot(sys, rootfs)
	if err != nil {
		return err
	}
	r.close()
	if err := detachHostPseudoFS(sys, r.real); err != nil {
		return err
	}
	if err := sys.Chdir(rootfs); err != nil {
		return err
	}
	if err := sys.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return err
	}
	if err := sys.Chroot("."); err != nil {
		return err
	}
	return sys.Chdir("/")
}

// detachHostPseudoFS unmounts (or covers with a tmpfs, if unmounting is
// not allowed) every full procfs and sysfs mount outside the rootfs. The
// kernel lets a container mount procfs or sysfs only where a full one is
// already visible; after chroot the host's would still be in the mount
// namespace.
func detachHostPseudoFS(sys Syscalls, rootfs string) error {
	data, err := sys.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	mounts, err := parseMountInfo(data)
	if err != nil {
		return err
	}
	for i := len(mounts) - 1; i >= 0; i-- { // children before parents
		m := mounts[i]
		if m.root != "/" || (m.fstype != "proc" && m.fstype != "sysfs") ||
			m.mountpoint == rootfs || strings.HasPrefix(m.mountpoint, rootfs+"/") {
			continue
		}
		if err := detach(sys, m.mountpoint); err != nil {
			return err
		}
	}
	return nil
}

func detach(sys Syscalls, at string) error {
	if err := sys.Mount("", at, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
			return nil // already gone with a parent
		}
		return err
	}
	err := sys.Unmount(at, unix.MNT_DETACH)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) {
		return sys.Mount("tmpfs", at, "tmpfs", unix.MS_RDONLY, "")
	}
	return err
}

// isDevNull reports whether st is the null device (char 1:3).
func isDevNull(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3)
}

// reopenDevNull points standard streams that are the host's /dev/null at
// the container's, so no descriptor of the host's /dev stays open in the
// container.
func reopenDevNull(sys Syscalls) error {
	null, err := sys.Openat2(unix.AT_FDCWD, "/dev/null", &unix.OpenHow{Flags: unix.O_RDWR | unix.O_NOFOLLOW})
	if err != nil {
		return err
	}
	defer sys.Close(null)
	var nst unix.Stat_t
	if err := sys.Fstat(null, &nst); err != nil {
		return err
	}
	if !isDevNull(&nst) {
		return fmt.Errorf("%w: the container's /dev/null is not the null device", ErrInvalid)
	}
	for fd := range 3 {
		var st unix.Stat_t
		if err := sys.Fstat(fd, &st); err != nil {
			continue // closed: nothing to reopen
		}
		if isDevNull(&st) && (st.Dev != nst.Dev || st.Ino != nst.Ino) {
			if err := sys.Dup3(null, fd, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// MountConsole bind-mounts the pty slave at slavePath (a /dev/pts/N of the
// container's devpts) onto /dev/console, creating an empty file there if
// needed. It runs after Pivot; /dev/console must not be a symlink.
func MountConsole(slavePath string) error {
	return mountConsole(kernel{}, slavePath)
}

func mountConsole(sys Syscalls, slavePath string) error {
	if !strings.HasPrefix(slavePath, "/") {
		return fmt.Errorf("%w: console %q is not an absolute path", ErrInvalid, slavePath)
	}
	const console = "/dev/console"
	fd, err := sys.Openat2(unix.AT_FDCWD, console, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW})
	if errors.Is(err, unix.ENOENT) {
		fd, err = sys.Openat2(unix.AT_FDCWD, console, &unix.OpenHow{
			Flags: unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW, Mode: 0o600,
		})
	}
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	var st unix.Stat_t
	err = sys.Fstat(fd, &st)
	sys.Close(fd)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK || st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%w: %s is a symlink or a directory", ErrInvalid, console)
	}
	if err := sys.Mount(slavePath, console, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
