package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Builders of test layers: every hostile or legitimate tar is made here in
// Go, so each test shows exactly what it feeds Apply.

type tentry struct {
	hdr  tar.Header
	body string
}

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func reg(name, body string) tentry {
	return tentry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func dirE(name string) tentry {
	return tentry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: testTime}}
}

func symlinkE(name, target string) tentry {
	return tentry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func linkE(name, target string) tentry {
	return tentry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: testTime}}
}

func nodeE(name string, typ byte, major, minor int64) tentry {
	return tentry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o600, Devmajor: major, Devminor: minor, ModTime: testTime}}
}

func with(e tentry, f func(*tar.Header)) tentry {
	f(&e.hdr)
	return e
}

func buildTar(t testing.TB, entries ...tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("write body %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawHeader is a ustar header block, for the entries archive/tar refuses to
// write (GNU sparse PAX records, lying sizes).
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", testTime.Unix()))
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for {
		s := strconv.Itoa(n) + rec
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// sparseTar is a GNU PAX 1.0 sparse entry: a file of realSize bytes whose
// only data are the given fragments.
func sparseTar(name string, realSize int64, frags map[int64]string) []byte {
	offs := slices.Sorted(func(yield func(int64) bool) {
		for o := range frags {
			if !yield(o) {
				return
			}
		}
	})
	var pax strings.Builder
	pax.WriteString(paxRecord("GNU.sparse.major", "1"))
	pax.WriteString(paxRecord("GNU.sparse.minor", "0"))
	pax.WriteString(paxRecord("GNU.sparse.name", name))
	pax.WriteString(paxRecord("GNU.sparse.realsize", strconv.FormatInt(realSize, 10)))
	var sparseMap strings.Builder
	fmt.Fprintf(&sparseMap, "%d\n", len(offs))
	var data []byte
	for _, o := range offs {
		fmt.Fprintf(&sparseMap, "%d\n%d\n", o, len(frags[o]))
		data = append(data, frags[o]...)
	}
	body := append(pad512([]byte(sparseMap.String())), data...)
	var out []byte
	out = append(out, rawHeader("PaxHeaders/"+name, 'x', int64(pax.Len()))...)
	out = append(out, pad512([]byte(pax.String()))...)
	out = append(out, rawHeader("GNUSparseFile.0/"+name, '0', int64(len(body)))...)
	out = append(out, pad512(body)...)
	return append(out, make([]byte, 1024)...)
}

// sandbox is a root to apply into next to a sentinel directory that nothing
// may touch.
type sandbox struct {
	parent, root, outside string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	parent := t.TempDir()
	s := sandbox{parent: parent, root: filepath.Join(parent, "root"), outside: filepath.Join(parent, "outside")}
	for _, d := range []string{s.root, s.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.outside, "sentinel"), []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// untouched fails the test unless the sandbox's parent still holds only
// root and outside, and outside only its sentinel, unchanged.
func (s sandbox) untouched(t testing.TB) {
	t.Helper()
	names := readNames(t, s.parent)
	if !slices.Equal(names, []string{"outside", "root"}) {
		t.Fatalf("parent of root holds %v", names)
	}
	if names := readNames(t, s.outside); !slices.Equal(names, []string{"sentinel"}) {
		t.Fatalf("outside holds %v", names)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(s.outside, "sentinel"), &st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.outside, "sentinel"))
	if err != nil || string(b) != "untouched" || st.Nlink != 1 || st.Mode&0o7777 != 0o644 {
		t.Fatalf("sentinel changed: %q, %v, nlink %d, mode %o", b, err, st.Nlink, st.Mode&0o7777)
	}
}

func readNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func applyTar(t testing.TB, root string, b []byte, opts ...ApplyOption) (int64, error) {
	t.Helper()
	return Apply(context.Background(), root, bytes.NewReader(b), opts...)
}

func mustApply(t testing.TB, root string, b []byte, opts ...ApplyOption) {
	t.Helper()
	if _, err := applyTar(t, root, b, opts...); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
