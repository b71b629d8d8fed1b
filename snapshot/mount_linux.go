package snapshot

import (
	"berth.dev/internal/mountopt"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) call, as data: what a Snapshotter returns so the
// caller can mount a snapshot wherever it wants (the engine at a bundle's
// rootfs, a test at a temporary directory).
type Mount struct {
	// Type is the filesystem type ("overlay", "bind" for a bind mount).
	Type string
	// Source is the device or, for a bind mount, the directory.
	Source string
	// Options are mount(8)-style options. Flags (ro, rw, bind, rbind,
	// nosuid, nodev, noexec, ...) become mount flags; the rest is passed
	// to the filesystem. For overlay, lowerdir is a colon-separated list,
	// top layer first, and may be longer than the one page of options
	// mount(2) accepts: Mount takes care of that. Overlay paths must not
	// contain ':' or ','.
	Options []string
}

// parseOptions splits options into mount flags and filesystem data. The
// snapshotters only make mounts with plain flag options; any other kind
// is a programming error, reported when mounting.
func parseOptions(options []string) (flags uintptr, data []string, err error) {
	return mountopt.Flags(options)
}

// Mount mounts m at target, which must be an existing directory.
func (m Mount) Mount(target string) error {
	flags, data, err := parseOptions(m.Options)
	if err != nil {
		return fmt.Errorf("mount %s at %s: %w", m.Type, target, err)
	}
	if flags&unix.MS_BIND != 0 || m.Type == "bind" {
		return m.mountBind(target, flags, data)
	}
	if m.Type == "overlay" {
		return m.mountOverlay(target, flags, data)
	}
	return mountData(m.Source, target, m.Type, flags, strings.Join(data, ","))
}

func mountData(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &os.PathError{Op: "mount " + fstype + " " + source, Path: target, Err: err}
	}
	return nil
}

// mountBind bind-mounts m.Source. The kernel ignores every flag but
// MS_REC on the first call, so read-only and the other per-mount flags
// take a second, remounting call.
func (m Mount) mountBind(target string, flags uintptr, data []string) error {
	flags |= unix.MS_BIND
	if err := mountData(m.Source, target, "", flags&(unix.MS_BIND|unix.MS_REC), strings.Join(data, ",")); err != nil {
		return err
	}
	rest := flags &^ (unix.MS_BIND | unix.MS_REC)
	if rest == 0 {
		return nil
	}
	if err := mountData("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return err
	}
	return nil
}

// mountOverlay mounts an overlay. Options that fit in the page mount(2)
// copies from user space go through mount(2). Longer ones, which a deep
// image's lowerdir list easily makes, go through the new mount API,
// which takes each lower layer in its own fsconfig call ("lowerdir+",
// Linux 6.8); on older kernels the paths are made relative to their
// common parent and mounted from a thread whose working directory is that
// parent, which shortens every path to a few bytes.
func (m Mount) mountOverlay(target string, flags uintptr, data []string) error {
	joined := strings.Join(data, ",")
	if len(joined) < unix.Getpagesize() {
		return mountData(m.Source, target, m.Type, flags, joined)
	}
	err := mountOverlayFsconfig(m.Source, target, flags, data)
	if !errors.Is(err, errNoLowerdirAppend) {
		return err
	}
	return mountOverlayRelative(m.Source, target, flags, data)
}

// errNoLowerdirAppend says the kernel's new mount API cannot take the
// lower layers one at a time.
var errNoLowerdirAppend = errors.New("overlay: fsconfig lowerdir+ not supported")

// mountAttrs maps mount flags to the MOUNT_ATTR_* values of fsmount(2).
var mountAttrs = []struct{ flag, attr uintptr }{
	{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
	{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
	{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
	{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME},
	{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
}

// mountOverlayFsconfig mounts an overlay through fsopen, fsconfig, fsmount
// and move_mount, passing the lower layers one per "lowerdir+" call. It
// returns errNoLowerdirAppend when the kernel lacks the API or the key
// (or, on a legacy overlayfs, any EINVAL: the caller then tries the
// relative-path way, which reports its own error if the options are bad).
func mountOverlayFsconfig(source, target string, flags uintptr, data []string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return fmt.Errorf("%w: fsopen: %w", errNoLowerdirAppend, err)
		}
		return &os.PathError{Op: "fsopen overlay", Path: target, Err: err}
	}
	defer unix.Close(fd)
	if source != "" {
		if err := unix.FsconfigSetString(fd, "source", source); err != nil {
			return &os.PathError{Op: "fsconfig source", Path: source, Err: err}
		}
	}
	for _, o := range data {
		key, value, hasValue := strings.Cut(o, "=")
		switch {
		case key == "lowerdir":
			for i, l := range strings.Split(value, ":") {
				// A kernel whose overlayfs predates the new mount API (6.1)
				// takes any key into a one-page legacy buffer: "lowerdir+"
				// then fails with EINVAL once the page is full, not at the
				// first layer, or at create for an unknown key.
				err := unix.FsconfigSetString(fd, "lowerdir+", l)
				if errors.Is(err, unix.EINVAL) {
					return fmt.Errorf("%w: layer %d: %w", errNoLowerdirAppend, i, err)
				}
				if err != nil {
					return &os.PathError{Op: "fsconfig lowerdir+", Path: l, Err: err}
				}
			}
		case hasValue:
			if err := unix.FsconfigSetString(fd, key, value); err != nil {
				return &os.PathError{Op: "fsconfig " + key, Path: value, Err: err}
			}
		default:
			if err := unix.FsconfigSetFlag(fd, key); err != nil {
				return &os.PathError{Op: "fsconfig " + key, Path: target, Err: err}
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := unix.FsconfigSetFlag(fd, "ro"); err != nil {
			return &os.PathError{Op: "fsconfig ro", Path: target, Err: err}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%w: create: %w", errNoLowerdirAppend, err)
		}
		return &os.PathError{Op: "fsconfig create overlay", Path: target, Err: err}
	}
	var attrs uintptr
	for _, a := range mountAttrs {
		if flags&a.flag != 0 {
			attrs |= a.attr
		}
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, int(attrs))
	if err != nil {
		return &os.PathError{Op: "fsmount overlay", Path: target, Err: err}
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount overlay", Path: target, Err: err}
	}
	return nil
}

// overlayPathKeys are the overlay options whose values are paths.
var overlayPathKeys = map[string]bool{"lowerdir": true, "upperdir": true, "workdir": true}

// mountOverlayRelative mounts an overlay whose lowerdir, upperdir and
// workdir paths are rewritten relative to their longest common parent,
// from a locked OS thread that has its own filesystem context
// (unshare(CLONE_FS)) and its working directory at that parent. The
// process's working directory never changes. The thread is discarded
// afterwards rather than returned to the Go scheduler with a foreign cwd.
func mountOverlayRelative(source, target string, flags uintptr, data []string) error {
	target, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	var paths []string
	for _, o := range data {
		key, value, _ := strings.Cut(o, "=")
		if overlayPathKeys[key] {
			paths = append(paths, strings.Split(value, ":")...)
		}
	}
	base := commonDir(paths)
	if base == "" || base == "/" {
		return fmt.Errorf("mount overlay at %s: options exceed a page and the layers share no parent directory", target)
	}
	rel := make([]string, len(data))
	for i, o := range data {
		key, value, _ := strings.Cut(o, "=")
		if !overlayPathKeys[key] {
			rel[i] = o
			continue
		}
		parts := strings.Split(value, ":")
		for j, p := range parts {
			parts[j] = strings.TrimPrefix(strings.TrimPrefix(p, base), "/")
		}
		rel[i] = key + "=" + strings.Join(parts, ":")
	}
	joined := strings.Join(rel, ",")
	if len(joined) >= unix.Getpagesize() {
		return fmt.Errorf("mount overlay at %s: options exceed a page even relative to %s", target, base)
	}
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the goroutine ends with the thread locked, so
		// the runtime terminates the thread instead of reusing it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- &os.SyscallError{Syscall: "unshare CLONE_FS", Err: err}
			return
		}
		if err := unix.Chdir(base); err != nil {
			errc <- &os.PathError{Op: "chdir", Path: base, Err: err}
			return
		}
		errc <- mountData(source, target, "overlay", flags, joined)
	}()
	return <-errc
}

// commonDir returns the longest directory that contains every path, all
// of which must be absolute, or "" if there is none.
func commonDir(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	common := filepath.Dir(filepath.Clean(paths[0]))
	for _, p := range paths {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) {
			return ""
		}
		for common != "/" && !strings.HasPrefix(p, common+"/") {
			common = filepath.Dir(common)
		}
	}
	return common
}

// MountAll mounts each of mounts at target in order, stacking them. If
// one fails, those already mounted are unmounted.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.Mount(target); err != nil {
			for j := 0; j < i; j++ {
				_ = unix.Unmount(target, unix.MNT_DETACH)
			}
			return err
		}
	}
	return nil
}

// UnmountAll unmounts every mount stacked at target, top first, until
// target is no mount point (or does not exist).
func UnmountAll(target string) error {
	busy := 0
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && busy < 50:
			// A process forked meanwhile holds a copy of a descriptor
			// under target until it execs (its descriptors are
			// close-on-exec): a moment, longer under emulation.
			busy++
			time.Sleep(10 * time.Millisecond)
		default:
			return &os.PathError{Op: "umount", Path: target, Err: err}
		}
	}
}
