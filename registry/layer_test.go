package registry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

func TestDecompress(t *testing.T) {
	plain := bytes.Repeat([]byte("a layer tar, or so we pretend. "), 500)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(plain, nil)

	for _, tc := range []struct {
		name      string
		mediaType string
		data      []byte
	}{
		{"gzip", ocispec.MediaTypeImageLayerGzip, gz.Bytes()},
		{"docker gzip", MediaTypeDockerLayer, gz.Bytes()},
		{"zstd", ocispec.MediaTypeImageLayerZstd, zs},
		{"plain", ocispec.MediaTypeImageLayer, plain},
		{"gzip labelled plain", ocispec.MediaTypeImageLayer, gz.Bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := Decompress(tc.mediaType, bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("got %d bytes, %v", len(got), err)
			}
		})
	}
	if _, err := Decompress("application/vnd.oci.image.config.v1+json", bytes.NewReader(plain)); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("config as a layer: %v", err)
	}
}

// A digest mismatch of the compressed blob shows through the decompressed
// stream even when the gzip stream itself is complete (the bad bytes are
// after it).
func TestDecompressReportsDigestMismatch(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("content"))
	zw.Close()
	served := append(gz.Bytes(), 0, 0, 0, 0) // trailing padding
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz.Bytes()), Size: int64(len(served))}

	b := &blobServer{data: served}
	b.start(t)
	rc, err := fastClient().FetchBlob(context.Background(), b.ref(t), desc, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Decompress(desc.MediaType, rc)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	got, err := io.ReadAll(tr)
	if string(got) != "content" || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("got %q, %v; want the content and a digest mismatch", got, err)
	}
}

func TestFetchAll(t *testing.T) {
	descs := make([]ocispec.Descriptor, 10)
	for i := range descs {
		descs[i] = ocispec.Descriptor{Size: int64(i)}
	}
	var running, peak atomic.Int32
	var mu sync.Mutex
	seen := map[int64]bool{}
	release := make(chan struct{})
	arrived := make(chan struct{}, len(descs))
	done := make(chan error)
	go func() {
		done <- FetchAll(context.Background(), descs, 3, func(ctx context.Context, d ocispec.Descriptor) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			arrived <- struct{}{}
			<-release
			running.Add(-1)
			mu.Lock()
			seen[d.Size] = true
			mu.Unlock()
			return nil
		})
	}()
	for range 3 {
		<-arrived
	}
	if n := running.Load(); n != 3 {
		t.Fatalf("%d calls running, want 3", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 3 || len(seen) != len(descs) {
		t.Fatalf("peak %d (want 3), %d of %d done", peak.Load(), len(seen), len(descs))
	}
}

func TestFetchAllStopsAtFirstError(t *testing.T) {
	descs := make([]ocispec.Descriptor, 20)
	for i := range descs {
		descs[i] = ocispec.Descriptor{Size: int64(i)}
	}
	boom := errors.New("boom")
	var calls, cancelled atomic.Int32
	err := FetchAll(context.Background(), descs, 2, func(ctx context.Context, d ocispec.Descriptor) error {
		calls.Add(1)
		if d.Size == 1 {
			return boom
		}
		if d.Size == 0 {
			<-ctx.Done() // the other call sees the cancellation
			cancelled.Add(1)
			return ctx.Err()
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("FetchAll: %v, want the first error", err)
	}
	if cancelled.Load() != 1 || calls.Load() != 2 {
		t.Fatalf("%d calls, %d cancelled; want 2 and 1 (nothing started after the error)", calls.Load(), cancelled.Load())
	}
}

func TestSelectManifest(t *testing.T) {
	index := []byte(`{"schemaVersion":2,"manifests":[
	{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"amd64"}},
	{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v6"}},
	{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
	{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":1,"platform":{"os":"linux","architecture":"arm64"}},
	{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:5555555555555555555555555555555555555555555555555555555555555555","size":1,"platform":{"os":"unknown","architecture":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}},
	{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:6666666666666666666666666666666666666666666666666666666666666666","size":1,"platform":{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1"}}
	]}`)
	for _, tc := range []struct {
		p    ocispec.Platform
		want string // first digit of the digest, "" for none
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, "1"},
		{ocispec.Platform{OS: "linux", Architecture: "x86_64"}, "1"},
		{ocispec.Platform{OS: "linux", Architecture: "arm"}, "3"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "6"}, "2"},
		{ocispec.Platform{OS: "linux", Architecture: "aarch64"}, "4"},
		{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "4"},
		{ocispec.Platform{OS: "windows", Architecture: "amd64"}, "6"},
		{ocispec.Platform{OS: "linux", Architecture: "s390x"}, ""},
		{ocispec.Platform{OS: "unknown", Architecture: "unknown"}, ""}, // attestations are not images
	} {
		d, err := SelectManifest(index, tc.p)
		if tc.want == "" {
			if !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("%+v: %v, want not found", tc.p, err)
			}
			continue
		}
		if err != nil || d.Digest.Encoded()[:1] != tc.want {
			t.Errorf("%+v: %s, %v; want digest %s...", tc.p, d.Digest, err, tc.want)
		}
	}
	if p := DefaultPlatform(); p.OS != "linux" || p.Architecture == "" {
		t.Fatalf("DefaultPlatform %+v", p)
	}
}
