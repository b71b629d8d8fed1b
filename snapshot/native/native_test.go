//go:build linux

package native_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/internal/testutil"
	"berth.dev/snapshot"
	"berth.dev/snapshot/native"
	"berth.dev/snapshot/testsuite"
)

// The suite mounts (bind mounts of the snapshots), so it needs root.
func newNative(t *testing.T, root string) (snapshot.Snapshotter, error) {
	testutil.RequiresRoot(t)
	return native.New(root)
}

func TestNative(t *testing.T) {
	testsuite.Run(t, newNative)
}

func BenchmarkPrepareMount10Layers(b *testing.B) {
	testutil.RequiresRoot(b)
	s, err := native.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	testsuite.Benchmark(b, s)
}

// TestCopyKeepsMetadata checks that an Active snapshot's copy of its
// parent keeps what a layer tar carries: modes with setuid and sticky
// bits, owners, extended attributes, hard links, symlinks, devices,
// fifos and times.
func TestCopyKeepsMetadata(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s, err := native.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mounts, err := s.Prepare(ctx, "base-active", "")
	if err != nil {
		t.Fatal(err)
	}
	dir := mountAt(t, mounts)
	past := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	must(t, os.WriteFile(filepath.Join(dir, "big"), big, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chown(filepath.Join(dir, "suid"), 1234, 5678))
	must(t, unix.Chmod(filepath.Join(dir, "suid"), 0o4755))
	must(t, unix.Lsetxattr(filepath.Join(dir, "suid"), "user.berth", []byte("user value"), 0))
	must(t, unix.Lsetxattr(filepath.Join(dir, "suid"), "trusted.berth", []byte("trusted value"), 0))
	must(t, os.Mkdir(filepath.Join(dir, "tmp"), 0o755))
	must(t, unix.Chmod(filepath.Join(dir, "tmp"), 0o1777))
	must(t, os.Link(filepath.Join(dir, "big"), filepath.Join(dir, "tmp", "big-link")))
	must(t, os.Symlink("../big", filepath.Join(dir, "tmp", "link")))
	must(t, os.Lchown(filepath.Join(dir, "tmp", "link"), 42, 43))
	must(t, unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Chmod(filepath.Join(dir, "null"), 0o666)) // past the umask
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	for _, p := range []string{"suid", "tmp/link", "null", "fifo", "tmp", "."} {
		ts := []unix.Timespec{unix.NsecToTimespec(past.UnixNano()), unix.NsecToTimespec(past.UnixNano())}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, p), ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	must(t, snapshot.UnmountAll(dir))
	must(t, s.Commit(ctx, "base", "base-active"))

	mounts, err = s.Prepare(ctx, "copy", "base")
	if err != nil {
		t.Fatal(err)
	}
	dir = mountAt(t, mounts)
	for _, tc := range []struct {
		path     string
		mode     uint32
		uid, gid uint32
		rdev     uint64
	}{
		{".", unix.S_IFDIR | 0o755, 0, 0, 0},
		{"suid", unix.S_IFREG | 0o4755, 1234, 5678, 0},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0, 0},
		{"tmp/link", unix.S_IFLNK | 0o777, 42, 43, 0},
		{"null", unix.S_IFCHR | 0o666, 0, 0, unix.Mkdev(1, 3)},
		{"fifo", unix.S_IFIFO | 0o640, 0, 0, 0},
	} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(dir, tc.path), &st))
		if st.Mode != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid || st.Rdev != tc.rdev {
			t.Errorf("%s: mode %o owner %d:%d rdev %#x; want %o %d:%d %#x", tc.path, st.Mode, st.Uid, st.Gid, st.Rdev, tc.mode, tc.uid, tc.gid, tc.rdev)
		}
		if got := time.Unix(st.Mtim.Unix()).UTC(); !got.Equal(past) {
			t.Errorf("%s: mtime %v, want %v", tc.path, got, past)
		}
	}
	for name, want := range map[string]string{"user.berth": "user value", "trusted.berth": "trusted value"} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(dir, "suid"), name, buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("xattr %s: %q, %v; want %q", name, buf[:n], err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "tmp", "link")); err != nil || target != "../big" {
		t.Errorf("symlink: %q, %v", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "tmp", "link")); err != nil || !bytes.Equal(b, big) {
		t.Errorf("big file through the symlink: %d bytes, %v", len(b), err)
	}
	var a, b unix.Stat_t
	must(t, unix.Stat(filepath.Join(dir, "big"), &a))
	must(t, unix.Stat(filepath.Join(dir, "tmp", "big-link"), &b))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link lost: inodes %d and %d, %d links", a.Ino, b.Ino, a.Nlink)
	}
	// The copy is a copy: writing it leaves the parent alone.
	must(t, os.WriteFile(filepath.Join(dir, "big"), []byte("changed"), 0o644))
	view, err := s.View(ctx, "view", "base")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mountAt(t, view), "big")); err != nil || !bytes.Equal(got, big) {
		t.Errorf("parent changed by its child: %d bytes, %v", len(got), err)
	}
}

func mountAt(t *testing.T, mounts []snapshot.Mount) string {
	t.Helper()
	dir := t.TempDir()
	if err := snapshot.MountAll(mounts, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snapshot.UnmountAll(dir) })
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
