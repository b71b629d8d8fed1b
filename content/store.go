package content

import (
	"berth.dev/internal/atomicfile"
	"context"
	_ "crypto/sha256" // digest algorithms the store can verify
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

const (
	blobsDir  = "blobs"
	ingestDir = "ingest"
	// tmpPrefix starts the names of files and directories under
	// construction; Open removes those a crash left behind.
	tmpPrefix = ".tmp-"
)

// Store is a content store in one directory on a local filesystem. It is safe
// for concurrent use.
//
// One Store per root: the ref locks and the protections of Protect live in
// the Store's memory, so two Stores (or two processes) on the same root do
// not see each other's writers. In berth the engine daemon is the single
// owner of its content root.
type Store struct {
	root string
	now  func() time.Time

	mu        sync.Mutex
	locked    map[string]struct{}   // ingest directory names with an open Writer
	protected map[digest.Digest]int // Protect reference counts
	pruneMu   sync.Mutex            // one Prune at a time
}

var (
	_ Provider      = (*Store)(nil)
	_ Manager       = (*Store)(nil)
	_ Ingester      = (*Store)(nil)
	_ IngestManager = (*Store)(nil)
)

// Open opens the store rooted at root, creating the layout when missing:
// the oci-layout file, an empty index.json (so OCI tools accept the root),
// blobs/sha256 and ingest/. Files and directories a crash left half made are
// removed; ingests are kept for resumption.
func Open(root string, opts ...Option) (*Store, error) {
	cfg := config{now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if root == "" {
		return nil, fmt.Errorf("%w: open content store: empty root", errdefs.ErrInvalidArgument)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open content store %s: %w", root, err)
	}
	s := &Store{
		root:      root,
		now:       cfg.now,
		locked:    map[string]struct{}{},
		protected: map[digest.Digest]int{},
	}
	for _, dir := range []string{root, s.path(blobsDir), s.path(blobsDir, string(digest.Canonical)), s.path(ingestDir)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open content store: %w", err)
		}
	}
	if err := s.initLayout(); err != nil {
		return nil, fmt.Errorf("open content store %s: %w", root, err)
	}
	if err := s.removeLeftovers(); err != nil {
		return nil, fmt.Errorf("open content store %s: %w", root, err)
	}
	return s, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// initLayout writes oci-layout and index.json when missing, and refuses a
// root whose oci-layout names another layout version.
func (s *Store) initLayout() error {
	b, err := os.ReadFile(s.path(ocispec.ImageLayoutFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := atomicfile.WriteBytes(filepath.Join(s.root, ocispec.ImageLayoutFile), layout, 0o644, atomicfile.Durable()); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		var layout ocispec.ImageLayout
		if err := json.Unmarshal(b, &layout); err != nil || layout.Version != ocispec.ImageLayoutVersion {
			return fmt.Errorf("%w: %s is not an OCI image layout %s file", errdefs.ErrFailedPrecondition, ocispec.ImageLayoutFile, ocispec.ImageLayoutVersion)
		}
	}
	if _, err := os.Stat(s.path(ocispec.ImageIndexFile)); errors.Is(err, fs.ErrNotExist) {
		index, _ := json.Marshal(ocispec.Index{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{},
		})
		return atomicfile.WriteBytes(filepath.Join(s.root, ocispec.ImageIndexFile), index, 0o644, atomicfile.Durable())
	} else if err != nil {
		return err
	}
	return nil
}

// isLayoutTemp reports whether name is a temp file of a crashed write of
// oci-layout or index.json.
func isLayoutTemp(name string) bool {
	for _, f := range []string{ocispec.ImageLayoutFile, ocispec.ImageIndexFile} {
		if strings.HasPrefix(name, atomicfile.TempPrefix(f)) {
			return true
		}
	}
	return false
}

// removeLeftovers deletes the temporary files and ingest directories a crash
// left behind while they were being made.
func (s *Store) removeLeftovers() error {
	for _, dir := range []string{s.root, s.path(ingestDir)} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tmpPrefix) || dir == s.root && isLayoutTemp(e.Name()) {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// blobPath is where a blob of digest dgst lives. The digest is validated
// first, which also keeps the path inside blobs/.
func (s *Store) blobPath(dgst digest.Digest) (string, error) {
	if err := dgst.Validate(); err != nil {
		return "", fmt.Errorf("%w: digest %q: %w", errdefs.ErrInvalidArgument, dgst, err)
	}
	return s.path(blobsDir, string(dgst.Algorithm()), dgst.Encoded()), nil
}

// Info describes a committed blob.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, blobError("info", dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// blobError wraps an error about blob dgst, adding ErrNotFound when the blob
// file is missing.
func blobError(op string, dgst digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s blob %s: %w", op, dgst, errdefs.ErrNotFound)
	}
	return fmt.Errorf("%s blob %s: %w", op, dgst, err)
}

type blobReader struct {
	*os.File
	size int64
}

func (r *blobReader) Size() int64 { return r.size }

// ReaderAt opens the blob desc names for reading.
func (s *Store) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error) {
	p, err := s.blobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, blobError("open", desc.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blobError("open", desc.Digest, err)
	}
	if desc.Size > 0 && fi.Size() != desc.Size {
		f.Close()
		return nil, fmt.Errorf("%w: open blob %s: stored size %d, descriptor says %d", errdefs.ErrFailedPrecondition, desc.Digest, fi.Size(), desc.Size)
	}
	return &blobReader{File: f, size: fi.Size()}, nil
}

// Walk calls fn for every committed blob of every algorithm the store
// knows. Files in blobs/ that are not named like a digest are skipped.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	algs, err := os.ReadDir(s.path(blobsDir))
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, a := range algs {
		alg := digest.Algorithm(a.Name())
		if !a.IsDir() || !alg.Available() {
			continue
		}
		if err := s.walkAlgorithm(ctx, alg, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) walkAlgorithm(ctx context.Context, alg digest.Algorithm, fn func(Info) error) error {
	entries, err := os.ReadDir(s.path(blobsDir, string(alg)))
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		dgst := digest.NewDigestFromEncoded(alg, e.Name())
		if !e.Type().IsRegular() || dgst.Validate() != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we walked
		} else if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes a committed blob.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	p, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return blobError("delete", dgst, err)
	}
	return nil
}

// Verify re-hashes a committed blob and compares it with its name.
func (s *Store) Verify(ctx context.Context, dgst digest.Digest) error {
	p, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return blobError("verify", dgst, err)
	}
	defer f.Close()
	v := dgst.Verifier()
	if _, err := io.Copy(v, &contextReader{ctx: ctx, r: f}); err != nil {
		return blobError("verify", dgst, err)
	}
	if !v.Verified() {
		return fmt.Errorf("%w: verify blob %s: its content does not match its digest", errdefs.ErrFailedPrecondition, dgst)
	}
	return nil
}

// contextReader stops a long copy when its context ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncDir flushes a directory, so the names created or removed in it survive
// a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
