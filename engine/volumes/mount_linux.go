package volumes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"berth.dev/internal/mountinfo"
	"berth.dev/internal/mountopt"
)

// mountFS mounts the filesystem that driver options describe on target:
// mount -t opts[type] -o opts[o] opts[device] target.
func mountFS(opts map[string]string, target string) error {
	var list []string
	if o := opts[optO]; o != "" {
		list = strings.Split(o, ",")
	}
	flags, data, err := mountopt.Flags(list)
	if err != nil {
		return err
	}
	device, fstype := opts[optDevice], opts[optType]
	if err := unix.Mount(device, target, fstype, flags, strings.Join(data, ",")); err != nil {
		// The options stay out of the message: a cifs volume's carry a
		// password.
		return fmt.Errorf("failed to mount local volume: mount %s (type %s) on %s: %w", device, fstype, target, err)
	}
	// A bind mount ignores every flag but MS_REC on its first call: ro,
	// nosuid and the like take a remount.
	if flags&unix.MS_BIND != 0 && flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("failed to mount local volume: remount %s with its flags: %w", target, err)
		}
	}
	return nil
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	infos, err := mountinfo.Parse(data)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mi := range infos {
		if mi.Mountpoint == dir || strings.HasPrefix(mi.Mountpoint, dir+"/") {
			out = append(out, mi.Mountpoint)
		}
	}
	// Longer paths are deeper; a path mounted twice appears twice and is
	// unmounted twice.
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, nil
}

// isMountpoint reports whether something is mounted on dir.
func isMountpoint(dir string) (bool, error) {
	ms, err := mountsUnder(dir)
	return slices.Contains(ms, dir), err
}

// unmountAll detaches every mount at or below dir.
func unmountAll(dir string) error {
	ms, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "umount", Path: m, Err: err}
		}
	}
	return nil
}

// removeDir deletes a volume's directory. Whatever is mounted in it is
// unmounted first, and the removal is refused if a mount remains: a bind
// volume's _data is the user's own directory, and os.RemoveAll would walk
// into it and delete their files.
func removeDir(dir string) error {
	if err := unmountAll(dir); err != nil {
		return err
	}
	ms, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(ms) > 0 {
		return fmt.Errorf("remove %s: %s is still mounted", dir, ms[0])
	}
	return os.RemoveAll(filepath.Clean(dir))
}
