package content

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// The files of an ingest directory, ingest/<sha256 of ref>/.
const (
	ingestRefFile       = "ref"
	ingestDataFile      = "data"
	ingestStartedAtFile = "startedat"
	ingestTotalFile     = "total"
	ingestExpectedFile  = "expected"
)

// ingestName is the directory name of ref's ingest: refs are free-form
// strings, so they are hashed into a safe, fixed-length name.
func ingestName(ref string) string { return digest.FromString(ref).Encoded() }

// lock claims an ingest for one Writer; false means someone holds it.
func (s *Store) lock(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, held := s.locked[name]; held {
		return false
	}
	s.locked[name] = struct{}{}
	return true
}

func (s *Store) unlock(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.locked, name)
}

// Writer opens the ingest named ref; see Ingester for the rules.
func (s *Store) Writer(ctx context.Context, ref string, expected ocispec.Descriptor) (Writer, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: content writer: empty ref", errdefs.ErrInvalidArgument)
	}
	if expected.Size < 0 {
		return nil, fmt.Errorf("%w: content writer %s: negative size %d", errdefs.ErrInvalidArgument, ref, expected.Size)
	}
	if expected.Digest != "" {
		if _, err := s.blobPath(expected.Digest); err != nil {
			return nil, fmt.Errorf("content writer %s: %w", ref, err)
		}
		if _, err := s.Info(ctx, expected.Digest); err == nil {
			return nil, fmt.Errorf("content writer %s: blob %s: %w", ref, expected.Digest, errdefs.ErrAlreadyExists)
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("content writer %s: %w", ref, err)
		}
	}
	name := ingestName(ref)
	if !s.lock(name) {
		return nil, fmt.Errorf("%w: content writer %s: ref locked", errdefs.ErrUnavailable, ref)
	}
	w, err := s.openIngest(ctx, ref, name, expected)
	if err != nil {
		s.unlock(name)
		return nil, fmt.Errorf("content writer %s: %w", ref, err)
	}
	return w, nil
}

// ingestMeta is what an ingest directory records besides its data.
type ingestMeta struct {
	ref       string
	total     int64
	expected  digest.Digest
	startedAt time.Time
}

// readIngestMeta reads an ingest's records; any file missing or malformed
// is an error (the ingest is then garbage: made in a crash, or tampered).
func readIngestMeta(dir string) (ingestMeta, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return string(b), err
	}
	var m ingestMeta
	var err error
	if m.ref, err = read(ingestRefFile); err != nil {
		return m, err
	}
	if m.ref == "" {
		return m, fmt.Errorf("%w: ingest %s: empty ref", errdefs.ErrFailedPrecondition, dir)
	}
	total, err := read(ingestTotalFile)
	if err == nil {
		m.total, err = strconv.ParseInt(total, 10, 64)
	}
	if err != nil {
		return m, fmt.Errorf("%w: ingest %s: total: %w", errdefs.ErrFailedPrecondition, dir, err)
	}
	expected, err := read(ingestExpectedFile)
	if err == nil && expected != "" {
		m.expected = digest.Digest(expected)
		err = m.expected.Validate()
	}
	if err != nil {
		return m, fmt.Errorf("%w: ingest %s: expected: %w", errdefs.ErrFailedPrecondition, dir, err)
	}
	started, err := read(ingestStartedAtFile)
	if err == nil {
		m.startedAt, err = time.Parse(time.RFC3339Nano, started)
	}
	if err != nil {
		return m, fmt.Errorf("%w: ingest %s: startedat: %w", errdefs.ErrFailedPrecondition, dir, err)
	}
	return m, nil
}

// fits reports whether an ingest started with m can continue as a write of
// desc: desc may leave the digest or size out, but not contradict them.
func (m ingestMeta) fits(ref string, desc ocispec.Descriptor) bool {
	return m.ref == ref &&
		(desc.Digest == "" || desc.Digest == m.expected) &&
		(desc.Size == 0 || desc.Size == m.total)
}

// openIngest resumes ref's ingest when one fits desc, and otherwise starts
// a new one. The caller holds the lock of name.
func (s *Store) openIngest(ctx context.Context, ref, name string, desc ocispec.Descriptor) (*writer, error) {
	dir := s.path(ingestDir, name)
	meta, err := readIngestMeta(dir)
	if err == nil && meta.fits(ref, desc) {
		w, err := s.resumeIngest(ctx, dir, name, meta)
		if err == nil || !errors.Is(err, errStale) {
			return w, err
		}
	}
	// Nothing to resume, or an ingest that does not fit: start over.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	return s.createIngest(dir, name, ingestMeta{ref: ref, total: desc.Size, expected: desc.Digest, startedAt: s.now()})
}

// errStale marks an ingest whose data must not be written to again.
var errStale = errors.New("stale ingest")

// createIngest makes the ingest directory under a temporary name and renames
// it into place, so an ingest directory always has its records. Nothing is
// fsynced: an ingest that loses its records in a crash is unreadable, and
// openIngest then starts it over.
func (s *Store) createIngest(dir, name string, m ingestMeta) (*writer, error) {
	tmp, err := os.MkdirTemp(s.path(ingestDir), tmpPrefix)
	if err != nil {
		return nil, err
	}
	files := []struct{ name, value string }{
		{ingestRefFile, m.ref},
		{ingestTotalFile, strconv.FormatInt(m.total, 10)},
		{ingestExpectedFile, string(m.expected)},
		{ingestStartedAtFile, m.startedAt.UTC().Format(time.RFC3339Nano)},
		{ingestDataFile, ""},
	}
	for _, f := range files {
		if err = os.WriteFile(filepath.Join(tmp, f.name), []byte(f.value), 0o644); err != nil {
			break
		}
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ingestDataFile), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return s.newWriter(dir, name, m, f, 0, m.startedAt), nil
}

// resumeIngest reopens an ingest's data and re-hashes it. Data that is
// read-only was already linked into blobs/ by a Commit that crashed before
// removing the ingest; writing to it would change the blob, so it is stale.
func (s *Store) resumeIngest(ctx context.Context, dir, name string, m ingestMeta) (*writer, error) {
	p := filepath.Join(dir, ingestDataFile)
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm()&0o200 == 0 || !fi.Mode().IsRegular() {
		return nil, errStale
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	w := s.newWriter(dir, name, m, f, 0, fi.ModTime())
	n, err := io.Copy(w.h, &contextReader{ctx: ctx, r: f})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("re-hash partial data: %w", err)
	}
	w.offset = n
	return w, nil
}

func (s *Store) newWriter(dir, name string, m ingestMeta, f *os.File, offset int64, updated time.Time) *writer {
	alg := digest.Canonical
	if m.expected != "" {
		alg = m.expected.Algorithm()
	}
	return &writer{
		s: s, dir: dir, name: name, meta: m, f: f,
		alg: alg, h: alg.Hash(), offset: offset, updatedAt: updated,
	}
}

// writer is the Writer of a Store.
type writer struct {
	s         *Store
	dir, name string
	meta      ingestMeta
	f         *os.File // the data file, positioned at offset
	alg       digest.Algorithm
	h         hash.Hash
	offset    int64
	written   int64 // the data before this offset is being written out
	updatedAt time.Time
	done      bool
}

var errWriterDone = fmt.Errorf("%w: content writer already closed or committed", errdefs.ErrFailedPrecondition)

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.offset += int64(n)
	w.updatedAt = w.s.now()
	if err != nil {
		return n, fmt.Errorf("write ingest %s: %w", w.meta.ref, err)
	}
	if w.offset-w.written >= writeBehind {
		// Start writing the data out now, without waiting for it: the
		// fsync of Commit then finds little left to write.
		startWriteOut(w.f, w.written, w.offset-w.written)
		w.written = w.offset
	}
	return n, nil
}

// writeBehind is how much a writer lets accumulate before it starts
// writing it out.
const writeBehind = 8 << 20

func (w *writer) Digest() digest.Digest { return digest.NewDigest(w.alg, w.h) }

// Hash copies the running hash through its binary form, which the standard
// library's SHA-2 hashes provide; it returns nil for a hash that cannot be
// copied.
func (w *writer) Hash() hash.Hash {
	m, ok := w.h.(encoding.BinaryMarshaler)
	if !ok {
		return nil
	}
	state, err := m.MarshalBinary()
	if err != nil {
		return nil
	}
	h := w.alg.Hash()
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok || u.UnmarshalBinary(state) != nil {
		return nil
	}
	return h
}

func (w *writer) Status() (Status, error) {
	if w.done {
		return Status{}, errWriterDone
	}
	return Status{
		Ref:       w.meta.ref,
		Offset:    w.offset,
		Total:     w.meta.total,
		Expected:  w.meta.expected,
		StartedAt: w.meta.startedAt,
		UpdatedAt: w.updatedAt,
	}, nil
}

func (w *writer) Truncate(size int64) error {
	if w.done {
		return errWriterDone
	}
	if size < 0 || size > w.offset {
		return fmt.Errorf("%w: truncate ingest %s to %d: offset is %d", errdefs.ErrInvalidArgument, w.meta.ref, size, w.offset)
	}
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("truncate ingest %s: %w", w.meta.ref, err)
	}
	h := w.alg.Hash()
	if _, err := io.Copy(h, io.NewSectionReader(w.f, 0, size)); err != nil {
		return fmt.Errorf("truncate ingest %s: re-hash: %w", w.meta.ref, err)
	}
	if _, err := w.f.Seek(size, io.SeekStart); err != nil {
		return fmt.Errorf("truncate ingest %s: %w", w.meta.ref, err)
	}
	w.h, w.offset, w.written, w.updatedAt = h, size, min(w.written, size), w.s.now()
	return nil
}

// Close keeps the data for a later resume; it is flushed so that the resume
// survives a machine crash too.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	err := w.f.Sync()
	w.finish()
	if err != nil {
		return fmt.Errorf("close ingest %s: %w", w.meta.ref, err)
	}
	return nil
}

// finish closes the data file and releases the ref.
func (w *writer) finish() {
	w.f.Close()
	w.done = true
	w.s.unlock(w.name)
}

// discard removes the ingest after a failed check, so the next Writer for the
// ref starts from zero.
func (w *writer) discard() { os.RemoveAll(w.dir) }

func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest) error {
	if w.done {
		return errWriterDone
	}
	defer w.finish()
	ref := w.meta.ref
	if expected != "" {
		if err := expected.Validate(); err != nil {
			return fmt.Errorf("%w: commit %s: expected digest: %w", errdefs.ErrInvalidArgument, ref, err)
		}
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit %s: %w", ref, err)
	}
	dgst, err := w.check(ctx, size, expected)
	if err != nil {
		// Only a mismatch condemns the data; a cancelled context or a read
		// error leaves it for a retry.
		if errors.Is(err, errdefs.ErrFailedPrecondition) {
			w.discard()
		}
		return fmt.Errorf("commit %s: %w", ref, err)
	}
	if err := w.s.link(w.f, dgst); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			w.discard()
		}
		return fmt.Errorf("commit %s: %w", ref, err)
	}
	// The blob is durable; an ingest left behind by a failure here is
	// recognised as stale (read-only data) and removed later.
	w.discard()
	return nil
}

// check compares the data with every size and digest the caller gave, and
// returns the digest the blob is named by: the caller's, or the one computed.
func (w *writer) check(ctx context.Context, size int64, expected digest.Digest) (digest.Digest, error) {
	fi, err := w.f.Stat()
	if err != nil {
		return "", err
	}
	if fi.Size() != w.offset {
		return "", fmt.Errorf("%w: data changed on disk: %d bytes, %d written", errdefs.ErrFailedPrecondition, fi.Size(), w.offset)
	}
	for _, want := range []int64{size, w.meta.total} {
		if want > 0 && want != w.offset {
			return "", fmt.Errorf("%w: size mismatch: %d bytes written, %d expected", errdefs.ErrFailedPrecondition, w.offset, want)
		}
	}
	name := w.Digest()
	for _, want := range []digest.Digest{w.meta.expected, expected} {
		if want == "" {
			continue
		}
		got := name
		if want.Algorithm() != w.alg {
			if got, err = want.Algorithm().FromReader(&contextReader{ctx: ctx, r: io.NewSectionReader(w.f, 0, w.offset)}); err != nil {
				return "", err
			}
		}
		if got != want {
			return "", fmt.Errorf("%w: digest mismatch: got %s, expected %s", errdefs.ErrFailedPrecondition, got, want)
		}
		name = want
	}
	return name, nil
}

// link makes the verified, flushed data f the blob dgst: read-only first,
// then a hard link into blobs/, which fails rather than replace a blob that
// another writer committed meanwhile, then a flush of the directory.
func (s *Store) link(f *os.File, dgst digest.Digest) error {
	target, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	algDir := filepath.Dir(target)
	if _, err := os.Stat(algDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(algDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := syncDir(s.path(blobsDir)); err != nil {
			return err
		}
	}
	if err := f.Chmod(0o444); err != nil {
		return err
	}
	if err := os.Link(f.Name(), target); err != nil {
		f.Chmod(0o644) // keep the ingest writable for a retry
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("blob %s: %w", dgst, errdefs.ErrAlreadyExists)
		}
		return err
	}
	return syncDir(algDir)
}

// ListStatuses describes every readable ingest. Ingests whose records a crash
// destroyed are left out; the next Writer for their ref or Prune removes them.
func (s *Store) ListStatuses(ctx context.Context) ([]Status, error) {
	entries, err := os.ReadDir(s.path(ingestDir))
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []Status
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		st, err := ingestStatus(s.path(ingestDir, e.Name()))
		if err != nil {
			continue
		}
		out = append(out, st)
	}
	return out, nil
}

func ingestStatus(dir string) (Status, error) {
	m, err := readIngestMeta(dir)
	if err != nil {
		return Status{}, err
	}
	st := Status{Ref: m.ref, Total: m.total, Expected: m.expected, StartedAt: m.startedAt, UpdatedAt: m.startedAt}
	if fi, err := os.Stat(filepath.Join(dir, ingestDataFile)); err == nil {
		st.Offset, st.UpdatedAt = fi.Size(), fi.ModTime()
	}
	return st, nil
}

// Abort discards ref's ingest.
func (s *Store) Abort(ctx context.Context, ref string) error {
	name := ingestName(ref)
	if !s.lock(name) {
		return fmt.Errorf("%w: abort %s: ref locked", errdefs.ErrUnavailable, ref)
	}
	defer s.unlock(name)
	dir := s.path(ingestDir, name)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("abort %s: ingest %w", ref, errdefs.ErrNotFound)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("abort %s: %w", ref, err)
	}
	return nil
}
