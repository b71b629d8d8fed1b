package content

import (
	"berth.dev/internal/atomicfile"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestCrashAfterLinkLeavesAStaleIngest: a Commit that dies after linking the
// data into blobs/ but before removing the ingest leaves data that is the
// blob's own inode. A later Writer for the ref must not write into it.
func TestCrashAfterLinkLeavesAStaleIngest(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("committed blob")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := WriteBlob(ctx, s, "first", bytes.NewReader(blob), desc); err != nil {
		t.Fatal(err)
	}
	// Rebuild what the crash would have left: the ingest, its data a
	// read-only hard link of the blob.
	name := ingestName("pull")
	dir := s.path(ingestDir, name)
	w, err := s.createIngest(dir, name, ingestMeta{ref: "pull", startedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	w.finish()
	data := filepath.Join(dir, ingestDataFile)
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	blobPath, _ := s.blobPath(desc.Digest)
	if err := os.Link(blobPath, data); err != nil {
		t.Fatal(err)
	}

	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := s.Writer(ctx, "pull", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := nw.Status(); st.Offset != 0 {
		t.Fatalf("resumed a stale ingest at %d", st.Offset)
	}
	if _, err := nw.Write([]byte("something else")); err != nil {
		t.Fatal(err)
	}
	if err := nw.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, desc.Digest); err != nil {
		t.Fatalf("the committed blob changed: %v", err)
	}
}

// TestOpenRemovesHalfMadeIngests: an ingest directory still under its
// temporary name was being created when the process died.
func TestOpenRemovesHalfMadeIngests(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(s.path(ingestDir), tmpPrefix+"123")
	if err := os.Mkdir(half, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, ingestRefFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Fatalf("half-made ingest survived Open: %v", err)
	}
}

// TestOpenRemovesHalfWrittenIndex: a crash in the middle of writing
// index.json leaves its temp file, which the next Open removes; the
// index itself is untouched.
func TestOpenRemovesHalfWrittenIndex(t *testing.T) {
	root := t.TempDir()
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(root, atomicfile.TempPrefix(ocispec.ImageIndexFile)+"123")
	if err := os.WriteFile(half, []byte(`{"schemaVer`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Fatalf("half-written index.json survived Open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ocispec.ImageIndexFile)); err != nil {
		t.Fatalf("index.json: %v", err)
	}
}

// TestUnreadableIngestStartsOver: an ingest whose records a crash emptied is
// replaced by a fresh one.
func TestUnreadableIngestStartsOver(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Writer(ctx, "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	w.Close()
	dir := s.path(ingestDir, ingestName("ref"))
	if err := os.WriteFile(filepath.Join(dir, ingestStartedAtFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err = s.Writer(ctx, "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if st, _ := w.Status(); st.Offset != 0 {
		t.Fatalf("resumed an unreadable ingest at %d", st.Offset)
	}
}
