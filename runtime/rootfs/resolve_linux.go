package rootfs

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// inRoot is how every path inside the rootfs is resolved: symlinks (even
// absolute ones and "..") stay inside the rootfs, and /proc magic links,
// which could point anywhere, are refused.
const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// root is an open handle on the container's root filesystem. All paths
// given to its methods are container paths ("/etc/hosts"); they are
// resolved inside the rootfs by the kernel.
type root struct {
	sys  Syscalls
	fd   int
	real string // where the handle really is on the host (symlinks resolved)
}

func openRoot(sys Syscalls, rootfs string) (*root, error) {
	fd, err := sys.Openat2(unix.AT_FDCWD, rootfs, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY})
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	real, err := sys.Readlinkat(unix.AT_FDCWD, procFd(fd))
	if err != nil {
		sys.Close(fd)
		return nil, fmt.Errorf("resolve rootfs: %w", err)
	}
	return &root{sys: sys, fd: fd, real: real}, nil
}

func (r *root) close() { r.sys.Close(r.fd) }

// rel turns a container path into a path relative to the root handle.
func rel(p string) string {
	if r := strings.TrimPrefix(path.Clean("/"+p), "/"); r != "" {
		return r
	}
	return "."
}

// open resolves p inside the rootfs with the given open flags and extra
// RESOLVE_* flags.
func (r *root) open(p string, flags, resolve uint64) (int, error) {
	return r.sys.Openat2(r.fd, rel(p), &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: inRoot | resolve})
}

// realPath returns the container path fd really refers to, with every
// symlink resolved, and fails if that is not inside the rootfs (which
// RESOLVE_IN_ROOT should make impossible; this is a second lock).
func (r *root) realPath(fd int) (string, error) {
	host, err := r.sys.Readlinkat(unix.AT_FDCWD, procFd(fd))
	if err != nil {
		return "", err
	}
	if host == r.real {
		return "/", nil
	}
	prefix := strings.TrimSuffix(r.real, "/") + "/"
	if !strings.HasPrefix(host, prefix) {
		return "", fmt.Errorf("%q is outside the rootfs %q", host, r.real)
	}
	return "/" + strings.TrimPrefix(host, prefix), nil
}

// reopen opens a resolved container path again without following any
// symlink. Opened after a mount on that path, it yields the new mount
// (the earlier handle still refers to the directory underneath).
func (r *root) reopen(p string, flags uint64) (int, error) {
	return r.open(p, flags, unix.RESOLVE_NO_SYMLINKS)
}

// mkdirAll makes sure directory p exists inside the rootfs, creating
// missing components with mode, and returns an O_PATH handle on it. Each
// component is resolved from the root handle, so a symlink anywhere on the
// way is followed inside the rootfs only; a dangling symlink gets its
// target created, inside the rootfs, as mkdir -p through it would.
func (r *root) mkdirAll(p string, mode uint32) (int, error) {
	return r.mkdirAllDepth(p, mode, 0)
}

// maxSymlinks bounds the dangling symlinks followed by one mkdirAll, as
// the kernel bounds symlinks in one lookup (MAXSYMLINKS).
const maxSymlinks = 40

// mkdirAllDepth opens directory p, or else makes its parent exist (the
// same way, so the walk starts from the deepest directory that exists)
// and creates p in it.
func (r *root) mkdirAllDepth(p string, mode uint32, depth int) (int, error) {
	fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	return r.mkdirMissing(p, mode, depth)
}

// mkdirMissing creates directory p, which did not resolve (ENOENT), with
// its missing parents.
func (r *root) mkdirMissing(p string, mode uint32, depth int) (int, error) {
	parent, name := path.Split(path.Clean("/" + p))
	if name == "" {
		return -1, unix.ENOENT // the root itself cannot be missing
	}
	dir, err := r.mkdirAllDepth(parent, mode, depth)
	if err != nil {
		return -1, err
	}
	defer r.sys.Close(dir)
	if err := r.sys.Mkdirat(dir, name, mode); errors.Is(err, unix.EEXIST) {
		// Something is there but does not resolve: a dangling symlink.
		if err := r.mkdirThroughLink(dir, name, mode, depth); err != nil {
			return -1, fmt.Errorf("mkdir %s: %w", p, err)
		}
		return r.open(p, unix.O_PATH|unix.O_DIRECTORY, 0)
	} else if err != nil {
		return -1, fmt.Errorf("mkdir %s: %w", p, err)
	}
	// Just made, in a directory already resolved: no symlink to follow.
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	return r.sys.Openat2(dir, name, how)
}

// mkdirThroughLink creates the target of the dangling symlink dir/name.
func (r *root) mkdirThroughLink(dir int, name string, mode uint32, depth int) error {
	if depth >= maxSymlinks {
		return fmt.Errorf("%s: too many levels of dangling symlinks: %w", name, unix.ELOOP)
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH}
	lfd, err := r.sys.Openat2(dir, name, how)
	if err != nil {
		return err
	}
	defer r.sys.Close(lfd)
	var st unix.Stat_t
	if err := r.sys.Fstat(lfd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return unix.ENOTDIR
	}
	link, err := r.sys.Readlinkat(lfd, "")
	if err != nil {
		return err
	}
	if !path.IsAbs(link) {
		base, err := r.realPath(dir)
		if err != nil {
			return err
		}
		link = path.Join(base, link)
	}
	fd, err := r.mkdirAllDepth(link, mode, depth+1)
	if err != nil {
		return err
	}
	return r.sys.Close(fd)
}

// parent makes the parent directory of p exist and returns an O_PATH
// handle on it and the last component of p.
func (r *root) parent(p string) (int, string, error) {
	dir, name := path.Split(path.Clean("/" + p))
	fd, err := r.mkdirAll(dir, 0o755)
	return fd, name, err
}

// createFile creates p as an empty regular file with mode, its parents
// as needed. It fails if anything (even a dangling symlink) is there.
func (r *root) createFile(p string, mode uint32) error {
	dir, name, err := r.parent(p)
	if err != nil {
		return err
	}
	defer r.sys.Close(dir)
	how := &unix.OpenHow{
		Flags:   unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	}
	fd, err := r.sys.Openat2(dir, name, how)
	if err != nil {
		return err
	}
	return r.sys.Close(fd)
}

// target is a mount point opened inside the rootfs.
type target struct {
	fd      int    // O_PATH handle on the directory or file to mount on
	path    string // container path with symlinks resolved
	existed bool   // it was there before (not created for the mount)
}

// mountpoint opens the mount point for dest, creating it if missing: an
// empty file when file is true (bind mounts of files), a directory (with
// parents, 0755) otherwise. The resolved path must not be the root itself.
func (r *root) mountpoint(dest string, file bool) (target, error) {
	// Most mount points are reached without a symlink: then dest is
	// where the handle is, and no readlink of it is needed. ENOENT
	// means the same of every component before the missing one (a
	// symlink would have stopped the walk with ELOOP first), and the
	// missing ones are made as directories.
	real := path.Clean("/" + dest)
	fd, err := r.open(dest, unix.O_PATH, unix.RESOLVE_NO_SYMLINKS)
	if errors.Is(err, unix.ELOOP) {
		real = ""
		fd, err = r.open(dest, unix.O_PATH, 0)
	}
	existed := err == nil
	if errors.Is(err, unix.ENOENT) {
		fd, err = r.create(dest, file)
	}
	if err != nil {
		return target{}, fmt.Errorf("mount point %s: %w", dest, err)
	}
	if real == "" {
		real, err = r.realPath(fd)
	}
	if err == nil && real == "/" {
		err = errors.New("resolves to the root of the container")
	}
	if err != nil {
		r.sys.Close(fd)
		return target{}, fmt.Errorf("mount point %s: %w", dest, err)
	}
	return target{fd: fd, path: real, existed: existed}, nil
}

// create makes dest, which does not resolve, and opens it.
func (r *root) create(dest string, file bool) (int, error) {
	if !file {
		return r.mkdirMissing(dest, 0o755, 0)
	}
	if err := r.createFile(dest, 0o644); err != nil {
		return -1, err
	}
	return r.open(dest, unix.O_PATH, 0)
}

// strictMountpoint opens the mount point of a procfs or sysfs mount. These
// must land exactly where the spec says: the path must be a real directory
// reached without any symlink (CVE-2019-19921: a /proc that is a symlink
// would let an image redirect procfs, and with it the runtime's own later
// writes to /proc, somewhere else).
func (r *root) strictMountpoint(dest, fstype string) (target, error) {
	fd, err := r.open(dest, unix.O_PATH|unix.O_DIRECTORY, unix.RESOLVE_NO_SYMLINKS)
	existed := err == nil
	if errors.Is(err, unix.ENOENT) {
		// As in mountpoint: no symlink before the missing component,
		// and none is created.
		fd, err = r.mkdirMissing(dest, 0o755, 0)
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return target{}, fmt.Errorf("%w: %s must be mounted on a real directory, but %s is or goes through a symlink or a non-directory: %w", ErrInvalid, fstype, dest, err)
	}
	if err != nil {
		return target{}, fmt.Errorf("mount point %s: %w", dest, err)
	}
	return target{fd: fd, path: path.Clean(dest), existed: existed}, nil
}
