package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// manifestServer answers GET and HEAD of /v2/test/image/manifests/* with
// one document; headOmitsDigest leaves Docker-Content-Digest out of HEAD
// answers, and contentType overrides the Content-Type.
type manifestServer struct {
	body            string
	contentType     string
	headOmitsDigest bool
	gets, heads     int
	srv             *httptest.Server
}

func (m *manifestServer) start(t *testing.T) reference.Named {
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v2/test/image/manifests/") {
			http.Error(w, `{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}`, http.StatusNotFound)
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), ocispec.MediaTypeImageIndex) {
			http.Error(w, "no Accept", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", m.contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
		if r.Method == http.MethodHead {
			m.heads++
			if !m.headOmitsDigest {
				w.Header().Set("Docker-Content-Digest", digest.FromString(m.body).String())
			}
			return
		}
		m.gets++
		w.Header().Set("Docker-Content-Digest", digest.FromString(m.body).String())
		w.Write([]byte(m.body))
	}))
	t.Cleanup(m.srv.Close)
	ref, err := reference.ParseNormalizedNamed(strings.TrimPrefix(m.srv.URL, "http://") + "/test/image:v1")
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

const testIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name            string
		body, ct        string
		headOmitsDigest bool
		wantType        string
		wantGets        int
	}{
		{"head tells all", testIndex, ocispec.MediaTypeImageIndex, false, ocispec.MediaTypeImageIndex, 0},
		{"head without digest", testIndex, ocispec.MediaTypeImageIndex, true, ocispec.MediaTypeImageIndex, 1},
		{"generic content type", `{"schemaVersion":2,"config":{},"layers":[]}`, "application/json", false, ocispec.MediaTypeImageManifest, 1},
		{"docker list", `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifestList + `","manifests":[]}`, MediaTypeDockerManifestList, false, MediaTypeDockerManifestList, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &manifestServer{body: tc.body, contentType: tc.ct, headOmitsDigest: tc.headOmitsDigest}
			ref := m.start(t)
			desc, err := fastClient().Resolve(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			want := ocispec.Descriptor{MediaType: tc.wantType, Digest: digest.FromString(tc.body), Size: int64(len(tc.body))}
			if desc.MediaType != want.MediaType || desc.Digest != want.Digest || desc.Size != want.Size {
				t.Fatalf("Resolve: %+v, want %+v", desc, want)
			}
			if m.heads != 1 || m.gets != tc.wantGets {
				t.Fatalf("%d HEAD and %d GET, want 1 and %d", m.heads, m.gets, tc.wantGets)
			}
		})
	}
}

func TestSchema1IsUnsupported(t *testing.T) {
	for _, tc := range []struct{ name, ct, body string }{
		{"signed media type", MediaTypeDockerSchema1Signed, `{"schemaVersion":1,"fsLayers":[]}`},
		{"by its body", "application/json", `{"schemaVersion":1,"name":"x","fsLayers":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &manifestServer{body: tc.body, contentType: tc.ct}
			ref := m.start(t)
			c := fastClient()
			_, err := c.Resolve(context.Background(), ref)
			if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "schema 1") || !strings.Contains(err.Error(), ref.String()) {
				t.Fatalf("Resolve: %v", err)
			}
			_, err = c.FetchManifest(context.Background(), ref, ocispec.Descriptor{Digest: digest.FromString(tc.body), Size: int64(len(tc.body))})
			if !errors.Is(err, errdefs.ErrNotImplemented) {
				t.Fatalf("FetchManifest: %v", err)
			}
		})
	}
}

func TestFetchManifestChecksDigestAndSize(t *testing.T) {
	m := &manifestServer{body: testIndex, contentType: ocispec.MediaTypeImageIndex}
	ref := m.start(t)
	c := fastClient()
	ctx := context.Background()
	good := ocispec.Descriptor{Digest: digest.FromString(testIndex), Size: int64(len(testIndex))}
	if body, err := c.FetchManifest(ctx, ref, good); err != nil || string(body) != testIndex {
		t.Fatalf("FetchManifest: %q, %v", body, err)
	}
	for _, tc := range []struct {
		name string
		desc ocispec.Descriptor
		want error
	}{
		{"other digest", ocispec.Descriptor{Digest: digest.FromString("other"), Size: good.Size}, errdefs.ErrFailedPrecondition},
		{"other size", ocispec.Descriptor{Digest: good.Digest, Size: good.Size + 1}, errdefs.ErrFailedPrecondition},
		{"too large", ocispec.Descriptor{Digest: good.Digest, Size: MaxManifestSize + 1}, errdefs.ErrInvalidArgument},
		{"bad digest", ocispec.Descriptor{Digest: "sha256:nothex", Size: 1}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.FetchManifest(ctx, ref, tc.desc); !errors.Is(err, tc.want) {
				t.Fatalf("FetchManifest: %v, want %v", err, tc.want)
			}
		})
	}
}

// ResolveFetch gets a manifest in one GET and describes the bytes it got;
// a reference by digest must match them.
func TestResolveFetch(t *testing.T) {
	m := &manifestServer{body: testIndex, contentType: ocispec.MediaTypeImageIndex}
	ref := m.start(t)
	c := fastClient()
	ctx := context.Background()
	desc, body, err := c.ResolveFetch(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	want := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString(testIndex), Size: int64(len(testIndex))}
	if string(body) != testIndex || desc.MediaType != want.MediaType || desc.Digest != want.Digest || desc.Size != want.Size {
		t.Fatalf("ResolveFetch: %+v %q, want %+v", desc, body, want)
	}
	if m.heads != 0 || m.gets != 1 {
		t.Fatalf("%d HEAD and %d GET, want one GET", m.heads, m.gets)
	}
	byDigest, _ := reference.WithDigest(reference.TrimNamed(ref), want.Digest)
	if desc, _, err := c.ResolveFetch(ctx, byDigest); err != nil || desc.Digest != want.Digest {
		t.Fatalf("ResolveFetch by digest: %+v, %v", desc, err)
	}
	other, _ := reference.WithDigest(reference.TrimNamed(ref), digest.FromString("other"))
	if _, _, err := c.ResolveFetch(ctx, other); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("ResolveFetch by another digest: %v", err)
	}
	m.body, m.contentType = `{"schemaVersion":1,"fsLayers":[]}`, "application/json"
	if _, _, err := c.ResolveFetch(ctx, ref); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("ResolveFetch of schema 1: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		status   int
		body     string
		want     error
		wantText string
	}{
		{404, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v1"}}]}`, errdefs.ErrNotFound, "not found: manifest unknown"},
		{401, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, errdefs.ErrUnauthorized, "unauthorized: unauthorized: authentication required"},
		{403, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`, errdefs.ErrForbidden, "denied: requested access"},
		{429, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`, errdefs.ErrUnavailable, "pull rate limit"},
		{500, `oops`, errdefs.ErrUnavailable, "500 internal server error"},
		{400, `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}`, errdefs.ErrInvalidArgument, "manifest invalid"},
		{405, ``, errdefs.ErrNotImplemented, "405"},
		{409, ``, errdefs.ErrConflict, "409"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			ref, _ := reference.ParseNormalizedNamed(strings.TrimPrefix(srv.URL, "http://") + "/test/image:v1")
			_, err := fastClient(WithRetries(0)).FetchManifest(context.Background(), ref, ocispec.Descriptor{Digest: digest.FromString("x"), Size: 1})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var re *ResponseError
			if !errors.As(err, &re) || re.StatusCode != tc.status {
				t.Fatalf("error %v is not a ResponseError of status %d", err, tc.status)
			}
			if !strings.Contains(err.Error(), tc.wantText) || !strings.Contains(err.Error(), ref.String()) {
				t.Fatalf("error %q should say %q and name %s", err, tc.wantText, ref)
			}
		})
	}
}

func TestPushManifestChecksTheStoredDigest(t *testing.T) {
	var gotPath, gotType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotType = r.URL.Path, r.Header.Get("Content-Type")
		w.Header().Set("Docker-Content-Digest", digest.FromString("something else").String())
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	c := fastClient()

	// No tag: pushed by digest.
	ref, _ := reference.ParseNormalizedNamed(host + "/test/image")
	_, err := c.PushManifest(context.Background(), ref, ocispec.MediaTypeImageIndex, []byte(testIndex))
	if gotPath != "/v2/test/image/manifests/"+digest.FromString(testIndex).String() || gotType != ocispec.MediaTypeImageIndex {
		t.Fatalf("PUT %s with Content-Type %s", gotPath, gotType)
	}
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("registry storing another digest: %v", err)
	}
	// A digest reference must match the body.
	dref, _ := reference.WithDigest(ref, digest.FromString("not the body"))
	if _, err := c.PushManifest(context.Background(), dref, ocispec.MediaTypeImageIndex, []byte(testIndex)); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("push to a digest of other bytes: %v", err)
	}
}
