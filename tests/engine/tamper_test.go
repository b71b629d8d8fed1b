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

// fakeBlobs says what fakeRegistry does wrong, blob by blob ("": none).
type fakeBlobs struct {
	tamper digest.Digest // its bytes replaced by others of the same size
	gone   digest.Digest // answered 404
	hang   digest.Digest // no answer until the test ends
}

// fakeRegistry serves one image read-only over the distribution API, its
// blobs spoiled as bad says.
func fakeRegistry(t *testing.T, img *images.Image, bad fakeBlobs) string {
	t.Helper()
	stop := make(chan struct{})
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
			if d == bad.hang {
				select {
				case <-stop:
				case <-r.Context().Done():
				}
				return
			}
			if !ok || d == bad.gone {
				http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}`, http.StatusNotFound)
				return
			}
			if d == bad.tamper {
				data = append([]byte(nil), data...)
				data[len(data)/2] ^= 0xff
			}
			w.Write(data)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() {
		close(stop)
		srv.Close()
	})
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
			host := fakeRegistry(t, img, fakeBlobs{tamper: tamper})
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
