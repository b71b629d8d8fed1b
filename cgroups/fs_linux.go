package cgroups

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/internal/openat2"
)

// File access to cgroupfs shared by both drivers.

// openFile opens name inside dir with openat2(RESOLVE_BENEATH), so a file
// name (a unified key, say) can never reach outside the cgroup directory,
// not even through a symlink. Kernels without openat2 fall back to openat
// with O_NOFOLLOW.
func openFile(dir, name string, flags int) (*os.File, error) {
	p := filepath.Join(dir, name)
	dirFd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dirFd)
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS,
	}
	fd, err := openat2.Open(dirFd, name, &how)
	if err == unix.ENOSYS {
		fd, err = unix.Openat(dirFd, name, flags|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// writeFile writes data to dir/name in one write(2), as cgroupfs expects
// (each write is one command).
func writeFile(dir, name, data string) error {
	f, err := openFile(dir, name, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readFile returns the contents of dir/name without the trailing newline.
func readFile(dir, name string) (string, error) {
	f, err := openFile(dir, name, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// readUint reads a file holding one unsigned number.
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// readInt reads a file holding one signed number (v1 limits can be -1).
func readInt(dir, name string) (int64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// fileExists reports whether dir/name exists.
func fileExists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// setValue writes a resource value and sorts a failure into the package's
// categories: a missing file means the host lacks the feature
// (ErrUnsupported), a refused value is ErrInvalid, a missing cgroup
// directory is ErrNotExist.
func setValue(dir, name, value string) error {
	err := writeFile(dir, name, value)
	if err == nil {
		return nil
	}
	return classifyWriteError(dir, name, value, err)
}

func classifyWriteError(dir, name, value string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		if _, serr := os.Stat(dir); serr != nil {
			return fmt.Errorf("set %s: %w: %w", name, ErrNotExist, err)
		}
		return fmt.Errorf("set %s: %w: %w", name, ErrUnsupported, err)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("set %s: %w: %w", name, ErrUnsupported, err)
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ERANGE),
		errors.Is(err, unix.EBUSY), errors.Is(err, unix.EOVERFLOW), errors.Is(err, unix.ENOSPC):
		return fmt.Errorf("set %s to %q: %w: %w", name, value, ErrInvalid, err)
	}
	return fmt.Errorf("set %s to %q: %w", name, value, err)
}

// checkDir returns ErrNotExist (wrapped) if the cgroup directory is gone.
func checkDir(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cgroup %s: %w", dir, ErrNotExist)
		}
		return err
	}
	return nil
}

// mkdirPath creates every missing directory from base (which must exist)
// down to base/rel and returns the ones it created, outermost first.
func mkdirPath(base, rel string) ([]string, error) {
	var created []string
	dir := base
	for _, elem := range strings.Split(strings.Trim(rel, "/"), "/") {
		if elem == "" {
			continue
		}
		dir = filepath.Join(dir, elem)
		err := unix.Mkdir(dir, 0o755)
		if err == nil {
			created = append(created, dir)
			continue
		}
		if err != unix.EEXIST {
			return created, &os.PathError{Op: "mkdir", Path: dir, Err: err}
		}
	}
	return created, nil
}

// removeDirs removes dirs in reverse order (innermost first), ignoring
// ones already gone. It is the undo of mkdirPath.
func removeDirs(dirs []string) error {
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && err != unix.ENOENT {
			errs = append(errs, &os.PathError{Op: "rmdir", Path: dirs[i], Err: err})
		}
	}
	return errors.Join(errs...)
}

// destroyTimeout bounds how long Destroy waits for a cgroup to empty.
const destroyTimeout = 5 * time.Second

// removeCgroup removes dir and every cgroup below it, deepest first. cgroup
// directories cannot be emptied with unlink (their files are not real), so
// only rmdir is used. While the kernel answers EBUSY (processes still
// exiting, or a sub-cgroup that appeared meanwhile) it walks again with
// backoff until deadline. A dir that does not exist is not an error.
func removeCgroup(dir string, deadline time.Time) error {
	backoff := time.Millisecond
	for {
		err := removeOnce(dir, deadline)
		// cgroupfs answers EBUSY while processes or sub-cgroups remain;
		// ENOTEMPTY would mean a directory of real files, which waiting
		// does not empty.
		if err == nil || !errors.Is(err, unix.EBUSY) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup still busy (processes left?): %w", err)
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 100*time.Millisecond)
	}
}

func removeOnce(dir string, deadline time.Time) error {
	// A container's cgroup seldom has sub-cgroups: try the rmdir first
	// and list the directory only when it is refused.
	switch err := unix.Rmdir(dir); err {
	case nil, unix.ENOENT:
		return nil
	case unix.EBUSY, unix.ENOTEMPTY:
	default:
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// readProcs returns the pids listed in dir/cgroup.procs.
func readProcs(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s/cgroup.procs: %w", dir, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// walkProcs returns the pids in dir and every cgroup below it.
func walkProcs(dir string) ([]int, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	var pids []int
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // a sub-cgroup removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		procs, err := readProcs(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		pids = append(pids, procs...)
		return err
	})
	return pids, err
}

// writePid moves pid into the cgroup at dir. The kernel refuses a task
// that is still being forked (TASK_NEW) with EINVAL, so that is retried a
// few times.
func writePid(dir string, pid int) error {
	var err error
	for range 5 {
		err = writeFile(dir, "cgroup.procs", strconv.Itoa(pid))
		if !errors.Is(err, unix.EINVAL) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("move pid %d into %s: %w", pid, dir, err)
	}
	return nil
}

// signalAll sends sig to each pid; processes that are already gone are
// not an error.
func signalAll(pids []int, sig unix.Signal) error {
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// ignoreMissing drops "no such file" errors: a stats file the running
// kernel does not have.
func ignoreMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
