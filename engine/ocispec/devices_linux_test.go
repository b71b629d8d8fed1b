package ocispec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
)

// TestDeviceDirectory: --device with a directory brings every node under
// it, at the same relative paths.
func TestDeviceDirectory(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dir, "sub/null"), unix.S_IFCHR|0o620, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "sub/null"), 0o620); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "not-a-device"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := generate(t, testImage(), RunOptions{Devices: []Device{{PathOnHost: dir, PathInContainer: "/dev/snd"}}})
	if len(s.Linux.Devices) != 1 {
		t.Fatalf("devices = %+v, want the one node", s.Linux.Devices)
	}
	d := s.Linux.Devices[0]
	if d.Path != "/dev/snd/sub/null" || d.Type != "c" || d.Major != 1 || d.Minor != 3 || *d.FileMode != 0o620 {
		t.Errorf("device = %+v (mode %v)", d, *d.FileMode)
	}
	_, err := Generate(testImage(), fakeRootfs(t), RunOptions{ID: testID, Devices: []Device{{PathOnHost: t.TempDir()}}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "no device nodes") {
		t.Errorf("empty device directory: %v", err)
	}
}

// TestUlimitAboveCallersHardLimit: without CAP_SYS_RESOURCE the runtime
// could not raise a hard limit, so Generate refuses it up front.
func TestUlimitAboveCallersHardLimit(t *testing.T) {
	if effectiveCaps()&(1<<capSysResource) != 0 {
		t.Skip("this process has CAP_SYS_RESOURCE: any hard limit can be set")
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Max == unix.RLIM_INFINITY {
		t.Skip("the nofile hard limit is unlimited")
	}
	at := Ulimit{Name: "nofile", Soft: int64(cur.Cur), Hard: int64(cur.Max)}
	generate(t, testImage(), RunOptions{Ulimits: []Ulimit{at}})
	above := Ulimit{Name: "nofile", Soft: int64(cur.Cur), Hard: int64(cur.Max) + 1}
	_, err := Generate(testImage(), fakeRootfs(t), RunOptions{ID: testID, Ulimits: []Ulimit{above}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
		t.Errorf("hard limit above the caller's: %v", err)
	}
}
