package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// sealedExe returns a read-only file of the running binary for the
// container's init to be executed from.
//
// The container's init is this binary re-executed. If it ran from the host
// file, a process in the container could open /proc/<init>/exe (or run a
// script whose interpreter is /proc/self/exe) and rewrite the host's runtime
// binary: CVE-2019-5736. The binary is instead reached through a private,
// read-only overlay mount that is attached nowhere (fsopen/fsmount): its
// files refuse writes with EROFS, and it vanishes with the last user. That
// costs tens of microseconds; where overlay mounts are not allowed (an
// unprivileged runtime) a sealed memfd copy, which costs a copy of the
// binary, does the same job.
func sealedExe() (*os.File, error) {
	if f, err := overlayExe(); err == nil {
		return f, nil
	}
	return memfdExe()
}

// overlayExe opens the running binary through a detached read-only overlay
// whose layers are the binary's directory and an empty detached tmpfs (an
// overlay without an upper layer needs two lower ones).
func overlayExe() (*os.File, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	empty, err := detachedMount("tmpfs", "")
	if err != nil {
		return nil, err
	}
	defer unix.Close(empty)
	dir := filepath.Dir(exe)
	if strings.ContainsAny(dir, ":,\\") {
		return nil, fmt.Errorf("binary directory %q cannot be an overlay layer", dir)
	}
	// The classic "lowerdir=a:b" form: "lowerdir+" needs Linux 6.8.
	mnt, err := detachedMount("overlay", dir+":/proc/self/fd/"+strconv.Itoa(empty))
	if err != nil {
		return nil, err
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, filepath.Base(exe), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: exe, Err: err}
	}
	f := os.NewFile(uintptr(fd), "overlay:"+exe)
	// The overlay shows the file at that path now; make sure it is still
	// the binary that is running (not a replacement installed since).
	var a, b unix.Stat_t
	if unix.Stat("/proc/self/exe", &a) != nil || unix.Fstat(fd, &b) != nil || a.Size != b.Size {
		f.Close()
		return nil, fmt.Errorf("runtime binary changed on disk")
	}
	return f, nil
}

// detachedMount makes a read-only mount of fstype that is attached to no
// mount namespace and returns its root. lowerdir, if any, is an overlay's
// lower layers.
func detachedMount(fstype, lowerdir string) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, &os.PathError{Op: "fsopen", Path: fstype, Err: err}
	}
	defer unix.Close(fsfd)
	if lowerdir != "" {
		if err := unix.FsconfigSetString(fsfd, "lowerdir", lowerdir); err != nil {
			return -1, &os.PathError{Op: "fsconfig lowerdir", Path: lowerdir, Err: err}
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, &os.PathError{Op: "fsconfig create", Path: fstype, Err: err}
	}
	mnt, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return -1, &os.PathError{Op: "fsmount", Path: fstype, Err: err}
	}
	return mnt, nil
}

// memfdExe returns a memfd holding a copy of the running binary, sealed
// against writes and resizes: it has no path on the host and cannot be
// modified.
func memfdExe() (*os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	return sealedMemfd("berth-runtime", func(mem *os.File) error {
		if err := copyExe(mem, self); err != nil {
			return fmt.Errorf("copy runtime binary to memfd: %w", err)
		}
		return nil
	})
}

// sealedMemfd returns a close-on-exec memfd called name that fill has
// written, sealed against writes and resizes.
func sealedMemfd(name string, fill func(*os.File) error) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, &os.PathError{Op: "memfd_create", Path: name, Err: err}
	}
	mem := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := fill(mem); err != nil {
		mem.Close()
		return nil, err
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		mem.Close()
		return nil, &os.PathError{Op: "fcntl F_ADD_SEALS", Path: mem.Name(), Err: err}
	}
	return mem, nil
}

func copyExe(dst, src *os.File) error {
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	// sendfile copies inside the kernel, page cache to shmem.
	remain := fi.Size()
	for remain > 0 {
		n, err := unix.Sendfile(int(dst.Fd()), int(src.Fd()), nil, int(remain))
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			_, err = io.Copy(dst, src)
			return err
		}
		if n == 0 {
			break
		}
		remain -= int64(n)
	}
	return nil
}
