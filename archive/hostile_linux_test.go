package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
)

// TestApplyHostile feeds Apply layers built to escape the root or exhaust
// the disk. Each is refused with the expected error category or applied
// strictly inside the root, and the sentinel next to the root is never
// touched.
func TestApplyHostile(t *testing.T) {
	testutil.RequiresRoot(t)
	type layers func(t testing.TB, s sandbox) [][]byte
	one := func(entries ...tentry) layers {
		return func(t testing.TB, s sandbox) [][]byte { return [][]byte{buildTar(t, entries...)} }
	}
	for _, tc := range []struct {
		name   string
		layers layers
		opts   []ApplyOption
		// wantErr is the category of the error the last layer fails with;
		// nil means every layer applies.
		wantErr error
		check   func(t *testing.T, s sandbox)
	}{
		{
			name:    "dotdot traversal",
			layers:  one(reg("../outside/sentinel", "pwned")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "dotdot inside the name",
			layers:  one(reg("a/../../outside/x", "pwned")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "absolute dotdot",
			layers:  one(reg("/../outside/x", "pwned")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:   "absolute path lands in the root",
			layers: one(reg("/etc/passwd", "root:x:0:0")),
			check: func(t *testing.T, s sandbox) {
				if got := readFile(t, filepath.Join(s.root, "etc/passwd")); got != "root:x:0:0" {
					t.Fatalf("etc/passwd = %q", got)
				}
			},
		},
		{
			name:   "harmless dotdot stays",
			layers: one(reg("a/b/../c", "ok")),
			check: func(t *testing.T, s sandbox) {
				if got := readFile(t, filepath.Join(s.root, "a/c")); got != "ok" {
					t.Fatalf("a/c = %q", got)
				}
			},
		},
		{
			name:   "relative symlink escape is resolved in the root",
			layers: one(symlinkE("evil", "../outside"), reg("evil/x", "in")),
			check: func(t *testing.T, s sandbox) {
				if got := readFile(t, filepath.Join(s.root, "outside/x")); got != "in" {
					t.Fatalf("root/outside/x = %q", got)
				}
			},
		},
		{
			name: "absolute symlink to the host path is resolved in the root",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{buildTar(t, symlinkE("evil", s.outside), reg("evil/sentinel", "in"))}
			},
			check: func(t *testing.T, s sandbox) {
				if got := readFile(t, filepath.Join(s.root, s.outside, "sentinel")); got != "in" {
					t.Fatalf("root%s/sentinel = %q", s.outside, got)
				}
			},
		},
		{
			name:   "symlink chain up and out",
			layers: one(symlinkE("a", "b/../../../.."), symlinkE("b", "."), reg("a/outside/sentinel", "in")),
			check: func(t *testing.T, s sandbox) {
				if got := readFile(t, filepath.Join(s.root, "outside/sentinel")); got != "in" {
					t.Fatalf("root/outside/sentinel = %q", got)
				}
			},
		},
		{
			name:    "symlink loop",
			layers:  one(symlinkE("a", "b"), symlinkE("b", "a"), reg("a/x", "loop")),
			wantErr: unix.ELOOP,
		},
		{
			name: "cross-layer absolute symlink escape",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{
					buildTar(t, symlinkE("evil", s.outside)),
					buildTar(t, reg("evil/sentinel", "in"), reg("evil/new", "in")),
				}
			},
			check: func(t *testing.T, s sandbox) {
				if got := readFile(t, filepath.Join(s.root, s.outside, "new")); got != "in" {
					t.Fatalf("new = %q", got)
				}
			},
		},
		{
			name: "cross-layer relative symlink escape",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{
					buildTar(t, dirE("d/"), symlinkE("d/evil", "../../../")),
					buildTar(t, reg("d/evil/outside/sentinel", "in")),
				}
			},
			check: func(t *testing.T, s sandbox) {
				if got := readFile(t, filepath.Join(s.root, "outside/sentinel")); got != "in" {
					t.Fatalf("root/outside/sentinel = %q", got)
				}
			},
		},
		{
			name:    "hard link with dotdot",
			layers:  one(linkE("h", "../outside/sentinel")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "hard link through an absolute symlink",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{buildTar(t, symlinkE("evil", s.outside), linkE("h", "evil/sentinel"))}
			},
			wantErr: unix.ENOENT,
		},
		{
			name: "cross-layer hard link through a symlink",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{
					buildTar(t, symlinkE("evil", "../outside")),
					buildTar(t, linkE("h", "evil/sentinel")),
				}
			},
			wantErr: unix.ENOENT,
		},
		{
			name:    "hard link to a directory",
			layers:  one(dirE("d/"), linkE("h", "d")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "hard link to the root",
			layers:  one(linkE("h", "/")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:   "hard link to a symlink links the symlink",
			layers: one(symlinkE("s", "/etc/shadow"), linkE("h", "s")),
			check: func(t *testing.T, s sandbox) {
				if target, err := os.Readlink(filepath.Join(s.root, "h")); err != nil || target != "/etc/shadow" {
					t.Fatalf("h -> %q, %v", target, err)
				}
			},
		},
		{
			name:    "whiteout with dotdot",
			layers:  one(reg("../outside/.wh.sentinel", "")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "whiteout of dotdot",
			layers:  one(reg(".wh..", "")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "empty whiteout",
			layers:  one(reg("a/.wh.", "")),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "whiteout through an absolute symlink",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{
					buildTar(t, symlinkE("evil", s.outside)),
					buildTar(t, reg("evil/.wh.sentinel", "")),
				}
			},
		},
		{
			name: "whiteout through a relative symlink",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{
					buildTar(t, symlinkE("evil", "../outside"), reg("outside/sentinel", "copy")),
					buildTar(t, reg("evil/.wh.sentinel", "")),
				}
			},
			check: func(t *testing.T, s sandbox) {
				if exists(filepath.Join(s.root, "outside/sentinel")) {
					t.Fatal("whiteout did not remove root/outside/sentinel")
				}
			},
		},
		{
			name: "opaque marker through a symlink",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{
					buildTar(t, symlinkE("evil", s.outside)),
					buildTar(t, reg("evil/.wh..wh..opq", "")),
				}
			},
		},
		{
			name: "whiteout of the symlink itself removes only the link",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{
					buildTar(t, symlinkE("evil", s.outside)),
					buildTar(t, reg(".wh.evil", "")),
				}
			},
			check: func(t *testing.T, s sandbox) {
				if exists(filepath.Join(s.root, "evil")) {
					t.Fatal("evil still there")
				}
			},
		},
		{
			name: "dir replaced by a symlink, then written through",
			layers: one(dirE("d/"), reg("d/f", "old"), symlinkE("d", "/elsewhere"), dirE("elsewhere/"),
				reg("d/g", "new")),
			check: func(t *testing.T, s sandbox) {
				if got := readFile(t, filepath.Join(s.root, "elsewhere/g")); got != "new" {
					t.Fatalf("elsewhere/g = %q", got)
				}
			},
		},
		{
			name:    "device refused by option",
			layers:  one(nodeE("dev/sda", tar.TypeBlock, 8, 0)),
			opts:    []ApplyOption{WithoutDevices()},
			wantErr: errdefs.ErrForbidden,
		},
		{
			name:   "device allowed as root",
			layers: one(nodeE("dev/null", tar.TypeChar, 1, 3)),
			check: func(t *testing.T, s sandbox) {
				st := lstat(t, filepath.Join(s.root, "dev/null"))
				if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
					t.Fatalf("dev/null: mode %o rdev %d", st.Mode, st.Rdev)
				}
			},
		},
		{
			name:   "setuid root file keeps its bits",
			layers: one(with(reg("bin/su", "#!"), func(h *tar.Header) { h.Mode = 0o4755 })),
			check: func(t *testing.T, s sandbox) {
				if st := lstat(t, filepath.Join(s.root, "bin/su")); st.Mode&0o7777 != 0o4755 || st.Uid != 0 {
					t.Fatalf("bin/su mode %o uid %d", st.Mode&0o7777, st.Uid)
				}
			},
		},
		{
			name: "truncated content",
			layers: func(t testing.TB, s sandbox) [][]byte {
				b := buildTar(t, reg("big", strings.Repeat("x", 4096)))
				return [][]byte{b[:512+1000]}
			},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "header claims a terabyte",
			layers: func(t testing.TB, s sandbox) [][]byte {
				b := append(rawHeader("liar", '0', 1<<40), pad512([]byte("tiny"))...)
				return [][]byte{b}
			},
			wantErr: errdefs.ErrInvalidArgument,
			check: func(t *testing.T, s sandbox) {
				// Made and partly written, or never made (its content is
				// read before a worker creates it): never large.
				var st unix.Stat_t
				err := unix.Lstat(filepath.Join(s.root, "liar"), &st)
				if err != nil && err != unix.ENOENT {
					t.Fatal(err)
				}
				if st.Blocks > 64 {
					t.Fatalf("liar uses %d blocks", st.Blocks)
				}
			},
		},
		{
			name:    "header over the size limit",
			layers:  one(reg("a", strings.Repeat("a", 600)), reg("b", strings.Repeat("b", 600))),
			opts:    []ApplyOption{WithMaxSize(1000)},
			wantErr: errdefs.ErrInvalidArgument,
			check: func(t *testing.T, s sandbox) {
				if exists(filepath.Join(s.root, "b")) {
					t.Fatal("b written past the limit")
				}
			},
		},
		{
			name: "sparse terabyte refused by default",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{sparseTar("sparse", 1<<40, map[int64]string{0: "head", 1<<40 - 4: "tail"})}
			},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "tampered header checksum",
			layers: func(t testing.TB, s sandbox) [][]byte {
				b := buildTar(t, reg("a", "x"))
				b[10] ^= 0x20
				return [][]byte{b}
			},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "unknown entry type",
			layers:  one(tentry{hdr: tar.Header{Typeflag: 'Z', Name: "z", Mode: 0o644, ModTime: testTime}}),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "overlay redirect xattr",
			layers: one(with(dirE("d/"), func(h *tar.Header) {
				h.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
			})),
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name: "root as a file",
			layers: func(t testing.TB, s sandbox) [][]byte {
				return [][]byte{append(rawHeader(".", '0', 0), make([]byte, 1024)...)}
			},
			wantErr: errdefs.ErrInvalidArgument,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			ls := tc.layers(t, s)
			var err error
			for i, l := range ls {
				_, err = applyTar(t, s.root, l, tc.opts...)
				if err != nil && i < len(ls)-1 {
					t.Fatalf("layer %d: %v", i, err)
				}
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("apply: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("apply: got %v, want %v", err, tc.wantErr)
			}
			s.untouched(t)
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// TestApplyLegitAbsoluteSymlink checks the construct that confinement must
// not break: var/run -> /run, then a write through it in a later layer,
// which lands where the container will see it.
func TestApplyLegitAbsoluteSymlink(t *testing.T) {
	for _, withRun := range []bool{true, false} {
		s := newSandbox(t)
		first := []tentry{dirE("var/"), symlinkE("var/run", "/run")}
		if withRun {
			first = append([]tentry{dirE("run/")}, first...)
		}
		mustApply(t, s.root, buildTar(t, first...))
		mustApply(t, s.root, buildTar(t, reg("var/run/foo.pid", "42"), dirE("var/run/lock/")))
		if got := readFile(t, filepath.Join(s.root, "run/foo.pid")); got != "42" {
			t.Fatalf("run/foo.pid = %q", got)
		}
		if st := lstat(t, filepath.Join(s.root, "var/run")); st.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Fatal("var/run is no longer a symlink")
		}
		if st := lstat(t, filepath.Join(s.root, "run/lock")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Fatal("run/lock is not a directory")
		}
		s.untouched(t)
	}
}

// TestApplySparse checks that a sparse entry is written with holes: its
// logical size is kept but it takes the blocks of its data only.
func TestApplySparse(t *testing.T) {
	const size = 4 << 30
	s := newSandbox(t)
	layer := sparseTar("big", size, map[int64]string{0: "head", 1 << 30: "middle", size - 4: "tail"})
	n, err := applyTar(t, s.root, layer)
	if err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("Apply reported %d bytes, want %d", n, int64(size))
	}
	p := filepath.Join(s.root, "big")
	st := lstat(t, p)
	if st.Size != size {
		t.Fatalf("size %d, want %d", st.Size, int64(size))
	}
	if st.Blocks > 3*4096/512*4 {
		t.Fatalf("sparse file uses %d blocks", st.Blocks)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off, want := range map[int64]string{0: "head", 1 << 30: "middle", size - 4: "tail", 4096: "\x00\x00"} {
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, off); err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("at %d: %q, want %q", off, got, want)
		}
	}

	// The size limit bounds sparse entries too.
	s2 := newSandbox(t)
	if _, err := applyTar(t, s2.root, layer, WithMaxSize(1<<30)); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("sparse over the limit: %v", err)
	}
}

// TestApplyTamperedGzip checks that a corrupt compressed blob fails Apply.
func TestApplyTamperedGzip(t *testing.T) {
	var buf bytes.Buffer
	zw, err := CompressStream(&buf, Gzip)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(buildTar(t, reg("a", strings.Repeat("abcdefgh", 10000))))
	zw.Close()
	b := buf.Bytes()
	b[len(b)/2] ^= 0xff
	rc, _, err := DecompressStream(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	s := newSandbox(t)
	if _, err := Apply(context.Background(), s.root, rc); err == nil {
		t.Fatal("corrupt gzip applied")
	}
	s.untouched(t)
}
