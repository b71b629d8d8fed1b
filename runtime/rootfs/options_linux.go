package rootfs

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// optionKind says what a mount option string does.
type optionKind int

const (
	optSet         optionKind = iota // sets an MS_* flag
	optClear                         // clears an MS_* flag
	optPropagation                   // a propagation change applied by its own mount(2) call
	optRecSet                        // sets a MOUNT_ATTR_* flag recursively (mount_setattr)
	optRecClear                      // clears a MOUNT_ATTR_* flag recursively
	optRecAtime                      // selects the recursive atime mode (an enum, not a bit)
	optCopyUp                        // tmpcopyup: copy the directory's contents into the new tmpfs
	optIDMap                         // idmap/ridmap: not supported
)

// option is one row of the mount option table.
type option struct {
	kind optionKind
	flag uint64 // MS_* for optSet/optClear/optPropagation, MOUNT_ATTR_* for optRec*
}

// mountOptionTable maps the option strings of config.md "Linux mount
// options" to their effect. Anything not listed is a filesystem-specific
// option passed in mount(2)'s data argument. It is a function so the table
// cannot be changed at run time.
func mountOptionTable() map[string]option {
	return map[string]option{
		"async":         {optClear, unix.MS_SYNCHRONOUS},
		"atime":         {optClear, unix.MS_NOATIME},
		"bind":          {optSet, unix.MS_BIND},
		"defaults":      {optSet, 0},
		"dev":           {optClear, unix.MS_NODEV},
		"diratime":      {optClear, unix.MS_NODIRATIME},
		"dirsync":       {optSet, unix.MS_DIRSYNC},
		"exec":          {optClear, unix.MS_NOEXEC},
		"iversion":      {optSet, unix.MS_I_VERSION},
		"lazytime":      {optSet, unix.MS_LAZYTIME},
		"loud":          {optClear, unix.MS_SILENT},
		"mand":          {optSet, unix.MS_MANDLOCK},
		"noatime":       {optSet, unix.MS_NOATIME},
		"nodev":         {optSet, unix.MS_NODEV},
		"nodiratime":    {optSet, unix.MS_NODIRATIME},
		"noexec":        {optSet, unix.MS_NOEXEC},
		"noiversion":    {optClear, unix.MS_I_VERSION},
		"nolazytime":    {optClear, unix.MS_LAZYTIME},
		"nomand":        {optClear, unix.MS_MANDLOCK},
		"norelatime":    {optClear, unix.MS_RELATIME},
		"nostrictatime": {optClear, unix.MS_STRICTATIME},
		"nosuid":        {optSet, unix.MS_NOSUID},
		"nosymfollow":   {optSet, unix.MS_NOSYMFOLLOW},
		"rbind":         {optSet, unix.MS_BIND | unix.MS_REC},
		"relatime":      {optSet, unix.MS_RELATIME},
		"remount":       {optSet, unix.MS_REMOUNT},
		"ro":            {optSet, unix.MS_RDONLY},
		"rw":            {optClear, unix.MS_RDONLY},
		"silent":        {optSet, unix.MS_SILENT},
		"strictatime":   {optSet, unix.MS_STRICTATIME},
		"suid":          {optClear, unix.MS_NOSUID},
		"symfollow":     {optClear, unix.MS_NOSYMFOLLOW},
		"sync":          {optSet, unix.MS_SYNCHRONOUS},

		"private":     {optPropagation, unix.MS_PRIVATE},
		"rprivate":    {optPropagation, unix.MS_PRIVATE | unix.MS_REC},
		"shared":      {optPropagation, unix.MS_SHARED},
		"rshared":     {optPropagation, unix.MS_SHARED | unix.MS_REC},
		"slave":       {optPropagation, unix.MS_SLAVE},
		"rslave":      {optPropagation, unix.MS_SLAVE | unix.MS_REC},
		"unbindable":  {optPropagation, unix.MS_UNBINDABLE},
		"runbindable": {optPropagation, unix.MS_UNBINDABLE | unix.MS_REC},

		"rro":          {optRecSet, unix.MOUNT_ATTR_RDONLY},
		"rrw":          {optRecClear, unix.MOUNT_ATTR_RDONLY},
		"rnosuid":      {optRecSet, unix.MOUNT_ATTR_NOSUID},
		"rsuid":        {optRecClear, unix.MOUNT_ATTR_NOSUID},
		"rnodev":       {optRecSet, unix.MOUNT_ATTR_NODEV},
		"rdev":         {optRecClear, unix.MOUNT_ATTR_NODEV},
		"rnoexec":      {optRecSet, unix.MOUNT_ATTR_NOEXEC},
		"rexec":        {optRecClear, unix.MOUNT_ATTR_NOEXEC},
		"rnodiratime":  {optRecSet, unix.MOUNT_ATTR_NODIRATIME},
		"rdiratime":    {optRecClear, unix.MOUNT_ATTR_NODIRATIME},
		"rnosymfollow": {optRecSet, unix.MOUNT_ATTR_NOSYMFOLLOW},
		"rsymfollow":   {optRecClear, unix.MOUNT_ATTR_NOSYMFOLLOW},
		// The atime mode is an enum in mount_setattr(2): the kernel refuses
		// a partial MOUNT_ATTR__ATIME in attr_clr, so every atime option
		// clears the whole field and selects one mode. Clearing noatime or
		// strictatime falls back to the kernel default, relatime; clearing
		// relatime means strictatime.
		"rrelatime":      {optRecAtime, unix.MOUNT_ATTR_RELATIME},
		"ratime":         {optRecAtime, unix.MOUNT_ATTR_RELATIME},
		"rnostrictatime": {optRecAtime, unix.MOUNT_ATTR_RELATIME},
		"rnoatime":       {optRecAtime, unix.MOUNT_ATTR_NOATIME},
		"rstrictatime":   {optRecAtime, unix.MOUNT_ATTR_STRICTATIME},
		"rnorelatime":    {optRecAtime, unix.MOUNT_ATTR_STRICTATIME},

		"tmpcopyup": {optCopyUp, 0},
		"idmap":     {optIDMap, 0},
		"ridmap":    {optIDMap, 0},
	}
}

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
func parseMountOptions(table map[string]option, opts []string) (mountOptions, error) {
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

func (mo *mountOptions) apply(name string, opt option) error {
	f := uintptr(opt.flag)
	switch opt.kind {
	case optSet:
		mo.flags |= f
		mo.cleared &^= f
	case optClear:
		mo.flags &^= f
		mo.cleared |= f
	case optPropagation:
		mo.propagation = append(mo.propagation, f)
	case optRecSet:
		mo.recAttr.Attr_set |= opt.flag
		mo.recAttr.Attr_clr &^= opt.flag
		mo.hasRecAttr = true
	case optRecClear:
		mo.recAttr.Attr_clr |= opt.flag
		mo.recAttr.Attr_set &^= opt.flag
		mo.hasRecAttr = true
	case optRecAtime:
		mo.recAttr.Attr_clr |= unix.MOUNT_ATTR__ATIME
		mo.recAttr.Attr_set = mo.recAttr.Attr_set&^unix.MOUNT_ATTR__ATIME | opt.flag
		mo.hasRecAttr = true
	case optCopyUp:
		mo.copyUp = true
	case optIDMap:
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
		return uintptr(mountOptionTable()[name].flag), nil
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
