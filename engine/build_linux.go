package engine

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	mobybuild "github.com/moby/moby/api/types/build"
	digest "github.com/opencontainers/go-digest"
	"github.com/ulikunitz/xz"
	bolt "go.etcd.io/bbolt"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
	"berth.dev/snapshot"
)

// Builds is the engine's build service, the Docker API's BuildBackend: it
// unpacks the build context a client uploads into a temp dir under the
// engine's root and runs package build's Builder on it, with the engine as
// its Executor (see executor): RUN steps in ephemeral containers, COPY and
// ADD as tars applied on snapshots, layers stored as commit stores them,
// and the build cache in the metadata database.
type Builds struct {
	cfg          *Config
	images       *Images
	ctrs         *Containers
	db           *metadata.DB
	log          *slog.Logger
	cgroupParent string
	// epoch is the daemon's SOURCE_DATE_EPOCH, if any.
	epoch *time.Time
}

// BuildsConfig gathers what NewBuilds needs.
type BuildsConfig struct {
	Config *Config
	Images *Images
	// Containers is the container service: RUN steps use its snapshotter,
	// paths, shim, runtime and networks.
	Containers *Containers
	DB         *metadata.DB
	Log        *slog.Logger
	// CgroupParent is the cgroup under which RUN steps run ("" for
	// /berth, as containers).
	CgroupParent string
	// SourceDateEpoch is the time of builds that are not given
	// SOURCE_DATE_EPOCH as a build arg; nil takes SOURCE_DATE_EPOCH of
	// berthd's environment (seconds since the Unix epoch), if set.
	SourceDateEpoch *time.Time
}

// NewBuilds returns the build service. Call Recover before serving.
func NewBuilds(c BuildsConfig) *Builds {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	epoch := c.SourceDateEpoch
	if v := os.Getenv("SOURCE_DATE_EPOCH"); epoch == nil && v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			t := time.Unix(n, 0).UTC()
			epoch = &t
		} else {
			log.Warn("SOURCE_DATE_EPOCH of the environment is not a number of seconds: ignored", "value", v)
		}
	}
	return &Builds{cfg: c.Config, images: c.Images, ctrs: c.Containers, db: c.DB, log: log, cgroupParent: c.CgroupParent, epoch: epoch}
}

// buildDirPrefix starts the names of build context directories under
// <root>/tmp.
const buildDirPrefix = "build-"

// viewPrefix starts the keys of the views of build states.
const viewPrefix = "view-build-"

func (b *Builds) contextTmp() string { return filepath.Join(b.cfg.Root, "tmp") }

// Recover removes what builds a stopped berthd was running left: their
// contexts under <root>/tmp and the views they read files from. The
// containers, snapshots and mounts of their steps go with the recovery of
// the container and image services (they use their names). Call it after
// those, before serving.
func (b *Builds) Recover(ctx context.Context) error {
	entries, err := os.ReadDir(b.contextTmp())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), buildDirPrefix) {
			if err := os.RemoveAll(filepath.Join(b.contextTmp(), e.Name())); err != nil {
				return err
			}
		}
	}
	if b.ctrs == nil {
		return nil
	}
	var views []string
	err = b.ctrs.snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if strings.HasPrefix(info.Name, viewPrefix) {
			views = append(views, info.Name)
		}
		return nil
	}, "kind==view")
	if err != nil {
		return err
	}
	for _, key := range views {
		if err := b.ctrs.snaps.Remove(ctx, key); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}

// mountDir makes a temp mount point under the run-time root, where the
// image service's recovery finds it after a crash.
func (b *Builds) mountDir(prefix string) (string, error) {
	dir := b.cfg.tmpDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, "build-"+prefix)
}

// extractContext unpacks the build context tar r (plain, gzip, bzip2, xz
// or zstd) into a new directory under <root>/tmp and returns it. Entries
// are confined to the directory as layer entries are (names climbing out
// of it are refused, symlinks are kept as written); device nodes are
// refused. On error nothing is left.
func (b *Builds) extractContext(ctx context.Context, r io.Reader) (_ string, err error) {
	if err := os.MkdirAll(b.contextTmp(), 0o700); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(b.contextTmp(), buildDirPrefix)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	tr, err := decompressContext(r)
	if err != nil {
		return "", fmt.Errorf("%w: build context: %w", errdefs.ErrInvalidArgument, err)
	}
	defer tr.Close()
	if _, err := archive.Apply(ctx, dir, tr, archive.WithNoSameOwner(), archive.WithoutDevices()); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: build context: %w", errdefs.ErrInvalidArgument, err)
	}
	// The rest of the stream (the tar's padding) is read, so that a
	// client writing it is not stopped short and a corrupt or truncated
	// compressed stream shows.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return "", fmt.Errorf("%w: build context: %w", errdefs.ErrInvalidArgument, err)
	}
	return dir, nil
}

var (
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// decompressContext returns the tar stream of a build context: bzip2 and
// xz (docker's CLI accepts them) are read here; gzip, zstd and plain tars
// through package archive.
func decompressContext(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(len(xzMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, bzip2Magic):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(magic, xzMagic):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open xz stream: %w", err)
		}
		return io.NopCloser(xr), nil
	}
	rc, _, err := archive.DecompressStream(br)
	return rc, err
}

// PruneCache removes the build-cache entries (those cached before
// opts.Until when set; entries carry no labels, so a label filter keeps
// them all and a label! filter none), then the layers and blobs that no
// image holds (those of stages and steps no image kept); a build in
// progress keeps the blobs it uses. The report names the entries (their
// keys' first 12 hex digits) and counts the bytes of the blobs that went.
func (b *Builds) PruneCache(ctx context.Context, opts backend.BuildCachePruneOptions) (mobybuild.CachePruneReport, error) {
	rep := mobybuild.CachePruneReport{CachesDeleted: []string{}}
	var keys [][]byte
	blobs := map[digest.Digest]int64{}
	err := b.db.Update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(metadata.BucketBuildCache)
		if len(opts.Labels) > 0 {
			return nil
		}
		if err := bk.ForEach(func(k, v []byte) error {
			var e cacheEntry
			ok := json.Unmarshal(v, &e) == nil
			if ok && !opts.Until.IsZero() && !e.Created.Before(opts.Until) {
				return nil
			}
			keys = append(keys, slices.Clone(k))
			if ok && e.Blob.Digest != "" {
				blobs[e.Blob.Digest] = e.Blob.Size
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	b.images.mu.Lock()
	err = b.images.collect(ctx)
	b.images.mu.Unlock()
	if err != nil {
		return rep, fmt.Errorf("build cache prune: garbage collection: %w", err)
	}
	for _, k := range keys {
		id := strings.TrimPrefix(string(k), "sha256:")
		rep.CachesDeleted = append(rep.CachesDeleted, id[:min(12, len(id))])
	}
	slices.Sort(rep.CachesDeleted)
	for d, size := range blobs {
		if _, err := b.images.content.Info(ctx, d); errors.Is(err, errdefs.ErrNotFound) {
			rep.SpaceReclaimed += uint64(size)
		}
	}
	return rep, nil
}
