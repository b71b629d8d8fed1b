package engine

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
)

// What an engine killed in the middle of an unpack leaves (an Active
// extract snapshot, mounted on a temp dir) is gone after recover, and
// committed layers are kept.
func TestRecoverAfterKilledUnpack(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	snaps, err := overlay.New(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Skip(err)
	}
	defer snaps.Close()
	u := &unpacker{snaps: snaps, tmp: filepath.Join(root, "run", "tmp")}

	if _, err := snaps.Prepare(ctx, "layer-1-active", ""); err != nil {
		t.Fatal(err)
	}
	if err := snaps.Commit(ctx, "sha256:1111", "layer-1-active"); err != nil {
		t.Fatal(err)
	}
	mounts, err := snaps.Prepare(ctx, "extract-abc-123", "sha256:1111")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(u.tmp, "unpack-1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.MountAll(mounts, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snapshot.UnmountAll(dir) })

	if _, err := u.recover(ctx); err != nil {
		t.Fatal(err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), dir) {
		t.Error("the temp mount is still there")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir left: %v", err)
	}
	if _, err := snaps.Stat(ctx, "extract-abc-123"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the half-unpacked snapshot is still there: %v", err)
	}
	if _, err := snaps.Stat(ctx, "sha256:1111"); err != nil {
		t.Errorf("a committed layer was removed: %v", err)
	}
}
