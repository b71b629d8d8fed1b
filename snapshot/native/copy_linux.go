package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyTree copies the tree at src to dst, which must not exist: file
// contents, modes (setuid, setgid and sticky bits included), owners,
// extended attributes, hard links (within the tree), symlinks, device
// nodes, fifos, sockets, and access and modification times.
func copyTree(ctx context.Context, src, dst string) error {
	type inode struct{ dev, ino uint64 }
	linked := make(map[inode]string) // first copy of a multiply-linked inode
	type dirTimes struct {
		path string
		ts   []unix.Timespec
	}
	var dirs []dirTimes
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := linked[key]; ok {
				return os.Link(first, target)
			}
			linked[key] = target
		}
		if err := copyEntry(path, target, fi, st); err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
		if fi.IsDir() {
			// Set after the directory's entries are made, which change it.
			dirs = append(dirs, dirTimes{target, ts})
			return nil
		}
		return setTimes(target, ts)
	})
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setTimes(dirs[i].path, dirs[i].ts); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
	return nil
}

func setTimes(path string, ts []unix.Timespec) error {
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: path, Err: err}
	}
	return nil
}

// copyEntry makes target a copy of the single entry path (not its
// children), then sets owner, extended attributes and mode in that order:
// chown clears setuid bits and security.capability, so both come after.
func copyEntry(path, target string, fi os.FileInfo, st *syscall.Stat_t) error {
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
	case mode.IsRegular():
		if err := copyFile(path, target); err != nil {
			return err
		}
	case mode&os.ModeSymlink != 0:
		link, err := os.Readlink(path)
		if err != nil {
			return err
		}
		if err := os.Symlink(link, target); err != nil {
			return err
		}
	case mode&(os.ModeDevice|os.ModeCharDevice|os.ModeNamedPipe|os.ModeSocket) != 0:
		if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: target, Err: err}
		}
	default:
		return &os.PathError{Op: "copy", Path: path, Err: fmt.Errorf("unsupported file type %v", mode.Type())}
	}
	if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, unix.EPERM) {
		return err
	}
	if err := copyXattrs(path, target); err != nil {
		return err
	}
	if mode&os.ModeSymlink != 0 {
		return nil
	}
	// st.Mode & 07777 keeps setuid, setgid and sticky, which os.FileMode
	// spells differently.
	if err := unix.Chmod(target, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: target, Err: err}
	}
	return nil
}

// copyFile copies a regular file's contents: a reflink where the
// filesystem shares blocks, else copy_file_range (in-kernel, and
// server-side on network filesystems), else read and write.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := copyContents(in, out); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func copyContents(in, out *os.File) error {
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		return nil
	}
	for {
		n, err := unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, 1<<30, 0)
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				break // not offered here; copy by hand from where we are
			}
			return err
		}
		if n == 0 {
			return nil
		}
	}
	_, err := io.Copy(onlyWriter{out}, in)
	return err
}

// onlyWriter hides *os.File's ReadFrom so io.Copy reads and writes.
type onlyWriter struct{ io.Writer }

// copyXattrs copies every extended attribute of src that the caller may
// set. Attributes a non-root caller cannot set (trusted.*, security.*)
// are skipped with EPERM.
func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		value, err := getXattr(src, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, value, 0); err != nil {
			if errors.Is(err, unix.EPERM) {
				continue
			}
			return &os.PathError{Op: "lsetxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(path, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew between the calls
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		var names []string
		start := 0
		for i, c := range buf[:n] {
			if c == 0 {
				if i > start {
					names = append(names, string(buf[start:i]))
				}
				start = i + 1
			}
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	for {
		n, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		return buf[:n], nil
	}
}
