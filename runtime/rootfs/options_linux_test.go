package rootfs

import (
	"berth.dev/internal/mountopt"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	const atime = unix.MOUNT_ATTR__ATIME
	tests := []struct {
		name string
		opts []string
		want mountOptions
	}{
		{"flags", []string{"ro", "nosuid", "nodev", "noexec"},
			mountOptions{flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC}},
		{"later rw overrides ro", []string{"ro", "rw"}, mountOptions{cleared: unix.MS_RDONLY}},
		{"later ro overrides rw", []string{"rw", "ro"}, mountOptions{flags: unix.MS_RDONLY}},
		{"clearing options", []string{"suid", "dev", "exec", "async", "atime", "diratime", "symfollow", "nomand"},
			mountOptions{cleared: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_SYNCHRONOUS |
				unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_NOSYMFOLLOW | unix.MS_MANDLOCK}},
		{"atime and sync flags", []string{"strictatime", "nodiratime", "sync", "dirsync", "mand", "nosymfollow", "lazytime", "iversion", "silent"},
			mountOptions{flags: unix.MS_STRICTATIME | unix.MS_NODIRATIME | unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC |
				unix.MS_MANDLOCK | unix.MS_NOSYMFOLLOW | unix.MS_LAZYTIME | unix.MS_I_VERSION | unix.MS_SILENT}},
		{"relatime noatime", []string{"relatime", "noatime"}, mountOptions{flags: unix.MS_RELATIME | unix.MS_NOATIME}},
		{"bind", []string{"bind"}, mountOptions{flags: unix.MS_BIND}},
		{"rbind with propagation in order", []string{"rbind", "rprivate", "slave", "rshared", "unbindable", "runbindable", "private", "rslave", "shared"},
			mountOptions{flags: unix.MS_BIND | unix.MS_REC, propagation: []uintptr{
				unix.MS_PRIVATE | unix.MS_REC, unix.MS_SLAVE, unix.MS_SHARED | unix.MS_REC,
				unix.MS_UNBINDABLE, unix.MS_UNBINDABLE | unix.MS_REC, unix.MS_PRIVATE,
				unix.MS_SLAVE | unix.MS_REC, unix.MS_SHARED}}},
		{"remount", []string{"remount", "ro"}, mountOptions{flags: unix.MS_REMOUNT | unix.MS_RDONLY}},
		{"filesystem data keeps order", []string{"mode=755", "nosuid", "size=65536k", "newinstance"},
			mountOptions{flags: unix.MS_NOSUID, data: []string{"mode=755", "size=65536k", "newinstance"}}},
		{"defaults does nothing", []string{"defaults"}, mountOptions{}},
		{"empty and x- options ignored", []string{"", "x-systemd.automount", "ro"}, mountOptions{flags: unix.MS_RDONLY}},
		{"recursive set", []string{"rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"},
			mountOptions{hasRecAttr: true, recAttr: unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID |
				unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW}}},
		{"recursive clear overrides set", []string{"rro", "rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"},
			mountOptions{hasRecAttr: true, recAttr: unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID |
				unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW}}},
		{"rnoatime selects the mode", []string{"rnoatime"},
			mountOptions{hasRecAttr: true, recAttr: unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOATIME, Attr_clr: atime}}},
		{"last atime mode wins", []string{"rnoatime", "rstrictatime"},
			mountOptions{hasRecAttr: true, recAttr: unix.MountAttr{Attr_set: unix.MOUNT_ATTR_STRICTATIME, Attr_clr: atime}}},
		{"rrelatime is mode 0", []string{"rnoatime", "rrelatime"},
			mountOptions{hasRecAttr: true, recAttr: unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RELATIME, Attr_clr: atime}}},
		{"ratime means relatime", []string{"ratime"},
			mountOptions{hasRecAttr: true, recAttr: unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RELATIME, Attr_clr: atime}}},
		{"rnorelatime means strictatime", []string{"rnorelatime"},
			mountOptions{hasRecAttr: true, recAttr: unix.MountAttr{Attr_set: unix.MOUNT_ATTR_STRICTATIME, Attr_clr: atime}}},
		{"tmpcopyup", []string{"tmpcopyup", "mode=1777"}, mountOptions{copyUp: true, data: []string{"mode=1777"}}},
	}
	table := mountopt.Table()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountOptions(table, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseMountOptions(%q)\n got %+v\nwant %+v", tt.opts, got, tt.want)
			}
		})
	}
}

func TestParseMountOptionsIDMapUnsupported(t *testing.T) {
	for _, o := range []string{"idmap", "ridmap"} {
		_, err := parseMountOptions(mountopt.Table(), []string{"rbind", o})
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s: got %v, want ErrUnsupported", o, err)
		}
	}
}

// Every option config.md names must be known, never passed as data.
func TestSpecOptionsAreAllKnown(t *testing.T) {
	spec := []string{"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
		"iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec",
		"noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow",
		"private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec",
		"rnoatime", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid",
		"rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave",
		"rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
		"strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable", "idmap", "ridmap"}
	table := mountopt.Table()
	for _, o := range spec {
		if _, ok := table[o]; !ok {
			t.Errorf("option %q is not in the table", o)
		}
	}
}

func TestNeedsRemount(t *testing.T) {
	tests := []struct {
		opts []string
		want bool
	}{
		{[]string{"bind"}, false},
		{[]string{"rbind", "rprivate"}, false},
		{[]string{"rbind", "remount"}, false},
		{[]string{"rbind", "ro"}, true},
		{[]string{"bind", "rw"}, true}, // explicitly cleared: a remount makes it writable
		{[]string{"bind", "nosuid"}, true},
		{[]string{"rbind", "rro"}, false}, // recursive attributes go through mount_setattr
	}
	for _, tt := range tests {
		mo, err := parseMountOptions(mountopt.Table(), tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := mo.needsRemount(); got != tt.want {
			t.Errorf("%q: needsRemount = %v, want %v", tt.opts, got, tt.want)
		}
	}
}

func TestStatfsFlags(t *testing.T) {
	tests := []struct {
		st   int64
		want uintptr
	}{
		{0, unix.MS_STRICTATIME},
		{unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_RELATIME, unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_RELATIME},
		{unix.ST_NODEV | unix.ST_NOEXEC | unix.ST_NOATIME | unix.ST_NODIRATIME,
			unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME},
		{0x2000, unix.MS_NOSYMFOLLOW | unix.MS_STRICTATIME},
		{unix.ST_SYNCHRONOUS | unix.ST_MANDLOCK | unix.ST_RELATIME, unix.MS_SYNCHRONOUS | unix.MS_MANDLOCK | unix.MS_RELATIME},
	}
	for _, tt := range tests {
		if got := statfsFlags(&unix.Statfs_t{Flags: tt.st}); got != tt.want {
			t.Errorf("statfsFlags(%#x) = %s, want %s", tt.st, flagNames(got), flagNames(tt.want))
		}
	}
}

func TestRootPropagation(t *testing.T) {
	tests := []struct {
		name string
		want uintptr
		bad  bool
	}{
		{"", 0, false},
		{"shared", unix.MS_SHARED, false},
		{"rslave", unix.MS_SLAVE | unix.MS_REC, false},
		{"private", unix.MS_PRIVATE, false},
		{"runbindable", unix.MS_UNBINDABLE | unix.MS_REC, false},
		{"ro", 0, true},
		{"Shared", 0, true},
	}
	for _, tt := range tests {
		got, err := rootPropagation(tt.name)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("rootPropagation(%q) = %#x, %v", tt.name, got, err)
		}
		if tt.bad && !errors.Is(err, ErrInvalid) {
			t.Errorf("rootPropagation(%q) error %v is not ErrInvalid", tt.name, err)
		}
	}
}
