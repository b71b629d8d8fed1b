package rootfs

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func fakeSpec(mounts ...specs.Mount) *specs.Spec {
	return &specs.Spec{Root: &specs.Root{Path: "/rootfs"}, Mounts: mounts, Linux: &specs.Linux{}}
}

func fakeConfig(f *fakeSys, spec *specs.Spec) *Config {
	return &Config{Spec: spec, Rootfs: "/rootfs", Sys: f}
}

// prepare runs Prepare on the fake and checks that it leaves no
// descriptor open.
func prepare(t *testing.T, f *fakeSys, c *Config) error {
	t.Helper()
	err := Prepare(c)
	f.checkNoLeaks()
	return err
}

func mustPrepare(t *testing.T, f *fakeSys, c *Config) {
	t.Helper()
	if err := prepare(t, f, c); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
}

func checkCalls(t *testing.T, got, want []call) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	var b strings.Builder
	b.WriteString("calls differ\n got:\n")
	for _, c := range got {
		b.WriteString("  " + c.String() + "\n")
	}
	b.WriteString(" want:\n")
	for _, c := range want {
		b.WriteString("  " + c.String() + "\n")
	}
	t.Error(b.String())
}

func mnt(source, target, fstype string, flags uintptr, data string) call {
	return call{op: "mount", source: source, target: target, fstype: fstype, flags: flags, data: data}
}

func TestPrepareRootPropagation(t *testing.T) {
	tests := []struct {
		prop        string
		first       uintptr
		parentFlags uintptr
	}{
		{"", unix.MS_SLAVE | unix.MS_REC, unix.MS_PRIVATE},
		{"rslave", unix.MS_SLAVE | unix.MS_REC, unix.MS_SLAVE},
		{"slave", unix.MS_SLAVE, unix.MS_SLAVE},
		{"private", unix.MS_PRIVATE, unix.MS_PRIVATE},
		{"rprivate", unix.MS_PRIVATE | unix.MS_REC, unix.MS_PRIVATE},
		{"rshared", unix.MS_SHARED | unix.MS_REC, unix.MS_PRIVATE},
		{"shared", unix.MS_SHARED, unix.MS_PRIVATE},
		{"unbindable", unix.MS_SLAVE | unix.MS_REC, unix.MS_PRIVATE},
		{"runbindable", unix.MS_SLAVE | unix.MS_REC, unix.MS_PRIVATE},
	}
	for _, tt := range tests {
		t.Run(tt.prop, func(t *testing.T) {
			f := newFake(t)
			spec := fakeSpec()
			spec.Linux.RootfsPropagation = tt.prop
			mustPrepare(t, f, fakeConfig(f, spec))
			checkCalls(t, f.only("mount")[:4], []call{
				mnt("", "/", "", tt.first, ""),
				// /rootfs is not a mount point: the walk goes up to "/".
				mnt("", "/rootfs", "", tt.parentFlags, ""),
				mnt("", "/", "", tt.parentFlags, ""),
				mnt("/rootfs", "/rootfs", "", unix.MS_BIND|unix.MS_REC, ""),
			})
		})
	}
}

func TestBindMountFlags(t *testing.T) {
	const target = "/rootfs/data"
	tests := []struct {
		name string
		opts []string
		want []call
	}{
		{"plain bind keeps the source flags", []string{"bind"}, []call{
			mnt("/host/data", target, "", unix.MS_BIND, ""),
		}},
		{"ro,nosuid needs a remount", []string{"rbind", "ro", "nosuid"}, []call{
			mnt("/host/data", target, "", unix.MS_BIND|unix.MS_REC, ""),
			mnt("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID, ""),
		}},
		{"propagation is applied by separate calls", []string{"rbind", "ro", "rprivate", "rshared"}, []call{
			mnt("/host/data", target, "", unix.MS_BIND|unix.MS_REC, ""),
			mnt("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""),
			mnt("", target, "", unix.MS_PRIVATE|unix.MS_REC, ""),
			mnt("", target, "", unix.MS_SHARED|unix.MS_REC, ""),
		}},
		{"rw alone still remounts", []string{"bind", "rw"}, []call{
			mnt("/host/data", target, "", unix.MS_BIND, ""),
			mnt("", target, "", unix.MS_BIND|unix.MS_REMOUNT, ""),
		}},
		{"recursive attributes through mount_setattr", []string{"rbind", "rro", "rnoexec"}, []call{
			mnt("/host/data", target, "", unix.MS_BIND|unix.MS_REC, ""),
			{op: "mount_setattr", target: target, flags: unix.AT_EMPTY_PATH | unix.AT_RECURSIVE,
				attr: unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOEXEC}},
		}},
		{"type bind is not needed", []string{"rbind", "nodev", "noexec", "relatime"}, []call{
			mnt("/host/data", target, "", unix.MS_BIND|unix.MS_REC, ""),
			mnt("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RELATIME, ""),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.dir("/host/data")
			mustPrepare(t, f, fakeConfig(f, fakeSpec(specs.Mount{Destination: "/data", Source: "/host/data", Type: "none", Options: tt.opts})))
			checkCalls(t, f.mountsUnder(target), tt.want)
		})
	}
}

// In a user namespace the kernel locks the flags of inherited mounts; a
// remount that does not repeat them fails with EPERM.
func TestBindRemountKeepsLockedFlags(t *testing.T) {
	const target = "/rootfs/data"
	eperm := func(c call) error {
		if c.op == "mount" && c.target == target && c.flags&unix.MS_REMOUNT != 0 && c.flags&unix.MS_NODEV == 0 {
			return unix.EPERM
		}
		return nil
	}
	t.Run("kept", func(t *testing.T) {
		f := newFake(t)
		f.dir("/host/data")
		f.nodes[target] = &fakeNode{mode: unix.S_IFDIR | 0o755, fsFlags: unix.ST_NODEV | unix.ST_NOSUID | unix.ST_RELATIME}
		f.fail = eperm
		mustPrepare(t, f, fakeConfig(f, fakeSpec(specs.Mount{Destination: "/data", Source: "/host/data", Options: []string{"rbind", "ro"}})))
		checkCalls(t, f.mountsUnder(target), []call{
			mnt("/host/data", target, "", unix.MS_BIND|unix.MS_REC, ""),
			mnt("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""),
			mnt("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_RELATIME, ""),
		})
	})
	for _, opt := range []string{"dev", "noatime"} {
		t.Run("refused "+opt, func(t *testing.T) {
			f := newFake(t)
			f.dir("/host/data")
			f.nodes[target] = &fakeNode{mode: unix.S_IFDIR | 0o755, fsFlags: unix.ST_NODEV | unix.ST_RELATIME}
			f.fail = func(c call) error {
				if c.op == "mount" && c.flags&unix.MS_REMOUNT != 0 {
					return unix.EPERM
				}
				return nil
			}
			err := prepare(t, f, fakeConfig(f, fakeSpec(specs.Mount{Destination: "/data", Source: "/host/data", Options: []string{"rbind", opt}})))
			if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "locked") {
				t.Fatalf("got %v, want a locked-flags error", err)
			}
		})
	}
}

func TestBindCreatesTargetLikeSource(t *testing.T) {
	f := newFake(t)
	f.dir("/host/dir")
	f.file("/host/file")
	f.dir("/rootfs/etc")
	mustPrepare(t, f, fakeConfig(f, fakeSpec(
		specs.Mount{Destination: "/a/b/c", Source: "/host/dir", Options: []string{"bind"}},
		specs.Mount{Destination: "/etc/hosts", Source: "/host/file", Options: []string{"bind"}},
	)))
	var made []call
	for _, c := range f.only("mkdir", "create") {
		if !strings.HasPrefix(c.target, "/rootfs/dev") {
			made = append(made, c)
		}
	}
	checkCalls(t, made, []call{
		{op: "mkdir", target: "/rootfs/a", flags: 0o755},
		{op: "mkdir", target: "/rootfs/a/b", flags: 0o755},
		{op: "mkdir", target: "/rootfs/a/b/c", flags: 0o755},
		{op: "create", target: "/rootfs/etc/hosts", flags: 0o644},
	})
	if n := f.node("/rootfs/etc/hosts"); n == nil || n.mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("/etc/hosts is not a regular file: %+v", n)
	}
}

func TestBindMissingSource(t *testing.T) {
	f := newFake(t)
	err := prepare(t, f, fakeConfig(f, fakeSpec(specs.Mount{Destination: "/data", Source: "/nonexistent", Options: []string{"bind"}})))
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "/nonexistent") {
		t.Fatalf("got %v, want ENOENT naming the source", err)
	}
	if got := f.mountsUnder("/rootfs/data"); len(got) != 0 {
		t.Errorf("mounted anyway: %v", got)
	}
}

func TestRelativeBindSourceUsesBundle(t *testing.T) {
	f := newFake(t)
	f.dir("/bundle/vol")
	c := fakeConfig(f, fakeSpec(specs.Mount{Destination: "data", Source: "vol", Options: []string{"bind"}}))
	c.Bundle = "/bundle"
	mustPrepare(t, f, c)
	checkCalls(t, f.mountsUnder("/rootfs/data"), []call{mnt("/bundle/vol", "/rootfs/data", "", unix.MS_BIND, "")})
}

func TestTmpfsKeepsModeAndDefersReadonly(t *testing.T) {
	f := newFake(t)
	f.nodes["/rootfs/tmp"] = &fakeNode{mode: unix.S_IFDIR | 0o1777}
	c := fakeConfig(f, fakeSpec(specs.Mount{Destination: "/tmp", Source: "tmpfs", Type: "tmpfs", Options: []string{"ro", "nosuid", "size=64k"}}))
	mustPrepare(t, f, c)
	checkCalls(t, f.mountsUnder("/rootfs/tmp"), []call{
		mnt("tmpfs", "/rootfs/tmp", "tmpfs", unix.MS_NOSUID, "mode=1777,size=64k"),
	})
	f.calls = nil
	if err := Finalize(c); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, f.only("mount"), []call{
		mnt("", "/tmp", "", unix.MS_NOSUID|unix.MS_RDONLY|unix.MS_BIND|unix.MS_REMOUNT, ""),
	})
}

func TestTmpcopyup(t *testing.T) {
	f := newFake(t)
	f.dir("/rootfs/var")
	c := fakeConfig(f, fakeSpec(specs.Mount{Destination: "/var", Source: "tmpfs", Type: "tmpfs", Options: []string{"tmpcopyup", "rslave"}}))
	mustPrepare(t, f, c)
	var got []call
	for _, c := range f.calls {
		if (c.op == "mount" || c.op == "copytree") && c.target == "/rootfs/var" {
			got = append(got, c)
		}
	}
	checkCalls(t, got, []call{
		mnt("tmpfs", "/rootfs/var", "tmpfs", 0, "mode=0755"),
		{op: "copytree", source: "/rootfs/var", target: "/rootfs/var"},
		mnt("", "/rootfs/var", "", unix.MS_SLAVE|unix.MS_REC, ""),
	})
}

func TestMountFilesystemsPassData(t *testing.T) {
	f := newFake(t)
	c := fakeConfig(f, fakeSpec(
		specs.Mount{Destination: "/dev/pts", Source: "devpts", Type: "devpts",
			Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		specs.Mount{Destination: "/dev/mqueue", Source: "mqueue", Type: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		specs.Mount{Destination: "/merged", Source: "overlay", Type: "overlay",
			Options: []string{"lowerdir=/l1:/l2", "upperdir=/u", "workdir=/w", "rw"}},
	))
	mustPrepare(t, f, c)
	checkCalls(t, f.only("mount")[4:7], []call{
		mnt("devpts", "/rootfs/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
		mnt("mqueue", "/rootfs/dev/mqueue", "mqueue", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, ""),
		mnt("overlay", "/rootfs/merged", "overlay", 0, "lowerdir=/l1:/l2,upperdir=/u,workdir=/w"),
	})
}

func TestDevptsUserNSRetriesWithoutGid(t *testing.T) {
	f := newFake(t)
	f.fail = func(c call) error {
		if c.fstype == "devpts" && strings.Contains(c.data, "gid=5") {
			return unix.EINVAL
		}
		return nil
	}
	c := fakeConfig(f, fakeSpec(specs.Mount{Destination: "/dev/pts", Source: "devpts", Type: "devpts", Options: []string{"newinstance", "gid=5", "mode=0620"}}))
	c.UserNS = true
	mustPrepare(t, f, c)
	checkCalls(t, f.mountsUnder("/rootfs/dev/pts"), []call{
		mnt("devpts", "/rootfs/dev/pts", "devpts", 0, "newinstance,gid=5,mode=0620"),
		mnt("devpts", "/rootfs/dev/pts", "devpts", 0, "newinstance,mode=0620"),
	})
}

// Regression test for the class of CVE-2021-30465: a symlink in the image
// must not send a mount outside the rootfs.
func TestSymlinkTargetResolvedInsideRoot(t *testing.T) {
	f := newFake(t)
	f.dir("/rootfs/etc")
	f.dir("/host-dir")
	f.symlink("/rootfs/etc/evil", "/host-dir")
	mustPrepare(t, f, fakeConfig(f, fakeSpec(specs.Mount{Destination: "/etc/evil", Source: "tmpfs", Type: "tmpfs"})))
	for _, c := range f.only("mount", "mkdir") {
		if strings.HasPrefix(c.target, "/host-dir") {
			t.Errorf("touched the host: %v", c)
		}
	}
	checkCalls(t, f.mountsUnder("/rootfs/host-dir"), []call{mnt("tmpfs", "/rootfs/host-dir", "tmpfs", 0, "")})
	// Every lookup below the rootfs is confined: from the root handle with
	// RESOLVE_IN_ROOT, or one name beneath a directory already resolved
	// (the root's own handle included).
	for _, c := range f.only("openat2") {
		inRoot := c.source == "/rootfs" && c.flags&unix.RESOLVE_IN_ROOT != 0
		beneath := c.flags&unix.RESOLVE_BENEATH != 0 && (c.source == "/rootfs" || strings.HasPrefix(c.source, "/rootfs/"))
		if strings.HasPrefix(c.target, "/rootfs/") && !inRoot && !beneath {
			t.Errorf("lookup of %s from %s (resolve %#x) is not confined", c.target, c.source, c.flags)
		}
	}
}

func TestProcfsNeedsRealDirectory(t *testing.T) {
	for _, kind := range []string{"proc", "sysfs"} {
		t.Run(kind, func(t *testing.T) {
			f := newFake(t)
			f.dir("/rootfs/elsewhere")
			f.symlink("/rootfs/pseudo", "/elsewhere")
			err := prepare(t, f, fakeConfig(f, fakeSpec(specs.Mount{Destination: "/pseudo", Source: kind, Type: kind})))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "real directory") {
				t.Fatalf("got %v, want a real-directory error", err)
			}
			for _, c := range f.only("mount") {
				if c.fstype == kind {
					t.Errorf("mounted %s anyway: %v", kind, c)
				}
			}
		})
	}
}

func TestProcMountChecks(t *testing.T) {
	tests := []struct {
		name  string
		mount specs.Mount
		ok    bool
	}{
		{"proc on /proc", specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}, true},
		{"tmpfs on /proc", specs.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"}, false},
		{"bind of procfs on /proc", specs.Mount{Destination: "/proc", Source: "/host/proc", Options: []string{"rbind"}}, true},
		{"bind of a dir on /proc", specs.Mount{Destination: "/proc", Source: "/host/dir", Options: []string{"rbind"}}, false},
		{"lxcfs file", specs.Mount{Destination: "/proc/meminfo", Source: "/host/file", Options: []string{"bind"}}, true},
		{"other proc file", specs.Mount{Destination: "/proc/sys/kernel/core_pattern", Source: "/host/file", Options: []string{"bind"}}, false},
		{"sysfs on /proc", specs.Mount{Destination: "/proc", Type: "sysfs", Source: "sysfs"}, false},
		{"proc elsewhere", specs.Mount{Destination: "/procx", Type: "tmpfs", Source: "tmpfs"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.nodes["/host/proc"] = &fakeNode{mode: unix.S_IFDIR | 0o555, fsType: unix.PROC_SUPER_MAGIC}
			f.dir("/host/dir")
			f.file("/host/file")
			f.dir("/rootfs/proc")
			err := prepare(t, f, fakeConfig(f, fakeSpec(tt.mount)))
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestSysfsUserNSFallsBackToBind(t *testing.T) {
	f := newFake(t)
	f.dir("/sys")
	f.fail = func(c call) error {
		if c.fstype == "sysfs" {
			return unix.EPERM
		}
		return nil
	}
	c := fakeConfig(f, fakeSpec(specs.Mount{Destination: "/sys", Source: "sysfs", Type: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}))
	c.UserNS = true
	mustPrepare(t, f, c)
	const ro = unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RDONLY
	checkCalls(t, f.mountsUnder("/rootfs/sys"), []call{
		mnt("sysfs", "/rootfs/sys", "sysfs", ro, ""),
		mnt("/sys", "/rootfs/sys", "", unix.MS_BIND|unix.MS_REC, ""),
		mnt("", "/rootfs/sys", "", ro|unix.MS_BIND|unix.MS_REMOUNT, ""),
	})

	// Without a user namespace the error is not hidden.
	f = newFake(t)
	f.fail = func(c call) error {
		if c.fstype == "sysfs" {
			return unix.EPERM
		}
		return nil
	}
	if err := prepare(t, f, fakeConfig(f, fakeSpec(specs.Mount{Destination: "/sys", Source: "sysfs", Type: "sysfs"}))); !errors.Is(err, unix.EPERM) {
		t.Fatalf("got %v, want EPERM", err)
	}
}
