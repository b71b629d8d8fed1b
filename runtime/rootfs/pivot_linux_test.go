package rootfs

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func switchCalls(f *fakeSys) []call {
	return f.only("mount", "umount2", "pivot_root", "chroot", "chdir", "fchdir")
}

func TestPivot(t *testing.T) {
	f := newFake(t)
	if err := Pivot(fakeConfig(f, fakeSpec())); err != nil {
		t.Fatal(err)
	}
	f.checkNoLeaks()
	checkCalls(t, switchCalls(f), []call{
		{op: "fchdir", target: "/rootfs"},
		{op: "pivot_root", source: ".", target: "."},
		{op: "fchdir", target: "/"},
		mnt("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""),
		{op: "umount2", target: ".", flags: unix.MNT_DETACH},
		{op: "chdir", target: "/"},
	})
}

func TestPivotNoPivotMovesAndChroots(t *testing.T) {
	f := newFake(t)
	f.files["/proc/self/mountinfo"] = "27 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"22 27 0:21 / /proc rw - proc proc rw\n" +
		"23 27 0:22 / /sys rw - sysfs sysfs rw\n" +
		"24 23 0:22 /kernel /mnt/kernel rw - sysfs sysfs rw\n" + // not a full mount: left alone
		"50 27 0:40 / /rootfs/proc rw - proc proc rw\n" // the container's own
	f.mounts["/proc"], f.mounts["/sys"] = true, true
	c := fakeConfig(f, fakeSpec())
	c.NoPivot = true
	if err := Pivot(c); err != nil {
		t.Fatal(err)
	}
	f.checkNoLeaks()
	checkCalls(t, switchCalls(f), []call{
		mnt("", "/sys", "", unix.MS_SLAVE|unix.MS_REC, ""),
		{op: "umount2", target: "/sys", flags: unix.MNT_DETACH},
		mnt("", "/proc", "", unix.MS_SLAVE|unix.MS_REC, ""),
		{op: "umount2", target: "/proc", flags: unix.MNT_DETACH},
		{op: "chdir", target: "/rootfs"},
		mnt("/rootfs", "/", "", unix.MS_MOVE, ""),
		{op: "chroot", target: "."},
		{op: "chdir", target: "/"},
	})
}

// Without a mount namespace of its own the container must not pivot or
// move anything in the runtime's namespace: only chroot.
func TestPivotSharedMountNSOnlyChroots(t *testing.T) {
	f := newFake(t)
	c := fakeConfig(f, fakeSpec())
	c.SharedMountNS = true
	if err := Pivot(c); err != nil {
		t.Fatal(err)
	}
	f.checkNoLeaks()
	checkCalls(t, switchCalls(f), []call{
		{op: "chdir", target: "/rootfs"},
		{op: "chroot", target: "."},
		{op: "chdir", target: "/"},
	})
}

func TestPrepareSharedMountNSLeavesRootAlone(t *testing.T) {
	f := newFake(t)
	c := fakeConfig(f, fakeSpec())
	c.SharedMountNS = true
	if err := Prepare(c); err != nil {
		t.Fatal(err)
	}
	calls := f.only("mount")
	if len(calls) < 2 {
		t.Fatalf("mounts %v", calls)
	}
	checkCalls(t, calls[:2], []call{
		mnt("/rootfs", "/rootfs", "", unix.MS_BIND|unix.MS_REC, ""),
		mnt("", "/rootfs", "", unix.MS_PRIVATE|unix.MS_REC, ""),
	})
	for _, m := range calls {
		if m.target == "/" || !strings.HasPrefix(m.target, "/rootfs") && !strings.HasPrefix(m.target, "/proc/self/fd/") {
			t.Errorf("mount outside the rootfs in the runtime's namespace: %v", m)
		}
	}
}

// A tmpfs root that is not the initramfs (mountinfo names it tmpfs) is
// pivoted from as any other.
func TestPivotOnTmpfsRoot(t *testing.T) {
	f := newFake(t)
	f.files["/proc/self/mountinfo"] = "1 1 0:2 / / rw - tmpfs tmpfs rw\n"
	f.node("/").fsType = unix.TMPFS_MAGIC
	if err := Pivot(fakeConfig(f, fakeSpec())); err != nil {
		t.Fatal(err)
	}
	if got := f.only("pivot_root"); len(got) != 1 {
		t.Errorf("want one pivot_root, got %v", got)
	}
}

func TestPivotOnInitramfsMoves(t *testing.T) {
	f := newFake(t)
	f.files["/proc/self/mountinfo"] = "1 1 0:2 / / rw - rootfs rootfs rw\n"
	f.node("/").fsType = unix.RAMFS_MAGIC
	if err := Pivot(fakeConfig(f, fakeSpec())); err != nil {
		t.Fatal(err)
	}
	if got := f.only("pivot_root"); len(got) != 0 {
		t.Errorf("pivot_root on initramfs: %v", got)
	}
	if got := f.only("chroot"); len(got) != 1 {
		t.Errorf("want one chroot, got %v", got)
	}
}

func TestPivotReopensHostDevNull(t *testing.T) {
	f := newFake(t)
	// The fake's Fstat of 0-2 fails (closed), so nothing is reopened; a
	// container /dev/null that is not the null device is refused.
	f.file("/dev/null")
	err := Pivot(fakeConfig(f, fakeSpec()))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid for a fake /dev/null", err)
	}
	f.checkNoLeaks()
}

func TestFinalize(t *testing.T) {
	f := newFake(t)
	f.nodes["/proc/sys"] = &fakeNode{mode: unix.S_IFDIR | 0o555, fsFlags: unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC | unix.ST_RELATIME}
	f.dir("/proc/acpi")
	f.file("/proc/kcore")
	spec := fakeSpec(
		specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "ro"}},
		specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nodev"}},
	)
	spec.Root.Readonly = true
	spec.Linux.RootfsPropagation = "rshared"
	spec.Linux.ReadonlyPaths = []string{"/proc/sys", "/proc/missing"}
	spec.Linux.MaskedPaths = []string{"/proc/acpi", "/proc/kcore", "/proc/kcore", "/proc/nothing"}
	f.fail = func(c call) error {
		if c.op == "mount" && c.source == "/proc/missing" {
			return unix.ENOENT
		}
		return nil
	}
	if err := Finalize(fakeConfig(f, spec)); err != nil {
		t.Fatal(err)
	}
	f.checkNoLeaks()
	checkCalls(t, f.only("mount"), []call{
		mnt("/proc/sys", "/proc/sys", "", unix.MS_BIND|unix.MS_REC, ""),
		mnt("/proc/sys", "/proc/sys", "", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""),
		mnt("/proc/missing", "/proc/missing", "", unix.MS_BIND|unix.MS_REC, ""),
		mnt("tmpfs", "/proc/acpi", "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""),
		mnt("/dev/null", "/proc/kcore", "", unix.MS_BIND, ""),
		mnt("", "/dev", "", unix.MS_NOSUID|unix.MS_RDONLY|unix.MS_BIND|unix.MS_REMOUNT, ""),
		mnt("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""),
		mnt("", "/", "", unix.MS_SHARED|unix.MS_REC, ""),
	})
}

func TestFinalizeReadonlyRootKeepsLockedFlags(t *testing.T) {
	f := newFake(t)
	f.nodes["/"].fsFlags = unix.ST_NOSUID | unix.ST_NODEV | unix.ST_RELATIME
	f.fail = func(c call) error {
		if c.target == "/" && c.flags&unix.MS_NOSUID == 0 {
			return unix.EPERM
		}
		return nil
	}
	spec := fakeSpec()
	spec.Root.Readonly = true
	if err := Finalize(fakeConfig(f, spec)); err != nil {
		t.Fatal(err)
	}
	const ro = unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY
	checkCalls(t, f.only("mount"), []call{
		mnt("", "/", "", ro, ""),
		mnt("", "/", "", ro|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_RELATIME, ""),
	})
}

func TestFinalizeMaskNeedsRealDevNull(t *testing.T) {
	f := newFake(t)
	f.file("/dev/null")
	f.file("/proc/kcore")
	spec := fakeSpec()
	spec.Linux.MaskedPaths = []string{"/proc/kcore"}
	if err := Finalize(fakeConfig(f, spec)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if got := f.only("mount"); len(got) != 0 {
		t.Errorf("masked with a fake /dev/null: %v", got)
	}
}

func TestMountConsole(t *testing.T) {
	t.Run("creates the target", func(t *testing.T) {
		f := newFake(t)
		if err := mountConsole(f, "/dev/pts/3"); err != nil {
			t.Fatal(err)
		}
		f.checkNoLeaks()
		checkCalls(t, f.only("create", "mount"), []call{
			{op: "create", target: "/dev/console", flags: 0o600},
			mnt("/dev/pts/3", "/dev/console", "", unix.MS_BIND, ""),
		})
	})
	t.Run("refuses a symlink", func(t *testing.T) {
		f := newFake(t)
		f.symlink("/dev/console", "/etc/passwd")
		if err := mountConsole(f, "/dev/pts/3"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
		if got := f.only("mount"); len(got) != 0 {
			t.Errorf("mounted over a symlink: %v", got)
		}
	})
	t.Run("relative slave path", func(t *testing.T) {
		if err := mountConsole(newFake(t), "pts/3"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	})
}
