package rootfs

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyTree is kernel.CopyTree: the tmpcopyup of a directory into the tmpfs
// just mounted over it. The source is read through a descriptor opened
// before the mount, so it is the covered directory; every step works
// relative to directory descriptors with O_NOFOLLOW, so a symlink in the
// image is copied as a symlink and never followed.
func copyTree(srcDir, dstDir int) error {
	var st unix.Stat_t
	if err := unix.Fstat(srcDir, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: fdPath(srcDir, ""), Err: err}
	}
	if err := unix.Fchown(dstDir, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "fchown", Path: fdPath(dstDir, ""), Err: err}
	}
	return copyDir(srcDir, dstDir)
}

func copyDir(srcDir, dstDir int) error {
	names, err := dirNames(srcDir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := copyEntry(srcDir, dstDir, name); err != nil {
			return err
		}
	}
	return nil
}

// dirNames lists a directory through a duplicate of its descriptor (the
// listing consumes the descriptor's offset and closes it).
func dirNames(dir int) ([]string, error) {
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: fdPath(dir, ""), Err: err}
	}
	f := os.NewFile(uintptr(fd), fdPath(dir, ""))
	defer f.Close()
	return f.Readdirnames(-1)
}

func copyEntry(srcDir, dstDir int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(srcDir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fstatat", Path: fdPath(srcDir, name), Err: err}
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		err = copySubdir(srcDir, dstDir, name)
	case unix.S_IFREG:
		err = copyFile(srcDir, dstDir, name)
	case unix.S_IFLNK:
		err = copySymlink(srcDir, dstDir, name)
	default: // devices, fifos, sockets
		err = unix.Mknodat(dstDir, name, st.Mode, int(st.Rdev))
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", fdPath(srcDir, name), err)
	}
	return copyMetadata(dstDir, name, &st)
}

func copySubdir(srcDir, dstDir int, name string) error {
	if err := unix.Mkdirat(dstDir, name, 0o700); err != nil {
		return err
	}
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	src, err := unix.Openat(srcDir, name, flags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	dst, err := unix.Openat(dstDir, name, flags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	return copyDir(src, dst)
}

func copyFile(srcDir, dstDir int, name string) error {
	src, err := unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	in := os.NewFile(uintptr(src), name)
	defer in.Close()
	dst, err := unix.Openat(dstDir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	out := os.NewFile(uintptr(dst), name)
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copySymlink(srcDir, dstDir int, name string) error {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(srcDir, name, buf)
	if err != nil {
		return err
	}
	return unix.Symlinkat(string(buf[:n]), dstDir, name)
}

// copyMetadata gives the copy the owner, mode and times of the original
// (owner first: chown clears set-id bits).
func copyMetadata(dstDir int, name string, st *unix.Stat_t) error {
	if err := unix.Fchownat(dstDir, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fchownat", Path: fdPath(dstDir, name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(dstDir, name, st.Mode&0o7777, 0); err != nil {
			return &os.PathError{Op: "fchmodat", Path: fdPath(dstDir, name), Err: err}
		}
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dstDir, name, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: fdPath(dstDir, name), Err: err}
	}
	return nil
}
