//go:build linux

package overlay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/internal/errdefs"

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

// TestLayout checks the directories the design promises: <n>/fs and
// <n>/work with short numeric ids, and that a layer is a lower directory
// shared by every snapshot above it.
func TestLayout(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	s, err := overlay.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Prepare(ctx, "layer-active", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "layer", "layer-active"); err != nil {
		t.Fatal(err)
	}
	var uppers []string
	for _, key := range []string{"c1", "c2"} {
		m, err := s.Prepare(ctx, key, "layer")
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 || m[0].Type != "overlay" {
			t.Fatalf("mounts of %s = %+v, want one overlay", key, m)
		}
		opts := strings.Join(m[0].Options, ",")
		if lower := "lowerdir=" + filepath.Join(root, "1", "fs"); !strings.Contains(opts, lower) {
			t.Errorf("%s options %q lack %s", key, opts, lower)
		}
		uppers = append(uppers, opts)
	}
	for _, p := range []string{"1/fs", "1/work", "2/fs", "2/work", "3/fs", "3/work", "metadata.db"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("layout: %v", err)
		}
	}
	if uppers[0] == uppers[1] {
		t.Errorf("two containers share options %q", uppers[0])
	}
}

// TestNewRefusesUnsupportedFilesystem puts the root inside an overlay,
// which overlayfs does not accept as an upper directory's filesystem.
func TestNewRefusesUnsupportedFilesystem(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(base, "merged")
	m := snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(base, "lower"), "upperdir=" + filepath.Join(base, "upper"), "workdir=" + filepath.Join(base, "work"),
	}}
	if err := m.Mount(merged); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snapshot.UnmountAll(merged) })
	root := filepath.Join(merged, "snapshots")
	s, err := overlay.New(root)
	if err == nil {
		s.Close()
		t.Fatal("New succeeded with its root on overlayfs")
	}
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("New: %v, want a failed precondition", err)
	}
	t.Logf("New on overlayfs: %v", err)
	if es, _ := os.ReadDir(root); len(es) != 0 {
		t.Errorf("failed New left %v in its root", es)
	}
}
