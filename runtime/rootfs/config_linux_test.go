package rootfs

import (
	"errors"
	"golang.org/x/sys/unix"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

// Bad input is refused before anything is done.
func TestPrepareRefusesBadConfig(t *testing.T) {
	withLinux := func(edit func(*specs.Linux)) *specs.Spec {
		s := fakeSpec()
		edit(s.Linux)
		return s
	}
	tests := []struct {
		name   string
		spec   *specs.Spec
		rootfs string
		noPiv  bool
		want   error
	}{
		{"no spec", nil, "/rootfs", false, ErrInvalid},
		{"no root", &specs.Spec{}, "/rootfs", false, ErrInvalid},
		{"relative rootfs", fakeSpec(), "rootfs", false, ErrInvalid},
		{"rootfs is /", fakeSpec(), "/", false, ErrInvalid},
		{"empty destination", fakeSpec(specs.Mount{Type: "tmpfs", Source: "tmpfs"}), "/rootfs", false, ErrInvalid},
		{"mount on /", fakeSpec(specs.Mount{Destination: "/", Type: "tmpfs", Source: "tmpfs"}), "/rootfs", false, ErrInvalid},
		{"mount on /..", fakeSpec(specs.Mount{Destination: "/..", Type: "tmpfs", Source: "tmpfs"}), "/rootfs", false, ErrInvalid},
		{"bind without source", fakeSpec(specs.Mount{Destination: "/a", Options: []string{"rbind"}}), "/rootfs", false, ErrInvalid},
		{"no type", fakeSpec(specs.Mount{Destination: "/a", Source: "x"}), "/rootfs", false, ErrInvalid},
		{"tmpcopyup on a bind", fakeSpec(specs.Mount{Destination: "/a", Source: "/b", Options: []string{"bind", "tmpcopyup"}}), "/rootfs", false, ErrInvalid},
		{"idmap", fakeSpec(specs.Mount{Destination: "/a", Source: "/b", Options: []string{"bind", "idmap"}}), "/rootfs", false, errors.ErrUnsupported},
		{"mount uid mappings", fakeSpec(specs.Mount{Destination: "/a", Source: "/b", Options: []string{"bind"},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}}), "/rootfs", false, errors.ErrUnsupported},
		{"bad propagation", withLinux(func(l *specs.Linux) { l.RootfsPropagation = "rshared,ro" }), "/rootfs", false, ErrInvalid},
		{"private without pivot", withLinux(func(l *specs.Linux) { l.RootfsPropagation = "rprivate" }), "/rootfs", true, ErrInvalid},
		{"device bad type", withLinux(func(l *specs.Linux) {
			l.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "x", Major: 1, Minor: 1}}
		}), "/rootfs", false, ErrInvalid},
		{"device relative path", withLinux(func(l *specs.Linux) {
			l.Devices = []specs.LinuxDevice{{Path: "dev/x", Type: "c", Major: 1, Minor: 1}}
		}), "/rootfs", false, ErrInvalid},
		{"device mode with another type's bits", withLinux(func(l *specs.Linux) {
			l.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: 1, Minor: 1, FileMode: ptr[os.FileMode](0o60666)}}
		}), "/rootfs", false, ErrInvalid},
		{"device mode with setgid-like stray bits", withLinux(func(l *specs.Linux) {
			l.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: 1, Minor: 1, FileMode: ptr[os.FileMode](0o1000000)}}
		}), "/rootfs", false, ErrInvalid},
		{"device negative major", withLinux(func(l *specs.Linux) {
			l.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "b", Major: -1, Minor: 1}}
		}), "/rootfs", false, ErrInvalid},
		{"device twice", withLinux(func(l *specs.Linux) {
			l.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: 1, Minor: 1}, {Path: "/dev/x", Type: "c", Major: 1, Minor: 2}}
		}), "/rootfs", false, ErrInvalid},
		{"relative masked path", withLinux(func(l *specs.Linux) { l.MaskedPaths = []string{"proc/kcore"} }), "/rootfs", false, ErrInvalid},
		{"relative readonly path", withLinux(func(l *specs.Linux) { l.ReadonlyPaths = []string{"proc/sys"} }), "/rootfs", false, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := &Config{Spec: tt.spec, Rootfs: tt.rootfs, NoPivot: tt.noPiv, Sys: f}
			err := prepare(t, f, c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if len(f.calls) != 0 {
				t.Errorf("calls made before refusing: %v", f.calls)
			}
			for name, fn := range map[string]func(*Config) error{"Pivot": Pivot, "Finalize": Finalize} {
				if err := fn(c); !errors.Is(err, tt.want) {
					t.Errorf("%s: got %v, want %v", name, err, tt.want)
				}
			}
			if len(f.calls) != 0 {
				t.Errorf("calls made before refusing: %v", f.calls)
			}
		})
	}
}

func TestPlanDevices(t *testing.T) {
	spec := fakeSpec()
	spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: ptr[os.FileMode](0o600)},
		{Path: "/dev/fuse", Type: "u", Major: 10, Minor: 229, UID: ptr[uint32](7), GID: ptr[uint32](8)},
		{Path: "/dev/../dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: ptr[os.FileMode](0o660)},
		{Path: "/run/fifo", Type: "p", Major: 4, Minor: 4},
	}
	pl, err := newPlan(&Config{Spec: spec, Rootfs: "/rootfs"})
	if err != nil {
		t.Fatal(err)
	}
	const chr, blk, fifo = 0o20000, 0o60000, 0o10000
	want := map[string]device{
		"/dev/zero":    {path: "/dev/zero", mode: chr | 0o666, major: 1, minor: 5},
		"/dev/full":    {path: "/dev/full", mode: chr | 0o666, major: 1, minor: 7},
		"/dev/random":  {path: "/dev/random", mode: chr | 0o666, major: 1, minor: 8},
		"/dev/urandom": {path: "/dev/urandom", mode: chr | 0o666, major: 1, minor: 9},
		"/dev/tty":     {path: "/dev/tty", mode: chr | 0o666, major: 5, minor: 0},
		"/dev/null":    {path: "/dev/null", mode: chr | 0o600, major: 1, minor: 3}, // the spec's replaces the default
		"/dev/fuse":    {path: "/dev/fuse", mode: chr | 0o666, major: 10, minor: 229, uid: 7, gid: 8},
		"/dev/sda":     {path: "/dev/sda", mode: blk | 0o660, major: 8, minor: 0},
		"/run/fifo":    {path: "/run/fifo", mode: fifo | 0o666},
	}
	if len(pl.devices) != len(want) {
		t.Errorf("got %d devices, want %d: %+v", len(pl.devices), len(want), pl.devices)
	}
	for _, d := range pl.devices {
		if d != want[d.path] {
			t.Errorf("device %s = %+v, want %+v", d.path, d, want[d.path])
		}
	}
}

func TestPlanCleansPaths(t *testing.T) {
	pl, err := newPlan(&Config{Spec: fakeSpec(specs.Mount{Destination: "run/../tmp//x", Type: "tmpfs", Source: "tmpfs"}), Rootfs: "/a/../rootfs/"})
	if err != nil {
		t.Fatal(err)
	}
	if pl.rootfs != "/rootfs" {
		t.Errorf("rootfs = %q, want /rootfs", pl.rootfs)
	}
	if got := pl.mounts[0].dest; got != "/tmp/x" {
		t.Errorf("destination = %q, want /tmp/x", got)
	}
}

// Podman writes the file type into fileMode (020666 for a character
// device); it is accepted when it matches the device type.
func TestDeviceModeWithMatchingTypeBits(t *testing.T) {
	m := os.FileMode(0o20640)
	d, err := parseDevice(specs.LinuxDevice{Path: "/dev/myzero", Type: "c", Major: 1, Minor: 5, FileMode: &m})
	if err != nil {
		t.Fatal(err)
	}
	if d.mode != unix.S_IFCHR|0o640 {
		t.Errorf("mode %#o, want %#o", d.mode, unix.S_IFCHR|0o640)
	}
}
