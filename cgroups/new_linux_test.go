package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

func TestDetectMode(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  Mode
	}{
		{"unified", map[string]string{"cgroup.controllers": "cpu memory", "cgroup.procs": ""}, Unified},
		{"hybrid", map[string]string{"memory/tasks": "", "cpu/tasks": "", "unified/cgroup.controllers": ""}, Hybrid},
		{"legacy", map[string]string{"memory/tasks": "", "systemd/tasks": ""}, Legacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			got, err := DetectMode(root)
			if err != nil || got != tt.want {
				t.Errorf("DetectMode = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	t.Run("nothing mounted", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, map[string]string{"memory/memory.stat": ""})
		if _, err := DetectMode(root); !errors.Is(err, ErrUnsupported) {
			t.Errorf("error = %v, want ErrUnsupported", err)
		}
	})
}

func TestCleanCgroupPath(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"/berth/ctr", "/berth/ctr", nil},
		{"/berth//ctr/", "/berth/ctr", nil},
		{"berth/ctr", "berth/ctr", nil},
		{"./ctr", "ctr", nil},
		{"", "", ErrInvalid},
		{"/", "", ErrInvalid},
		{".", "", ErrInvalid},
		{"/a/../b", "", ErrInvalid},
		{"../escape", "", ErrInvalid},
		{"/a\nb", "", ErrInvalid},
		{"system.slice:berth:abc", "", ErrUnsupported},
	}
	for _, tt := range tests {
		got, err := cleanCgroupPath(tt.in)
		if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) || got != tt.want {
			t.Errorf("cleanCgroupPath(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestNewV1Paths(t *testing.T) {
	root := t.TempDir()
	mountinfo := fmt.Sprintf(
		"32 31 0:29 / %[1]s/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"+
			"35 31 0:32 / %[1]s/memory rw - cgroup cgroup rw,memory\n"+
			"40 31 0:37 / %[1]s/systemd rw - cgroup cgroup rw,name=systemd\n"+
			"41 31 0:38 / /elsewhere/pids rw - cgroup cgroup rw,pids\n", root)
	self := "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n1:name=systemd:/\n"
	opts := append(fakeProc(t, self, mountinfo), WithMode(Hybrid), WithMountRoot(root))

	t.Run("absolute", func(t *testing.T) {
		m, err := New("/berth/ctr", opts...)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"cpu":     filepath.Join(root, "cpu,cpuacct/berth/ctr"),
			"cpuacct": filepath.Join(root, "cpu,cpuacct/berth/ctr"),
			"memory":  filepath.Join(root, "memory/berth/ctr"),
		}
		if got := m.Paths(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Paths() = %v, want %v", got, want)
		}
		if p := m.Path("memory"); p != "/berth/ctr" {
			t.Errorf("Path(memory) = %q", p)
		}
		if p := m.Path("pids"); p != "" {
			t.Errorf("Path(pids) = %q, want \"\": pids is mounted outside the root", p)
		}
	})
	t.Run("relative to own cgroup per controller", func(t *testing.T) {
		m, err := New("ctr", opts...)
		if err != nil {
			t.Fatal(err)
		}
		if p := m.Path("memory"); p != "/process_api/abc/ctr" {
			t.Errorf("Path(memory) = %q", p)
		}
		if p := m.Path("cpu"); p != "/ctr" {
			t.Errorf("Path(cpu) = %q", p)
		}
		if d := m.Paths()["memory"]; d != filepath.Join(root, "memory/process_api/abc/ctr") {
			t.Errorf("memory dir = %q", d)
		}
	})
}

func TestNewV2RelativePath(t *testing.T) {
	root := t.TempDir()
	opts := append(fakeProc(t, "0::/user.slice/session-1.scope\n", ""), WithMode(Unified), WithMountRoot(root))
	m, err := New("ctr", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Paths()[""], filepath.Join(root, "user.slice/session-1.scope/ctr"); got != want {
		t.Errorf("dir = %q, want %q", got, want)
	}
	if got := m.Path(""); got != "/user.slice/session-1.scope/ctr" {
		t.Errorf("Path(\"\") = %q", got)
	}
	if _, err := New("ctr", append(fakeProc(t, "4:memory:/x\n", ""), WithMode(Unified), WithMountRoot(root))...); err == nil {
		t.Error("relative path without a 0:: line: want error")
	}
}
