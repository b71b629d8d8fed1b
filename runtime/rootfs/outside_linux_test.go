package rootfs

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func procMount() specs.Mount { return specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"} }

func TestCanPrepareOutside(t *testing.T) {
	tmpfs := func(dest string) specs.Mount { return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"} }
	tests := []struct {
		name   string
		mounts []specs.Mount
		change func(*Config)
		want   bool
	}{
		{"usual", []specs.Mount{procMount(), tmpfs("/dev"), tmpfs("/run")}, nil, true},
		{"no procfs", []specs.Mount{tmpfs("/dev")}, nil, true},
		{"mount below procfs", []specs.Mount{procMount(), tmpfs("/proc/scsi")}, nil, true},
		{"user namespace", []specs.Mount{procMount()}, func(c *Config) { c.UserNS = true }, false},
		{"runtime's mount namespace", []specs.Mount{procMount()}, func(c *Config) { c.SharedMountNS = true }, false},
		{"relative rootfs", []specs.Mount{procMount()}, func(c *Config) { c.Rootfs = "rootfs" }, false},
		{"two procfs", []specs.Mount{procMount(), {Destination: "/run/proc", Type: "proc", Source: "proc"}}, nil, false},
		{"procfs flag without attribute", []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"sync"}}}, nil, false},
		{"invalid", []specs.Mount{procMount()}, func(c *Config) { c.Spec.Linux.RootfsPropagation = "bogus" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeConfig(newFake(t), fakeSpec(tt.mounts...))
			if tt.change != nil {
				tt.change(c)
			}
			if got := CanPrepareOutside(c); got != tt.want {
				t.Errorf("CanPrepareOutside = %v, want %v", got, tt.want)
			}
		})
	}
}

// Outside the init, the procfs comes from the context, in its place in
// the order, with its flags and options; nothing else changes.
func TestPrepareWithProcContext(t *testing.T) {
	spec := func() *specs.Spec {
		return fakeSpec(specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "hidepid=2"}},
			specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro"}})
	}
	layout := func(f *fakeSys) {
		f.dir("/rootfs/proc")
		f.dir("/rootfs/sys")
	}
	inInit := newFake(t)
	layout(inInit)
	mustPrepare(t, inInit, fakeConfig(inInit, spec()))

	outside := newFake(t)
	layout(outside)
	c := fakeConfig(outside, spec())
	c.ProcFS = 7
	mustPrepare(t, outside, c)
	checkCalls(t, outside.only("mount", "mkdir", "mknod", "symlink"), inInit.only("mount", "mkdir", "mknod", "symlink"))
	if len(outside.contextMounts) != 1 || outside.contextMounts[0] != "/rootfs/proc" {
		t.Errorf("mounts from the context: %v, want /rootfs/proc", outside.contextMounts)
	}
	var first call
	for _, m := range outside.only("mount") {
		if m.fstype != "" {
			first = m
			break
		}
	}
	if want := mnt("proc", "/rootfs/proc", "proc", unix.MS_NOSUID|unix.MS_NOEXEC, "hidepid=2"); first != want {
		t.Errorf("first new filesystem %v, want %v", first, want)
	}
}

func TestNeedsProcFS(t *testing.T) {
	for _, tt := range []struct {
		m    specs.Mount
		want bool
	}{
		{procMount(), true},
		{specs.Mount{Destination: "/proc", Type: "proc", Source: "/proc", Options: []string{"rbind"}}, false},
		{specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs"}, false},
	} {
		if got := NeedsProcFS(fakeConfig(newFake(t), fakeSpec(tt.m))); got != tt.want {
			t.Errorf("%+v: NeedsProcFS = %v, want %v", tt.m, got, tt.want)
		}
	}
}

func TestMountAttrs(t *testing.T) {
	attrs, ok := mountAttrs(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_STRICTATIME)
	want := unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_STRICTATIME
	if !ok || attrs != want {
		t.Errorf("got %#x %v, want %#x", attrs, ok, want)
	}
	if _, ok := mountAttrs(unix.MS_SYNCHRONOUS); ok {
		t.Error("MS_SYNCHRONOUS has no mount attribute")
	}
}

// Prepare outside the init reads the init's cgroups and mount table.
func TestProcDir(t *testing.T) {
	f := newFake(t)
	f.files["/proc/42/mountinfo"] = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
	f.files["/proc/42/cgroup"] = "0::/ctr\n"
	f.dir("/sys/fs/cgroup/ctr")
	c := fakeConfig(f, fakeSpec(specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"}))
	c.ProcDir = "/proc/42"
	mustPrepare(t, f, c)
	var found bool
	for _, m := range f.only("mount") {
		if m.source == "/sys/fs/cgroup/ctr" && m.target == "/rootfs/sys/fs/cgroup" {
			found = true
		}
	}
	if !found {
		t.Errorf("no bind of the init's cgroup: %v", f.only("mount"))
	}
}
