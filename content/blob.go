package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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
// While another Writer holds ref, WriteBlob waits for it (OpenWriter).
func WriteBlob(ctx context.Context, ing Ingester, ref string, r io.Reader, desc ocispec.Descriptor) error {
	w, err := OpenWriter(ctx, ing, ref, desc)
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

// OpenWriter is ing.Writer that waits while another writer holds ref, as
// two pulls of one image do at once: when that writer commits, OpenWriter
// returns ErrAlreadyExists (the blob is there); when it is closed without,
// OpenWriter takes the ingest over, to resume it. It asks again after 5 ms,
// then twice as long each time up to 100 ms, until ctx is done.
func OpenWriter(ctx context.Context, ing Ingester, ref string, desc ocispec.Descriptor) (Writer, error) {
	wait := 5 * time.Millisecond
	for {
		w, err := ing.Writer(ctx, ref, desc)
		if !errors.Is(err, errdefs.ErrUnavailable) {
			return w, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (waiting for it: %w)", err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
