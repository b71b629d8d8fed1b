package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// Docker's media types for what OCI calls an index and a manifest.
const (
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
)

// MaxManifestSize bounds the manifests and indexes Children reads.
const MaxManifestSize = 8 << 20

// Children returns the descriptors a blob points to: the manifests of an
// index (OCI index or Docker manifest list), the config and layers of a
// manifest (OCI or Docker schema 2). Every other media type is a leaf and
// has none. The blob is read with ReadBlob, so it is verified against desc;
// one larger than MaxManifestSize is refused.
func Children(ctx context.Context, p Provider, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList,
		ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
	default:
		return nil, nil
	}
	if desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("%w: %s %s: %d bytes is larger than %d", errdefs.ErrInvalidArgument, desc.MediaType, desc.Digest, desc.Size, MaxManifestSize)
	}
	b, err := ReadBlob(ctx, p, desc)
	if err != nil {
		return nil, err
	}
	// One struct holds both shapes: an index has manifests, a manifest has
	// a config and layers.
	var doc struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: parse %s %s: %w", errdefs.ErrInvalidArgument, desc.MediaType, desc.Digest, err)
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		return doc.Manifests, nil
	}
	var out []ocispec.Descriptor
	if doc.Config != nil {
		out = append(out, *doc.Config)
	}
	return append(out, doc.Layers...), nil
}

// Protect keeps blobs from Prune until release is called, as a lease does:
// an operation in progress (a pull, a commit) protects every digest it will
// rely on, including the ones it finds already present, before it checks
// for them or writes them. A protected index or manifest also protects what
// it points to, as far as those are in the store when Prune runs. Calls
// nest: a digest stays protected while any caller holds it. Protections live
// in memory only; they end with the process, like the operations they
// cover. release may be called more than once.
func (s *Store) Protect(dgsts ...digest.Digest) (release func()) {
	s.mu.Lock()
	for _, d := range dgsts {
		s.protected[d]++
	}
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, d := range dgsts {
				if s.protected[d]--; s.protected[d] <= 0 {
					delete(s.protected, d)
				}
			}
		})
	}
}

func (s *Store) isProtected(d digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.protected[d] > 0
}

// PruneOption configures Prune.
type PruneOption func(*pruneConfig)

type pruneConfig struct {
	ingestAge time.Duration
}

// WithIngestAge sets how long an ingest may go without a write before Prune
// removes it (24 hours by default); 0 removes every ingest no Writer holds.
func WithIngestAge(d time.Duration) PruneOption {
	return func(c *pruneConfig) { c.ingestAge = d }
}

// PruneReport says what Prune removed.
type PruneReport struct {
	// Blobs are the digests of the deleted blobs, BlobBytes their total size.
	Blobs     []digest.Digest
	BlobBytes int64
	// Ingests are the refs of the removed ingests (the directory name for
	// one whose records were unreadable).
	Ingests []string
}

// Prune deletes every blob that is reached neither from roots, nor from the
// store's index.json, nor from a protected digest, following Children
// through indexes and manifests, and removes the ingests no Writer holds that
// were last written longer ago than the ingest age.
//
// The walk is conservative: a root or child that is not in the store is
// skipped, but a manifest that cannot be read or parsed stops Prune before
// anything is deleted. A digest protected after the walk is still checked at
// deletion time. Blobs committed while Prune runs and reached from nothing
// may be deleted: protect them first.
func (s *Store) Prune(ctx context.Context, roots []ocispec.Descriptor, opts ...PruneOption) (PruneReport, error) {
	cfg := pruneConfig{ingestAge: 24 * time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()

	var report PruneReport
	marked, err := s.mark(ctx, roots)
	if err != nil {
		return report, fmt.Errorf("prune: %w", err)
	}
	if err := s.sweepBlobs(ctx, marked, &report); err != nil {
		return report, fmt.Errorf("prune: %w", err)
	}
	if err := s.sweepIngests(ctx, cfg.ingestAge, &report); err != nil {
		return report, fmt.Errorf("prune: %w", err)
	}
	return report, nil
}

// mark returns the set of digests reached from the roots, index.json and
// the protected digests.
func (s *Store) mark(ctx context.Context, roots []ocispec.Descriptor) (map[digest.Digest]struct{}, error) {
	queue := append([]ocispec.Descriptor(nil), roots...)
	layoutRoots, err := s.layoutIndex()
	if err != nil {
		return nil, err
	}
	queue = append(queue, layoutRoots...)
	queue = append(queue, s.protectedRoots(ctx)...)

	marked := map[digest.Digest]struct{}{}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		desc := queue[0]
		queue = queue[1:]
		if _, seen := marked[desc.Digest]; seen {
			continue
		}
		marked[desc.Digest] = struct{}{}
		children, err := Children(ctx, s, desc)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		queue = append(queue, children...)
	}
	return marked, nil
}

// protectedRoots turns the protected digests into descriptors. Their media
// types are unknown, so each present blob is sniffed: one that parses as an
// index or a manifest is walked as one.
func (s *Store) protectedRoots(ctx context.Context) []ocispec.Descriptor {
	s.mu.Lock()
	dgsts := make([]digest.Digest, 0, len(s.protected))
	for d := range s.protected {
		dgsts = append(dgsts, d)
	}
	s.mu.Unlock()
	out := make([]ocispec.Descriptor, 0, len(dgsts))
	for _, d := range dgsts {
		out = append(out, s.sniff(ctx, d))
	}
	return out
}

// sniff describes blob d, with the media type its JSON mediaType field
// names when it is a small JSON document, and none otherwise.
func (s *Store) sniff(ctx context.Context, d digest.Digest) ocispec.Descriptor {
	desc := ocispec.Descriptor{Digest: d}
	info, err := s.Info(ctx, d)
	if err != nil || info.Size > MaxManifestSize {
		return desc
	}
	desc.Size = info.Size
	b, err := ReadBlob(ctx, s, desc)
	if err != nil {
		return desc
	}
	var doc struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(b, &doc) == nil {
		desc.MediaType = doc.MediaType
	}
	return desc
}

// layoutIndex reads the manifests listed in the root's index.json, which
// tools other than berth may have written.
func (s *Store) layoutIndex() ([]ocispec.Descriptor, error) {
	b, err := os.ReadFile(s.path(ocispec.ImageIndexFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var index ocispec.Index
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errdefs.ErrFailedPrecondition, ocispec.ImageIndexFile, err)
	}
	return index.Manifests, nil
}

func (s *Store) sweepBlobs(ctx context.Context, marked map[digest.Digest]struct{}, report *PruneReport) error {
	var garbage []Info
	err := s.Walk(ctx, func(info Info) error {
		if _, keep := marked[info.Digest]; !keep {
			garbage = append(garbage, info)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, info := range garbage {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Held under s.mu, so that a Protect either comes first and keeps
		// the blob or comes after it is gone.
		s.mu.Lock()
		var err error
		if s.protected[info.Digest] == 0 {
			err = s.Delete(ctx, info.Digest)
		} else {
			err = errProtected
		}
		s.mu.Unlock()
		switch {
		case err == nil:
			report.Blobs = append(report.Blobs, info.Digest)
			report.BlobBytes += info.Size
		case errors.Is(err, errProtected), errors.Is(err, errdefs.ErrNotFound):
		default:
			return err
		}
	}
	return nil
}

var errProtected = errors.New("protected")

func (s *Store) sweepIngests(ctx context.Context, age time.Duration, report *PruneReport) error {
	entries, err := os.ReadDir(s.path(ingestDir))
	if err != nil {
		return err
	}
	now := s.now()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) || !s.lock(name) {
			continue // being made, or open in a Writer
		}
		ref, err := s.pruneIngest(filepath.Join(s.path(ingestDir), name), now, age)
		s.unlock(name)
		if err != nil {
			return err
		}
		if ref != "" {
			report.Ingests = append(report.Ingests, ref)
		}
	}
	return nil
}

// pruneIngest removes the ingest in dir when it is old enough, and returns
// its ref (or its directory name if unreadable) when it did.
func (s *Store) pruneIngest(dir string, now time.Time, age time.Duration) (string, error) {
	ref := filepath.Base(dir)
	var updated time.Time
	if st, err := ingestStatus(dir); err == nil {
		ref, updated = st.Ref, st.UpdatedAt
	} else if fi, err := os.Stat(dir); err == nil {
		updated = fi.ModTime()
	}
	if age > 0 && now.Sub(updated) < age {
		return "", nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return ref, nil
}
