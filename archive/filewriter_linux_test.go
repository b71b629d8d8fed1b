package archive

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
)

// Into an empty root the file writer's workers create regular files
// themselves; into one that holds anything Apply creates every entry. Both
// must give the same tree, whatever the tar does to names it wrote before.
func TestApplyWorkersCreateAsApplyWould(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 80<<10) // 1.25 MiB: spans batches
	var many []tentry
	for d := 0; d < 24; d++ {
		many = append(many, dirE(fmt.Sprintf("d%02d/", d)))
		for f := 0; f < 20; f++ {
			many = append(many, reg(fmt.Sprintf("d%02d/f%02d", d, f), fmt.Sprintf("%d/%d", d, f)))
		}
	}
	cases := map[string][]tentry{
		"many files in many directories": many,
		"large files between small ones": {
			reg("a", "small"), reg("b", big), reg("c", "small"), reg("d/e", big+"tail"), reg("d/f", ""),
		},
		"the same file twice":     {reg("etc/conf", "first"), reg("etc/other", "x"), reg("etc/conf", "second")},
		"a directory over a file": {reg("x", "file"), dirE("x/"), reg("x/y", "inside")},
		"a file over a directory": {dirE("x/"), reg("x/y", "inside"), reg("x", "file")},
		"a file below a file":     {reg("x", "file"), reg("x/y", "below")},
		"a hard link to a new file": {
			reg("bin/tool", "tool"), reg("bin/other", "other"), linkE("bin/alias", "bin/tool"),
		},
		"a whiteout of a new file": {reg("d/gone", "gone"), reg("d/kept", "kept"), reg("d/.wh.gone", "")},
		"an opaque marker after new files": {
			reg("d/a", "a"), reg("d/b", "b"), reg("d/.wh..wh..opq", ""), reg("d/c", "c"),
		},
		"names aliased through a symlink": {
			dirE("real/"), symlinkE("alias", "real"), reg("real/f", "direct"), reg("alias/f", "through the link"),
			reg("real/g", "g"), reg("alias/h", "h"), reg("real/h", "h again"),
		},
		"an absolute symlink to a directory": {
			dirE("run/"), symlinkE("var/run", "/run"), reg("var/run/pid", "1"), reg("run/pid", "2"),
		},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			layer := buildTar(t, entries...)
			empty := t.TempDir()
			_, errEmpty := applyTar(t, empty, layer)
			full := t.TempDir()
			if err := os.WriteFile(filepath.Join(full, "zz-present"), []byte("before"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, errFull := applyTar(t, full, layer)
			if (errEmpty == nil) != (errFull == nil) {
				t.Fatalf("into an empty root: %v; into one with a file: %v", errEmpty, errFull)
			}
			if errEmpty != nil {
				return // refused either way (a file below a file)
			}
			got, want := treeSummary(t, empty), treeSummary(t, full)
			delete(want, "zz-present")
			if !maps.Equal(got, want) {
				for _, k := range slices.Sorted(maps.Keys(want)) {
					if got[k] != want[k] {
						t.Errorf("%s:\n  empty root: %s\n  other root: %s", k, got[k], want[k])
					}
				}
				for k := range got {
					if _, ok := want[k]; !ok {
						t.Errorf("%s only in the empty root: %s", k, got[k])
					}
				}
			}
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A write that fails on a worker (a full filesystem) fails Apply with an
// error naming the entry, and every descriptor is closed.
func TestApplyWorkerWriteError(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	var entries []tentry
	for i := 0; i < 40; i++ {
		entries = append(entries, reg(fmt.Sprintf("d%d/small", i), "x"))
	}
	entries = append(entries, reg("d9/huge", strings.Repeat("h", 1<<20)))
	for i := 0; i < 40; i++ {
		entries = append(entries, reg(fmt.Sprintf("e%d/small", i), "y"))
	}
	// Waits for the workers, and meets their error there.
	entries = append(entries, reg("d0/small", "again"))
	before := openFDs(t)
	_, err := applyTar(t, root, buildTar(t, entries...))
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("apply onto a full filesystem: %v", err)
	}
	// Which write finds the filesystem full first depends on the workers'
	// timing: the huge file or a small one after it.
	msg := err.Error()
	named := false
	for _, e := range entries {
		named = named || strings.HasPrefix(msg, fmt.Sprintf("apply layer entry %q: ", e.hdr.Name))
	}
	if !named || strings.Count(msg, "apply layer entry") != 1 {
		t.Errorf("error does not name an entry of the layer, once: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}

// Content cut short in the middle of a file that spans batches is an
// invalid layer; the part queued is closed.
func TestApplyTruncatedLargeFile(t *testing.T) {
	b := buildTar(t, reg("first", "1"), reg("big", strings.Repeat("b", 3<<20)))
	b = b[:len(b)-(2<<20)]
	before := openFDs(t)
	_, err := applyTar(t, t.TempDir(), b)
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("apply of a truncated layer: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}

// A hard link made right after its target is queued links the written file.
func TestApplyHardLinkToQueuedFile(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, buildTar(t, reg("a/target", "content"), linkE("b/link", "a/target")))
	if got := readFile(t, filepath.Join(root, "b/link")); got != "content" {
		t.Fatalf("link content %q", got)
	}
	st1, st2 := lstat(t, filepath.Join(root, "a/target")), lstat(t, filepath.Join(root, "b/link"))
	if st1.Ino != st2.Ino || st1.Nlink != 2 || st1.Mtim.Sec != testTime.Unix() {
		t.Fatalf("target ino %d nlink %d mtime %d, link ino %d", st1.Ino, st1.Nlink, st1.Mtim.Sec, st2.Ino)
	}
}
