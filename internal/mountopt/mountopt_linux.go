// Package mountopt is the one table of mount option strings ("ro",
// "nosuid", "rbind", "rprivate", "rro", ...) and what each does, shared by
// the runtime's rootfs setup (every option of the runtime spec) and the
// snapshotter (the plain flags of the mounts it makes).
package mountopt

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Kind says what a mount option string does.
type Kind int

const (
	Set         Kind = iota // sets an MS_* flag
	Clear                   // clears an MS_* flag
	Propagation             // a propagation change applied by its own mount(2) call
	RecSet                  // sets a MOUNT_ATTR_* flag recursively (mount_setattr)
	RecClear                // clears a MOUNT_ATTR_* flag recursively
	RecAtime                // selects the recursive atime mode (an enum, not a bit)
	CopyUp                  // tmpcopyup: copy the directory's contents into the new tmpfs
	IDMap                   // idmap/ridmap: not supported
)

// Option is one row of the mount option table.
type Option struct {
	Kind Kind
	Flag uint64 // MS_* for Set/Clear/Propagation, MOUNT_ATTR_* for optRec*
}

// Table maps the option strings of config.md "Linux mount
// options" to their effect. Anything not listed is a filesystem-specific
// option passed in mount(2)'s data argument. It is a function so the table
// cannot be changed at run time.
func Table() map[string]Option {
	return map[string]Option{
		"async":         {Clear, unix.MS_SYNCHRONOUS},
		"atime":         {Clear, unix.MS_NOATIME},
		"bind":          {Set, unix.MS_BIND},
		"defaults":      {Set, 0},
		"dev":           {Clear, unix.MS_NODEV},
		"diratime":      {Clear, unix.MS_NODIRATIME},
		"dirsync":       {Set, unix.MS_DIRSYNC},
		"exec":          {Clear, unix.MS_NOEXEC},
		"iversion":      {Set, unix.MS_I_VERSION},
		"lazytime":      {Set, unix.MS_LAZYTIME},
		"loud":          {Clear, unix.MS_SILENT},
		"mand":          {Set, unix.MS_MANDLOCK},
		"noatime":       {Set, unix.MS_NOATIME},
		"nodev":         {Set, unix.MS_NODEV},
		"nodiratime":    {Set, unix.MS_NODIRATIME},
		"noexec":        {Set, unix.MS_NOEXEC},
		"noiversion":    {Clear, unix.MS_I_VERSION},
		"nolazytime":    {Clear, unix.MS_LAZYTIME},
		"nomand":        {Clear, unix.MS_MANDLOCK},
		"norelatime":    {Clear, unix.MS_RELATIME},
		"nostrictatime": {Clear, unix.MS_STRICTATIME},
		"nosuid":        {Set, unix.MS_NOSUID},
		"nosymfollow":   {Set, unix.MS_NOSYMFOLLOW},
		"rbind":         {Set, unix.MS_BIND | unix.MS_REC},
		"relatime":      {Set, unix.MS_RELATIME},
		"remount":       {Set, unix.MS_REMOUNT},
		"ro":            {Set, unix.MS_RDONLY},
		"rw":            {Clear, unix.MS_RDONLY},
		"silent":        {Set, unix.MS_SILENT},
		"strictatime":   {Set, unix.MS_STRICTATIME},
		"suid":          {Clear, unix.MS_NOSUID},
		"symfollow":     {Clear, unix.MS_NOSYMFOLLOW},
		"sync":          {Set, unix.MS_SYNCHRONOUS},

		"private":     {Propagation, unix.MS_PRIVATE},
		"rprivate":    {Propagation, unix.MS_PRIVATE | unix.MS_REC},
		"shared":      {Propagation, unix.MS_SHARED},
		"rshared":     {Propagation, unix.MS_SHARED | unix.MS_REC},
		"slave":       {Propagation, unix.MS_SLAVE},
		"rslave":      {Propagation, unix.MS_SLAVE | unix.MS_REC},
		"unbindable":  {Propagation, unix.MS_UNBINDABLE},
		"runbindable": {Propagation, unix.MS_UNBINDABLE | unix.MS_REC},

		"rro":          {RecSet, unix.MOUNT_ATTR_RDONLY},
		"rrw":          {RecClear, unix.MOUNT_ATTR_RDONLY},
		"rnosuid":      {RecSet, unix.MOUNT_ATTR_NOSUID},
		"rsuid":        {RecClear, unix.MOUNT_ATTR_NOSUID},
		"rnodev":       {RecSet, unix.MOUNT_ATTR_NODEV},
		"rdev":         {RecClear, unix.MOUNT_ATTR_NODEV},
		"rnoexec":      {RecSet, unix.MOUNT_ATTR_NOEXEC},
		"rexec":        {RecClear, unix.MOUNT_ATTR_NOEXEC},
		"rnodiratime":  {RecSet, unix.MOUNT_ATTR_NODIRATIME},
		"rdiratime":    {RecClear, unix.MOUNT_ATTR_NODIRATIME},
		"rnosymfollow": {RecSet, unix.MOUNT_ATTR_NOSYMFOLLOW},
		"rsymfollow":   {RecClear, unix.MOUNT_ATTR_NOSYMFOLLOW},
		// The atime mode is an enum in mount_setattr(2): the kernel refuses
		// a partial MOUNT_ATTR__ATIME in attr_clr, so every atime option
		// clears the whole field and selects one mode. Clearing noatime or
		// strictatime falls back to the kernel default, relatime; clearing
		// relatime means strictatime.
		"rrelatime":      {RecAtime, unix.MOUNT_ATTR_RELATIME},
		"ratime":         {RecAtime, unix.MOUNT_ATTR_RELATIME},
		"rnostrictatime": {RecAtime, unix.MOUNT_ATTR_RELATIME},
		"rnoatime":       {RecAtime, unix.MOUNT_ATTR_NOATIME},
		"rstrictatime":   {RecAtime, unix.MOUNT_ATTR_STRICTATIME},
		"rnorelatime":    {RecAtime, unix.MOUNT_ATTR_STRICTATIME},

		"tmpcopyup": {CopyUp, 0},
		"idmap":     {IDMap, 0},
		"ridmap":    {IDMap, 0},
	}
}

// Flags splits options into the MS_* flags they set and the
// filesystem-specific data, for callers whose mounts use only plain flag
// options ("ro", "bind", "nodev", ...). An option of another kind
// (propagation, recursive attributes) is an error.
func Flags(options []string) (flags uintptr, data []string, err error) {
	table := Table()
	for _, o := range options {
		opt, ok := table[o]
		if !ok {
			data = append(data, o)
			continue
		}
		switch opt.Kind {
		case Set:
			flags |= uintptr(opt.Flag)
		case Clear:
			flags &^= uintptr(opt.Flag)
		default:
			return 0, nil, fmt.Errorf("mount option %q is not a plain flag", o)
		}
	}
	return flags, data, nil
}
