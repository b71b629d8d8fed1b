package content_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/content"
)

// smallImage stores a one-layer image and returns its manifest.
func smallImage(t *testing.T, s *content.Store) ocispec.Descriptor {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	body := []byte("hello from berth\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	var gzBuf bytes.Buffer
	gz := gzip.NewWriter(&gzBuf)
	gz.Write(tarBuf.Bytes())
	gz.Close()

	layer := put(t, s, ocispec.MediaTypeImageLayerGzip, gzBuf.Bytes())
	config := putJSON(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tarBuf.Bytes())}},
	})
	return putJSON(t, s, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, config, layer))
}

// TestLayoutReadableBySkopeo: the store's root is an OCI image layout that
// another implementation reads (checking every digest) and writes into.
func TestLayoutReadableBySkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed")
	}
	ctx := context.Background()
	s, root := openStore(t)
	m := smallImage(t, s)
	m.Annotations = map[string]string{ocispec.AnnotationRefName: "test"}
	b, err := json.Marshal(index(ocispec.MediaTypeImageIndex, m))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, skopeo, append([]string{"--insecure-policy"}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo %v: %v\n%s", args, err, b)
		}
	}
	run("copy", "oci:"+root+":test", "oci:"+out+":copy")

	// skopeo's copy is a layout too: open it as a store and check its blobs.
	s2, err := content.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := content.ReadBlob(ctx, s2, m); err != nil {
		t.Fatalf("the manifest skopeo copied: %v", err)
	}
	n := 0
	err = s2.Walk(ctx, func(i content.Info) error {
		n++
		return s2.Verify(ctx, i.Digest)
	})
	if err != nil || n != 3 {
		t.Fatalf("walked %d blobs of skopeo's layout: %v", n, err)
	}
	// Blobs of a layout skopeo wrote are kept by Prune through index.json.
	if r, err := s2.Prune(ctx, nil); err != nil || len(r.Blobs) != 0 {
		t.Fatalf("Prune of skopeo's layout removed %v: %v", r.Blobs, err)
	}
}
