package main

import (
	"strings"
	"syscall"
	"testing"
)

func TestParseArgs(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		min, max int
		want     string
		force    bool
		err      string
	}{
		{"flag before id", []string{"-f", "c1"}, 1, 1, "c1", true, ""},
		{"flag after id", []string{"c1", "--force"}, 1, 1, "c1", true, ""},
		{"too many", []string{"c1", "c2"}, 1, 1, "", false, "exactly 1"},
		{"missing", nil, 1, 1, "", false, "exactly 1"},
		{"command args keep their flags", []string{"-f", "c1", "sh", "-c", "echo"}, 2, -1, "c1 sh -c echo", true, ""},
		{"double dash", []string{"c1", "--", "-f"}, 1, -1, "c1 -f", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlags("test", "")
			force := fs.Bool("force", false, "")
			fs.BoolVar(force, "f", false, "")
			pos, err := parseArgs(fs, tc.args, tc.min, tc.max)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(pos, " "); got != tc.want || *force != tc.force {
				t.Errorf("got %q force=%v, want %q force=%v", got, *force, tc.want, tc.force)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"9": syscall.SIGKILL, "KILL": syscall.SIGKILL, "SIGKILL": syscall.SIGKILL,
		"term": syscall.SIGTERM, "SIGRTMIN": 34, "RTMIN+2": 36, "SIGRTMAX-1": 63, "64": 64,
	} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "65", "SIGBOGUS", "-1", "SIGRTMIN+31", "SIGRTMAX+1"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) succeeded", bad)
		}
	}
}

func TestByteValues(t *testing.T) {
	for in, want := range map[string]int64{
		"1024": 1024, "64m": 64 << 20, "1g": 1 << 30, "2KiB": 2048, "1.5m": 3 << 19, "-1": -1,
	} {
		p := &numParser{}
		if got := p.bytes(in, "memory"); got != want || p.err != nil {
			t.Errorf("bytes(%q) = %d, %v; want %d", in, got, p.err, want)
		}
	}
	for _, bad := range []string{"lots", "-5", "12x"} {
		p := &numParser{}
		if p.bytes(bad, "memory"); p.err == nil || !strings.Contains(p.err.Error(), "--memory") {
			t.Errorf("bytes(%q): err %v", bad, p.err)
		}
	}
}
