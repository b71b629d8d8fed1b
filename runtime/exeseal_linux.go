package runtime

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sealedExe returns a memfd holding a sealed copy of the running binary.
//
// The container's init is this binary re-executed. If it ran from the host
// file, a process in the container could open /proc/<init>/exe (or run a
// script whose interpreter is /proc/self/exe) and rewrite the host's runtime
// binary: CVE-2019-5736. A memfd sealed against writes and resizes has no
// path on the host and cannot be modified, so there is nothing to overwrite.
func sealedExe() (*os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, &os.PathError{Op: "memfd_create", Path: "berth-runtime", Err: err}
	}
	mem := os.NewFile(uintptr(fd), "memfd:berth-runtime")
	if err := copyExe(mem, self); err != nil {
		mem.Close()
		return nil, fmt.Errorf("copy runtime binary to memfd: %w", err)
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
