package volumes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/volume"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"berth.dev/metadata"
)

// isTmpfs reports whether dir is on a tmpfs.
func isTmpfs(t *testing.T, dir string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC
}

func TestTmpfsVolumeMountedWhileUsed(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s, tr := newStore(t)
	v := mustCreate(t, s, volume.CreateRequest{Name: "scratch", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0770"}})
	if isTmpfs(t, v.Mountpoint) {
		t.Fatal("mounted before any container uses it")
	}
	p := mustAcquire(t, s, "scratch", "c1", false)
	if !isTmpfs(t, p) {
		t.Fatal("not mounted by its first user")
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o770 {
		t.Errorf("mount options not applied: %v %v", fi.Mode(), err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil || st.Blocks*uint64(st.Bsize) != 1<<20 {
		t.Errorf("size: %d blocks of %d, %v; want 1 MiB", st.Blocks, st.Bsize, err)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, s, "scratch", "c2", false)
	if err := s.Release(ctx, "c1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "f")); err != nil || !isTmpfs(t, p) {
		t.Errorf("unmounted while c2 uses it: %v", err)
	}

	// After a reboot the mount is gone; New mounts it again for c2.
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	s = tr.reopen(t, s)
	if !isTmpfs(t, p) {
		t.Error("New did not mount a volume in use")
	}
	// Populate mounts it too, when New could not.
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := s.Populate(ctx, "scratch", filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatal(err)
	}
	if !isTmpfs(t, p) {
		t.Error("Populate did not mount the volume")
	}

	if err := s.Release(ctx, "c2", false); err != nil {
		t.Fatal(err)
	}
	if isTmpfs(t, p) {
		t.Error("still mounted after its last user left")
	}
	if err := s.Remove(ctx, "scratch", false); err != nil {
		t.Fatal(err)
	}
}

func TestBadMountOptionsFailAcquire(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s, _ := newStore(t)
	mustCreate(t, s, volume.CreateRequest{Name: "bad", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "nosuchoption=1"}})
	if _, err := s.Acquire(ctx, "bad", "c1", false); err == nil {
		t.Fatal("Acquire mounted a tmpfs with a bad option")
	}
	// The failed Acquire recorded no use.
	if err := s.Remove(ctx, "bad", false); err != nil {
		t.Errorf("Remove after a failed Acquire = %v", err)
	}
}

// A bind volume's _data is the user's directory while mounted: removing
// the volume, or its leftover directory, must never delete what is in it.
func TestBindVolumeRemovalKeepsTheSource(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s, tr := newStore(t)
	precious := t.TempDir()
	keep := filepath.Join(precious, "keep")
	if err := os.WriteFile(keep, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, volume.CreateRequest{Name: "bound", DriverOpts: map[string]string{"type": "none", "device": precious, "o": "bind"}})
	p := mustAcquire(t, s, "bound", "c1", false)
	if data, err := os.ReadFile(filepath.Join(p, "keep")); err != nil || string(data) != "precious" {
		t.Fatalf("bind volume shows %q, %v", data, err)
	}
	if err := s.Remove(ctx, "bound", true); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("Remove(in use) = %v", err)
	}
	// The engine crashed with the volume mounted and between the two
	// steps of its removal: New finds a directory without a record, with
	// a writable mount of the user's directory in it.
	if err := dropRecord(ctx, s, "bound"); err != nil {
		t.Fatal(err)
	}
	s = tr.reopen(t, s)
	if _, err := os.Lstat(filepath.Join(tr.root, "bound")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover directory not removed: %v", err)
	}
	if data, err := os.ReadFile(keep); err != nil || string(data) != "precious" {
		t.Fatalf("the bound directory lost its content: %q, %v", data, err)
	}

	// The ordinary path, read-only: released (unmounted), then removed.
	mustCreate(t, s, volume.CreateRequest{Name: "robound", DriverOpts: map[string]string{"type": "none", "device": precious, "o": "bind,ro"}})
	p = mustAcquire(t, s, "robound", "c1", false)
	if err := os.WriteFile(filepath.Join(p, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a ro bind volume: %v, want EROFS", err)
	}
	if err := s.Release(ctx, "c1", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "robound", false); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(keep); err != nil || string(data) != "precious" {
		t.Fatalf("the bound directory lost its content: %q, %v", data, err)
	}
}

// dropRecord deletes a volume's record and nothing else, as a crash
// between the two steps of a removal would leave it.
func dropRecord(ctx context.Context, s *Store, name string) error {
	if _, err := s.get(ctx, name); err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketVolumes).Delete([]byte(name))
	})
}
