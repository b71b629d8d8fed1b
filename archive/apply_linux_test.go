package archive

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
)

// fileCap is a security.capability value (VFS revision 2, effective) that
// grants CAP_NET_BIND_SERVICE.
func fileCap() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<unix.CAP_NET_BIND_SERVICE)
	return string(b)
}

func TestApplyMetadata(t *testing.T) {
	testutil.RequiresRoot(t)
	dirTime := time.Date(2019, 1, 2, 3, 4, 5, 600, time.UTC)
	fileTime := time.Date(2020, 6, 7, 8, 9, 10, 0, time.UTC)
	layer := buildTar(t,
		with(dirE("tmp/"), func(h *tar.Header) { h.Mode = 0o1777; h.ModTime = dirTime; h.Format = tar.FormatPAX }),
		with(dirE("srv/"), func(h *tar.Header) {
			h.Mode = 0o2750
			h.Uid = 1000
			h.Gid = 1001
			h.ModTime = dirTime
			h.Format = tar.FormatPAX
		}),
		with(reg("srv/data", "hello"), func(h *tar.Header) { h.Uid = 1000; h.Gid = 1001; h.Mode = 0o640; h.ModTime = fileTime }),
		with(reg("bin/ping", "ELF"), func(h *tar.Header) {
			h.Mode = 0o4755
			h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": fileCap(), "SCHILY.xattr.user.note": "x"}
		}),
		with(reg("bin/sgid", "ELF"), func(h *tar.Header) { h.Mode = 0o2755; h.Gid = 42 }),
		linkE("bin/ping2", "bin/ping"),
		symlinkE("bin/rel", "ping"),
		with(symlinkE("bin/abs", "/bin/ping"), func(h *tar.Header) { h.Uid = 7; h.Gid = 8 }),
		with(nodeE("dev/fifo", tar.TypeFifo, 0, 0), func(h *tar.Header) { h.Mode = 0o620 }),
		nodeE("dev/null", tar.TypeChar, 1, 3),
		nodeE("dev/loop9", tar.TypeBlock, 7, 9),
		with(dirE("ro/"), func(h *tar.Header) { h.Mode = 0o555; h.ModTime = dirTime; h.Format = tar.FormatPAX }),
		reg("ro/inside", "content written before the mode"),
	)
	root := t.TempDir()
	n, err := applyTar(t, root, layer)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("hello") + 3 + 3 + len("content written before the mode")); n != want {
		t.Fatalf("Apply returned %d, want %d", n, want)
	}
	for _, c := range []struct {
		path             string
		typ, mode        uint32
		uid, gid         uint32
		mtime            time.Time
		checkTime        bool
		rdevMaj, rdevMin uint32
	}{
		{path: "tmp", typ: unix.S_IFDIR, mode: 0o1777, mtime: dirTime, checkTime: true},
		{path: "srv", typ: unix.S_IFDIR, mode: 0o2750, uid: 1000, gid: 1001, mtime: dirTime, checkTime: true},
		{path: "srv/data", typ: unix.S_IFREG, mode: 0o640, uid: 1000, gid: 1001, mtime: fileTime, checkTime: true},
		{path: "bin/ping", typ: unix.S_IFREG, mode: 0o4755, mtime: testTime, checkTime: true},
		{path: "bin/sgid", typ: unix.S_IFREG, mode: 0o2755, gid: 42},
		{path: "bin/abs", typ: unix.S_IFLNK, mode: 0o777, uid: 7, gid: 8, mtime: testTime, checkTime: true},
		{path: "dev/fifo", typ: unix.S_IFIFO, mode: 0o620},
		{path: "dev/null", typ: unix.S_IFCHR, mode: 0o600, rdevMaj: 1, rdevMin: 3},
		{path: "dev/loop9", typ: unix.S_IFBLK, mode: 0o600, rdevMaj: 7, rdevMin: 9},
		{path: "ro", typ: unix.S_IFDIR, mode: 0o555, mtime: dirTime, checkTime: true},
	} {
		st := lstat(t, filepath.Join(root, c.path))
		if st.Mode&unix.S_IFMT != c.typ || st.Mode&0o7777 != c.mode {
			t.Errorf("%s: mode %o, want type %o perm %o", c.path, st.Mode, c.typ, c.mode)
		}
		if st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", c.path, st.Uid, st.Gid, c.uid, c.gid)
		}
		if c.checkTime && !time.Unix(st.Mtim.Unix()).Equal(c.mtime) {
			t.Errorf("%s: mtime %v, want %v", c.path, time.Unix(st.Mtim.Unix()), c.mtime)
		}
		if unix.Major(st.Rdev) != c.rdevMaj || unix.Minor(st.Rdev) != c.rdevMin {
			t.Errorf("%s: rdev %d:%d", c.path, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	ping, ping2 := lstat(t, filepath.Join(root, "bin/ping")), lstat(t, filepath.Join(root, "bin/ping2"))
	if ping.Ino != ping2.Ino || ping.Nlink != 2 {
		t.Errorf("bin/ping2 is not a hard link of bin/ping (ino %d/%d nlink %d)", ping.Ino, ping2.Ino, ping.Nlink)
	}
	for link, want := range map[string]string{"bin/rel": "ping", "bin/abs": "/bin/ping"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	xattrs := getXattrs(t, filepath.Join(root, "bin/ping"))
	if xattrs["security.capability"] != fileCap() || userXattrs(t, root) && xattrs["user.note"] != "x" {
		t.Errorf("bin/ping xattrs %q", xattrs)
	}
}

func getXattrs(t testing.TB, p string) map[string]string {
	t.Helper()
	dir, base := filepath.Split(p)
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	x, err := readXattrs(fd, base)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestApplyOwnership(t *testing.T) {
	testutil.RequiresRoot(t)
	layer := buildTar(t, dirE("d/"), with(reg("d/f", "x"), func(h *tar.Header) { h.Uid, h.Gid = 5, 6 }))

	root := t.TempDir()
	mustApply(t, root, layer, WithNoSameOwner())
	if st := lstat(t, filepath.Join(root, "d/f")); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("WithNoSameOwner: owner %d:%d", st.Uid, st.Gid)
	}

	root = t.TempDir()
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	mustApply(t, root, layer, WithIDMap(m, m))
	if st := lstat(t, filepath.Join(root, "d/f")); st.Uid != 100005 || st.Gid != 100006 {
		t.Errorf("WithIDMap: file owner %d:%d", st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(root, "d")); st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("WithIDMap: dir owner %d:%d", st.Uid, st.Gid)
	}

	small := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1}}
	if _, err := applyTar(t, t.TempDir(), layer, WithIDMap(small, small)); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("owner outside the map: %v", err)
	}
}

// TestApplyReplace checks that an entry replaces what is there, whatever
// the types, and that a directory over a directory merges.
func TestApplyReplace(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	mustApply(t, root, buildTar(t,
		dirE("d/"), reg("d/keep", "k"),
		reg("f2d", "file"), dirE("d2f/"), reg("d2f/child", "c"),
		symlinkE("l", "/nowhere"), reg("plain", "old"),
	))
	mustApply(t, root, buildTar(t,
		dirE("d/"), reg("d/new", "n"),
		dirE("f2d/"), reg("d2f", "file now"), reg("l", "not a link"), reg("plain", "new"),
	))
	if got := readNames(t, filepath.Join(root, "d")); !slices.Equal(got, []string{"keep", "new"}) {
		t.Errorf("d holds %v", got)
	}
	if st := lstat(t, filepath.Join(root, "f2d")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Error("f2d is not a directory")
	}
	for p, want := range map[string]string{"d2f": "file now", "l": "not a link", "plain": "new"} {
		if got := readFile(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
}

// whiteoutLayers are a base layer and three upper layers that delete b and
// make a opaque, with the opaque marker before, after and around the
// layer's own entries in a.
func whiteoutLayers(t testing.TB) (base []byte, uppers map[string][]byte) {
	base = buildTar(t,
		dirE("a/"), reg("a/f", "lower"), dirE("a/sub/"), reg("a/sub/g", "lower"),
		reg("b", "lower"), dirE("c/"), reg("c/keep", "lower"),
	)
	uppers = map[string][]byte{
		"marker first": buildTar(t, reg(".wh.b", ""), dirE("a/"), reg("a/.wh..wh..opq", ""), reg("a/new", "upper")),
		"marker last":  buildTar(t, reg(".wh.b", ""), dirE("a/"), reg("a/new", "upper"), reg("a/.wh..wh..opq", "")),
		"no dir entry": buildTar(t, reg("a/new", "upper"), reg("a/.wh..wh..opq", ""), reg(".wh.b", "")),
	}
	return base, uppers
}

func checkWhiteoutView(t *testing.T, root string) {
	t.Helper()
	if got := readNames(t, root); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("root holds %v, want [a c]", got)
	}
	if got := readNames(t, filepath.Join(root, "a")); !slices.Equal(got, []string{"new"}) {
		t.Errorf("a holds %v, want [new]", got)
	}
	if got := readNames(t, filepath.Join(root, "c")); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("c holds %v, want [keep]", got)
	}
}

func TestApplyWhiteoutsPlainDir(t *testing.T) {
	base, uppers := whiteoutLayers(t)
	for name, upper := range uppers {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			mustApply(t, root, base)
			mustApply(t, root, upper)
			checkWhiteoutView(t, root)
		})
	}
	t.Run("nested entries survive a late marker", func(t *testing.T) {
		root := t.TempDir()
		mustApply(t, root, base)
		mustApply(t, root, buildTar(t, reg("a/sub/h", "upper"), reg("a/.wh..wh..opq", "")))
		if got := readNames(t, filepath.Join(root, "a")); !slices.Equal(got, []string{"sub"}) {
			t.Errorf("a holds %v", got)
		}
		if got := readNames(t, filepath.Join(root, "a/sub")); !slices.Equal(got, []string{"h"}) {
			t.Errorf("a/sub holds %v", got)
		}
	})
	t.Run("directory mode survives the marker", func(t *testing.T) {
		root := t.TempDir()
		mustApply(t, root, buildTar(t, with(dirE("a/"), func(h *tar.Header) { h.Mode = 0o700 }), reg("a/f", "x")))
		mustApply(t, root, buildTar(t, reg("a/.wh..wh..opq", "")))
		if st := lstat(t, filepath.Join(root, "a")); st.Mode&0o7777 != 0o700 {
			t.Errorf("a mode %o", st.Mode&0o7777)
		}
		if got := readNames(t, filepath.Join(root, "a")); len(got) != 0 {
			t.Errorf("a holds %v", got)
		}
	})
}

// mountOverlay mounts lower (colon-separated, top first), upper and a work
// directory at a new mount point, unmounted at the end of the test.
func mountOverlay(t *testing.T, lower, upper string) string {
	t.Helper()
	work, mnt := t.TempDir(), t.TempDir()
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Skipf("overlay mount: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

func TestApplyWhiteoutsOverlayMount(t *testing.T) {
	testutil.RequiresRoot(t)
	base, uppers := whiteoutLayers(t)
	for name, layer := range uppers {
		t.Run(name, func(t *testing.T) {
			lower, upper := t.TempDir(), t.TempDir()
			mustApply(t, lower, base)
			mnt := mountOverlay(t, lower, upper)
			mustApply(t, mnt, layer)
			checkWhiteoutView(t, mnt)
			if st := lstat(t, filepath.Join(upper, "b")); !isWhiteoutDevice(&st) {
				t.Errorf("upper/b: mode %o rdev %d, want a 0/0 char device", st.Mode, st.Rdev)
			}
			if name == "marker first" {
				// The directory was removed and made again, which overlayfs
				// records as an opaque directory.
				if x := getXattrs(t, filepath.Join(upper, "a")); x["trusted.overlay.opaque"] != "y" {
					t.Errorf("upper/a xattrs %q, want trusted.overlay.opaque=y", x)
				}
			}
		})
	}
}

func TestApplyOverlayWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	base, uppers := whiteoutLayers(t)
	for name, layer := range uppers {
		t.Run(name, func(t *testing.T) {
			lower, upper := t.TempDir(), t.TempDir()
			mustApply(t, lower, base)
			mustApply(t, upper, layer, WithOverlayWhiteouts())
			if st := lstat(t, filepath.Join(upper, "b")); !isWhiteoutDevice(&st) {
				t.Errorf("upper/b: mode %o rdev %d, want a 0/0 char device", st.Mode, st.Rdev)
			}
			if x := getXattrs(t, filepath.Join(upper, "a")); x["trusted.overlay.opaque"] != "y" {
				t.Errorf("upper/a xattrs %q", x)
			}
			checkWhiteoutView(t, mountOverlay(t, upper+":"+lower, t.TempDir()))
		})
	}
}

func TestApplyContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), nil)
	if err == nil {
		t.Fatal("Apply ran with a canceled context")
	}
}

// TestApplyDirRemovedThroughAnotherPath is a regression test: a directory
// written through a symlink (var/run/lock, really run/lock) and then removed
// under its real name must not fail the layer when directory metadata is
// applied at the end.
func TestApplyDirRemovedThroughAnotherPath(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, buildTar(t,
		dirE("run/"), dirE("var/"), symlinkE("var/run", "/run"),
		dirE("var/run/lock/"), reg(".wh.run", ""),
	))
	if exists(filepath.Join(root, "run")) {
		t.Fatal("run survived its whiteout")
	}
}

// userXattrs reports whether the filesystem of dir takes user.* extended
// attributes (tmpfs does only from Linux 6.6; the layer's are skipped
// where they cannot be kept).
func userXattrs(t *testing.T, dir string) bool {
	t.Helper()
	probe := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	return unix.Setxattr(probe, "user.probe", []byte("1"), 0) == nil
}

// A regular file's mode is exact whatever the process's umask: it is
// created with its permission bits and changed only where the umask took
// some, or for the setuid, setgid and sticky bits. Its times are set
// through its descriptor.
func TestApplyFileModesUnderUmask(t *testing.T) {
	old := unix.Umask(0o027)
	defer unix.Umask(old)
	modes := []int64{0o644, 0o666, 0o777, 0o640, 0o600, 0o000, 0o4755, 0o2711, 0o1644}
	var entries []tentry
	for _, m := range modes {
		entries = append(entries, with(reg(fmt.Sprintf("f%o", m), "x"), func(h *tar.Header) { h.Mode = m }))
	}
	root := t.TempDir()
	if _, err := applyTar(t, root, buildTar(t, entries...)); err != nil {
		t.Fatal(err)
	}
	for _, m := range modes {
		var st unix.Stat_t
		name := fmt.Sprintf("f%o", m)
		if err := unix.Lstat(filepath.Join(root, name), &st); err != nil {
			t.Fatal(err)
		}
		if got := int64(st.Mode & 0o7777); got != m {
			t.Errorf("%s: mode %o, want %o", name, got, m)
		}
		if mt := time.Unix(st.Mtim.Unix()); !mt.Equal(testTime) {
			t.Errorf("%s: mtime %v, want %v", name, mt, testTime)
		}
	}
}

// Directories (made by Apply, merged with one there before, or made in a
// setgid directory, whose group they inherit) and symlinks end up with the
// owner, mode and times of their entries, whatever they had.
func TestApplyDirAndSymlinkMetadata(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	mustApply(t, root, buildTar(t,
		dirE("merged/"), dirE("plain/"),
		with(dirE("sg/"), func(h *tar.Header) { h.Mode, h.Gid = 0o2775, 9 }),
	))
	later := testTime.Add(time.Hour)
	mustApply(t, root, buildTar(t,
		with(dirE("merged/"), func(h *tar.Header) { h.Mode, h.Uid, h.Gid, h.ModTime = 0o700, 7, 8, later }),
		dirE("sg/sub/"),
		reg("sg/file", "f"),
		symlinkE("sg/link", "sub"),
		with(symlinkE("sg/owned", "sub"), func(h *tar.Header) { h.Uid, h.Gid = 3, 4 }),
	))
	for _, c := range []struct {
		path          string
		mode          uint32
		uid, gid      uint32
		mtime         time.Time
		checkModeTime bool
	}{
		{"merged", 0o700, 7, 8, later, true},
		{"plain", 0o755, 0, 0, testTime, true},
		{"sg", 0o2775, 0, 9, time.Time{}, true}, // its content changed since
		{"sg/sub", 0o755, 0, 0, testTime, true},
		{"sg/file", 0o644, 0, 0, testTime, true},
		{"sg/link", 0, 0, 0, time.Time{}, false},
		{"sg/owned", 0, 3, 4, time.Time{}, false},
	} {
		st := lstat(t, filepath.Join(root, c.path))
		if st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s owner %d:%d, want %d:%d", c.path, st.Uid, st.Gid, c.uid, c.gid)
		}
		if c.checkModeTime && (st.Mode&0o7777 != c.mode || !c.mtime.IsZero() && st.Mtim.Sec != c.mtime.Unix()) {
			t.Errorf("%s mode %o mtime %d, want %o %d", c.path, st.Mode&0o7777, st.Mtim.Sec, c.mode, c.mtime.Unix())
		}
	}
}
