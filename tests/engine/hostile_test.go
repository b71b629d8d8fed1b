package engine_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/image"
	"berth.dev/registry/registrytest"
	"berth.dev/tests/enginetest"
	"berth.dev/tests/fixtures/images"
)

// hostileImage builds an image of the given layers (entries each).
func hostileImage(t *testing.T, layers ...[]images.Entry) *images.Image {
	t.Helper()
	var ls []images.Layer
	for _, entries := range layers {
		l, err := images.NewLayer(entries...)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	img, err := images.Build(image.Config{}, ls)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// A layer that climbs out of the root is refused: the pull fails and
// records nothing, and nothing is written outside the snapshot.
func TestPullRefusesPathTraversal(t *testing.T) {
	reg := registrytest.Start(t)
	d := enginetest.Start(t, bin, "")
	outside := t.TempDir()
	rel, err := filepath.Rel(filepath.Join(d.Root, "snapshots", "1", "fs"), filepath.Join(outside, "escaped"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixtures clean entry names, so this layer's tar is written raw.
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o644, Size: 8})
	tw.Write([]byte("escaped\n"))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	layer := images.Layer{
		Tar: raw.Bytes(), DiffID: digest.FromBytes(raw.Bytes()), Blob: gz.Bytes(),
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz.Bytes()), Size: int64(gz.Len())},
	}
	img, err := images.Build(image.Config{}, []images.Layer{layer})
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("berth-test/traversal:1")
	pushImage(t, ref, img)
	_, errOut, code := d.Docker("pull", ref)
	if code == 0 {
		t.Fatal("pull of a layer with ../ names succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "escaped")); err == nil {
		t.Fatal("the layer wrote outside the root")
	}
	if out := mustDocker(t, d, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("an image was recorded after a refused pull (%s): %q", errOut, out)
	}
	if dirs, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "[0-9]*")); len(dirs) != 0 {
		t.Errorf("snapshots left after a refused pull: %v", dirs)
	}
}

// An absolute symlink in one layer and a write through it in the next
// land inside the image, where the container would see them, never at
// the host path the link names.
func TestPullSymlinkAcrossLayersStaysInside(t *testing.T) {
	reg := registrytest.Start(t)
	d := enginetest.Start(t, bin, "")
	outside := t.TempDir()
	img := hostileImage(t,
		[]images.Entry{images.Symlink("evil", outside)},
		[]images.Entry{images.File("evil/pwned", []byte("x\n"), 0o644)},
	)
	ref := reg.Ref("berth-test/symlink:1")
	pushImage(t, ref, img)
	mustDocker(t, d, "pull", ref)
	if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
		t.Fatal("a write through an image's symlink landed on the host")
	}
	found, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "*", "fs", strings.TrimPrefix(outside, "/"), "pwned"))
	if len(found) != 1 {
		t.Errorf("the file is not inside the image at %s: %v", outside, found)
	}
}
