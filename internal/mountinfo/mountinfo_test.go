package mountinfo

import "testing"

func TestParse(t *testing.T) {
	in := "36 35 98:0 /mnt\\0401 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n" +
		"25 1 0:22 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu\n"
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{
		{ID: 36, Parent: 35, Root: "/mnt 1", Mountpoint: "/mnt2", Options: "rw,noatime", Optional: "master:1 shared:2", FSType: "ext3", Source: "/dev/root", SuperOptions: "rw,errors=continue"},
		{ID: 25, Parent: 1, Root: "/", Mountpoint: "/sys/fs/cgroup/cpu", Options: "rw,nosuid", FSType: "cgroup", Source: "cgroup", SuperOptions: "rw,cpu"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries", len(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"1 2 3 4", "x 2 0:1 / / rw - ext4 /dev/x rw", "1 2 0:1 / / rw ext4"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q): want an error", bad)
		}
	}
}
