package content_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/content"
	"berth.dev/internal/errdefs"
)

func openStore(t testing.TB, opts ...content.Option) (*content.Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := content.Open(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func descOf(mediaType string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// put stores b and returns its descriptor.
func put(t testing.TB, s *content.Store, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	desc := descOf(mediaType, b)
	if err := content.WriteBlob(context.Background(), s, "put-"+desc.Digest.String(), bytes.NewReader(b), desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

func blobFile(root string, d digest.Digest) string {
	return filepath.Join(root, "blobs", string(d.Algorithm()), d.Encoded())
}

func mustNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: want it absent, stat says %v", path, err)
	}
}

func statuses(t *testing.T, s *content.Store) []content.Status {
	t.Helper()
	sts, err := s.ListStatuses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sts
}

func TestOpenMakesAnOCILayout(t *testing.T) {
	_, root := openStore(t)
	b, err := os.ReadFile(filepath.Join(root, "oci-layout"))
	if err != nil {
		t.Fatal(err)
	}
	var layout ocispec.ImageLayout
	if err := json.Unmarshal(b, &layout); err != nil || layout.Version != "1.0.0" {
		t.Fatalf("oci-layout %q: %v", b, err)
	}
	var index ocispec.Index
	b, err = os.ReadFile(filepath.Join(root, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil || index.SchemaVersion != 2 || len(index.Manifests) != 0 {
		t.Fatalf("index.json %q: %v", b, err)
	}
	for _, dir := range []string{"blobs/sha256", "ingest"} {
		if fi, err := os.Stat(filepath.Join(root, dir)); err != nil || !fi.IsDir() {
			t.Fatalf("%s: %v", dir, err)
		}
	}
}

func TestOpenExistingRoot(t *testing.T) {
	s, root := openStore(t)
	desc := put(t, s, "", []byte("kept"))
	// A temporary file a crash left behind is removed; blobs stay.
	leftover := filepath.Join(root, ".tmp-oci-layout-123")
	if err := os.WriteFile(leftover, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := content.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, leftover)
	if _, err := s2.Info(context.Background(), desc.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesAnotherLayoutVersion(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "oci-layout"), []byte(`{"imageLayoutVersion":"9.9.9"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := content.Open(root); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("want ErrFailedPrecondition, got %v", err)
	}
}

func TestWriteReadInfoWalkDelete(t *testing.T) {
	ctx := context.Background()
	s, root := openStore(t)
	data := randomBytes(t, 100_000)
	desc := descOf("application/octet-stream", data)

	w, err := s.Writer(ctx, "ref-1", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, desc.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a blob is visible before Commit: %v", err)
	}
	if _, err := w.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != desc.Digest {
		t.Fatalf("Digest() = %s, want %s", w.Digest(), desc.Digest)
	}
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Write after Commit: %v", err)
	}

	info, err := s.Info(ctx, desc.Digest)
	if err != nil || info.Digest != desc.Digest || info.Size != desc.Size || info.CreatedAt.IsZero() {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	fi, err := os.Stat(blobFile(root, desc.Digest))
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("blob file: %v, %v", fi.Mode(), err)
	}
	if len(statuses(t, s)) != 0 {
		t.Fatalf("ingest left after commit: %+v", statuses(t, s))
	}

	ra, err := s.ReaderAt(ctx, desc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
	ra.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if b, err := content.ReadBlob(ctx, s, desc); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadBlob: %v", err)
	}

	other := put(t, s, "", []byte("other"))
	// Junk in blobs/ is not a blob.
	if err := os.WriteFile(filepath.Join(root, "blobs", "sha256", "not-a-digest"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var walked []digest.Digest
	if err := s.Walk(ctx, func(i content.Info) error { walked = append(walked, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []digest.Digest{desc.Digest, other.Digest}
	sort.Slice(walked, func(i, j int) bool { return walked[i] < walked[j] })
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if len(walked) != 2 || walked[0] != want[0] || walked[1] != want[1] {
		t.Fatalf("Walk = %v, want %v", walked, want)
	}
	stop := errors.New("stop")
	if err := s.Walk(ctx, func(content.Info) error { return stop }); err != stop {
		t.Fatalf("Walk returned %v, want fn's error", err)
	}

	// A reader open across Delete keeps reading the whole blob.
	ra, err = s.ReaderAt(ctx, desc)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if err := s.Delete(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size())); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, desc.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := s.Info(ctx, desc.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Info after Delete: %v", err)
	}
	if _, err := s.ReaderAt(ctx, desc); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("ReaderAt after Delete: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	bad := []digest.Digest{"", "sha256:../../etc", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e"}
	for _, d := range bad {
		if _, err := s.Info(ctx, d); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Info(%q): %v", d, err)
		}
		if err := s.Delete(ctx, d); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Delete(%q): %v", d, err)
		}
		if d != "" {
			if _, err := s.Writer(ctx, "r", ocispec.Descriptor{Digest: d}); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Writer(%q): %v", d, err)
			}
		}
	}
	if _, err := s.Writer(ctx, "", ocispec.Descriptor{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Writer with an empty ref: %v", err)
	}
	if _, err := s.Writer(ctx, "r", ocispec.Descriptor{Size: -1}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Writer with a negative size: %v", err)
	}
}

func TestCommitMismatchLeavesNothing(t *testing.T) {
	data := []byte("the right content")
	right := descOf("", data)
	wrong := digest.FromString("something else")
	tests := []struct {
		name     string
		desc     ocispec.Descriptor
		size     int64
		expected digest.Digest
	}{
		{"size passed to Commit", ocispec.Descriptor{}, right.Size + 1, ""},
		{"size of the descriptor", ocispec.Descriptor{Size: right.Size - 1}, 0, ""},
		{"digest passed to Commit", ocispec.Descriptor{}, 0, wrong},
		{"digest of the descriptor", ocispec.Descriptor{Digest: wrong}, 0, ""},
		{"digest of another algorithm", ocispec.Descriptor{}, 0, digest.SHA512.FromString("something else")},
		{"descriptor right, Commit wrong", right, right.Size, wrong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, root := openStore(t)
			w, err := s.Writer(ctx, "ref", tc.desc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(ctx, tc.size, tc.expected); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Fatalf("Commit: want ErrFailedPrecondition, got %v", err)
			}
			for _, d := range []digest.Digest{right.Digest, wrong} {
				mustNotExist(t, blobFile(root, d))
			}
			if sts := statuses(t, s); len(sts) != 0 {
				t.Fatalf("the bad data was kept: %+v", sts)
			}
			// The ref is free again and starts from zero.
			w, err = s.Writer(ctx, "ref", ocispec.Descriptor{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if st, _ := w.Status(); st.Offset != 0 {
				t.Fatalf("offset after a failed commit: %d", st.Offset)
			}
		})
	}
}

func TestCommitWithoutExpectations(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	w, err := s.Writer(ctx, "unknown", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("anything")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	if b, err := content.ReadBlob(ctx, s, descOf("", []byte("anything"))); err != nil || string(b) != "anything" {
		t.Fatalf("ReadBlob: %q, %v", b, err)
	}
	// The empty blob is a blob too.
	empty := put(t, s, "", nil)
	if b, err := content.ReadBlob(ctx, s, empty); err != nil || len(b) != 0 {
		t.Fatalf("ReadBlob of the empty blob: %q, %v", b, err)
	}
}

func TestResumeAfterClose(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	data := randomBytes(t, 1<<20)
	desc := descOf("", data)

	w, err := s.Writer(ctx, "pull", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:300_000]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sts := statuses(t, s)
	if len(sts) != 1 || sts[0].Ref != "pull" || sts[0].Offset != 300_000 || sts[0].Total != desc.Size || sts[0].Expected != desc.Digest {
		t.Fatalf("ListStatuses = %+v", sts)
	}

	w, err = s.Writer(ctx, "pull", desc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.Status()
	if err != nil || st.Offset != 300_000 || !st.StartedAt.Equal(sts[0].StartedAt) {
		t.Fatalf("resumed Status = %+v, %v (first %+v)", st, err, sts[0])
	}
	if want := digest.FromBytes(data[:300_000]); w.Digest() != want {
		t.Fatalf("resumed digest %s, want %s", w.Digest(), want)
	}
	if _, err := w.Write(data[300_000:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if b, err := content.ReadBlob(ctx, s, desc); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadBlob: %v", err)
	}
}

// TestResumeAfterCrash drops a writer without Close, as a killed process
// would, and resumes from a new Store on the same root.
func TestResumeAfterCrash(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(t, 1<<20)
	desc := descOf("", data)
	for _, tc := range []struct {
		name string
		r    func() io.Reader
	}{
		{"seekable source", func() io.Reader { return bytes.NewReader(data) }},
		{"stream source", func() io.Reader { return io.MultiReader(bytes.NewReader(data)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, root := openStore(t)
			w, err := s.Writer(ctx, "pull", desc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data[:len(data)/2]); err != nil {
				t.Fatal(err)
			}
			// No Close: the process "dies" here.

			s2, err := content.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			sts := statuses(t, s2)
			if len(sts) != 1 || sts[0].Offset != int64(len(data)/2) {
				t.Fatalf("after reopen ListStatuses = %+v", sts)
			}
			if err := content.WriteBlob(ctx, s2, "pull", tc.r(), desc); err != nil {
				t.Fatal(err)
			}
			if b, err := content.ReadBlob(ctx, s2, desc); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("ReadBlob: %v", err)
			}
			if sts := statuses(t, s2); len(sts) != 0 {
				t.Fatalf("ingest left: %+v", sts)
			}
		})
	}
}

// TestResumeWithBadPartialData: partial data that does not belong to the blob
// (corrupted on disk) fails the digest check, is discarded, and a second
// attempt succeeds.
func TestResumeWithBadPartialData(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	data := randomBytes(t, 4096)
	desc := descOf("", data)
	w, err := s.Writer(ctx, "pull", desc)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), data[:2048]...)
	bad[100] ^= 0xff
	if _, err := w.Write(bad); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := content.WriteBlob(ctx, s, "pull", bytes.NewReader(data), desc); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("want ErrFailedPrecondition, got %v", err)
	}
	if err := content.WriteBlob(ctx, s, "pull", bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestResumeWithAnotherDescriptorStartsOver(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	first, second := []byte("first blob"), []byte("second blob, longer")
	w, err := s.Writer(ctx, "ref", descOf("", first))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(first[:5])
	w.Close()
	// No expectations given: the ingest's own are kept.
	w, err = s.Writer(ctx, "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := w.Status(); st.Offset != 5 || st.Expected != digest.FromBytes(first) {
		t.Fatalf("resumed without a descriptor: %+v", st)
	}
	w.Close()
	if err := content.WriteBlob(ctx, s, "ref", bytes.NewReader(second), descOf("", second)); err != nil {
		t.Fatal(err)
	}
	if _, err := content.ReadBlob(ctx, s, descOf("", second)); err != nil {
		t.Fatal(err)
	}
}

func TestWriteBlobRefusesALongerStream(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	data := []byte("0123456789")
	desc := descOf("", data[:5])
	if err := content.WriteBlob(ctx, s, "ref", bytes.NewReader(data), desc); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("want ErrFailedPrecondition, got %v", err)
	}
	if _, err := s.Info(ctx, desc.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Info: %v", err)
	}
}

func TestWriterRefLocked(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	w, err := s.Writer(ctx, "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "ref", ocispec.Descriptor{}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second Writer: %v", err)
	}
	if err := s.Abort(ctx, "ref"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Abort of a held ref: %v", err)
	}
	if w2, err := s.Writer(ctx, "other ref", ocispec.Descriptor{}); err != nil {
		t.Fatalf("Writer of another ref: %v", err)
	} else {
		w2.Close()
	}
	w.Close()
	w, err = s.Writer(ctx, "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatalf("Writer after Close: %v", err)
	}
	w.Close()
}

func TestConcurrentWritersOfOneRef(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	data := randomBytes(t, 64<<10)
	desc := descOf("", data)
	const n = 16
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		won, unavailable int
		other            []error
		start            = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			err := content.WriteBlob(ctx, s, "one-ref", bytes.NewReader(data), desc)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, errdefs.ErrUnavailable):
				unavailable++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(other) > 0 || won < 1 || won+unavailable != n {
		t.Fatalf("won %d, unavailable %d, other errors %v", won, unavailable, other)
	}
	if b, err := content.ReadBlob(ctx, s, desc); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadBlob: %v", err)
	}
}

func TestTwoRefsForOneDigest(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	data := []byte("shared layer")
	desc := descOf("", data)
	w1, err := s.Writer(ctx, "pull-a", desc)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s.Writer(ctx, "pull-b", desc)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []content.Writer{w1, w2} {
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w1.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if err := w2.Commit(ctx, desc.Size, desc.Digest); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Commit: want ErrAlreadyExists, got %v", err)
	}
	if sts := statuses(t, s); len(sts) != 0 {
		t.Fatalf("ingests left: %+v", sts)
	}
	if _, err := s.Writer(ctx, "pull-c", desc); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("Writer of a present blob: %v", err)
	}
	if err := content.WriteBlob(ctx, s, "pull-d", bytes.NewReader(data), desc); err != nil {
		t.Fatalf("WriteBlob of a present blob: %v", err)
	}
	if err := s.Verify(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestTruncate(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	data := []byte("hello, content store")
	desc := descOf("", data)
	w, err := s.Writer(ctx, "ref", desc)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("garbage that is not the blob"))
	if err := w.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if st, _ := w.Status(); st.Offset != 0 || w.Digest() != digest.FromBytes(nil) {
		t.Fatalf("after Truncate(0): %+v %s", st, w.Digest())
	}
	w.Write(data[:7])
	w.Write([]byte("XXXX"))
	if err := w.Truncate(7); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != digest.FromBytes(data[:7]) {
		t.Fatalf("digest after Truncate(7): %s", w.Digest())
	}
	if err := w.Truncate(8); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Truncate beyond the offset: %v", err)
	}
	w.Write(data[7:])
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if b, err := content.ReadBlob(ctx, s, desc); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadBlob %q: %v", b, err)
	}
}

func TestHashCopiesTheRunningState(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	data := randomBytes(t, 10_000)
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		w, err := s.Writer(ctx, "ref-"+string(alg), ocispec.Descriptor{Digest: alg.FromBytes(data), Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data[:4000])
		h := w.Hash()
		if h == nil {
			t.Fatalf("%s: Hash() = nil", alg)
		}
		h.Write(data[4000:])
		if got := digest.NewDigest(alg, h); got != alg.FromBytes(data) {
			t.Fatalf("%s: a resumed hash gives %s", alg, got)
		}
		if w.Digest() != alg.FromBytes(data[:4000]) {
			t.Fatalf("%s: writing to the copy changed the writer", alg)
		}
		w.Close()
	}
}

func TestSHA512(t *testing.T) {
	ctx := context.Background()
	s, root := openStore(t)
	data := randomBytes(t, 50_000)
	desc := ocispec.Descriptor{Digest: digest.SHA512.FromBytes(data), Size: int64(len(data))}
	w, err := s.Writer(ctx, "sha512", desc)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:20_000])
	w.Close()
	if err := content.WriteBlob(ctx, s, "sha512", bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(blobFile(root, desc.Digest)); err != nil {
		t.Fatal(err)
	}
	if b, err := content.ReadBlob(ctx, s, desc); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("ReadBlob: %v", err)
	}
	if err := s.Verify(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	var walked []digest.Digest
	s.Walk(ctx, func(i content.Info) error { walked = append(walked, i.Digest); return nil })
	if len(walked) != 1 || walked[0] != desc.Digest {
		t.Fatalf("Walk = %v", walked)
	}
	// A sha256 expectation at Commit is checked against the same bytes.
	w, err = s.Writer(ctx, "mixed", ocispec.Descriptor{Digest: digest.SHA512.FromString("x"), Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	if err := w.Commit(ctx, 1, digest.SHA256.FromString("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, digest.SHA256.FromString("x")); err != nil {
		t.Fatal(err)
	}
}

func TestReadBlobIsBoundedAndVerified(t *testing.T) {
	ctx := context.Background()
	s, root := openStore(t)
	data := []byte(`{"a":"config"}`)
	desc := put(t, s, "", data)

	smaller := desc
	smaller.Size = 4
	if _, err := content.ReadBlob(ctx, s, smaller); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("blob larger than desc.Size: %v", err)
	}
	if _, err := s.ReaderAt(ctx, smaller); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("ReaderAt with a wrong size: %v", err)
	}
	zero := desc
	zero.Size = 0
	if _, err := content.ReadBlob(ctx, s, zero); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("ReadBlob with size 0: %v", err)
	}

	// Same length, other bytes: caught by the digest.
	p := blobFile(root, desc.Digest)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.ToUpper(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := content.ReadBlob(ctx, s, desc); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("ReadBlob of a tampered blob: %v", err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	s, root := openStore(t)
	desc := put(t, s, "", randomBytes(t, 1<<16))
	if err := s.Verify(ctx, desc.Digest); err != nil {
		t.Fatalf("Verify of an intact blob: %v", err)
	}
	p := blobFile(root, desc.Digest)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0}, 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := s.Verify(ctx, desc.Digest); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Verify of a tampered blob: %v", err)
	}
	if err := s.Verify(ctx, digest.FromString("absent")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Verify of an absent blob: %v", err)
	}
}

func TestAbort(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if err := s.Abort(ctx, "nothing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Abort of no ingest: %v", err)
	}
	w, err := s.Writer(ctx, "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	w.Close()
	if err := s.Abort(ctx, "ref"); err != nil {
		t.Fatal(err)
	}
	if sts := statuses(t, s); len(sts) != 0 {
		t.Fatalf("ingest left after Abort: %+v", sts)
	}
}

func BenchmarkWrite64MiB(b *testing.B) {
	ctx := context.Background()
	s, _ := openStore(b)
	data := randomBytes(b, 64<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := range b.N {
		// One byte differs per round, so every blob is new.
		b.StopTimer()
		data[0] = byte(i)
		desc := descOf("", data)
		b.StartTimer()
		if err := content.WriteBlob(ctx, s, "bench", bytes.NewReader(data), desc); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, desc.Digest); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// TestCommitCancelledKeepsTheData: a Commit whose context ends while it
// re-hashes for another algorithm fails without discarding good data.
func TestCommitCancelledKeepsTheData(t *testing.T) {
	s, _ := openStore(t)
	data := randomBytes(t, 1<<20)
	w, err := s.Writer(context.Background(), "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Commit(ctx, 0, digest.SHA512.FromBytes(data)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context: %v", err)
	}
	w, err = s.Writer(context.Background(), "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := w.Status(); st.Offset != int64(len(data)) {
		t.Fatalf("offset after a cancelled Commit: %d", st.Offset)
	}
	if err := w.Commit(context.Background(), 0, digest.SHA512.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
}

// OpenWriter waits while another writer holds the ref: it gets
// ErrAlreadyExists once that one commits the blob, and the ingest when that
// one is closed without; it gives up when its context ends.
func TestOpenWriterWaitsForTheHolder(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	data := []byte("shared layer")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}

	first, err := s.Writer(ctx, "pull-x", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "pull-x", desc); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second Writer while the first holds the ref: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := content.OpenWriter(short, s, "pull-x", desc); !errors.Is(err, errdefs.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("OpenWriter until its deadline: %v", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		first.Write(data)
		first.Commit(ctx, desc.Size, desc.Digest)
	}()
	if _, err := content.OpenWriter(ctx, s, "pull-x", desc); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("OpenWriter after the holder committed: %v", err)
	}

	other := []byte("another")
	odesc := ocispec.Descriptor{Digest: digest.FromBytes(other), Size: int64(len(other))}
	holder, err := s.Writer(ctx, "pull-y", odesc)
	if err != nil {
		t.Fatal(err)
	}
	holder.Write(other[:3])
	go func() {
		time.Sleep(20 * time.Millisecond)
		holder.Close()
	}()
	w, err := content.OpenWriter(ctx, s, "pull-y", odesc)
	if err != nil {
		t.Fatalf("OpenWriter after the holder gave up: %v", err)
	}
	defer w.Close()
	if st, err := w.Status(); err != nil || st.Offset != 3 {
		t.Fatalf("taken over at %d, %v; want 3", st.Offset, err)
	}
}
