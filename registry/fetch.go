package registry

import (
	"context"
	_ "crypto/sha256" // digests of blobs
	_ "crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// FetchBlob opens the blob desc describes (a layer or a config), from offset
// on. The reader checks what it delivers: more bytes than desc.Size, or a
// digest that does not match at the end (when offset is 0), make Read
// return an error instead of io.EOF, so whatever consumes the stream (a
// content store, an unpacker) must treat the data as unverified until it
// has read io.EOF. A download cut short (a connection reset, a 5xx, an
// unexpected EOF) is resumed with a Range request, with back-off, up to the
// client's retry count since the last progress. Redirects (to a blob
// store) are followed.
func (c *Client) FetchBlob(ctx context.Context, ref reference.Named, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: fetch blob of %s: %w", errdefs.ErrInvalidArgument, ref, err)
	}
	var h hash.Hash
	if offset == 0 {
		h = desc.Digest.Algorithm().Hash()
	}
	return c.FetchBlobResume(ctx, ref, desc, offset, h)
}

// FetchBlobResume is FetchBlob for a download that already has the first
// offset bytes: h holds the digest state of those bytes (for example a
// content store's partial ingest), and the digest is checked at the end as
// with FetchBlob. A nil h checks the size only.
func (c *Client) FetchBlobResume(ctx context.Context, ref reference.Named, desc ocispec.Descriptor, offset int64, h hash.Hash) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: fetch blob of %s: %w", errdefs.ErrInvalidArgument, ref, err)
	}
	if offset < 0 || (desc.Size >= 0 && offset > desc.Size) {
		return nil, fmt.Errorf("%w: fetch blob %s of %s: offset %d outside its %d bytes", errdefs.ErrInvalidArgument, desc.Digest, ref, offset, desc.Size)
	}
	br := &blobReader{c: c, ctx: ctx, ref: ref, desc: desc, offset: offset, h: h}
	if offset == desc.Size {
		return br, nil // nothing left to read: only the check at EOF
	}
	_, err := onEndpoints(ctx, c.pullEndpoints(ref), func(ep Endpoint) (struct{}, error) {
		body, err := c.openBlob(ctx, ep, ref, desc.Digest, offset)
		if err == nil {
			br.ep, br.body = ep, body
		}
		return struct{}{}, err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s of %s: %w", desc.Digest, ref, err)
	}
	return br, nil
}

// openBlob GETs a blob from offset on. A registry that ignores Range and
// sends the whole blob has the first offset bytes skipped.
func (c *Client) openBlob(ctx context.Context, ep Endpoint, ref reference.Named, dgst digest.Digest, offset int64) (io.ReadCloser, error) {
	repo := reference.Path(ref)
	// identity: a transparently decompressed body would not be the blob.
	hdr := http.Header{"Accept-Encoding": {"identity"}}
	if offset > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := c.do(ctx, &request{
		method: http.MethodGet,
		ep:     ep,
		path:   repo + "/blobs/" + dgst.String(),
		header: hdr,
		scopes: []string{repoScope(repo, false)},
	})
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("%w: skip to offset %d: %w", errdefs.ErrUnavailable, offset, err)
			}
		}
		return resp.Body, nil
	case http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("%w: asked for bytes from %d, got Content-Range %q", errdefs.ErrUnavailable, offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	}
	return nil, newResponseError(resp)
}

// contentRangeStart reads the first byte position of "bytes 100-199/200".
func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

// blobReader is a blob download that checks size and digest as it goes and
// resumes where it was cut.
type blobReader struct {
	c    *Client
	ctx  context.Context
	ref  reference.Named
	desc ocispec.Descriptor
	ep   Endpoint
	body io.ReadCloser

	offset   int64     // bytes of the blob delivered (or already held)
	h        hash.Hash // state of the bytes before offset; nil: no digest check
	failures int       // resumes since the last byte arrived
	err      error     // sticky: the reader is finished
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		n, err := b.readBody(p)
		if n > 0 {
			b.failures = 0
			if b.h != nil {
				b.h.Write(p[:n])
			}
			b.offset += int64(n)
			return n, nil
		}
		if err == io.EOF && b.desc.Size >= 0 && b.offset == b.desc.Size {
			b.err = b.verify()
			return 0, b.err
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errdefs.ErrFailedPrecondition) || b.ctx.Err() != nil {
			b.fail(err)
			return 0, b.err
		}
		if err == io.EOF {
			if b.desc.Size < 0 {
				b.err = b.verify()
				return 0, b.err
			}
			err = io.ErrUnexpectedEOF
		}
		if rerr := b.resume(err); rerr != nil {
			b.fail(rerr)
			return 0, b.err
		}
	}
}

// readBody reads from the current response, never past desc.Size; at
// exactly desc.Size it checks that the body has nothing more.
func (b *blobReader) readBody(p []byte) (int, error) {
	if b.body == nil {
		return 0, io.EOF
	}
	if b.desc.Size < 0 {
		return b.body.Read(p)
	}
	left := b.desc.Size - b.offset
	if left > 0 {
		return b.body.Read(p[:min(int64(len(p)), left)])
	}
	var probe [1]byte
	n, err := b.body.Read(probe[:])
	if n > 0 {
		return 0, fmt.Errorf("%w: blob is larger than the %d bytes of its descriptor", errdefs.ErrFailedPrecondition, b.desc.Size)
	}
	if err != nil {
		// The whole blob is here: an error now (a reset connection)
		// loses nothing.
		return 0, io.EOF
	}
	return 0, nil
}

// resume reopens the download at the current offset after cause, pausing
// first, unless the retries are used up.
func (b *blobReader) resume(cause error) error {
	if b.body != nil {
		b.body.Close()
		b.body = nil
	}
	for {
		if b.failures >= b.c.retries {
			return fmt.Errorf("%w: download cut at byte %d: %w", errdefs.ErrUnavailable, b.offset, cause)
		}
		if err := b.c.pause(b.ctx, b.failures); err != nil {
			return err
		}
		b.failures++
		body, err := b.c.openBlob(b.ctx, b.ep, b.ref, b.desc.Digest, b.offset)
		if err == nil {
			b.body = body
			return nil
		}
		if !errors.Is(err, errdefs.ErrUnavailable) {
			return err
		}
		cause = err
	}
}

// verify checks the digest at the end of the blob.
func (b *blobReader) verify() error {
	if b.h == nil {
		return io.EOF
	}
	got := digest.NewDigest(b.desc.Digest.Algorithm(), b.h)
	if got != b.desc.Digest {
		return fmt.Errorf("%w: blob %s of %s: digest mismatch: got %s", errdefs.ErrFailedPrecondition, b.desc.Digest, b.ref, got)
	}
	return io.EOF
}

func (b *blobReader) fail(err error) {
	b.err = fmt.Errorf("fetch blob %s of %s: %w", b.desc.Digest, b.ref, err)
}

// Close ends the download.
func (b *blobReader) Close() error {
	if b.err == nil {
		b.err = fmt.Errorf("%w: blob %s: read after close", errdefs.ErrFailedPrecondition, b.desc.Digest)
	}
	if b.body != nil {
		b.body.Close()
		b.body = nil
	}
	return nil
}
