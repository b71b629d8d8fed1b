package rootfs

import (
	"berth.dev/internal/mountopt"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is the parsed form of a mount's option strings.
type mountOptions struct {
	flags       uintptr   // MS_* flags to set
	cleared     uintptr   // MS_* flags an option explicitly cleared
	propagation []uintptr // propagation changes, in the order given
	recAttr     unix.MountAttr
	hasRecAttr  bool
	data        []string // filesystem-specific options, in the order given
	copyUp      bool
}

// parseMountOptions applies opts in order (a later option overrides an
// earlier one, as with mount(8)). Empty strings and userspace-only "x-*"
// options are ignored, as mount(8) does.
func parseMountOptions(table map[string]mountopt.Option, opts []string) (mountOptions, error) {
	var mo mountOptions
	for _, o := range opts {
		if o == "" || strings.HasPrefix(o, "x-") {
			continue
		}
		opt, ok := table[o]
		if !ok {
			mo.data = append(mo.data, o)
			continue
		}
		if err := mo.apply(o, opt); err != nil {
			return mountOptions{}, err
		}
	}
	return mo, nil
}

func (mo *mountOptions) apply(name string, opt mountopt.Option) error {
	f := uintptr(opt.Flag)
	switch opt.Kind {
	case mountopt.Set:
		mo.flags |= f
		mo.cleared &^= f
	case mountopt.Clear:
		mo.flags &^= f
		mo.cleared |= f
	case mountopt.Propagation:
		mo.propagation = append(mo.propagation, f)
	case mountopt.RecSet:
		mo.recAttr.Attr_set |= opt.Flag
		mo.recAttr.Attr_clr &^= opt.Flag
		mo.hasRecAttr = true
	case mountopt.RecClear:
		mo.recAttr.Attr_clr |= opt.Flag
		mo.recAttr.Attr_set &^= opt.Flag
		mo.hasRecAttr = true
	case mountopt.RecAtime:
		mo.recAttr.Attr_clr |= unix.MOUNT_ATTR__ATIME
		mo.recAttr.Attr_set = mo.recAttr.Attr_set&^unix.MOUNT_ATTR__ATIME | opt.Flag
		mo.hasRecAttr = true
	case mountopt.CopyUp:
		mo.copyUp = true
	case mountopt.IDMap:
		return fmt.Errorf("mount option %q: idmapped mounts: %w", name, errors.ErrUnsupported)
	}
	return nil
}

// isBind reports whether the options make this a bind mount ("bind" or
// "rbind"), whatever the mount's type says.
func (mo *mountOptions) isBind() bool { return mo.flags&unix.MS_BIND != 0 }

// needsRemount reports whether a bind mount needs a second MS_REMOUNT call
// for its flags: the first MS_BIND ignores every flag but MS_REC. A bind
// whose options set or clear nothing keeps the flags of its source.
func (mo *mountOptions) needsRemount() bool {
	return mo.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 || mo.cleared != 0
}

// rootPropagation maps linux.rootfsPropagation to its MS_* flags. runc
// accepts the recursive names as well as the four in the spec.
func rootPropagation(name string) (uintptr, error) {
	switch name {
	case "":
		return 0, nil
	case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
		return uintptr(mountopt.Table()[name].Flag), nil
	}
	return 0, fmt.Errorf("%w: linux.rootfsPropagation %q: want shared, slave, private or unbindable", ErrInvalid, name)
}

// The atime flags of mount(2); the first three are mutually exclusive.
const (
	atimeEnumFlags = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME
	atimeFlags     = atimeEnumFlags | unix.MS_NODIRATIME
	// lockableFlags are the flags the kernel locks (MNT_LOCK_*) on mounts
	// that a less privileged user namespace inherits: a remount must keep
	// them as they are.
	lockableFlags = unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOSUID | atimeFlags
)

// statfsFlags converts statfs(2) f_flags to the MS_* flags of the mount.
func statfsFlags(st *unix.Statfs_t) uintptr {
	const stNoSymFollow = 0x2000 // ST_NOSYMFOLLOW, <linux/statfs.h>
	pairs := [...]struct{ st, ms uintptr }{
		{unix.ST_RDONLY, unix.MS_RDONLY},
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_SYNCHRONOUS, unix.MS_SYNCHRONOUS},
		{unix.ST_MANDLOCK, unix.MS_MANDLOCK},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
		{stNoSymFollow, unix.MS_NOSYMFOLLOW},
	}
	var flags uintptr
	for _, p := range pairs {
		if uintptr(st.Flags)&p.st != 0 {
			flags |= p.ms
		}
	}
	// strictatime is not stored on the mount: it is the absence of the
	// other two atime modes.
	if flags&atimeEnumFlags == 0 {
		flags |= unix.MS_STRICTATIME
	}
	return flags
}
