package registry

import (
	"bytes"
	"context"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// PushOption configures PushBlob.
type PushOption func(*pushOptions)

type pushOptions struct {
	mountFrom string
	chunkSize int64
	status    *PushStatus
}

// PushStatus says what PushBlob did.
type PushStatus int

const (
	// BlobUploaded: the bytes were sent.
	BlobUploaded PushStatus = iota + 1
	// BlobExisted: the registry had the blob; nothing was sent.
	BlobExisted
	// BlobMounted: the blob was linked from another repository of the
	// same registry; nothing was sent.
	BlobMounted
)

// WithMountFrom asks the registry to link the blob from another of its
// repositories ("library/busybox", no domain) instead of receiving it, when
// it has it there (a cross-repository mount). The registry may decline, and
// the blob is then uploaded.
func WithMountFrom(repo string) PushOption {
	return func(o *pushOptions) { o.mountFrom = repo }
}

// WithChunkSize uploads the blob in chunks of size bytes (PATCH with
// Content-Range), each one retried on its own, instead of in one PUT.
func WithChunkSize(size int64) PushOption {
	return func(o *pushOptions) { o.chunkSize = size }
}

// WithPushStatus records what PushBlob did in *s.
func WithPushStatus(s *PushStatus) PushOption {
	return func(o *pushOptions) { o.status = s }
}

// BlobExists reports whether the repository of ref holds the blob dgst.
func (c *Client) BlobExists(ctx context.Context, ref reference.Named, dgst digest.Digest) (bool, error) {
	ok, err := c.blobExists(ctx, c.pushEndpoint(ref), reference.Path(ref), dgst, false)
	if err != nil {
		return false, fmt.Errorf("check blob %s in %s: %w", dgst, ref.Name(), err)
	}
	return ok, nil
}

func (c *Client) blobExists(ctx context.Context, ep Endpoint, repo string, dgst digest.Digest, push bool) (bool, error) {
	resp, err := c.do(ctx, &request{
		method: http.MethodHead,
		ep:     ep,
		path:   repo + "/blobs/" + dgst.String(),
		scopes: []string{repoScope(repo, push)},
	})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, &ResponseError{StatusCode: resp.StatusCode}
}

// PushBlob uploads the blob desc describes, read from r, to the repository
// of ref. A blob the repository already has is not sent (r is not read); a
// WithMountFrom blob is linked when the registry can. The upload is one PUT
// (monolithic) unless WithChunkSize is given. What r yields must match
// desc's size and digest, which the registry checks again.
func (c *Client) PushBlob(ctx context.Context, ref reference.Named, desc ocispec.Descriptor, r io.Reader, opts ...PushOption) error {
	var o pushOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: push blob to %s: %w", errdefs.ErrInvalidArgument, ref.Name(), err)
	}
	status, err := c.pushBlob(ctx, ref, desc, r, o)
	if err != nil {
		return fmt.Errorf("push blob %s to %s: %w", desc.Digest, ref.Name(), err)
	}
	if o.status != nil {
		*o.status = status
	}
	return nil
}

func (c *Client) pushBlob(ctx context.Context, ref reference.Named, desc ocispec.Descriptor, r io.Reader, o pushOptions) (PushStatus, error) {
	ep := c.pushEndpoint(ref)
	repo := reference.Path(ref)
	scopes := []string{repoScope(repo, true)}
	if o.mountFrom != "" && o.mountFrom != repo {
		scopes = scopeList(scopes, []string{repoScope(o.mountFrom, false)})
	}
	if ok, err := c.blobExists(ctx, ep, repo, desc.Digest, true); err != nil {
		return 0, err
	} else if ok {
		return BlobExisted, nil
	}

	q := url.Values{}
	if o.mountFrom != "" && o.mountFrom != repo {
		q.Set("mount", desc.Digest.String())
		q.Set("from", o.mountFrom)
	}
	resp, err := c.do(ctx, &request{method: http.MethodPost, ep: ep, path: repo + "/blobs/uploads/", query: q, scopes: scopes})
	if err != nil {
		return 0, err
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		discard(resp)
		return BlobMounted, nil
	case http.StatusAccepted:
	default:
		return 0, newResponseError(resp)
	}
	loc, err := uploadLocation(resp)
	if err != nil {
		return 0, err
	}

	vr := &verifyingReader{r: r, h: desc.Digest.Algorithm().Hash()}
	if o.chunkSize > 0 {
		loc, err = c.uploadChunks(ctx, ep, loc, vr, o.chunkSize, scopes)
		if err != nil {
			return 0, err
		}
		if err := vr.check(desc); err != nil {
			return 0, err
		}
		return BlobUploaded, c.finishUpload(ctx, ep, loc, desc.Digest, nil, scopes)
	}
	return BlobUploaded, c.finishUpload(ctx, ep, loc, desc.Digest, &monolithic{vr: vr, desc: desc}, scopes)
}

// monolithic is the body of a one-PUT upload.
type monolithic struct {
	vr   *verifyingReader
	desc ocispec.Descriptor
}

// uploadChunks sends r in PATCH requests of up to size bytes and returns
// the location to finish the upload at.
func (c *Client) uploadChunks(ctx context.Context, ep Endpoint, loc *url.URL, r io.Reader, size int64, scopes []string) (*url.URL, error) {
	buf := make([]byte, size)
	var start int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			resp, err := c.do(ctx, &request{
				method: http.MethodPatch,
				ep:     ep,
				abs:    loc,
				body:   bytes.Clone(buf[:n]),
				header: http.Header{
					"Content-Type":  {"application/octet-stream"},
					"Content-Range": {fmt.Sprintf("%d-%d", start, start+int64(n)-1)},
				},
				scopes: scopes,
			})
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusAccepted {
				return nil, newResponseError(resp)
			}
			next, err := uploadLocation(resp)
			if err != nil {
				return nil, err
			}
			loc = next
			start += int64(n)
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return loc, nil
		default:
			return nil, fmt.Errorf("read blob: %w", err)
		}
	}
}

// finishUpload PUTs the digest at the upload location, with the whole blob
// as the body for a monolithic upload.
func (c *Client) finishUpload(ctx context.Context, ep Endpoint, loc *url.URL, dgst digest.Digest, m *monolithic, scopes []string) error {
	r := &request{
		method: http.MethodPut,
		ep:     ep,
		abs:    loc,
		query:  url.Values{"digest": {dgst.String()}},
		scopes: scopes,
	}
	if m != nil {
		r.stream, r.length = m.vr, m.desc.Size
		r.header = http.Header{"Content-Type": {"application/octet-stream"}}
	}
	resp, err := c.do(ctx, r)
	if m != nil {
		// What we sent is checked whatever the registry said: its
		// complaint would be less clear than ours.
		if verr := m.vr.check(m.desc); verr != nil {
			if err == nil {
				discard(resp)
			}
			return verr
		}
	}
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return newResponseError(resp)
	}
	discard(resp)
	return nil
}

// uploadLocation reads the Location of an upload answer, relative to the
// request's URL.
func uploadLocation(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	resp.Body.Close()
	if loc == "" {
		return nil, fmt.Errorf("%w: upload answer without a Location", errdefs.ErrUnavailable)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: upload Location %q: %w", errdefs.ErrUnavailable, loc, err)
	}
	return u, nil
}

// verifyingReader counts and hashes what it passes on.
type verifyingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	return n, err
}

// check tells whether the bytes read so far are those of desc.
func (v *verifyingReader) check(desc ocispec.Descriptor) error {
	if desc.Size >= 0 && v.n != desc.Size {
		return fmt.Errorf("%w: read %d bytes, the descriptor says %d", errdefs.ErrInvalidArgument, v.n, desc.Size)
	}
	if got := digest.NewDigest(desc.Digest.Algorithm(), v.h); got != desc.Digest {
		return fmt.Errorf("%w: the blob read has digest %s", errdefs.ErrInvalidArgument, got)
	}
	return nil
}

// PushManifest stores a manifest or index under ref's tag (or under its
// digest, when ref has a digest or neither) and returns its descriptor. The
// bytes are sent unchanged, so an image pulled and pushed back keeps its
// digest.
func (c *Client) PushManifest(ctx context.Context, ref reference.Named, mediaType string, body []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(body), Size: int64(len(body))}
	if len(body) > MaxManifestSize {
		return ocispec.Descriptor{}, fmt.Errorf("%w: push manifest to %s: %d bytes is more than the %d allowed", errdefs.ErrInvalidArgument, ref, len(body), MaxManifestSize)
	}
	mref := desc.Digest.String()
	switch r := ref.(type) {
	case reference.Digested:
		if desc.Digest = r.Digest().Algorithm().FromBytes(body); desc.Digest != r.Digest() {
			return ocispec.Descriptor{}, fmt.Errorf("%w: push manifest to %s: its digest is %s", errdefs.ErrInvalidArgument, ref, desc.Digest)
		}
		mref = desc.Digest.String()
	case reference.Tagged:
		mref = r.Tag()
	}
	repo := reference.Path(ref)
	resp, err := c.do(ctx, &request{
		method: http.MethodPut,
		ep:     c.pushEndpoint(ref),
		path:   repo + "/manifests/" + mref,
		body:   body,
		header: http.Header{"Content-Type": {mediaType}},
		scopes: []string{repoScope(repo, true)},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push manifest to %s: %w", ref, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return ocispec.Descriptor{}, fmt.Errorf("push manifest to %s: %w", ref, newResponseError(resp))
	}
	discard(resp)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != desc.Digest.String() {
		return ocispec.Descriptor{}, fmt.Errorf("%w: push manifest to %s: the registry stored digest %s, not %s", errdefs.ErrFailedPrecondition, ref, got, desc.Digest)
	}
	return desc, nil
}
