// Package content is berth's content-addressed blob store: the place image
// blobs (indexes, manifests, configs, layers) live once they are verified.
//
// The store's root is an OCI image layout: verified blobs sit read-only at
// blobs/<algorithm>/<encoded digest>, and partial writes ("ingests") sit
// under ingest/, one directory per writer reference, so a download cut
// short resumes where it stopped, even after the process restarts. A blob
// becomes visible only after its size and digest were checked and its bytes
// reached the disk; a crash at any point leaves either no blob or a whole,
// verified one. Prune removes what no root (an image, a snapshot, a lease
// held with Protect) reaches.
//
// The interfaces below split the store by what a caller needs, in the manner
// of containerd's content.Store: a Provider reads, an Ingester writes, an
// IngestManager sees and cancels writes in progress, and a Manager lists and
// deletes. *Store implements them all.
package content

import (
	"context"
	"hash"
	"io"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Info describes a committed blob.
type Info struct {
	Digest digest.Digest
	// Size is the blob's length in bytes.
	Size int64
	// CreatedAt is when the blob was committed (its file's modification time).
	CreatedAt time.Time
}

// Status describes a write in progress (an ingest).
type Status struct {
	// Ref is the reference the writer was opened with.
	Ref string
	// Offset is how many bytes were written so far; a resumed writer
	// continues from here.
	Offset int64
	// Total is the expected size from the descriptor given to Writer, 0 when
	// unknown.
	Total int64
	// Expected is the expected digest from that descriptor, empty when
	// unknown.
	Expected digest.Digest
	// StartedAt is when the ingest was first created, UpdatedAt when its data
	// last changed.
	StartedAt time.Time
	UpdatedAt time.Time
}

// ReaderAt reads a committed blob. Blobs are immutable, so concurrent ReadAt
// calls are safe and a reader sees the blob whole even if it is deleted
// while open.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	// Size is the blob's length in bytes.
	Size() int64
}

// Provider reads committed blobs.
type Provider interface {
	// ReaderAt opens the blob desc names. A blob that is not in the store
	// is an error wrapping errdefs.ErrNotFound. When desc.Size is positive
	// and differs from the stored size, the error wraps
	// errdefs.ErrFailedPrecondition.
	ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error)
	// Info describes a committed blob, or wraps errdefs.ErrNotFound.
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
}

// Manager lists, deletes and checks committed blobs.
type Manager interface {
	// Info describes a committed blob, or wraps errdefs.ErrNotFound.
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
	// Walk calls fn for every committed blob, in no particular order. An
	// error from fn stops the walk and is returned as is.
	Walk(ctx context.Context, fn func(Info) error) error
	// Delete removes a committed blob; readers already open keep reading
	// it. A missing blob wraps errdefs.ErrNotFound.
	Delete(ctx context.Context, dgst digest.Digest) error
	// Verify re-reads a committed blob and checks its bytes against its
	// digest; a blob altered on disk wraps errdefs.ErrFailedPrecondition.
	Verify(ctx context.Context, dgst digest.Digest) error
}

// Ingester opens writers, the only way blobs enter the store.
type Ingester interface {
	// Writer opens the ingest named ref for the blob expected describes.
	//
	// The ref is any string the caller picks to name one logical write
	// (a pull typically uses the repository and digest); it is what makes
	// a write resumable. The rules:
	//   - If expected.Digest is set and that blob is already committed,
	//     Writer returns an error wrapping errdefs.ErrAlreadyExists: there
	//     is nothing to write.
	//   - Only one Writer per ref is open at a time within the store; a
	//     second call, while the first is neither closed nor committed,
	//     wraps errdefs.ErrUnavailable ("ref locked"). Writers of different
	//     refs for the same digest may run side by side; the first Commit
	//     wins and the others learn ErrAlreadyExists.
	//   - If an ingest for ref exists (a previous Writer was closed, or the
	//     process died mid-write), the new Writer re-hashes its data and
	//     resumes: Status().Offset tells where the caller must continue.
	//     If expected names a different digest or size than the ingest was
	//     started with, the old data is discarded and the write starts over.
	//   - The digest algorithm is the one of expected.Digest, or sha256
	//     when it is empty.
	Writer(ctx context.Context, ref string, expected ocispec.Descriptor) (Writer, error)
}

// IngestManager sees and cancels writes in progress.
type IngestManager interface {
	// ListStatuses describes every ingest on disk, open or not.
	ListStatuses(ctx context.Context) ([]Status, error)
	// Abort discards the ingest named ref and its data. It wraps
	// errdefs.ErrNotFound if there is none and errdefs.ErrUnavailable if a
	// Writer holds it.
	Abort(ctx context.Context, ref string) error
}

// Writer writes one blob. It is not safe for concurrent use; one goroutine
// owns it from Ingester.Writer to Commit or Close.
//
// Bytes are appended at Status().Offset. Nothing written is visible to
// readers until Commit succeeds.
type Writer interface {
	io.Writer
	// Digest is the digest of the bytes written so far, in the writer's
	// algorithm.
	Digest() digest.Digest
	// Hash returns a copy of the running hash of the bytes written so far,
	// for a caller that checks a resumed download itself.
	Hash() hash.Hash
	// Status describes the ingest.
	Status() (Status, error)
	// Truncate cuts the data back to size bytes (0 restarts the write);
	// size may not exceed the current offset.
	Truncate(size int64) error
	// Commit makes the data a blob. It checks the size (size, or the
	// expected descriptor's size, when positive) and the digest (expected,
	// or the expected descriptor's digest, when set; otherwise the digest of
	// what was written), flushes the data to disk, and links it into blobs/
	// read-only. On a size or digest mismatch the error wraps
	// errdefs.ErrFailedPrecondition and the ingest is discarded, so the next
	// Writer for ref starts from zero. If the blob appeared meanwhile
	// (another ref won the race) the ingest is discarded and the error wraps
	// errdefs.ErrAlreadyExists, which callers may treat as success.
	// Commit always closes the writer, even on error.
	Commit(ctx context.Context, size int64, expected digest.Digest) error
	// Close releases the ref and keeps the data, so a later Writer for the
	// same ref resumes. Close after Commit is a no-op.
	Close() error
}

// Option configures a Store.
type Option func(*config)

type config struct {
	now func() time.Time
}

// WithClock sets the clock the store stamps ingests with and Prune measures
// ingest ages against (time.Now by default).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }
