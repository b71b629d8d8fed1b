package rootfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"berth.dev/internal/openat2"
)

// Syscalls is every kernel call the root filesystem setup makes. The real
// implementation (used when Config.Sys is nil) calls the kernel and reports
// failures as *os.PathError naming the call and its path, so callers can
// test the errno with errors.Is. A test implementation records the calls so
// the order and flags of mounts can be checked without root.
//
// Paths passed as "target" may be /proc/self/fd/N links to an O_PATH handle
// obtained from Openat2; implementations that record calls should report
// the path the handle stands for.
type Syscalls interface {
	// Mount is mount(2).
	Mount(source, target, fstype string, flags uintptr, data string) error
	// Unmount is umount2(2).
	Unmount(target string, flags int) error
	// MountSetattr is mount_setattr(2) on dirfd and path (AT_EMPTY_PATH
	// with path "" acts on dirfd itself).
	MountSetattr(dirfd int, path string, flags uint, attr *unix.MountAttr) error
	// PivotRoot is pivot_root(2).
	PivotRoot(newRoot, putOld string) error
	// Chroot is chroot(2).
	Chroot(path string) error
	// Chdir is chdir(2).
	Chdir(path string) error
	// Fchdir is fchdir(2).
	Fchdir(fd int) error
	// Openat2 is openat2(2); the returned descriptor is close-on-exec
	// whatever how.Flags says.
	Openat2(dirfd int, path string, how *unix.OpenHow) (int, error)
	// Close is close(2).
	Close(fd int) error
	// Readlinkat is readlinkat(2). On a /proc/self/fd link it tells where
	// a handle really points; with name "" it reads the symlink an O_PATH
	// descriptor refers to.
	Readlinkat(dirfd int, name string) (string, error)
	// Mkdirat is mkdirat(2).
	Mkdirat(dirfd int, name string, mode uint32) error
	// Mknodat is mknodat(2).
	Mknodat(dirfd int, name string, mode uint32, dev uint64) error
	// Fchmodat is fchmodat(2) without flags.
	Fchmodat(dirfd int, name string, mode uint32) error
	// Fchownat is fchownat(2) with AT_SYMLINK_NOFOLLOW.
	Fchownat(dirfd int, name string, uid, gid int) error
	// Symlinkat is symlinkat(2): a link at dirfd/name pointing to target.
	Symlinkat(target string, dirfd int, name string) error
	// Unlinkat is unlinkat(2).
	Unlinkat(dirfd int, name string, flags int) error
	// Fstat is fstat(2); it works on O_PATH descriptors.
	Fstat(fd int, st *unix.Stat_t) error
	// Fstatat is fstatat(2).
	Fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error
	// Stat is stat(2) (it follows symlinks).
	Stat(path string, st *unix.Stat_t) error
	// Statfs is statfs(2).
	Statfs(path string, st *unix.Statfs_t) error
	// Fstatfs is fstatfs(2); it works on O_PATH descriptors.
	Fstatfs(fd int, st *unix.Statfs_t) error
	// ReadFile returns the contents of a file (/proc/self/mountinfo,
	// /proc/self/cgroup).
	ReadFile(path string) ([]byte, error)
	// Dup3 is dup3(2).
	Dup3(oldfd, newfd, flags int) error
	// MountContext is mount(2) of a new filesystem made from the
	// filesystem context fsfd (fsopen(2)) instead of a type: fsconfig(2)
	// with source and each data option, fsmount(2) with the attributes
	// of flags (mountAttrs), move_mount(2) onto the handle targetFD.
	MountContext(fsfd int, source, fstype string, flags uintptr, data []string, targetFD int) error
	// CopyTree copies the contents of directory srcDir into directory
	// dstDir (both open, readable descriptors), keeping modes, owners,
	// times, symlinks and device nodes and never following a symlink. It
	// also gives dstDir the owner of srcDir. It is the one compound
	// operation here, kept behind the interface so tests can record it.
	CopyTree(srcDir, dstDir int) error
}

// procFd is the magic link through which mount(2) reaches what fd refers to.
func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// kernel is the Syscalls implementation that calls the kernel.
type kernel struct{}

func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: path, Err: err}
}

// fdErr is pathErr for a call on dirfd and name. The path is worked out
// (a readlink of /proc/self/fd/N) only when there is an error to report:
// done for every call, it was most of the system calls of a create. Nor
// for ENOENT and EEXIST, which the setup expects and handles (a mount
// point to create, a directory already there): those name the handle
// ("fd 7/dev/pts"), and the callers' context names the container path.
func fdErr(op string, dirfd int, name string, err error) error {
	switch err {
	case nil:
		return nil
	case unix.ENOENT, unix.EEXIST:
		return &os.PathError{Op: op, Path: rawFdPath(dirfd, name), Err: err}
	}
	return &os.PathError{Op: op, Path: fdPath(dirfd, name), Err: err}
}

// rawFdPath is fdPath without resolving the handle.
func rawFdPath(dirfd int, name string) string {
	if dirfd == unix.AT_FDCWD {
		return fdPath(dirfd, name)
	}
	return "fd " + strconv.Itoa(dirfd) + "/" + strings.TrimPrefix(name, "/")
}

func (kernel) Mount(source, target, fstype string, flags uintptr, data string) error {
	return pathErr("mount", target, unix.Mount(source, target, fstype, flags, data))
}

func (kernel) Unmount(target string, flags int) error {
	return pathErr("umount2", target, unix.Unmount(target, flags))
}

func (kernel) MountSetattr(dirfd int, path string, flags uint, attr *unix.MountAttr) error {
	return fdErr("mount_setattr", dirfd, path, unix.MountSetattr(dirfd, path, flags, attr))
}

func (kernel) PivotRoot(newRoot, putOld string) error {
	return pathErr("pivot_root", newRoot, unix.PivotRoot(newRoot, putOld))
}

func (kernel) Chroot(path string) error { return pathErr("chroot", path, unix.Chroot(path)) }

func (kernel) Chdir(path string) error { return pathErr("chdir", path, unix.Chdir(path)) }

func (kernel) Fchdir(fd int) error { return fdErr("fchdir", fd, "", unix.Fchdir(fd)) }

func (kernel) Openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	h := *how
	h.Flags |= unix.O_CLOEXEC
	fd, err := openat2.Open(dirfd, path, &h)
	return fd, fdErr("openat2", dirfd, path, err)
}

func (kernel) Close(fd int) error { return fdErr("close", fd, "", unix.Close(fd)) }

func (kernel) Readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", fdErr("readlinkat", dirfd, name, err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func (kernel) Mkdirat(dirfd int, name string, mode uint32) error {
	return fdErr("mkdirat", dirfd, name, unix.Mkdirat(dirfd, name, mode))
}

func (kernel) Mknodat(dirfd int, name string, mode uint32, dev uint64) error {
	return fdErr("mknodat", dirfd, name, unix.Mknodat(dirfd, name, mode, int(dev)))
}

func (kernel) Fchmodat(dirfd int, name string, mode uint32) error {
	return fdErr("fchmodat", dirfd, name, unix.Fchmodat(dirfd, name, mode, 0))
}

func (kernel) Fchownat(dirfd int, name string, uid, gid int) error {
	return fdErr("fchownat", dirfd, name, unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW))
}

func (kernel) Symlinkat(target string, dirfd int, name string) error {
	return fdErr("symlinkat", dirfd, name, unix.Symlinkat(target, dirfd, name))
}

func (kernel) Unlinkat(dirfd int, name string, flags int) error {
	return fdErr("unlinkat", dirfd, name, unix.Unlinkat(dirfd, name, flags))
}

func (kernel) Fstat(fd int, st *unix.Stat_t) error {
	return fdErr("fstat", fd, "", unix.Fstat(fd, st))
}

func (kernel) Fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	return fdErr("fstatat", dirfd, name, unix.Fstatat(dirfd, name, st, flags))
}

func (kernel) Stat(path string, st *unix.Stat_t) error {
	return pathErr("stat", path, unix.Stat(path, st))
}

func (kernel) Statfs(path string, st *unix.Statfs_t) error {
	return pathErr("statfs", path, unix.Statfs(path, st))
}

func (kernel) Fstatfs(fd int, st *unix.Statfs_t) error {
	return fdErr("fstatfs", fd, "", unix.Fstatfs(fd, st))
}

func (kernel) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (kernel) Dup3(oldfd, newfd, flags int) error {
	return fdErr("dup3", newfd, "", unix.Dup3(oldfd, newfd, flags))
}

func (kernel) CopyTree(srcDir, dstDir int) error { return copyTree(srcDir, dstDir) }

func (kernel) MountContext(fsfd int, source, fstype string, flags uintptr, data []string, targetFD int) error {
	attrs, ok := mountAttrs(flags)
	if !ok {
		return fmt.Errorf("mount %s: flags %s have no mount attributes", fstype, flagNames(flags))
	}
	config := func(err error, what string) error {
		if err != nil {
			return fmt.Errorf("fsconfig %s %s: %w", fstype, what, err)
		}
		return nil
	}
	if err := config(unix.FsconfigSetString(fsfd, "source", source), "source"); err != nil {
		return err
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := config(unix.FsconfigSetFlag(fsfd, "ro"), "ro"); err != nil {
			return err
		}
	}
	for _, d := range data {
		k, v, hasValue := strings.Cut(d, "=")
		var err error
		if hasValue {
			err = unix.FsconfigSetString(fsfd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fsfd, k)
		}
		if err := config(err, d); err != nil {
			return err
		}
	}
	if err := config(unix.FsconfigCreate(fsfd), "create"); err != nil {
		return err
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	defer unix.Close(mfd)
	err = unix.MoveMount(mfd, "", targetFD, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	return fdErr("move_mount", targetFD, "", err)
}

// fdPath names dirfd/name in error messages: the real path of the
// descriptor when /proc can tell it.
func fdPath(dirfd int, name string) string {
	if dirfd == unix.AT_FDCWD {
		if name == "" {
			return "."
		}
		return name
	}
	base := "fd " + strconv.Itoa(dirfd)
	if p, err := os.Readlink(procFd(dirfd)); err == nil {
		base = p
	}
	if name == "" {
		return base
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(name, "/")
}
