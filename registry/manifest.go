package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// Docker's media types, beside the OCI ones of ocispec.
const (
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

	// Schema 1 manifests (signed or not) are refused as unsupported.
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// MaxManifestSize bounds the manifests and indexes the client reads.
const MaxManifestSize = 4 << 20

// manifestAccept is the Accept header of manifest requests: every kind we
// read, and schema 1 last so that a registry that has nothing else says so
// (and we can report it clearly).
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
	MediaTypeDockerSchema1Signed + ";q=0.1",
	MediaTypeDockerSchema1 + ";q=0.1",
}, ", ")

// IsIndex reports whether a media type is a list of manifests (an OCI
// index or a Docker manifest list).
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether a media type is one image's manifest (OCI or
// Docker schema 2).
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// errSchema1 is the error for the manifests of docker before 1.10.
func errSchema1(ref reference.Named) error {
	return fmt.Errorf("%w: %s is a Docker schema 1 image, which is not supported: push it again with a current docker or berth", errdefs.ErrNotImplemented, ref)
}

// manifestRef is what follows /manifests/ for ref: its digest, its tag, or
// "latest".
func manifestRef(ref reference.Named) string {
	if d, ok := ref.(reference.Digested); ok {
		return d.Digest().String()
	}
	if t, ok := ref.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}

// Resolve finds the descriptor (media type, digest, size) of the manifest
// or index ref names. It asks with HEAD, which registries do not count as a
// pull, and falls back to GET when the answer lacks the digest or media
// type. A reference with neither tag nor digest means :latest. Schema 1
// manifests are an ErrNotImplemented error.
func (c *Client) Resolve(ctx context.Context, ref reference.Named) (ocispec.Descriptor, error) {
	desc, err := onEndpoints(ctx, c.pullEndpoints(ref), func(ep Endpoint) (ocispec.Descriptor, error) {
		return c.resolveAt(ctx, ep, ref)
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return desc, nil
}

func (c *Client) resolveAt(ctx context.Context, ep Endpoint, ref reference.Named) (ocispec.Descriptor, error) {
	repo := reference.Path(ref)
	mref := manifestRef(ref)
	resp, err := c.do(ctx, &request{
		method: http.MethodHead,
		ep:     ep,
		path:   repo + "/manifests/" + mref,
		header: http.Header{"Accept": {manifestAccept}},
		scopes: []string{repoScope(repo, false)},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		mt := contentType(resp.Header)
		if mt == MediaTypeDockerSchema1 || mt == MediaTypeDockerSchema1Signed {
			return ocispec.Descriptor{}, errSchema1(ref)
		}
		dgst, derr := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
		if d, ok := ref.(reference.Digested); ok {
			dgst, derr = d.Digest(), nil
		}
		size, serr := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
		if derr == nil && serr == nil && size > 0 && (IsIndex(mt) || IsManifest(mt)) {
			return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: size}, nil
		}
	case http.StatusNotFound:
		// A HEAD answer has no body to say why.
		return ocispec.Descriptor{}, &ResponseError{StatusCode: resp.StatusCode, Errors: []ErrorDetail{{Code: "MANIFEST_UNKNOWN"}}}
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
		return ocispec.Descriptor{}, &ResponseError{StatusCode: resp.StatusCode}
	}
	// The HEAD answer does not tell enough: GET the manifest.
	body, mt, err := c.getManifest(ctx, ep, ref, mref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(body), Size: int64(len(body))}
	if d, ok := ref.(reference.Digested); ok {
		if desc.Digest = d.Digest().Algorithm().FromBytes(body); desc.Digest != d.Digest() {
			return ocispec.Descriptor{}, fmt.Errorf("%w: the registry sent a manifest of digest %s", errdefs.ErrFailedPrecondition, desc.Digest)
		}
	}
	return desc, nil
}

// ResolveFetch is Resolve and FetchManifest in one request: it GETs the
// manifest or index ref names and returns its descriptor (the digest and
// size of the bytes received; a reference by digest must match) and its
// bytes. It saves Resolve's round trip when the manifest is to be fetched
// anyway; registries that count manifest GETs as pulls count this one
// even when the image turns out unchanged, so Resolve (HEAD) is the way to
// ask about an image already known.
func (c *Client) ResolveFetch(ctx context.Context, ref reference.Named) (ocispec.Descriptor, []byte, error) {
	type result struct {
		desc ocispec.Descriptor
		body []byte
	}
	r, err := onEndpoints(ctx, c.pullEndpoints(ref), func(ep Endpoint) (result, error) {
		body, mt, err := c.getManifest(ctx, ep, ref, manifestRef(ref))
		if err != nil {
			return result{}, err
		}
		desc := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(body), Size: int64(len(body))}
		if d, ok := ref.(reference.Digested); ok {
			if desc.Digest = d.Digest().Algorithm().FromBytes(body); desc.Digest != d.Digest() {
				return result{}, fmt.Errorf("%w: the registry sent a manifest of digest %s", errdefs.ErrFailedPrecondition, desc.Digest)
			}
		}
		return result{desc, body}, nil
	})
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return r.desc, r.body, nil
}

// FetchManifest returns the bytes of the manifest or index desc describes,
// checked against its digest and size (desc comes from Resolve or from an
// index). Manifests larger than MaxManifestSize are refused.
func (c *Client) FetchManifest(ctx context.Context, ref reference.Named, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: fetch manifest of %s: %w", errdefs.ErrInvalidArgument, ref, err)
	}
	if desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("%w: fetch manifest %s of %s: %d bytes is more than the %d allowed", errdefs.ErrInvalidArgument, desc.Digest, ref, desc.Size, MaxManifestSize)
	}
	body, err := onEndpoints(ctx, c.pullEndpoints(ref), func(ep Endpoint) ([]byte, error) {
		body, _, err := c.getManifest(ctx, ep, ref, desc.Digest.String())
		if err != nil {
			return nil, err
		}
		if got := desc.Digest.Algorithm().FromBytes(body); got != desc.Digest {
			return nil, fmt.Errorf("%w: digest mismatch: got %s", errdefs.ErrFailedPrecondition, got)
		}
		return body, nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s of %s: %w", desc.Digest, ref, err)
	}
	if desc.Size > 0 && int64(len(body)) != desc.Size {
		return nil, fmt.Errorf("%w: fetch manifest %s of %s: %d bytes, the descriptor says %d", errdefs.ErrFailedPrecondition, desc.Digest, ref, len(body), desc.Size)
	}
	return body, nil
}

// getManifest GETs a manifest (bounded) and works out its media type.
func (c *Client) getManifest(ctx context.Context, ep Endpoint, ref reference.Named, mref string) ([]byte, string, error) {
	repo := reference.Path(ref)
	resp, err := c.do(ctx, &request{
		method: http.MethodGet,
		ep:     ep,
		path:   repo + "/manifests/" + mref,
		header: http.Header{"Accept": {manifestAccept}},
		scopes: []string{repoScope(repo, false)},
	})
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", newResponseError(resp)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("%w: read manifest: %w", errdefs.ErrUnavailable, err)
	}
	if len(body) > MaxManifestSize {
		return nil, "", fmt.Errorf("%w: manifest larger than %d bytes", errdefs.ErrInvalidArgument, MaxManifestSize)
	}
	mt, err := manifestMediaType(contentType(resp.Header), body)
	if err != nil {
		return nil, "", err
	}
	if mt == MediaTypeDockerSchema1 || mt == MediaTypeDockerSchema1Signed {
		return nil, "", errSchema1(ref)
	}
	return body, mt, nil
}

// contentType is the media type of a response, without parameters.
func contentType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// manifestMediaType trusts the Content-Type when it names a manifest kind,
// and otherwise looks at the document: its mediaType field, or its shape.
func manifestMediaType(ct string, body []byte) (string, error) {
	switch ct {
	case ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, MediaTypeDockerManifestList,
		MediaTypeDockerManifest, MediaTypeDockerSchema1, MediaTypeDockerSchema1Signed:
		return ct, nil
	}
	var doc struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&doc); err != nil {
		return "", fmt.Errorf("%w: manifest is not JSON: %w", errdefs.ErrInvalidArgument, err)
	}
	switch {
	case doc.SchemaVersion == 1 || doc.FSLayers != nil:
		return MediaTypeDockerSchema1, nil
	case doc.MediaType != "":
		return doc.MediaType, nil
	case doc.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	case doc.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", fmt.Errorf("%w: unknown manifest kind (Content-Type %q)", errdefs.ErrNotImplemented, ct)
}
