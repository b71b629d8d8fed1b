package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// blobServer serves one blob at /v2/test/blob/blobs/<digest>, honouring
// Range, and can misbehave: cut the body after some bytes for the first
// answers, ignore Range, or send other bytes.
type blobServer struct {
	data        []byte
	cutAfter    int  // bytes sent before cutting the connection, 0: never
	cuts        int  // how many answers are cut
	ignoreRange bool // answer 200 with the whole blob to a Range
	fail5xx     int  // answers that are 503 before any body

	mu     sync.Mutex
	ranges []string // Range headers seen
	srv    *httptest.Server
}

func (b *blobServer) start(t *testing.T) {
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
}

func (b *blobServer) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.ranges = append(b.ranges, r.Header.Get("Range"))
	fail := b.fail5xx > 0
	if fail {
		b.fail5xx--
	}
	cut := b.cuts > 0 && b.cutAfter > 0
	if cut {
		b.cuts--
	}
	b.mu.Unlock()
	if fail {
		http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}`, http.StatusServiceUnavailable)
		return
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" && !b.ignoreRange {
		s := strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-")
		start, _ = strconv.Atoi(s)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b.data)-1, len(b.data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(b.data)-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(b.data)))
	}
	body := b.data[start:]
	if cut && len(body) > b.cutAfter {
		// Send part of the declared length, then drop the connection.
		w.Write(body[:b.cutAfter])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Write(body)
}

func (b *blobServer) seenRanges() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.ranges...)
}

func (b *blobServer) ref(t *testing.T) reference.Named {
	r, err := reference.ParseNormalizedNamed(strings.TrimPrefix(b.srv.URL, "http://") + "/test/blob")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testData(n int) []byte {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*31 + i/256)
	}
	return data
}

func descOf(data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

func fastClient(opts ...Option) *Client {
	return New(append([]Option{WithRetryDelay(time.Millisecond)}, opts...)...)
}

func TestFetchBlobResumesWithRange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ignoreRange bool
		wantRange   string
	}{
		{"range honoured", false, "bytes=40000-"},
		{"range ignored", true, "bytes=40000-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := testData(100_000)
			b := &blobServer{data: data, cutAfter: 40_000, cuts: 1, ignoreRange: tc.ignoreRange}
			b.start(t)
			rc, err := fastClient().FetchBlob(context.Background(), b.ref(t), descOf(data), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, not the blob", len(got))
			}
			ranges := b.seenRanges()
			if len(ranges) != 2 || ranges[0] != "" || ranges[1] != tc.wantRange {
				t.Fatalf("requests with Range %q, want one without and one with %q", ranges, tc.wantRange)
			}
		})
	}
}

func TestFetchBlobRetriesAndGivesUp(t *testing.T) {
	data := testData(10_000)
	// Every answer is cut: after the retries the read fails as
	// unavailable, and what was delivered is not followed by io.EOF.
	b := &blobServer{data: data, cutAfter: 1000, cuts: 100, ignoreRange: true}
	b.start(t)
	rc, err := fastClient(WithRetries(2)).FetchBlob(context.Background(), b.ref(t), descOf(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("read of a blob always cut: %v, want unavailable", err)
	}
	if n := len(b.seenRanges()); n != 3 {
		t.Fatalf("%d requests, want 3 (one and two retries)", n)
	}
}

func TestFetchBlobRetries5xx(t *testing.T) {
	data := testData(1000)
	b := &blobServer{data: data, fail5xx: 2}
	b.start(t)
	rc, err := fastClient().FetchBlob(context.Background(), b.ref(t), descOf(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}

	b2 := &blobServer{data: data, fail5xx: 10}
	b2.start(t)
	_, err = fastClient(WithRetries(1)).FetchBlob(context.Background(), b2.ref(t), descOf(data), 0)
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "try later") {
		t.Fatalf("FetchBlob from a registry always 503: %v", err)
	}
}

func TestFetchBlobDetectsBadContent(t *testing.T) {
	data := testData(5000)
	for _, tc := range []struct {
		name  string
		serve []byte
		desc  ocispec.Descriptor
	}{
		{"other bytes", append(append([]byte{}, data[:4999]...), data[4999]+1), descOf(data)},
		{"longer", append(append([]byte{}, data...), 'x'), descOf(data)},
		{"shorter, size known", data[:4000], descOf(data)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &blobServer{data: tc.serve}
			b.start(t)
			rc, err := fastClient(WithRetries(1)).FetchBlob(context.Background(), b.ref(t), tc.desc, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err == nil {
				t.Fatalf("read %d bytes without an error", len(got))
			}
			if int64(len(got)) > tc.desc.Size {
				t.Fatalf("delivered %d bytes, more than the descriptor's %d", len(got), tc.desc.Size)
			}
			if tc.name == "other bytes" && (!errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "digest mismatch")) {
				t.Fatalf("error %v, want a digest mismatch", err)
			}
		})
	}
}

func TestFetchBlobResumeWithHashState(t *testing.T) {
	data := testData(50_000)
	b := &blobServer{data: data}
	b.start(t)
	c := fastClient()
	desc := descOf(data)

	// A caller that holds the first 20000 bytes hands their hash state.
	h := sha256.New()
	h.Write(data[:20_000])
	rc, err := c.FetchBlobResume(context.Background(), b.ref(t), desc, 20_000, h)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(rest, data[20_000:]) {
		t.Fatalf("resume: %d bytes, %v", len(rest), err)
	}

	// A wrong state is caught at the end.
	h = sha256.New()
	h.Write([]byte("not the start"))
	rc, err = c.FetchBlobResume(context.Background(), b.ref(t), desc, 20_000, h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("resume with a wrong hash state: %v", err)
	}

	// Everything already there: only the check.
	h = sha256.New()
	h.Write(data)
	rc, err = c.FetchBlobResume(context.Background(), b.ref(t), desc, int64(len(data)), h)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadAll(rc); err != nil || len(n) != 0 {
		t.Fatalf("resume at the end: %d bytes, %v", len(n), err)
	}
}
