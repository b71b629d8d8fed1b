//go:build linux

package native_test

import (
	"testing"

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
