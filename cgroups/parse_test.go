package cgroups

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{
			name: "hybrid",
			in: "9:name=systemd:/\n8:pids:/user.slice\n4:memory:/process_api/05ae\n" +
				"2:cpu,cpuacct:/ctr\n0::/init.scope\n",
			want: map[string]string{
				"name=systemd": "/", "pids": "/user.slice", "memory": "/process_api/05ae",
				"cpu": "/ctr", "cpuacct": "/ctr", "": "/init.scope",
			},
		},
		{name: "unified", in: "0::/user.slice/user-0.slice/session-1.scope\n",
			want: map[string]string{"": "/user.slice/user-0.slice/session-1.scope"}},
		{name: "path with colon", in: "0::/a:b\n", want: map[string]string{"": "/a:b"}},
		{name: "missing field", in: "4:memory\n", wantErr: true},
		{name: "relative path", in: "4:memory:x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcCgroup(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

const sampleMountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 master:3 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 22 0:32 /docker/abc /mnt/my\040cgroups/memory rw - cgroup cgroup rw,memory
`

func TestParseMountinfo(t *testing.T) {
	mounts, err := parseMountinfo(strings.NewReader(sampleMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 7 {
		t.Fatalf("got %d mounts, want 7", len(mounts))
	}
	want := mountInfo{Root: "/", MountPoint: "/sys/fs/cgroup/cpu,cpuacct", FSType: "cgroup",
		SuperOptions: []string{"rw", "cpu", "cpuacct"}}
	if !reflect.DeepEqual(mounts[2], want) {
		t.Errorf("optional fields: got %+v, want %+v", mounts[2], want)
	}
	if m := mounts[6]; m.MountPoint != "/mnt/my cgroups/memory" || m.Root != "/docker/abc" {
		t.Errorf("escaped line: got %+v", m)
	}
	if _, err := parseMountinfo(strings.NewReader("1 2 3 4\n")); err == nil {
		t.Error("short line: want error")
	}
}

func TestV1HierarchiesFrom(t *testing.T) {
	mounts, err := parseMountinfo(strings.NewReader(sampleMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := v1HierarchiesFrom(mounts, "/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	// name=systemd and cgroup2 are not joined; the bind mount under /mnt
	// is outside the root.
	want := []v1Hierarchy{
		{controllers: []string{"cpu", "cpuacct"}, mountPoint: "/sys/fs/cgroup/cpu,cpuacct", mountRoot: "/"},
		{controllers: []string{"memory"}, mountPoint: "/sys/fs/cgroup/memory", mountRoot: "/"},
	}
	if !reflect.DeepEqual(hs, want) {
		t.Errorf("got %+v, want %+v", hs, want)
	}
	hs, err = v1HierarchiesFrom(mounts, "/mnt/my cgroups")
	if err != nil || len(hs) != 1 || hs[0].mountRoot != "/docker/abc" {
		t.Errorf("bind-mounted sub-hierarchy: got %+v, %v", hs, err)
	}
	if _, err := v1HierarchiesFrom(mounts, "/nowhere"); err == nil {
		t.Error("no mounts under root: want error")
	}
}

func TestV1HierarchyDir(t *testing.T) {
	h := v1Hierarchy{mountPoint: "/sys/fs/cgroup/memory", mountRoot: "/docker/abc", path: "/docker/abc/ctr"}
	if got := h.dir(); got != "/sys/fs/cgroup/memory/ctr" {
		t.Errorf("dir() = %q", got)
	}
	if _, err := v1CgroupPath("/elsewhere", h, nil); err == nil {
		t.Error("path outside the mounted sub-hierarchy: want error")
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint16
		wantErr bool
	}{
		{"", nil, false},
		{"0", []uint16{0}, false},
		{"0-3,7", []uint16{0, 1, 2, 3, 7}, false},
		{"1,3-4\n", []uint16{1, 3, 4}, false},
		{"3-1", nil, true},
		{"a", nil, true},
		{"0-", nil, true},
		{"1,,2", nil, true},
	}
	for _, tt := range tests {
		got, err := parseCPUList(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseFlatKeyed(t *testing.T) {
	got := parseFlatKeyed("cache 4096\nrss 8192\nbogus\nneg -1\n\noom_kill 2")
	want := map[string]uint64{"cache": 4096, "rss": 8192, "oom_kill": 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseBlkioV1(t *testing.T) {
	in := "8:0 Read 4096\n8:0 Write 0\n8:16 Total 12\nTotal 4108\n"
	got, err := parseBlkioV1(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []BlkioEntry{
		{Major: 8, Minor: 0, Op: "Read", Value: 4096},
		{Major: 8, Minor: 0, Op: "Write", Value: 0},
		{Major: 8, Minor: 16, Op: "Total", Value: 12},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got, err = parseBlkioV1("8:0 512\n")
	if err != nil || !reflect.DeepEqual(got, []BlkioEntry{{Major: 8, Value: 512}}) {
		t.Errorf("two-field line: got %+v, %v", got, err)
	}
	if _, err := parseBlkioV1("8:x Read 1\n"); err == nil {
		t.Error("bad device: want error")
	}
}

func TestParseIOStat(t *testing.T) {
	bytes, ios, err := parseIOStat("253:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
	if err != nil {
		t.Fatal(err)
	}
	wantBytes := []BlkioEntry{{253, 0, "Read", 4096}, {253, 0, "Write", 8192}, {253, 0, "Discard", 0}}
	wantIOs := []BlkioEntry{{253, 0, "Read", 1}, {253, 0, "Write", 2}, {253, 0, "Discard", 0}}
	if !reflect.DeepEqual(bytes, wantBytes) || !reflect.DeepEqual(ios, wantIOs) {
		t.Errorf("got %+v / %+v", bytes, ios)
	}
}

func TestParsePSI(t *testing.T) {
	got, err := parsePSI("some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n")
	if err != nil {
		t.Fatal(err)
	}
	want := &PSIStats{Some: PSIData{1.5, 0.25, 0, 1234}, Full: PSIData{Total: 7}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parsePSI("some avg10=x\n"); err == nil {
		t.Error("bad number: want error")
	}
}

func TestHugePageSize(t *testing.T) {
	tests := []struct {
		in    string
		bytes uint64
		name  string
	}{
		{"64KB", 64 << 10, "64KB"},
		{"2MB", 2 << 20, "2MB"},
		{"2048KB", 2 << 20, "2MB"}, // normalised to the kernel's spelling
		{"1GB", 1 << 30, "1GB"},
		{"1024MB", 1 << 30, "1GB"},
	}
	for _, tt := range tests {
		b, err := parseHugePageSize(tt.in)
		if err != nil || b != tt.bytes {
			t.Errorf("parseHugePageSize(%q) = %d, %v; want %d", tt.in, b, err, tt.bytes)
		}
		if n := hugePageName(b); n != tt.name {
			t.Errorf("hugePageName(%d) = %q, want %q", b, n, tt.name)
		}
	}
	for _, bad := range []string{"", "2M", "MB", "0MB", "02MB", "-2MB", "2mb", "1.5GB"} {
		if _, err := parseHugePageSize(bad); err == nil {
			t.Errorf("parseHugePageSize(%q): want error", bad)
		}
	}
}
