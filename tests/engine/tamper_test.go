package engine_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"berth.dev/tests/enginetest"
	"berth.dev/tests/fixtures/images"
)

// fakeRegistry serves one image read-only over the distribution API, with
// the bytes of the blob tamper replaced by others of the same size, and
// the blob gone answered 404 (either may be "").
func fakeRegistry(t *testing.T, img *images.Image, tamper, gone digest.Digest) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.Contains(r.URL.Path, "/manifests/"):
			data := img.Blobs[img.Manifest.Digest]
			w.Header().Set("Content-Type", img.Manifest.MediaType)
			w.Header().Set("Docker-Content-Digest", img.Manifest.Digest.String())
			w.Write(data)
		case strings.Contains(r.URL.Path, "/blobs/"):
			d := digest.Digest(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			data, ok := img.Blobs[d]
			if !ok || d == gone {
				http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}`, http.StatusNotFound)
				return
			}
			if d == tamper {
				data = append([]byte(nil), data...)
				data[len(data)/2] ^= 0xff
			}
			w.Write(data)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// A blob whose bytes do not match its digest (a layer, then the config)
// fails the pull, and nothing of it stays: no image, no layer, no blob.
func TestPullRefusesTamperedBlobs(t *testing.T) {
	img := layered(t)
	for name, tamper := range map[string]digest.Digest{
		"layer":  img.Layers[0].Descriptor.Digest,
		"config": img.Config.Digest,
	} {
		t.Run(name, func(t *testing.T) {
			host := fakeRegistry(t, img, tamper, "")
			d := enginetest.Start(t, bin, "")
			_, errOut, code := d.Docker("pull", host+"/berth-test/tampered:1")
			if code == 0 {
				t.Fatal("pull of a tampered blob succeeded")
			}
			if !strings.Contains(errOut, tamper.String()) {
				t.Errorf("error does not name the tampered blob %s: %s", tamper, errOut)
			}
			if out := mustDocker(t, d, "images", "-q"); strings.TrimSpace(out) != "" {
				t.Errorf("images after a refused pull: %q", out)
			}
			if dirs, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "[0-9]*")); len(dirs) != 0 {
				t.Errorf("layer snapshots left: %v", dirs)
			}
			if blob, _ := filepath.Glob(filepath.Join(d.Root, "content", "blobs", "sha256", tamper.Encoded())); len(blob) != 0 {
				t.Errorf("the tampered blob is in the store")
			}
		})
	}
}
