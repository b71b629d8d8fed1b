package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"berth.dev/snapshot"
	"berth.dev/snapshot/overlay"
)

func overlaySnaps(t *testing.T, root string) snapshot.Snapshotter {
	t.Helper()
	testutil.RequiresRoot(t)
	snaps, err := overlay.New(root)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { snaps.Close() })
	return snaps
}

func newTestSyncer(t *testing.T, snaps snapshot.Snapshotter, dir string) *layerSyncer {
	t.Helper()
	s := newLayerSyncer(snaps, dir, slog.New(slog.DiscardHandler))
	if !s.deferred() {
		t.Skip("no boot ID: layers are synced before their commit")
	}
	t.Cleanup(s.close)
	return s
}

// A layer is committed marked unsynced; nothing can be built on it until
// the syncer has synced it and removed the mark, after which its usage is
// measured.
func TestUnpackSyncsAfterCommit(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	snapDir := filepath.Join(root, "snapshots")
	snaps := overlaySnaps(t, snapDir)
	sync := newTestSyncer(t, snaps, snapDir) // not started yet
	u := &unpacker{snaps: snaps, tmp: filepath.Join(root, "run", "tmp"), sync: sync}

	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	body := []byte("hello, berth\n")
	tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	diffID := digest.FromBytes(layer.Bytes())
	chainID := image.ChainIDs([]digest.Digest{diffID})[0]
	if _, err := u.unpack(ctx, "", chainID, diffID, bytes.NewReader(layer.Bytes())); err != nil {
		t.Fatal(err)
	}
	info, err := snaps.Stat(ctx, chainID.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Labels[labelUnsynced]; got != sync.bootID {
		t.Fatalf("committed layer marked %q, want this boot's ID %q", got, sync.bootID)
	}

	d := durable{snaps, sync}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := d.Prepare(short, "ctr", chainID.String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("prepare on an unsynced layer: %v, want it to wait", err)
	}
	if _, err := snaps.Stat(ctx, "ctr"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a snapshot was made on the unsynced layer: %v", err)
	}

	sync.start()
	if _, err := d.Prepare(ctx, "ctr", chainID.String()); err != nil {
		t.Fatal(err)
	}
	defer snaps.Remove(ctx, "ctr")
	if info, err = snaps.Stat(ctx, chainID.String()); err != nil {
		t.Fatal(err)
	}
	if _, marked := info.Labels[labelUnsynced]; marked {
		t.Errorf("layer still marked unsynced after its sync: %v", info.Labels)
	}
	if info.Labels[labelDiffID] != diffID.String() {
		t.Errorf("diff ID label = %q", info.Labels[labelDiffID])
	}
	u2, err := snaps.Usage(ctx, chainID.String())
	if err != nil || u2.Inodes != 2 || u2.Size != int64(len(body)) {
		t.Errorf("usage = %+v, %v; want 2 inodes, %d bytes", u2, err, len(body))
	}
}

// At start, a layer marked by this boot is synced and kept; one marked by
// an earlier boot is removed with the layers on it, unless something else
// is built on it; unmarked layers are left alone.
func TestRecoverUnsyncedLayers(t *testing.T) {
	ctx := context.Background()
	snapDir := filepath.Join(t.TempDir(), "snapshots")
	snaps := overlaySnaps(t, snapDir)
	sync := newTestSyncer(t, snaps, snapDir)
	commit := func(name, parent, mark string) {
		t.Helper()
		if _, err := snaps.Prepare(ctx, name+"-active", parent); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{labelDiffID: "sha256:" + name}
		if mark != "" {
			labels[labelUnsynced] = mark
		}
		if err := snaps.Commit(ctx, name, name+"-active", snapshot.WithLabels(labels)); err != nil {
			t.Fatal(err)
		}
	}
	commit("now", "", sync.bootID)
	commit("lost", "", "an-earlier-boot")
	commit("lost-child", "lost", "an-earlier-boot")
	commit("held", "", "an-earlier-boot")
	if _, err := snaps.Prepare(ctx, "ctr", "held"); err != nil {
		t.Fatal(err)
	}
	commit("fine", "", "")

	removed, err := sync.recoverUnsynced(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lost-child", "lost"}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for _, name := range []string{"lost", "lost-child"} {
		if _, err := snaps.Stat(ctx, name); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s: %v, want it removed", name, err)
		}
	}
	for name, marked := range map[string]bool{"now": false, "held": true, "fine": false, "ctr": false} {
		info, err := snaps.Stat(ctx, name)
		if err != nil {
			t.Errorf("%s: %v, want it kept", name, err)
			continue
		}
		if _, got := info.Labels[labelUnsynced]; got != marked {
			t.Errorf("%s: marked unsynced %v, want %v", name, got, marked)
		}
	}
}

// busyboxWithLostLayer returns an image service with busybox loaded, its
// top layer synced and then marked as a machine that went down before the
// sync leaves it, and the layer's Info from before the mark.
func busyboxWithLostLayer(t *testing.T) (imgs *Images, snaps snapshot.Snapshotter, r *resolved, top string, before snapshot.Info) {
	t.Helper()
	testutil.RequiresRoot(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Root, cfg.ExecRoot = t.TempDir(), t.TempDir()
	imgs, snaps, _ = newBusyboxImages(t, cfg)
	if !imgs.unpacker.sync.deferred() {
		t.Skip("no boot ID: layers are synced before their commit")
	}
	rec, err := imgs.names.Lookup(ctx, "docker.io/library/busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	if r, err = imgs.load(ctx, rec.Images[0]); err != nil {
		t.Fatal(err)
	}
	top = r.chainIDs[len(r.chainIDs)-1].String()
	if err := imgs.unpacker.sync.wait(ctx, top); err != nil {
		t.Fatal(err)
	}
	if before, err = snaps.Stat(ctx, top); err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.Update(ctx, snapshot.Info{Name: top, Labels: map[string]string{labelUnsynced: "an-earlier-boot"}}, "labels."+labelUnsynced); err != nil {
		t.Fatal(err)
	}
	return imgs, snaps, r, top, before
}

// An image whose layer was removed at start (not on disk when the system
// went down) is unpacked again from its blobs.
func TestRecoverUnpacksLostLayersAgain(t *testing.T) {
	ctx := context.Background()
	imgs, snaps, _, top, before := busyboxWithLostLayer(t)

	if err := imgs.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := snaps.Stat(ctx, top)
	if err != nil {
		t.Fatalf("the lost layer was not unpacked again: %v", err)
	}
	if !after.Created.After(before.Created) {
		t.Errorf("layer created %v, as before (%v): not unpacked again", after.Created, before.Created)
	}
	if mark := after.Labels[labelUnsynced]; mark != "" && mark != imgs.unpacker.sync.bootID {
		t.Errorf("the unpacked-again layer is marked %q", mark)
	}
	if err := imgs.unpacker.sync.wait(ctx, top); err != nil {
		t.Fatal(err)
	}
}

// A sync that fails (here: the snapshots' directory is gone) fails the
// waits with its error and leaves the layer marked, to be retried.
func TestLayerSyncFailureKeepsTheMark(t *testing.T) {
	ctx := context.Background()
	snapDir := filepath.Join(t.TempDir(), "snapshots")
	snaps := overlaySnaps(t, snapDir)
	sync := newTestSyncer(t, snaps, filepath.Join(t.TempDir(), "missing"))
	sync.start()
	if _, err := snaps.Prepare(ctx, "l-active", ""); err != nil {
		t.Fatal(err)
	}
	if err := snaps.Commit(ctx, "l", "l-active", snapshot.WithLabels(map[string]string{labelDiffID: "sha256:l", labelUnsynced: sync.bootID})); err != nil {
		t.Fatal(err)
	}
	sync.add("l")
	// (A failure that never reached the waits would show as a timeout.)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := sync.wait(ctx, "l")
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("wait on a failed sync: %v, want the syncfs error", err)
	}
	info, err := snaps.Stat(ctx, "l")
	if err != nil {
		t.Fatal(err)
	}
	if info.Labels[labelUnsynced] != sync.bootID {
		t.Errorf("a layer whose sync failed lost its mark: %v", info.Labels)
	}
	if _, err := (durable{snaps, sync}).Prepare(ctx, "ctr", "l"); err == nil {
		t.Error("a container snapshot was made on a layer whose sync failed")
	}
}

// A lost layer whose blob is gone too cannot be unpacked again: Recover
// logs it and goes on, leaving the image without the layer (a pull puts
// it back) and nothing half-made.
func TestRecoverWithoutTheBlob(t *testing.T) {
	ctx := context.Background()
	imgs, snaps, r, top, _ := busyboxWithLostLayer(t)
	if err := imgs.content.Delete(ctx, r.manifest.Layers[len(r.manifest.Layers)-1].Digest); err != nil {
		t.Fatal(err)
	}
	if err := imgs.Recover(ctx); err != nil {
		t.Fatalf("Recover with a lost layer and no blob: %v", err)
	}
	if _, err := snaps.Stat(ctx, top); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("layer after Recover: %v, want it gone", err)
	}
	if err := snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if strings.HasPrefix(info.Name, "extract-") {
			t.Errorf("a half-unpacked snapshot is left: %s", info.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
