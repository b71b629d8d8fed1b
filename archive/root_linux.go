package archive

import (
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/openat2"
)

// maxSymlinks bounds the symlinks followed while creating missing parents,
// like the kernel's own limit on one lookup.
const maxSymlinks = 40

// maxCachedDirs bounds the directory descriptors a root keeps open.
const maxCachedDirs = 64

// root is a directory that every path operation stays inside. Paths are
// resolved by openat2 with RESOLVE_IN_ROOT, so ".." and symlinks (absolute
// or relative) are evaluated as if root were "/", and every operation on the
// final component goes through a descriptor of its parent with a *at
// syscall that does not follow a final symlink.
type root struct {
	fd   int
	dirs map[string]dirHandle // resolved parent directories, by relative path
}

// dirHandle is an O_PATH descriptor of a directory inside the root.
type dirHandle struct {
	fd int
	// setgid tells that files created here take the directory's group.
	setgid bool
}

func openRoot(dir string) (*root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &root{fd: fd, dirs: make(map[string]dirHandle)}, nil
}

func (r *root) close() {
	r.forget()
	unix.Close(r.fd)
}

// forget drops every cached directory. It is called whenever a directory or
// a symlink inside the root is removed or replaced, since a cached
// descriptor would then no longer be what its path names.
func (r *root) forget() {
	for _, h := range r.dirs {
		unix.Close(h.fd)
	}
	clear(r.dirs)
}

// empty reports whether the root directory has no entries.
func (r *root) empty() (bool, error) {
	fd, err := unix.Openat(r.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &os.PathError{Op: "open", Path: ".", Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, &os.PathError{Op: "getdents", Path: ".", Err: err}
		}
		if n == 0 {
			return true, nil
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		if len(names) > 0 { // ParseDirent leaves out "." and ".."
			return false, nil
		}
	}
}

// openRel opens rel under dirfd with the given resolve flags.
func openRel(dirfd int, rel string, flags, resolve uint64) (int, error) {
	return openat2.Open(dirfd, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve})
}

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// dir returns a descriptor of directory rel ("." for the root), resolved
// inside the root. With create, missing directories are made (mode 0755),
// through symlinks as the container would follow them. The descriptor
// belongs to the cache; callers must not close it.
func (r *root) dir(rel string, create bool) (dirHandle, error) {
	if h, ok := r.dirs[rel]; ok {
		return h, nil
	}
	fd, err := openRel(r.fd, rel, unix.O_PATH|unix.O_DIRECTORY, inRoot)
	if err == unix.ENOENT && create {
		fd, err = r.mkdirAll(rel)
	}
	if err != nil {
		return dirHandle{}, &os.PathError{Op: "resolve", Path: rel, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return dirHandle{}, &os.PathError{Op: "stat", Path: rel, Err: err}
	}
	if len(r.dirs) >= maxCachedDirs {
		r.forget()
	}
	h := dirHandle{fd: fd, setgid: st.Mode&unix.S_ISGID != 0}
	r.dirs[rel] = h
	return h, nil
}

// mkdirAll creates the missing directories of rel one component at a time.
// It keeps the resolved path as a list of real directories, so a symlink met
// on the way is replaced by its target (an absolute target restarts at the
// root, ".." never climbs above it) and the directory the symlink points to
// is created if it is missing, as `mkdir -p` inside a chroot would do.
func (r *root) mkdirAll(rel string) (int, error) {
	queue := strings.Split(rel, "/")
	var resolved []string
	links := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		parent, err := openRel(r.fd, joinRel(resolved), unix.O_PATH|unix.O_DIRECTORY, inRoot)
		if err != nil {
			return -1, err
		}
		target, err := mkdirOrFollow(parent, c)
		unix.Close(parent)
		if err != nil {
			return -1, err
		}
		if target == "" {
			resolved = append(resolved, c)
			continue
		}
		if links++; links > maxSymlinks {
			return -1, unix.ELOOP
		}
		if path.IsAbs(target) {
			resolved = resolved[:0]
		}
		queue = append(strings.Split(target, "/"), queue...)
	}
	return openRel(r.fd, joinRel(resolved), unix.O_PATH|unix.O_DIRECTORY, inRoot)
}

// mkdirOrFollow makes sure name in parent is a directory: it creates it when
// missing and returns "" for a directory, or the target of a symlink, which
// the caller follows. Anything else is ENOTDIR.
func mkdirOrFollow(parent int, name string) (string, error) {
	err := unix.Mkdirat(parent, name, 0o755)
	if err == nil {
		return "", nil
	}
	if err != unix.EEXIST {
		return "", err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return "", err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "", nil
	case unix.S_IFLNK:
		return readlinkat(parent, name)
	}
	return "", unix.ENOTDIR
}

func joinRel(parts []string) string {
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// removeAllAt removes name in dirfd and, for a directory, everything below
// it. It never follows a symlink: children are opened with O_NOFOLLOW. A
// missing name is not an error. It reports whether name was a directory or
// a symlink, which invalidates cached descriptors.
func removeAllAt(dirfd int, name string) (structural bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFLNK:
		return true, ignoreNotExist(unix.Unlinkat(dirfd, name, 0))
	default:
		return false, ignoreNotExist(unix.Unlinkat(dirfd, name, 0))
	}
	if err := removeChildren(dirfd, name, nil); err != nil {
		return true, err
	}
	return true, ignoreNotExist(unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR))
}

// removeChildren removes the entries of directory name in dirfd, except
// those keep says to keep; keep may be nil. For an entry that keep returns
// descend for, removeChildren recurses instead of removing it.
func removeChildren(dirfd int, name string, keep func(child string) (keepIt, descend bool)) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, child := range names {
		if keep != nil {
			keepIt, descend := keep(child)
			if descend {
				var st unix.Stat_t
				if err := unix.Fstatat(fd, child, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return err
				}
				if st.Mode&unix.S_IFMT == unix.S_IFDIR {
					if err := removeChildren(fd, child, nestedKeep(keep, child)); err != nil {
						return err
					}
				}
				continue
			}
			if keepIt {
				continue
			}
		}
		if _, err := removeAllAt(fd, child); err != nil {
			return fmt.Errorf("remove %s: %w", child, err)
		}
	}
	return nil
}

// nestedKeep rebases a keep function onto a child directory.
func nestedKeep(keep func(string) (bool, bool), dir string) func(string) (bool, bool) {
	return func(child string) (bool, bool) { return keep(dir + "/" + child) }
}

func ignoreNotExist(err error) error {
	if err == unix.ENOENT {
		return nil
	}
	return err
}

// cleanPath turns a tar entry name into a path relative to the root: leading
// slashes are dropped (absolute names are relative to the root, as GNU tar
// extracts them) and "." and ".." are evaluated lexically. A name whose ".."
// climbs above the root is refused.
func cleanPath(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty name: %w", errdefs.ErrInvalidArgument)
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("name %q leaves the root: %w", name, errdefs.ErrInvalidArgument)
	}
	if p == "" {
		p = "."
	}
	return p, nil
}

// splitPath splits a clean relative path into its parent ("." at the top)
// and its last element.
func splitPath(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return ".", rel
	}
	return rel[:i], rel[i+1:]
}

// procPath names the entry name of the directory open as dirfd without
// following a final symlink, for the calls (l*xattr) that have no *at form.
func procPath(dirfd int, name string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
}
