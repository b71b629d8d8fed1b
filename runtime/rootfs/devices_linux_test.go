package rootfs

import (
	"errors"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func devSpec() *specs.Spec {
	s := fakeSpec(specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}})
	s.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr[os.FileMode](0o660), UID: ptr[uint32](0), GID: ptr[uint32](7)},
		{Path: "/dev/ptmx", Type: "c", Major: 5, Minor: 2},
	}
	return s
}

func TestDevicesMknod(t *testing.T) {
	f := newFake(t)
	mustPrepare(t, f, fakeConfig(f, devSpec()))
	var want []call
	for _, d := range []struct {
		name         string
		mode         uint32
		major, minor uint32
		owner        string
	}{
		{"null", 0o666, 1, 3, "0:0"}, {"zero", 0o666, 1, 5, "0:0"}, {"full", 0o666, 1, 7, "0:0"},
		{"random", 0o666, 1, 8, "0:0"}, {"urandom", 0o666, 1, 9, "0:0"}, {"tty", 0o666, 5, 0, "0:0"},
		{"fuse", 0o660, 10, 229, "0:7"},
	} {
		p := "/rootfs/dev/" + d.name
		want = append(want,
			call{op: "mknod", target: p, flags: uintptr(unix.S_IFCHR | d.mode), data: devString(unix.Mkdev(d.major, d.minor))},
			call{op: "chmod", target: p, flags: uintptr(d.mode)},
			call{op: "chown", target: p, data: d.owner},
		)
	}
	want = append(want,
		call{op: "unlink", target: "/rootfs/dev/ptmx"},
		call{op: "symlink", source: "pts/ptmx", target: "/rootfs/dev/ptmx"},
		call{op: "symlink", source: "/proc/self/fd", target: "/rootfs/dev/fd"},
		call{op: "symlink", source: "/proc/self/fd/0", target: "/rootfs/dev/stdin"},
		call{op: "symlink", source: "/proc/self/fd/1", target: "/rootfs/dev/stdout"},
		call{op: "symlink", source: "/proc/self/fd/2", target: "/rootfs/dev/stderr"},
	)
	checkCalls(t, f.only("mknod", "chmod", "chown", "unlink", "symlink"), want)
}

func TestDevicesCoreLinkWhenKcoreExists(t *testing.T) {
	f := newFake(t)
	f.file("/proc/kcore")
	mustPrepare(t, f, fakeConfig(f, fakeSpec()))
	links := f.only("symlink")
	if last := links[len(links)-1]; last.source != "/proc/kcore" || last.target != "/rootfs/dev/core" {
		t.Errorf("last link %v, want /dev/core -> /proc/kcore", last)
	}
}

func TestDevicesUserNSBindFromHost(t *testing.T) {
	f := newFake(t)
	for _, n := range []string{"zero", "full", "random", "urandom", "tty", "fuse"} {
		f.file("/dev/" + n)
	}
	c := fakeConfig(f, devSpec())
	c.UserNS = true
	mustPrepare(t, f, c)
	if got := f.only("mknod", "chmod", "chown"); len(got) != 0 {
		t.Errorf("mknod/chmod/chown in a user namespace: %v", got)
	}
	var want []call
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty", "fuse"} {
		want = append(want, call{op: "create", target: "/rootfs/dev/" + n, flags: 0o644}, mnt("/dev/"+n, "/rootfs/dev/"+n, "", unix.MS_BIND, ""))
	}
	var got []call
	for _, c := range f.only("mount", "create") {
		if strings.HasPrefix(c.target, "/rootfs/dev/") {
			got = append(got, c)
		}
	}
	checkCalls(t, got, want)
}

func TestDevicesMknodEPERMFallsBackToBind(t *testing.T) {
	f := newFake(t)
	f.fail = func(c call) error {
		if c.op == "mknod" {
			return unix.EPERM
		}
		return nil
	}
	for _, n := range []string{"zero", "full", "random", "urandom", "tty"} {
		f.file("/dev/" + n)
	}
	mustPrepare(t, f, fakeConfig(f, fakeSpec()))
	checkCalls(t, f.mountsUnder("/rootfs/dev/null"), []call{mnt("/dev/null", "/rootfs/dev/null", "", unix.MS_BIND, "")})
}

func TestDevicesExisting(t *testing.T) {
	t.Run("same device is kept", func(t *testing.T) {
		f := newFake(t)
		f.dir("/rootfs/dev")
		f.dev("/rootfs/dev/null", 1, 3)
		f.nodes["/rootfs/dev/null"].mode = unix.S_IFCHR | 0o600
		mustPrepare(t, f, fakeConfig(f, fakeSpec()))
		if n := f.node("/rootfs/dev/null"); n.mode != unix.S_IFCHR|0o666 {
			t.Errorf("mode %#o, want the requested 0666", n.mode)
		}
	})
	t.Run("symlink is an error in a user namespace", func(t *testing.T) {
		f := newFake(t)
		f.dir("/rootfs/dev")
		f.file("/rootfs/etc-passwd")
		f.symlink("/rootfs/dev/null", "/etc-passwd")
		c := fakeConfig(f, fakeSpec())
		c.UserNS = true
		err := prepare(t, f, c)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "/dev/null") {
			t.Fatalf("got %v, want an error naming /dev/null", err)
		}
		if got := f.only("mount"); len(got) != 4 {
			t.Errorf("mounted a device anyway: %v", got[4:])
		}
	})
	t.Run("different file is an error", func(t *testing.T) {
		f := newFake(t)
		f.dir("/rootfs/dev")
		f.file("/rootfs/dev/zero")
		err := prepare(t, f, fakeConfig(f, fakeSpec()))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "/dev/zero") {
			t.Fatalf("got %v, want an error naming /dev/zero", err)
		}
	})
}

func TestDevBindMountSkipsDeviceSetup(t *testing.T) {
	f := newFake(t)
	f.dir("/host/dev")
	mustPrepare(t, f, fakeConfig(f, fakeSpec(specs.Mount{Destination: "/dev", Source: "/host/dev", Options: []string{"rbind"}})))
	if got := f.only("mknod", "symlink", "unlink"); len(got) != 0 {
		t.Errorf("device setup despite a /dev bind: %v", got)
	}
}
