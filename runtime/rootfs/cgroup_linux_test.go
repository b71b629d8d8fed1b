package rootfs

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A v1 hybrid host like the one these tests run on.
const hybridMountinfo = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const hybridCgroup = `12:net_cls,net_prio:/
9:name=systemd:/user.slice
4:memory:/box/c1
2:cpu,cpuacct:/box/c1
0::/box/c1
`

func TestCgroupLayout(t *testing.T) {
	tests := []struct {
		name      string
		mountinfo string
		cgroup    string
		unified   bool
		want      []cgroupHierarchy
	}{
		{"hybrid", hybridMountinfo, hybridCgroup, false, []cgroupHierarchy{
			{name: "systemd", fstype: "cgroup", data: "name=systemd", source: "/sys/fs/cgroup/systemd/user.slice"},
			{name: "memory", fstype: "cgroup", data: "memory", source: "/sys/fs/cgroup/memory/box/c1"},
			{name: "cpu,cpuacct", fstype: "cgroup", data: "cpu,cpuacct", source: "/sys/fs/cgroup/cpu,cpuacct/box/c1"},
			{name: "unified", fstype: "cgroup2", source: "/sys/fs/cgroup/unified/box/c1"},
		}},
		{"unified", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", "0::/system.slice/x.scope\n", true,
			[]cgroupHierarchy{{name: "cgroup", fstype: "cgroup2", source: "/sys/fs/cgroup/system.slice/x.scope"}}},
		{"mount root below the hierarchy root", "35 31 0:32 /box /mnt/mem rw - cgroup cgroup rw,memory\n", "4:memory:/box/c1\n", false,
			[]cgroupHierarchy{{name: "mem", fstype: "cgroup", data: "memory", source: "/mnt/mem/c1"}}},
		{"mount outside the cgroup namespace", "35 31 0:32 /.. /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "4:memory:/\n", false,
			[]cgroupHierarchy{{name: "memory", fstype: "cgroup", data: "memory"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unified, got, err := cgroupLayout([]byte(tt.mountinfo), []byte(tt.cgroup))
			if err != nil {
				t.Fatal(err)
			}
			if unified != tt.unified || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got unified=%v %+v\nwant unified=%v %+v", unified, got, tt.unified, tt.want)
			}
		})
	}
	if _, _, err := cgroupLayout([]byte(hybridMountinfo), []byte("5:pids:/\n")); err == nil {
		t.Error("no mounted hierarchy: want an error")
	}
}

func cgroupSpec() *specs.Spec {
	return fakeSpec(specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
		Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
}

func cgroupFake(t *testing.T) *fakeSys {
	f := newFake(t)
	f.files["/proc/self/mountinfo"] = hybridMountinfo
	f.files["/proc/self/cgroup"] = hybridCgroup
	for _, d := range []string{"/sys/fs/cgroup/systemd/user.slice", "/sys/fs/cgroup/memory/box/c1",
		"/sys/fs/cgroup/cpu,cpuacct/box/c1", "/sys/fs/cgroup/unified/box/c1"} {
		f.dir(d)
	}
	return f
}

const (
	cgFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	cgRo    = cgFlags | unix.MS_RDONLY | unix.MS_RELATIME
	cgRoot  = "/rootfs/sys/fs/cgroup"
)

// cgHierarchies are the host directories cgroupFake's hierarchies bind.
var cgHierarchies = [][2]string{
	{"systemd", "/sys/fs/cgroup/systemd/user.slice"},
	{"memory", "/sys/fs/cgroup/memory/box/c1"},
	{"cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/box/c1"},
	{"unified", "/sys/fs/cgroup/unified/box/c1"},
}

func TestCgroupV1WithoutNamespaceBindsOwnCgroups(t *testing.T) {
	f := cgroupFake(t)
	mustPrepare(t, f, fakeConfig(f, cgroupSpec()))
	// Plain binds, then one recursive mount_setattr makes the tmpfs and
	// every bind read-only, nosuid, nodev, noexec and relatime.
	var want []call
	want = append(want, mnt("tmpfs", cgRoot, "tmpfs", cgFlags, "mode=755"))
	for _, h := range cgHierarchies {
		want = append(want, mnt(h[1], cgRoot+"/"+h[0], "", unix.MS_BIND|unix.MS_REC, ""))
	}
	want = append(want, call{op: "mount_setattr", target: cgRoot, flags: unix.AT_EMPTY_PATH | unix.AT_RECURSIVE,
		attr: unix.MountAttr{
			Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_RELATIME,
			Attr_clr: unix.MOUNT_ATTR__ATIME | unix.MOUNT_ATTR_NODIRATIME,
		}})
	checkCalls(t, f.mountsUnder(cgRoot), want)
	checkCalls(t, f.only("symlink")[:2], []call{
		{op: "symlink", source: "cpu,cpuacct", target: cgRoot + "/cpu"},
		{op: "symlink", source: "cpu,cpuacct", target: cgRoot + "/cpuacct"},
	})
}

// remountedCgroupV1 is what the v1 cgroup mount does without the
// recursive mount_setattr: each bind remounted with flags, then the tmpfs.
func remountedCgroupV1(flags uintptr) []call {
	var want []call
	want = append(want, mnt("tmpfs", cgRoot, "tmpfs", cgFlags, "mode=755"))
	for _, h := range cgHierarchies {
		want = append(want,
			mnt(h[1], cgRoot+"/"+h[0], "", unix.MS_BIND|unix.MS_REC, ""),
			mnt("", cgRoot+"/"+h[0], "", flags|unix.MS_BIND|unix.MS_REMOUNT, ""))
	}
	if flags&unix.MS_RDONLY != 0 {
		want = append(want, mnt("", cgRoot, "", cgFlags|unix.MS_RDONLY|unix.MS_BIND|unix.MS_REMOUNT, ""))
	}
	return want
}

func TestCgroupV1SetattrRefusedRemountsEach(t *testing.T) {
	f := cgroupFake(t)
	f.fail = func(c call) error {
		if c.op == "mount_setattr" {
			return unix.ENOSYS
		}
		return nil
	}
	mustPrepare(t, f, fakeConfig(f, cgroupSpec()))
	var got []call
	for _, c := range f.mountsUnder(cgRoot) {
		if c.op != "mount_setattr" {
			got = append(got, c)
		}
	}
	// The binds are made plain first, then remounted one by one.
	var want []call
	want = append(want, mnt("tmpfs", cgRoot, "tmpfs", cgFlags, "mode=755"))
	for _, h := range cgHierarchies {
		want = append(want, mnt(h[1], cgRoot+"/"+h[0], "", unix.MS_BIND|unix.MS_REC, ""))
	}
	for _, h := range cgHierarchies {
		want = append(want, mnt("", cgRoot+"/"+h[0], "", cgRo|unix.MS_BIND|unix.MS_REMOUNT, ""))
	}
	want = append(want, mnt("", cgRoot, "", cgFlags|unix.MS_RDONLY|unix.MS_BIND|unix.MS_REMOUNT, ""))
	checkCalls(t, got, want)
}

func TestCgroupV1OtherOptionsRemountEach(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opts  []string
		flags uintptr
	}{
		{"read-write", []string{"nosuid", "noexec", "nodev", "relatime"}, cgFlags | unix.MS_RELATIME},
		{"without noexec", []string{"nosuid", "nodev", "ro"}, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_RDONLY},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := cgroupFake(t)
			s := fakeSpec(specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: tt.opts})
			mustPrepare(t, f, fakeConfig(f, s))
			checkCalls(t, f.mountsUnder(cgRoot), remountedCgroupV1(tt.flags))
		})
	}
}

func TestCgroupV1WithNamespaceMountsHierarchies(t *testing.T) {
	f := cgroupFake(t)
	c := fakeConfig(f, cgroupSpec())
	c.CgroupNS = true
	mustPrepare(t, f, c)
	checkCalls(t, f.mountsUnder(cgRoot), []call{
		mnt("tmpfs", cgRoot, "tmpfs", cgFlags, "mode=755"),
		mnt("cgroup", cgRoot+"/systemd", "cgroup", cgRo, "name=systemd"),
		mnt("cgroup", cgRoot+"/memory", "cgroup", cgRo, "memory"),
		mnt("cgroup", cgRoot+"/cpu,cpuacct", "cgroup", cgRo, "cpu,cpuacct"),
		mnt("cgroup2", cgRoot+"/unified", "cgroup2", cgRo, ""),
		mnt("", cgRoot, "", cgFlags|unix.MS_RDONLY|unix.MS_BIND|unix.MS_REMOUNT, ""),
	})
}

func TestCgroupV2(t *testing.T) {
	unifiedFake := func(t *testing.T) *fakeSys {
		f := newFake(t)
		f.files["/proc/self/mountinfo"] = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
		f.files["/proc/self/cgroup"] = "0::/box/c1\n"
		f.dir("/sys/fs/cgroup/box/c1")
		return f
	}
	t.Run("namespace", func(t *testing.T) {
		f := unifiedFake(t)
		c := fakeConfig(f, cgroupSpec())
		c.CgroupNS = true
		mustPrepare(t, f, c)
		checkCalls(t, f.mountsUnder(cgRoot), []call{mnt("cgroup2", cgRoot, "cgroup2", cgRo, "")})
	})
	t.Run("no namespace", func(t *testing.T) {
		f := unifiedFake(t)
		mustPrepare(t, f, fakeConfig(f, cgroupSpec()))
		checkCalls(t, f.mountsUnder(cgRoot), []call{
			mnt("/sys/fs/cgroup/box/c1", cgRoot, "", unix.MS_BIND|unix.MS_REC, ""),
			mnt("", cgRoot, "", cgRo|unix.MS_BIND|unix.MS_REMOUNT, ""),
		})
	})
	t.Run("namespace refused falls back to bind", func(t *testing.T) {
		f := unifiedFake(t)
		f.fail = func(c call) error {
			if c.fstype == "cgroup2" {
				return unix.EPERM
			}
			return nil
		}
		c := fakeConfig(f, cgroupSpec())
		c.CgroupNS = true
		mustPrepare(t, f, c)
		checkCalls(t, f.mountsUnder(cgRoot), []call{
			mnt("cgroup2", cgRoot, "cgroup2", cgRo, ""),
			mnt("/sys/fs/cgroup/box/c1", cgRoot, "", unix.MS_BIND|unix.MS_REC, ""),
			mnt("", cgRoot, "", cgRo|unix.MS_BIND|unix.MS_REMOUNT, ""),
		})
	})
}

func TestParseMountInfo(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n" +
		"37 36 0:5 / /a\\134b rw - tmpfs none\n"
	got, err := parseMountInfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountInfo{
		{id: 36, parent: 35, root: "/mnt1", mountpoint: "/mnt two", options: "rw,noatime", optional: "master:1 shared:2", fstype: "ext3", source: "/dev/root", superOptions: "rw,errors=continue"},
		{id: 37, parent: 36, root: "/", mountpoint: `/a\b`, options: "rw", fstype: "tmpfs", source: "none"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"1 2 3 / /\n", "x 1 0:1 / / rw - tmpfs t rw\n"} {
		if _, err := parseMountInfo([]byte(bad)); err == nil {
			t.Errorf("parseMountInfo(%q): want an error", bad)
		}
	}
}
