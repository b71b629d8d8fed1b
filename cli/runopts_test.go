package cli

import (
	"errors"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"berth.dev/internal/errdefs"
)

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want container.DeviceMapping
		bad  bool
	}{
		{in: "/dev/fuse", want: container.DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}},
		{in: "/dev/sda:/dev/xvda", want: container.DeviceMapping{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rwm"}},
		{in: "/dev/sda:r", want: container.DeviceMapping{PathOnHost: "/dev/sda", PathInContainer: "/dev/sda", CgroupPermissions: "r"}},
		{in: "/dev/sda:/dev/xvda:rw", want: container.DeviceMapping{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rw"}},
		{in: "/dev/sda:/dev/xvda:rwx", bad: true},
		{in: "/dev/sda:/dev/xvda:rr", bad: true},
		{in: "/dev/sda:relative", bad: true},
		{in: "/a:/b:r:w", bad: true},
	} {
		got, err := parseDevice(tc.in)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: error %v, want an invalid argument", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseVolume(t *testing.T) {
	for _, tc := range []struct {
		in, bind, anonymous string
		bad                 bool
	}{
		{in: "/data", anonymous: "/data"},
		{in: "vol:/data", bind: "vol:/data"},
		{in: "/srv:/data:ro,rslave", bind: "/srv:/data:ro,rslave"},
		{in: "data", bad: true},
		{in: "/srv:data", bad: true},
		{in: "/srv:/data:bogus", bad: true},
		{in: ":/data", bad: true},
		{in: "/a:/b:ro:x", bad: true},
	} {
		bind, anon, err := parseVolume(tc.in)
		if tc.bad != (err != nil) || bind != tc.bind || anon != tc.anonymous {
			t.Errorf("%s: %q %q %v", tc.in, bind, anon, err)
		}
	}
}

func TestParseMountErrors(t *testing.T) {
	for _, in := range []string{
		"type=foo,target=/x",
		"type=bind,target=/x",
		"type=volume,source=v",
		"type=volume,target=/x,bogus=1",
		"type=bind,source=/a,target=/b,readonly=maybe",
		"type=tmpfs,target=/t,tmpfs-mode=99x",
	} {
		if _, err := parseMount(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: error %v, want an invalid argument", in, err)
		}
	}
	m, err := parseMount("target=/v,source=v,ro=false,volume-subpath=sub")
	want := mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/v", VolumeOptions: &mount.VolumeOptions{Subpath: "sub"}}
	if err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("default type volume: %+v %v", m, err)
	}
}

func TestParsePublishErrors(t *testing.T) {
	for _, in := range []string{"abc", "1.2.3.4.5:80:80", "80-79:80", "8080-8082:80-81", "[::1:80:80", "x:80"} {
		o := runOptions{publish: []string{in}}
		if err := o.networking(&container.Config{}, &container.HostConfig{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: error %v, want an invalid argument", in, err)
		}
	}
	o := runOptions{publish: []string{"[::1]:8080:80/udp"}}
	cfg, hc := &container.Config{}, &container.HostConfig{}
	if err := o.networking(cfg, hc); err != nil {
		t.Fatal(err)
	}
	for p, b := range hc.PortBindings {
		if p.String() != "80/udp" || len(b) != 1 || b[0].HostIP.String() != "::1" || b[0].HostPort != "8080" {
			t.Errorf("IPv6 binding %s %+v", p, b)
		}
	}
}

func TestReadEnvOverrides(t *testing.T) {
	env, err := readEnv(nil, []string{"A=1", "B", "A=2", "C"}, func(k string) string {
		if k == "B" {
			return "from-env"
		}
		return ""
	})
	want := []string{"A=2", "B=from-env", "C"}
	if err != nil || !reflect.DeepEqual(env, want) {
		t.Errorf("%q %v, want %q", env, err, want)
	}
	if _, err := readEnv(nil, []string{"=x"}, func(string) string { return "" }); err == nil {
		t.Error("empty variable name accepted")
	}
	if _, err := readEnv([]string{"testdata/nosuch.env"}, nil, func(string) string { return "" }); err == nil {
		t.Error("missing env file accepted")
	}
}

func TestParseCPUs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "1", want: 1e9}, {in: "0.5", want: 5e8}, {in: "2.000000001", want: 2000000001},
		{in: "0.0000000001", bad: true}, {in: "x", bad: true},
	} {
		got, err := parseCPUs(tc.in)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("%s: %d %v", tc.in, got, err)
		}
	}
}
