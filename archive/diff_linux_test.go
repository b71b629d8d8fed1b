package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
)

// richLayer holds every kind of entry a layer may hold, with times to the
// second (what a diff keeps).
func richLayer(t testing.TB) []byte {
	dt := time.Date(2018, 5, 6, 7, 8, 9, 0, time.UTC)
	return buildTar(t,
		with(dirE("etc/"), func(h *tar.Header) { h.ModTime = dt }),
		dirE("bin/"), dirE("dev/"), dirE("home/"), dirE("run/"),
		with(reg("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), func(h *tar.Header) { h.Mode = 0o600 }),
		with(dirE("home/u/"), func(h *tar.Header) { h.Uid, h.Gid, h.Mode = 1000, 1000, 0o700 }),
		with(reg("home/u/.profile", "export A=1\n"), func(h *tar.Header) { h.Uid, h.Gid = 1000, 1000 }),
		with(reg("bin/ping", "ELF..."), func(h *tar.Header) {
			h.Mode = 0o4755
			h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": fileCap(), "SCHILY.xattr.user.a": "b"}
		}),
		linkE("bin/ping6", "bin/ping"),
		symlinkE("bin/sh", "busybox"),
		symlinkE("lib64", "/lib"),
		reg("bin/busybox", strings.Repeat("busybox", 3000)),
		nodeE("dev/null", tar.TypeChar, 1, 3),
		nodeE("dev/sda", tar.TypeBlock, 8, 0),
		nodeE("run/fifo", tar.TypeFifo, 0, 0),
		with(dirE("tmp/"), func(h *tar.Header) { h.Mode = 0o1777; h.ModTime = dt }),
		reg("empty", ""),
	)
}

// treeSummary describes every entry below root (root itself excluded) by
// what a layer carries: type, mode, owner, mtime to the second, device,
// link target, content, xattrs and hard-link groups.
func treeSummary(t testing.TB, root string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	inodes := make(map[uint64]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st := lstat(t, p)
		desc := fmt.Sprintf("mode=%o owner=%d:%d", st.Mode, st.Uid, st.Gid)
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			desc += fmt.Sprintf(" mtime=%d", st.Mtim.Sec)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" content=%q", b)
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					desc += " linked-to=" + first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " target=" + target
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		x := getXattrs(t, p)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range x {
				if !isOverlayXattr(k) && !yield(k) {
					return
				}
			}
		}) {
			desc += fmt.Sprintf(" %s=%q", k, x[k])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSummaries(t testing.TB, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s missing (want %s)", p, w)
		} else if g != w {
			t.Errorf("%s:\n got %s\nwant %s", p, g, w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s unexpected: %s", p, g)
		}
	}
}

func writeDiff(t testing.TB, upper string, lowers []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDiff(context.Background(), &buf, upper, lowers); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarNames(t testing.TB, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		name := hdr.Name
		if hdr.Typeflag == tar.TypeLink {
			name += " link to " + hdr.Linkname
		}
		names = append(names, name)
	}
}

// TestWriteDiffRoundTrip checks that a tree written by WriteDiff and applied
// into an empty directory comes back the same, and that the tar is
// byte-identical for the same tree (written twice, or from the copy).
func TestWriteDiffRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t)
	a, b := t.TempDir(), t.TempDir()
	mustApply(t, a, richLayer(t))
	diffA := writeDiff(t, a, nil)
	mustApply(t, b, diffA)
	diffSummaries(t, treeSummary(t, b), treeSummary(t, a))
	if again := writeDiff(t, a, nil); !bytes.Equal(again, diffA) {
		t.Error("WriteDiff of the same tree differs between runs")
	}
	if diffB := writeDiff(t, b, nil); !bytes.Equal(diffB, diffA) {
		t.Errorf("WriteDiff of the round-tripped tree differs:\n%v\n%v", tarNames(t, diffB), tarNames(t, diffA))
	}
	names := tarNames(t, diffA)
	if !slices.IsSortedFunc(names, func(x, y string) int {
		return strings.Compare(strings.ReplaceAll(x, "/", "\x00"), strings.ReplaceAll(y, "/", "\x00"))
	}) {
		t.Errorf("entries not in path order: %v", names)
	}
	if !slices.Contains(names, "bin/ping6 link to bin/ping") {
		t.Errorf("hard link not kept as a link: %v", names)
	}
}

// TestWriteDiffNormalised checks the headers: PAX, numeric owners, no user
// or group names, no access or change times, times to the second.
func TestWriteDiffNormalised(t *testing.T) {
	testutil.RequiresRoot(t)
	a := t.TempDir()
	mustApply(t, a, richLayer(t))
	now := time.Now()
	if err := os.Chtimes(filepath.Join(a, "empty"), now, now); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(writeDiff(t, a, nil)))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uname != "" || hdr.Gname != "" || !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() ||
			hdr.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: uname %q gname %q atime %v ctime %v mtime %v", hdr.Name, hdr.Uname, hdr.Gname,
				hdr.AccessTime, hdr.ChangeTime, hdr.ModTime)
		}
	}
}

func TestWriteDiffOverlay(t *testing.T) {
	testutil.RequiresRoot(t)
	base := buildTar(t,
		dirE("a/"), reg("a/f", "lower"), dirE("a/sub/"), reg("a/sub/g", "lower"),
		reg("b", "lower"), dirE("c/"), reg("c/keep", "lower"), reg("c/gone", "lower"),
	)
	lower, upper := t.TempDir(), t.TempDir()
	mustApply(t, lower, base)
	work, mnt := t.TempDir(), t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", 0,
		"lowerdir="+lower+",upperdir="+upper+",workdir="+work+",redirect_dir=off,metacopy=off"); err != nil {
		t.Skipf("overlay mount: %v", err)
	}
	steps := []func() error{
		func() error { return os.Remove(filepath.Join(mnt, "b")) },
		func() error { return os.RemoveAll(filepath.Join(mnt, "a")) },
		func() error { return os.Mkdir(filepath.Join(mnt, "a"), 0o750) },
		func() error { return os.WriteFile(filepath.Join(mnt, "a/new"), []byte("upper"), 0o644) },
		func() error { return os.WriteFile(filepath.Join(mnt, "c/added"), []byte("upper"), 0o644) },
		func() error { return os.WriteFile(filepath.Join(mnt, "c/keep"), []byte("changed"), 0o644) },
		func() error { return os.Remove(filepath.Join(mnt, "c/gone")) },
		func() error { return os.WriteFile(filepath.Join(mnt, "c/h1"), []byte("linked"), 0o644) },
		func() error { return os.Link(filepath.Join(mnt, "c/h1"), filepath.Join(mnt, "c/h2")) },
		func() error { return os.WriteFile(filepath.Join(mnt, "ghost"), nil, 0o644) },
		func() error { return os.Remove(filepath.Join(mnt, "ghost")) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			unix.Unmount(mnt, unix.MNT_DETACH)
			t.Fatalf("step %d: %v", i, err)
		}
	}
	merged := treeSummary(t, mnt)
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}

	diff := writeDiff(t, upper, []string{lower})
	// Whiteouts sit where the name they delete sorts.
	want := []string{
		"a/", "a/.wh..wh..opq", "a/new", ".wh.b",
		"c/", "c/added", "c/.wh.gone", "c/h1", "c/h2 link to c/h1", "c/keep",
	}
	if got := tarNames(t, diff); !slices.Equal(got, want) {
		t.Fatalf("diff entries\n got %q\nwant %q", got, want)
	}
	// Applied over the lower layer, the diff gives the merged view back.
	copyRoot := t.TempDir()
	mustApply(t, copyRoot, base)
	mustApply(t, copyRoot, diff)
	diffSummaries(t, treeSummary(t, copyRoot), merged)

	// A whiteout that hides nothing below is left out, unless no lowers
	// are given.
	if err := unix.Mknod(filepath.Join(upper, "phantom"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if got := tarNames(t, writeDiff(t, upper, []string{lower})); slices.Contains(got, ".wh.phantom") {
		t.Errorf("needless whiteout written: %q", got)
	}
	if got := tarNames(t, writeDiff(t, upper, nil)); !slices.Contains(got, ".wh.phantom") {
		t.Errorf("whiteout missing without lowers: %q", got)
	}

	// A redirected directory cannot be represented.
	if err := unix.Setxattr(filepath.Join(upper, "c"), "trusted.overlay.redirect", []byte("/x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := WriteDiff(context.Background(), io.Discard, upper, []string{lower}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("redirect: %v", err)
	}
}

func TestChanges(t *testing.T) {
	testutil.RequiresRoot(t)
	base := richLayer(t)
	lower, upper := t.TempDir(), t.TempDir()
	mustApply(t, lower, base)
	mustApply(t, upper, base)
	later := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []func() error{
		func() error { return os.WriteFile(filepath.Join(upper, "etc/hosts"), []byte("127.0.0.1 x\n"), 0o644) },
		func() error { return os.Remove(filepath.Join(upper, "bin/sh")) },
		func() error { return os.WriteFile(filepath.Join(upper, "etc/passwd"), []byte("changed\n"), 0o600) },
		func() error { return os.Chtimes(filepath.Join(upper, "etc/passwd"), later, later) },
		func() error { return os.Chmod(filepath.Join(upper, "empty"), 0o600) },
		func() error { return os.RemoveAll(filepath.Join(upper, "home/u")) },
		func() error { return os.WriteFile(filepath.Join(upper, "home/u"), []byte("now a file"), 0o644) },
		func() error { return os.MkdirAll(filepath.Join(upper, "srv/www"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(upper, "srv/www/index"), []byte("hi"), 0o644) },
		func() error {
			if !userXattrs(t, upper) {
				return os.Chmod(filepath.Join(upper, "bin/ping"), 0o755) // a change of another kind
			}
			return unix.Removexattr(filepath.Join(upper, "bin/ping"), "user.a")
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	changes, err := Changes(context.Background(), lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind.String()+" "+c.Path)
	}
	want := []string{
		"C /bin", "C /bin/ping", "C /bin/ping6", "D /bin/sh", "C /empty", "C /etc", "A /etc/hosts", "C /etc/passwd",
		"C /home", "C /home/u", "A /srv", "A /srv/www", "A /srv/www/index",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("changes\n got %q\nwant %q", got, want)
	}

	var buf bytes.Buffer
	if err := WriteChanges(context.Background(), &buf, upper, changes); err != nil {
		t.Fatal(err)
	}
	copyRoot := t.TempDir()
	mustApply(t, copyRoot, base)
	mustApply(t, copyRoot, buf.Bytes())
	diffSummaries(t, treeSummary(t, copyRoot), treeSummary(t, upper))

	var again bytes.Buffer
	slices.Reverse(changes)
	if err := WriteChanges(context.Background(), &again, upper, changes); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Error("WriteChanges is not deterministic")
	}
}

func TestChangesNoneForCopies(t *testing.T) {
	testutil.RequiresRoot(t)
	lower, upper := t.TempDir(), t.TempDir()
	mustApply(t, lower, richLayer(t))
	mustApply(t, upper, richLayer(t))
	changes, err := Changes(context.Background(), lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Fatalf("identical trees differ: %v", changes)
	}
}
