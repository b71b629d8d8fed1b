package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"berth.dev/archive"
	"berth.dev/internal/errdefs"
	"berth.dev/snapshot"
)

// Labels the engine puts on layer snapshots.
const (
	labelDiffID = "berth.dev/diff-id"
)

// unpacker applies image layers into snapshots named by chain ID, so that a
// layer shared by many images is unpacked once. A layer is unpacked into an
// Active snapshot over its parent, mounted on a temp dir (for the overlay
// snapshotter, an overlay whose upper dir collects the layer: deletions
// become overlay whiteouts), checked against its diff ID while it is
// applied, and committed under its chain ID; the syncer (layerSyncer) then
// makes it durable before anything is built on it.
type unpacker struct {
	snaps snapshot.Snapshotter
	// tmp holds the temp mount points (under the run-time root).
	tmp string
	// sync makes committed layers durable; nil: each is synced before
	// its commit.
	sync *layerSyncer

	mu   sync.Mutex
	busy map[digest.Digest]chan struct{} // layers being unpacked: closed when done
}

// lock waits until no one else unpacks the layer chainID and makes the
// caller the one, until it calls the function returned.
func (u *unpacker) lock(ctx context.Context, chainID digest.Digest) (func(), error) {
	for {
		u.mu.Lock()
		done, busy := u.busy[chainID]
		if !busy {
			if u.busy == nil {
				u.busy = make(map[digest.Digest]chan struct{})
			}
			done = make(chan struct{})
			u.busy[chainID] = done
			u.mu.Unlock()
			return func() {
				u.mu.Lock()
				delete(u.busy, chainID)
				u.mu.Unlock()
				close(done)
			}, nil
		}
		u.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// has reports whether the layer with this chain ID is already unpacked.
func (u *unpacker) has(ctx context.Context, chainID digest.Digest) (bool, error) {
	info, err := u.snaps.Stat(ctx, chainID.String())
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Kind == snapshot.Committed, nil
}

// unpack applies the uncompressed layer tar read from layer on top of
// parent ("" for the first layer) and commits it as chainID, after checking
// that its content is diffID. It returns the bytes of content written. On
// error nothing is left: no snapshot, no mount.
func (u *unpacker) unpack(ctx context.Context, parent, chainID, diffID digest.Digest, layer io.Reader) (int64, error) {
	size, _, err := u.apply(ctx, parent, layer, func(got digest.Digest) (digest.Digest, error) {
		if got != diffID {
			return "", fmt.Errorf("%w: layer content is %s, the image config says %s", errdefs.ErrFailedPrecondition, got, diffID)
		}
		return chainID, nil
	})
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	return size, nil
}

// apply applies a layer tar on top of parent into a new snapshot and
// commits it under the name that name returns for the layer's diff ID
// (its digest, computed while applying), or discards it when name fails.
// It returns the content size and the diff ID.
func (u *unpacker) apply(ctx context.Context, parent digest.Digest, layer io.Reader, name func(diffID digest.Digest) (digest.Digest, error)) (size int64, diffID digest.Digest, err error) {
	e, err := u.prepare(ctx, parent)
	if err != nil {
		return 0, "", err
	}
	return e.apply(ctx, layer, name)
}

// extraction is a layer about to be unpacked: an Active snapshot over its
// parent, mounted on a temp dir. Its apply or discard must follow.
type extraction struct {
	u       *unpacker
	key     string
	dir     string
	mounted bool
}

// prepare makes the snapshot a layer on top of parent ("" for the first)
// is unpacked into, and mounts it. On error nothing is left.
func (u *unpacker) prepare(ctx context.Context, parent digest.Digest) (_ *extraction, err error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	e := &extraction{u: u, key: "extract-" + hex.EncodeToString(rnd[:])}
	parentName := ""
	if parent != "" {
		parentName = parent.String()
	}
	mounts, err := u.snaps.Prepare(ctx, e.key, parentName)
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			e.discard(ctx)
		}
	}()
	if err := os.MkdirAll(u.tmp, 0o700); err != nil {
		return nil, err
	}
	if e.dir, err = os.MkdirTemp(u.tmp, "unpack-"); err != nil {
		return nil, err
	}
	if err := snapshot.MountAll(mounts, e.dir); err != nil {
		return nil, fmt.Errorf("mount snapshot: %w", err)
	}
	e.mounted = true
	return e, nil
}

// discard unmounts and removes the snapshot.
func (e *extraction) discard(ctx context.Context) {
	if e.mounted {
		snapshot.UnmountAll(e.dir)
		e.mounted = false
	}
	if e.dir != "" {
		os.Remove(e.dir)
	}
	e.u.snaps.Remove(context.WithoutCancel(ctx), e.key)
}

// apply unpacks the layer tar and commits the snapshot under the name that
// name returns for the layer's diff ID, or discards it on error.
func (e *extraction) apply(ctx context.Context, layer io.Reader, name func(diffID digest.Digest) (digest.Digest, error)) (size int64, diffID digest.Digest, err error) {
	u := e.u
	committed := false
	defer func() {
		if !committed {
			e.discard(ctx)
		}
	}()
	tee := newHashReader(layer, digest.Canonical.Hash())
	size, err = archive.Apply(ctx, e.dir, tee)
	if err == nil {
		// The tar's end-of-archive padding is part of the diff ID.
		if _, err = io.Copy(io.Discard, tee); err != nil {
			err = fmt.Errorf("read: %w", err)
		}
	} else {
		err = fmt.Errorf("apply: %w", err)
	}
	sum := tee.Sum() // also ends its goroutine
	if err != nil {
		return 0, "", err
	}
	diffID = digest.NewDigestFromBytes(digest.Canonical, sum)
	chainID, err := name(diffID)
	if err != nil {
		return 0, "", err
	}
	labels := map[string]string{labelDiffID: diffID.String()}
	if u.sync.deferred() {
		// Committed with the mark; the syncer syncs it afterwards.
		labels[labelUnsynced] = u.sync.bootID
	} else if err := syncDir(e.dir); err != nil {
		// One syncfs for the whole layer instead of an fsync per file:
		// the snapshot is committed only once its content is on disk.
		return 0, "", err
	}
	if err := snapshot.UnmountAll(e.dir); err != nil {
		return 0, "", err
	}
	e.mounted = false
	os.Remove(e.dir)
	e.dir = ""
	if err := u.snaps.Commit(ctx, chainID.String(), e.key, snapshot.WithLabels(labels)); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			// Another pull unpacked the same layer meanwhile.
			return size, diffID, nil
		}
		return 0, "", fmt.Errorf("commit: %w", err)
	}
	committed = true
	if u.sync.deferred() {
		u.sync.add(chainID.String())
	}
	return size, diffID, nil
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// tmpDir is where the engine makes temp mount points.
func (c *Config) tmpDir() string { return filepath.Join(c.ExecRoot, "tmp") }

// Recover cleans up after an engine that stopped in the middle of an
// unpack (killed, crashed, power lost): the temp mount points under the
// run-time root are unmounted and removed, and the Active snapshots that
// unpacks were filling are removed. Downloads are not touched: their
// ingests resume on the next pull. Then the layers that were committed
// but not seen synced are synced, or removed when the system went down
// before their sync (see layerSyncer): it returns those removed.
func (u *unpacker) recover(ctx context.Context) ([]string, error) {
	if err := u.recoverUnpacks(ctx); err != nil {
		return nil, err
	}
	if u.sync == nil {
		return nil, nil
	}
	return u.sync.recoverUnsynced(ctx)
}

func (u *unpacker) recoverUnpacks(ctx context.Context) error {
	entries, _ := os.ReadDir(u.tmp)
	for _, e := range entries {
		dir := filepath.Join(u.tmp, e.Name())
		if err := snapshot.UnmountAll(dir); err != nil {
			return err
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	var stale []string
	err := u.snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Kind == snapshot.Active && strings.HasPrefix(info.Name, "extract-") {
			stale = append(stale, info.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range stale {
		if err := u.snaps.Remove(ctx, key); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}
