package registry_test

import (
	"archive/tar"
	"berth.dev/archive"
	"berth.dev/image"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/distribution/reference"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
	"berth.dev/registry"
	"berth.dev/registry/registrytest"
)

// blob is content with its descriptor.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

// layerTar is a tar with one file.
func layerTar(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func zstded(t *testing.T, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

// testImage is a two-platform image: an index over two manifests, each
// with a config and layers (gzip, zstd, plain).
type testImage struct {
	blobs     []blob // configs and layers
	manifests []blob
	index     blob
	files     map[digest.Digest]string // layer → the file content in it
}

func newTestImage(t *testing.T) testImage {
	t.Helper()
	img := testImage{files: map[digest.Digest]string{}}
	var idx ocispec.Index
	idx.SchemaVersion = 2
	idx.MediaType = ocispec.MediaTypeImageIndex
	for i, arch := range []string{"amd64", "arm64"} {
		cfg := newBlob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"`+arch+`","os":"linux","rootfs":{"type":"layers"}}`))
		layers := []blob{
			newBlob(ocispec.MediaTypeImageLayerGzip, gzipped(t, layerTar(t, "a", "gzip "+arch))),
			newBlob(ocispec.MediaTypeImageLayerZstd, zstded(t, layerTar(t, "b", "zstd "+arch))),
			newBlob(ocispec.MediaTypeImageLayer, layerTar(t, "c", "plain "+arch)),
		}
		img.files[layers[0].desc.Digest] = "gzip " + arch
		img.files[layers[1].desc.Digest] = "zstd " + arch
		img.files[layers[2].desc.Digest] = "plain " + arch
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg.desc}
		for _, l := range layers {
			m.Layers = append(m.Layers, l.desc)
		}
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		mb := newBlob(ocispec.MediaTypeImageManifest, data)
		img.blobs = append(img.blobs, cfg)
		img.blobs = append(img.blobs, layers...)
		img.manifests = append(img.manifests, mb)
		d := mb.desc
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		if i == 1 {
			d.Platform.Variant = "v8"
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	data, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	img.index = newBlob(ocispec.MediaTypeImageIndex, data)
	return img
}

func mustRef(t *testing.T, s string) reference.Named {
	t.Helper()
	r, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// push sends the whole image to ref (a tagged reference).
func (img testImage) push(t *testing.T, c *registry.Client, ref reference.Named) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	for _, b := range img.blobs {
		if err := c.PushBlob(ctx, ref, b.desc, bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range img.manifests {
		if _, err := c.PushManifest(ctx, reference.TrimNamed(ref), m.desc.MediaType, m.data); err != nil {
			t.Fatal(err)
		}
	}
	desc, err := c.PushManifest(ctx, ref, img.index.desc.MediaType, img.index.data)
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// pull resolves ref, picks the platform's manifest and checks every blob
// and the files in the layers.
func (img testImage) pull(t *testing.T, c *registry.Client, ref reference.Named, arch string) {
	t.Helper()
	ctx := context.Background()
	desc, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != img.index.desc.Digest || desc.MediaType != ocispec.MediaTypeImageIndex || desc.Size != img.index.desc.Size {
		t.Fatalf("Resolve: %+v, want %+v", desc, img.index.desc)
	}
	idx, err := c.FetchManifest(ctx, ref, desc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(idx, img.index.data) {
		t.Fatal("index bytes differ")
	}
	doc, err := image.Decode(desc, idx)
	if err != nil {
		t.Fatal(err)
	}
	mdesc, err := image.SelectManifest(*doc.Index, ocispec.Platform{OS: "linux", Architecture: arch})
	if err != nil {
		t.Fatal(err)
	}
	mdata, err := c.FetchManifest(ctx, ref, mdesc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mdata, &m); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.FetchBlob(ctx, ref, m.Config, 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(cfg)
	cfg.Close()
	want := image.NormalizePlatform(ocispec.Platform{Architecture: arch}).Architecture
	if err != nil || !strings.Contains(string(data), `"architecture":"`+want+`"`) {
		t.Fatalf("config %q, %v", data, err)
	}
	err = registry.FetchAll(ctx, m.Layers, 2, func(ctx context.Context, d ocispec.Descriptor) error {
		rc, err := c.FetchBlob(ctx, ref, d, 0)
		if err != nil {
			return err
		}
		tr, _, err := archive.DecompressStream(rc)
		if err != nil {
			rc.Close()
			return err
		}
		defer tr.Close()
		r := tar.NewReader(tr)
		if _, err := r.Next(); err != nil {
			return err
		}
		content, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, tr); err != nil { // to EOF: the digest check
			return err
		}
		if string(content) != img.files[d.Digest] {
			t.Errorf("layer %s holds %q, want %q", d.Digest, content, img.files[d.Digest])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRealPushPull(t *testing.T) {
	reg := registrytest.Start(t)
	c := registry.New()
	img := newTestImage(t)
	ref := mustRef(t, reg.Ref("berth/multi:1.0"))
	desc := img.push(t, c, ref)
	if desc.Digest != img.index.desc.Digest {
		t.Fatalf("pushed index digest %s, want %s", desc.Digest, img.index.desc.Digest)
	}
	img.pull(t, c, ref, "amd64")
	img.pull(t, c, ref, "aarch64")

	// By digest too.
	byDigest, err := reference.WithDigest(reference.TrimNamed(ref), img.manifests[0].desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Resolve(context.Background(), byDigest)
	if err != nil || d.Digest != img.manifests[0].desc.Digest || d.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("Resolve by digest: %+v, %v", d, err)
	}

	tags, err := c.Tags(context.Background(), ref)
	if err != nil || !slices.Equal(tags, []string{"1.0"}) {
		t.Fatalf("Tags: %v, %v", tags, err)
	}
}

func TestRealBlobPushSkipsWhatExists(t *testing.T) {
	reg := registrytest.Start(t)
	c := registry.New()
	ctx := context.Background()
	ref := mustRef(t, reg.Ref("berth/skip"))
	b := newBlob(ocispec.MediaTypeImageLayer, []byte("some layer"))
	ok, err := c.BlobExists(ctx, ref, b.desc.Digest)
	if err != nil || ok {
		t.Fatalf("BlobExists before push: %v, %v", ok, err)
	}
	var st registry.PushStatus
	if err := c.PushBlob(ctx, ref, b.desc, bytes.NewReader(b.data), registry.WithPushStatus(&st)); err != nil || st != registry.BlobUploaded {
		t.Fatalf("first push: %v, status %v", err, st)
	}
	ok, err = c.BlobExists(ctx, ref, b.desc.Digest)
	if err != nil || !ok {
		t.Fatalf("BlobExists after push: %v, %v", ok, err)
	}
	var read atomic.Bool
	r := readerFunc(func(p []byte) (int, error) { read.Store(true); return 0, io.EOF })
	if err := c.PushBlob(ctx, ref, b.desc, r, registry.WithPushStatus(&st)); err != nil || st != registry.BlobExisted || read.Load() {
		t.Fatalf("second push: %v, status %v, reader read: %v", err, st, read.Load())
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestRealCrossRepoMount(t *testing.T) {
	reg := registrytest.Start(t)
	c := registry.New()
	ctx := context.Background()
	b := newBlob(ocispec.MediaTypeImageLayer, bytes.Repeat([]byte("mount me "), 1000))
	from, to := mustRef(t, reg.Ref("berth/from")), mustRef(t, reg.Ref("berth/to"))
	if err := c.PushBlob(ctx, from, b.desc, bytes.NewReader(b.data)); err != nil {
		t.Fatal(err)
	}
	var st registry.PushStatus
	r := readerFunc(func(p []byte) (int, error) { return 0, errors.New("a mounted blob is not read") })
	if err := c.PushBlob(ctx, to, b.desc, r, registry.WithMountFrom("berth/from"), registry.WithPushStatus(&st)); err != nil {
		t.Fatal(err)
	}
	if st != registry.BlobMounted {
		t.Fatalf("status %v, want mounted", st)
	}
	got := fetchAll(t, c, to, b.desc)
	if !bytes.Equal(got, b.data) {
		t.Fatal("mounted blob differs")
	}
}

func fetchAll(t *testing.T, c *registry.Client, ref reference.Named, desc ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := c.FetchBlob(context.Background(), ref, desc, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRealChunkedUpload(t *testing.T) {
	reg := registrytest.Start(t)
	c := registry.New()
	ref := mustRef(t, reg.Ref("berth/chunked"))
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b := newBlob(ocispec.MediaTypeImageLayer, data)
	var st registry.PushStatus
	if err := c.PushBlob(context.Background(), ref, b.desc, bytes.NewReader(data), registry.WithChunkSize(16<<10), registry.WithPushStatus(&st)); err != nil {
		t.Fatal(err)
	}
	if st != registry.BlobUploaded {
		t.Fatalf("status %v", st)
	}
	if got := fetchAll(t, c, ref, b.desc); !bytes.Equal(got, data) {
		t.Fatal("chunked blob differs")
	}
	// A resumed read from the middle gives the rest.
	rc, err := c.FetchBlob(context.Background(), ref, b.desc, 60_000)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(rest, data[60_000:]) {
		t.Fatalf("read from 60000: %d bytes, %v", len(rest), err)
	}
}

func TestRealPushWrongBlobRefused(t *testing.T) {
	reg := registrytest.Start(t)
	c := registry.New()
	ref := mustRef(t, reg.Ref("berth/wrong"))
	b := newBlob(ocispec.MediaTypeImageLayer, []byte("the real content"))
	err := c.PushBlob(context.Background(), ref, b.desc, strings.NewReader("the fake content"))
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("push of other bytes: %v, want invalid argument", err)
	}
	if ok, _ := c.BlobExists(context.Background(), ref, b.desc.Digest); ok {
		t.Fatal("the registry stored the wrong blob")
	}
}

func TestRealRepushGivesSameDigest(t *testing.T) {
	reg := registrytest.Start(t)
	c := registry.New()
	ctx := context.Background()
	img := newTestImage(t)
	src := mustRef(t, reg.Ref("berth/src:v1"))
	first := img.push(t, c, src)

	// Pull the index unchanged and push it (blobs, manifests, index) to
	// another name, twice.
	desc, err := c.Resolve(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	data, err := c.FetchManifest(ctx, src, desc)
	if err != nil {
		t.Fatal(err)
	}
	dst := mustRef(t, reg.Ref("berth/dst:copy"))
	for _, b := range img.blobs {
		if err := c.PushBlob(ctx, dst, b.desc, nil, registry.WithMountFrom("berth/src")); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range img.manifests {
		if _, err := c.PushManifest(ctx, reference.TrimNamed(dst), m.desc.MediaType, m.data); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		pushed, err := c.PushManifest(ctx, dst, desc.MediaType, data)
		if err != nil {
			t.Fatal(err)
		}
		if pushed.Digest != first.Digest {
			t.Fatalf("re-pushed digest %s, want %s", pushed.Digest, first.Digest)
		}
	}
	again, err := c.Resolve(ctx, dst)
	if err != nil || again.Digest != first.Digest {
		t.Fatalf("Resolve copy: %v, %v", again.Digest, err)
	}
}

func TestRealMissing(t *testing.T) {
	reg := registrytest.Start(t)
	c := registry.New()
	ctx := context.Background()
	ref := mustRef(t, reg.Ref("berth/nothing:here"))
	_, err := c.Resolve(ctx, ref)
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), ref.String()) {
		t.Fatalf("Resolve of a missing image: %v", err)
	}
	b := newBlob(ocispec.MediaTypeImageLayer, []byte("never pushed"))
	_, err = c.FetchBlob(ctx, ref, b.desc, 0)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("FetchBlob of a missing blob: %v", err)
	}
}

func TestRealHtpasswd(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithHtpasswd("alice", "s3cret"))
	ctx := context.Background()
	ref := mustRef(t, reg.Ref("berth/private:1"))
	img := newTestImage(t)

	if _, err := registry.New().Resolve(ctx, ref); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("anonymous Resolve: %v, want unauthorized", err)
	}
	if _, err := registry.New().Login(ctx, reg.Host(), registry.AuthConfig{Username: "alice", Password: "wrong"}); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("Login with a wrong password: %v, want unauthorized", err)
	}
	if _, err := registry.New().Login(ctx, reg.Host(), registry.AuthConfig{Username: "alice", Password: "s3cret"}); err != nil {
		t.Fatalf("Login: %v", err)
	}
	c := registry.New(registry.WithCredentials(func(host string) (registry.AuthConfig, error) {
		if host != reg.Host() {
			t.Errorf("credentials asked for %q", host)
		}
		return registry.AuthConfig{Username: "alice", Password: "s3cret"}, nil
	}))
	img.push(t, c, ref)
	img.pull(t, c, ref, "amd64")
}

func TestRealTokenAuth(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithTokenAuth("alice", "s3cret"))
	ctx := context.Background()
	ref := mustRef(t, reg.Ref("berth/tokens:1"))
	img := newTestImage(t)

	// Anonymous clients get pull-only tokens: pushing is refused.
	b := img.blobs[0]
	err := registry.New().PushBlob(ctx, ref, b.desc, bytes.NewReader(b.data))
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("anonymous push: %v, want unauthorized", err)
	}
	if _, err := registry.New().Login(ctx, reg.Host(), registry.AuthConfig{Username: "alice", Password: "nope"}); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("Login with a wrong password: %v, want unauthorized", err)
	}
	identity, err := registry.New().Login(ctx, reg.Host(), registry.AuthConfig{Username: "alice", Password: "s3cret"})
	if err != nil || identity == "" {
		t.Fatalf("Login: identity %q, %v", identity, err)
	}

	pusher := registry.New(registry.WithCredentials(func(string) (registry.AuthConfig, error) {
		return registry.AuthConfig{Username: "alice", Password: "s3cret"}, nil
	}))
	img.push(t, pusher, ref)

	// A client with only the identity token from the login pulls (the
	// token comes from the OAuth2 refresh grant), and its tokens are
	// cached: pulling again asks the token server nothing.
	puller := registry.New(registry.WithCredentials(func(string) (registry.AuthConfig, error) {
		return registry.AuthConfig{IdentityToken: identity}, nil
	}))
	img.pull(t, puller, ref, "amd64")
	before := reg.TokenRequests()
	img.pull(t, puller, ref, "arm64")
	if after := reg.TokenRequests(); after != before {
		t.Fatalf("a second pull asked for %d more tokens, want cached ones", after-before)
	}
	// Anonymous pulls work too (pull-only tokens).
	img.pull(t, registry.New(), ref, "amd64")
}
