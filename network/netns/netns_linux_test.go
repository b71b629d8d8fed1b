package netns_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"berth.dev/network/netns"
)

// pinDir returns a directory for pins under a fresh temp dir, and unmounts
// the shared bind New makes of it before the temp dir is removed.
func pinDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// mountedAt reports whether any mount in /proc/self/mountinfo sits at path.
func mountedAt(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestNewRemove(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := pinDir(t)
	path := filepath.Join(dir, testutil.UniqueName(t))
	if err := netns.New(path); err != nil {
		t.Fatal(err)
	}
	if !mountedAt(t, path) {
		t.Fatalf("no mount at %s after New", path)
	}
	if !mountedAt(t, dir) {
		t.Errorf("directory %s is not a mount of its own after New", dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.NSFS_MAGIC {
		t.Errorf("pin is on filesystem %#x, want nsfs", st.Type)
	}
	if inode(t, path) == inode(t, "/proc/self/ns/net") {
		t.Error("pin names the test's own namespace")
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v, %v; want mode 0700", fi, err)
	}

	if err := netns.Remove(path); err != nil {
		t.Fatal(err)
	}
	if mountedAt(t, path) {
		t.Errorf("mount at %s left after Remove", path)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin file after Remove: %v", err)
	}
	if err := netns.Remove(path); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestNewExisting(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := pinDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func(path string) error
	}{
		{"plain file", func(path string) error { return os.WriteFile(path, []byte("keep"), 0o600) }},
		{"pin", netns.New},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, testutil.UniqueName(t))
			if err := tc.setup(path); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { netns.Remove(path) })
			before, wasMounted := inode(t, path), mountedAt(t, path)
			if err := netns.New(path); !errors.Is(err, errdefs.ErrAlreadyExists) {
				t.Fatalf("New on existing %s: %v, want ErrAlreadyExists", path, err)
			}
			if inode(t, path) != before || mountedAt(t, path) != wasMounted {
				t.Error("failed New changed what was there")
			}
		})
	}
}

func TestNewSharedDirOnce(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := pinDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := netns.New(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { netns.Remove(p) })
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 6 && f[4] == dir {
			n++
			if !strings.Contains(line, " shared:") {
				t.Errorf("directory mount not shared: %s", line)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d mounts at %s, want 1", n, dir)
	}
}

func TestLoopbackUp(t *testing.T) {
	testutil.RequiresRoot(t)
	path := filepath.Join(pinDir(t), "ns")
	if err := netns.New(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Remove(path) })
	h, err := netns.Handle(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo flags %v, want up", lo.Attrs().Flags)
	}
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 {
		t.Errorf("%d links in a new namespace, want only lo", len(links))
	}
	// Traffic on loopback works inside.
	err = netns.Do(path, func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Error(err)
	}
}

// threadsIn counts the threads of this process whose network namespace has
// the inode ino.
func threadsIn(t *testing.T, ino uint64) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err != nil {
			continue // the thread has ended
		}
		if st.Ino == ino {
			n++
		}
	}
	return n
}

func TestDo(t *testing.T) {
	testutil.RequiresRoot(t)
	path := filepath.Join(pinDir(t), "ns")
	if err := netns.New(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Remove(path) })
	want := inode(t, path)

	for i := 0; i < 20; i++ {
		var inside uint64
		err := netns.Do(path, func() error {
			var st unix.Stat_t
			if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
				return err
			}
			inside = st.Ino
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if inside != want {
			t.Fatalf("fn ran in netns %d, want %d", inside, want)
		}
	}
	// No thread of the process was left behind in the namespace.
	if n := threadsIn(t, want); n != 0 {
		t.Errorf("%d threads still in the namespace after Do returned", n)
	}

	// fn's error comes back as is.
	sentinel := errors.New("from fn")
	if err := netns.Do(path, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do returned %v, want fn's error", err)
	}

	// A /proc/<pid>/ns/net path works as well as a pin.
	var self uint64
	err := netns.Do("/proc/self/ns/net", func() error {
		var st unix.Stat_t
		err := unix.Stat("/proc/thread-self/ns/net", &st)
		self = st.Ino
		return err
	})
	if err != nil || self != inode(t, "/proc/self/ns/net") {
		t.Errorf("Do in /proc/self/ns/net: inode %d, err %v", self, err)
	}
}

func TestDoPanic(t *testing.T) {
	testutil.RequiresRoot(t)
	path := filepath.Join(pinDir(t), "ns")
	if err := netns.New(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Remove(path) })
	var got any
	func() {
		defer func() { got = recover() }()
		netns.Do(path, func() error { panic("in fn") })
	}()
	if got != "in fn" {
		t.Errorf("recovered %v in the caller, want fn's panic", got)
	}
	if n := threadsIn(t, inode(t, path)); n != 0 {
		t.Errorf("%d threads left in the namespace after a panic", n)
	}
}

func TestDoErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ran := false
	fn := func() error { ran = true; return nil }
	for _, tc := range []struct {
		path string
		want error
	}{
		{filepath.Join(dir, "missing"), errdefs.ErrNotFound},
		{plain, errdefs.ErrInvalidArgument},
		{"/proc/self/ns/uts", errdefs.ErrInvalidArgument},
	} {
		if err := netns.Do(tc.path, fn); !errors.Is(err, tc.want) {
			t.Errorf("Do(%s): %v, want %v", tc.path, err, tc.want)
		}
		if _, err := netns.Handle(tc.path); !errors.Is(err, tc.want) {
			t.Errorf("Handle(%s): %v, want %v", tc.path, err, tc.want)
		}
	}
	if ran {
		t.Error("fn ran although the namespace could not be entered")
	}
}

// TestNewFailsClean: a New that cannot make its pin (the directory is a
// read-only mount) fails with the cause and leaves no file and no mount.
func TestNewFailsClean(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := pinDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "ns")
	err := netns.New(path)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("New on a read-only dir: %v, want EROFS", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin file left: %v", err)
	}
	if mountedAt(t, path) {
		t.Error("mount left at the pin")
	}
}

func BenchmarkNewRemove(b *testing.B) {
	testutil.RequiresRoot(b)
	dir := pinDir(b)
	path := filepath.Join(dir, "ns")
	for b.Loop() {
		if err := netns.New(path); err != nil {
			b.Fatal(err)
		}
		if err := netns.Remove(path); err != nil {
			b.Fatal(err)
		}
	}
}
