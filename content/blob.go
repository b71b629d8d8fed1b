package content

import (
	"context"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// WriteBlob stores the blob desc describes, reading it from r from its first
// byte. If ref has a partial ingest, the bytes already there are skipped in r
// (by seeking when r is an io.Seeker) and the write resumes after them. A
// blob already in the store is success. At most desc.Size+1 bytes are read
// from r when desc.Size is set, so a stream longer than announced fails the
// size check instead of filling the disk.
//
// The ref must not be held by another Writer (errdefs.ErrUnavailable).
func WriteBlob(ctx context.Context, ing Ingester, ref string, r io.Reader, desc ocispec.Descriptor) error {
	w, err := ing.Writer(ctx, ref, desc)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return nil
	} else if err != nil {
		return err
	}
	defer w.Close()
	st, err := w.Status()
	if err != nil {
		return err
	}
	if st.Offset > 0 {
		if err := skip(r, st.Offset); err != nil {
			return fmt.Errorf("write blob %s: resume at %d: %w", desc.Digest, st.Offset, err)
		}
	}
	if desc.Size > 0 {
		r = io.LimitReader(r, desc.Size-st.Offset+1)
	}
	if _, err := io.Copy(w, &contextReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("write blob %s: %w", desc.Digest, err)
	}
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return err
	}
	return nil
}

// skip advances r by n bytes.
func skip(r io.Reader, n int64) error {
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekCurrent)
		return err
	}
	copied, err := io.CopyN(io.Discard, r, n)
	if err == io.EOF {
		return fmt.Errorf("%w: reader ended after %d bytes", io.ErrUnexpectedEOF, copied)
	}
	return err
}

// ReadBlob reads a whole blob into memory and checks it against desc: a
// stored blob of another size than desc.Size wraps
// errdefs.ErrFailedPrecondition without being read, so desc.Size bounds the
// memory used, and bytes that do not match desc.Digest are refused the same
// way. Meant for manifests, indexes and configs, not layers.
func ReadBlob(ctx context.Context, p Provider, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size < 0 {
		return nil, fmt.Errorf("%w: read blob %s: negative size %d", errdefs.ErrInvalidArgument, desc.Digest, desc.Size)
	}
	ra, err := p.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	if ra.Size() != desc.Size {
		return nil, fmt.Errorf("%w: read blob %s: stored size %d, descriptor says %d", errdefs.ErrFailedPrecondition, desc.Digest, ra.Size(), desc.Size)
	}
	b := make([]byte, desc.Size)
	if _, err := ra.ReadAt(b, 0); err != nil && !(err == io.EOF && desc.Size == 0) {
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
		return nil, fmt.Errorf("%w: read blob %s: content has digest %s", errdefs.ErrFailedPrecondition, desc.Digest, got)
	}
	return b, nil
}
