package archive

import (
	"archive/tar"
	"os"
	"testing"

	"berth.dev/internal/testutil"
)

// escapeName is the name the fuzz seeds try to write outside the root.
const escapeName = "berth-fuzz-escape"

// FuzzApply feeds Apply arbitrary bytes, seeded with hostile layers, and
// asserts that nothing is ever written outside the root: the sibling
// sentinel stays as it was and no escapeName appears in the host's / or
// /tmp.
func FuzzApply(f *testing.F) {
	tb := &testing.T{}
	seeds := [][]tentry{
		{reg("../"+escapeName, "x")},
		{symlinkE("evil", "../../../../../../tmp"), reg("evil/"+escapeName, "x")},
		{symlinkE("evil", "/tmp"), reg("evil/"+escapeName, "x"), linkE("h", "evil/"+escapeName)},
		{symlinkE("evil", "../outside"), reg("evil/.wh.sentinel", ""), reg("evil/.wh..wh..opq", "")},
		{symlinkE("a", "b/../.."), symlinkE("b", "."), dirE("a/a/"), reg("a/a/"+escapeName, "x")},
		{dirE("d/"), reg("d/f", "x"), symlinkE("d", "/"), reg("d/tmp/"+escapeName, "x")},
		{linkE("h", "../outside/sentinel")},
		{nodeE("null", tar.TypeChar, 1, 3), nodeE("fifo", tar.TypeFifo, 0, 0)},
		{with(reg("suid", "x"), func(h *tar.Header) { h.Mode = 0o6755 })},
		// Files queued for the workers, then the directory they are in
		// removed and replaced by a symlink out.
		{dirE("d/"), reg("d/f", "x"), reg("d/g", "y"), reg(".wh.d", ""), symlinkE("d", "/tmp"), reg("d/"+escapeName, "x")},
		{reg("d/f", "x"), symlinkE("l", "d"), reg("l/f", "y"), reg("d", "file now"), symlinkE("d", "/tmp"), reg("l/"+escapeName, "x")},
	}
	for _, s := range seeds {
		f.Add(buildTar(tb, s...))
	}
	f.Add(sparseTar("sparse", 1<<20, map[int64]string{0: "a", 1<<20 - 1: "b"}))
	f.Add(append(rawHeader("liar", '0', 1<<40), make([]byte, 2048)...))
	f.Fuzz(func(t *testing.T, layer []byte) {
		testutil.RequiresRoot(t)
		s := newSandbox(t)
		// Errors are expected; escapes are not.
		_, _ = applyTar(t, s.root, layer, WithMaxSize(64<<20))
		s.untouched(t)
		for _, p := range []string{"/" + escapeName, "/tmp/" + escapeName} {
			if exists(p) {
				os.Remove(p)
				t.Fatalf("%s written outside the root", p)
			}
		}
	})
}
