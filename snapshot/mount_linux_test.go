package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/internal/testutil"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		options []string
		flags   uintptr
		data    []string
	}{
		{nil, 0, nil},
		{[]string{"rbind", "ro"}, unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, nil},
		{[]string{"ro", "rw"}, 0, nil},
		{[]string{"nosuid", "lowerdir=/a:/b", "nodev", "index=off"}, unix.MS_NOSUID | unix.MS_NODEV, []string{"lowerdir=/a:/b", "index=off"}},
	} {
		flags, data, err := parseOptions(tc.options)
		if err != nil {
			t.Fatal(err)
		}
		if flags != tc.flags || !reflect.DeepEqual(data, tc.data) {
			t.Errorf("parseOptions(%q) = %#x, %q; want %#x, %q", tc.options, flags, data, tc.flags, tc.data)
		}
	}
}

func TestCommonDir(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{"/var/lib/berth/snapshots/12/fs", "/var/lib/berth/snapshots/3/fs", "/var/lib/berth/snapshots/4/work"}, "/var/lib/berth/snapshots"},
		{[]string{"/a/b/c"}, "/a/b"},
		{[]string{"/a/bc/d", "/a/b/d"}, "/a"},
		{[]string{"/x/1", "/y/1"}, "/"},
		{[]string{"/x/1", "relative/1"}, ""},
		{nil, ""},
	} {
		if got := commonDir(tc.paths); got != tc.want {
			t.Errorf("commonDir(%q) = %q, want %q", tc.paths, got, tc.want)
		}
	}
}

// deepOverlay makes depth lower directories with long names (so their
// absolute paths overflow a page), an upper and a work directory. The top
// lower holds "top", the bottom one "bottom", both hold "shadowed".
func deepOverlay(t *testing.T, depth int) (lowers []string, upper, work string) {
	base := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name-", 3))
	for i := 0; i < depth; i++ {
		dir := filepath.Join(base, fmt.Sprintf("layer-%03d", i), "fs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, dir)
	}
	for _, f := range []struct{ dir, name, content string }{
		{lowers[0], "top", "top"}, {lowers[0], "shadowed", "top"},
		{lowers[depth-1], "bottom", "bottom"}, {lowers[depth-1], "shadowed", "bottom"},
	} {
		if err := os.WriteFile(filepath.Join(f.dir, f.name), []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	upper, work = filepath.Join(base, "upper", "fs"), filepath.Join(base, "upper", "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return lowers, upper, work
}

// TestOverlayBeyondOnePage mounts 150 lowers through each way Mount has
// around the page limit of mount(2) options: the new mount API with
// "lowerdir+" (Linux 6.8 and later) and relative paths from a thread
// with its own working directory (older kernels), and through Mount
// itself, which picks one.
func TestOverlayBeyondOnePage(t *testing.T) {
	testutil.RequiresRoot(t)
	strategies := []struct {
		name  string
		mount func(target string, flags uintptr, data []string) error
	}{
		{"fsconfig", func(target string, flags uintptr, data []string) error {
			return mountOverlayFsconfig("overlay", target, flags, data)
		}},
		{"relative", func(target string, flags uintptr, data []string) error {
			return mountOverlayRelative("overlay", target, flags, data)
		}},
		{"Mount", func(target string, _ uintptr, data []string) error {
			return Mount{Type: "overlay", Source: "overlay", Options: data}.Mount(target)
		}},
	}
	for _, st := range strategies {
		for _, writable := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/writable=%v", st.name, writable), func(t *testing.T) {
				lowers, upper, work := deepOverlay(t, 150)
				data := []string{"lowerdir=" + strings.Join(lowers, ":")}
				var flags uintptr
				if writable {
					data = append(data, "upperdir="+upper, "workdir="+work)
				} else {
					flags = unix.MS_RDONLY
				}
				if n := len(strings.Join(data, ",")); n < unix.Getpagesize() {
					t.Fatalf("options are %d bytes, the test needs more than a page", n)
				}
				cwd, err := os.Getwd()
				if err != nil {
					t.Fatal(err)
				}
				target := t.TempDir()
				if err := st.mount(target, flags, data); err != nil {
					if errors.Is(err, errNoLowerdirAppend) {
						t.Skipf("kernel has no lowerdir+: %v", err)
					}
					t.Fatal(err)
				}
				t.Cleanup(func() { UnmountAll(target) })
				if now, _ := os.Getwd(); now != cwd {
					t.Errorf("mount moved the process from %s to %s", cwd, now)
				}
				for name, want := range map[string]string{"top": "top", "bottom": "bottom", "shadowed": "top"} {
					if b, err := os.ReadFile(filepath.Join(target, name)); err != nil || string(b) != want {
						t.Errorf("%s: %q, %v; want %q", name, b, err, want)
					}
				}
				err = os.WriteFile(filepath.Join(target, "new"), []byte("x"), 0o644)
				switch {
				case writable && err != nil:
					t.Errorf("write: %v", err)
				case writable:
					if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
						t.Errorf("written file not in the upper directory: %v", err)
					}
				case err == nil:
					t.Errorf("wrote into a read-only overlay")
				}
				if err := UnmountAll(target); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(target, "top")); err == nil {
					t.Errorf("overlay still mounted after UnmountAll")
				}
			})
		}
	}
}

func TestBindMountReadOnly(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	m := Mount{Type: "bind", Source: src, Options: []string{"rbind", "ro", "nosuid"}}
	if err := MountAll([]Mount{m}, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountAll(target) })
	if b, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(b) != "f" {
		t.Errorf("read through the bind mount: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(target, "g"), nil, 0o644); err == nil {
		t.Errorf("wrote through a read-only bind mount")
	}
	// The source stays writable.
	if err := os.WriteFile(filepath.Join(src, "g"), nil, 0o644); err != nil {
		t.Errorf("source became read-only: %v", err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(filepath.Join(target, "missing")); err != nil {
		t.Errorf("UnmountAll of a missing path: %v", err)
	}
}
