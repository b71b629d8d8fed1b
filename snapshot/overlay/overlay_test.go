//go:build linux

package overlay_test

import (
	"testing"

	"berth.dev/internal/testutil"
	"berth.dev/snapshot"
	"berth.dev/snapshot/overlay"
	"berth.dev/snapshot/testsuite"
)

func newOverlay(t *testing.T, root string) (snapshot.Snapshotter, error) {
	testutil.RequiresRoot(t)
	return overlay.New(root)
}

func TestOverlay(t *testing.T) {
	testsuite.Run(t, newOverlay)
}

func BenchmarkPrepareMount10Layers(b *testing.B) {
	testutil.RequiresRoot(b)
	s, err := overlay.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	testsuite.Benchmark(b, s)
}
