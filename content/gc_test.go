package content_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/content"
	"berth.dev/internal/errdefs"
)

func putJSON(t *testing.T, s *content.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return put(t, s, mediaType, b)
}

func manifest(mediaType string, config ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Manifest {
	return ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mediaType, Config: config, Layers: layers}
}

func index(mediaType string, manifests ...ocispec.Descriptor) ocispec.Index {
	return ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mediaType, Manifests: manifests}
}

// tree is a store with two images and some garbage.
type tree struct {
	s    *content.Store
	root string
	// OCI: index -> manifest -> config + layer1, layer2; the index also
	// names a manifest for another platform that was never pulled.
	ociIndex, ociManifest, config, layer1, layer2 ocispec.Descriptor
	// Docker: manifest list -> manifest -> config2 + layer1 (shared), layer3.
	dockerList, dockerManifest, config2, layer3 ocispec.Descriptor
	// Reached from nothing.
	orphan, orphanManifest, orphanLayer ocispec.Descriptor
}

func newTree(t *testing.T, opts ...content.Option) *tree {
	s, root := openStore(t, opts...)
	tr := &tree{s: s, root: root}
	tr.config = put(t, s, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux"}`))
	tr.layer1 = put(t, s, ocispec.MediaTypeImageLayerGzip, randomBytes(t, 3000))
	tr.layer2 = put(t, s, ocispec.MediaTypeImageLayerGzip, randomBytes(t, 2000))
	tr.ociManifest = putJSON(t, s, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, tr.config, tr.layer1, tr.layer2))
	absent := descOf(ocispec.MediaTypeImageManifest, []byte("a manifest for arm64, never pulled"))
	tr.ociIndex = putJSON(t, s, ocispec.MediaTypeImageIndex, index(ocispec.MediaTypeImageIndex, tr.ociManifest, absent))

	tr.config2 = put(t, s, "application/vnd.docker.container.image.v1+json", []byte(`{"os":"linux"}`))
	tr.layer3 = put(t, s, "application/vnd.docker.image.rootfs.diff.tar.gzip", randomBytes(t, 1000))
	tr.dockerManifest = putJSON(t, s, content.MediaTypeDockerManifest, manifest(content.MediaTypeDockerManifest, tr.config2, tr.layer1, tr.layer3))
	tr.dockerList = putJSON(t, s, content.MediaTypeDockerManifestList, index(content.MediaTypeDockerManifestList, tr.dockerManifest))

	tr.orphan = put(t, s, "", randomBytes(t, 500))
	tr.orphanLayer = put(t, s, ocispec.MediaTypeImageLayer, randomBytes(t, 700))
	tr.orphanManifest = putJSON(t, s, ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageManifest, tr.config, tr.orphanLayer))
	return tr
}

func (tr *tree) present(t *testing.T) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	if err := tr.s.Walk(context.Background(), func(i content.Info) error { out = append(out, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	return sorted(out)
}

func digests(descs ...ocispec.Descriptor) []digest.Digest {
	out := make([]digest.Digest, 0, len(descs))
	for _, d := range descs {
		out = append(out, d.Digest)
	}
	return sorted(out)
}

func sorted(ds []digest.Digest) []digest.Digest {
	ds = slices.Clone(ds)
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

func sizes(descs ...ocispec.Descriptor) int64 {
	var n int64
	for _, d := range descs {
		n += d.Size
	}
	return n
}

func TestChildren(t *testing.T) {
	ctx := context.Background()
	tr := newTree(t)
	tests := []struct {
		name string
		desc ocispec.Descriptor
		want []ocispec.Descriptor
	}{
		{"OCI index", tr.ociIndex, nil}, // filled below: includes the absent manifest
		{"OCI manifest", tr.ociManifest, []ocispec.Descriptor{tr.config, tr.layer1, tr.layer2}},
		{"Docker manifest list", tr.dockerList, []ocispec.Descriptor{tr.dockerManifest}},
		{"Docker manifest", tr.dockerManifest, []ocispec.Descriptor{tr.config2, tr.layer1, tr.layer3}},
		{"config is a leaf", tr.config, nil},
		{"layer is a leaf", tr.layer1, nil},
		{"unknown media type is a leaf", ocispec.Descriptor{MediaType: "application/x-whatever", Digest: tr.ociManifest.Digest, Size: tr.ociManifest.Size}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := content.Children(ctx, tr.s, tc.desc)
			if err != nil {
				t.Fatal(err)
			}
			if tc.desc.Digest == tr.ociIndex.Digest {
				if len(got) != 2 || got[0].Digest != tr.ociManifest.Digest {
					t.Fatalf("Children = %v", got)
				}
				return
			}
			if !slices.Equal(digests(got...), digests(tc.want...)) {
				t.Fatalf("Children = %v, want %v", digests(got...), digests(tc.want...))
			}
		})
	}

	t.Run("absent manifest", func(t *testing.T) {
		_, err := content.Children(ctx, tr.s, descOf(ocispec.MediaTypeImageManifest, []byte("never stored")))
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})
	t.Run("manifest that is not JSON", func(t *testing.T) {
		bad := put(t, tr.s, ocispec.MediaTypeImageManifest, []byte("not json"))
		if _, err := content.Children(ctx, tr.s, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("want ErrInvalidArgument, got %v", err)
		}
	})
	t.Run("manifest too large", func(t *testing.T) {
		big := tr.ociManifest
		big.Size = content.MaxManifestSize + 1
		if _, err := content.Children(ctx, tr.s, big); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("want ErrInvalidArgument, got %v", err)
		}
	})
}

func TestPruneKeepsWhatRootsReach(t *testing.T) {
	ctx := context.Background()
	tr := newTree(t)
	release := tr.s.Protect(tr.orphanManifest.Digest)

	report, err := tr.s.Prune(ctx, []ocispec.Descriptor{tr.ociIndex, tr.dockerList})
	if err != nil {
		t.Fatal(err)
	}
	// The protected manifest keeps what it points to: orphanLayer.
	kept := digests(tr.ociIndex, tr.ociManifest, tr.config, tr.layer1, tr.layer2,
		tr.dockerList, tr.dockerManifest, tr.config2, tr.layer3,
		tr.orphanManifest, tr.orphanLayer)
	if got := tr.present(t); !slices.Equal(got, kept) {
		t.Fatalf("after Prune: %v\nwant %v", got, kept)
	}
	if !slices.Equal(sorted(report.Blobs), digests(tr.orphan)) || report.BlobBytes != tr.orphan.Size {
		t.Fatalf("report = %+v", report)
	}

	release()
	release() // twice is harmless
	report, err = tr.s.Prune(ctx, []ocispec.Descriptor{tr.ociIndex})
	if err != nil {
		t.Fatal(err)
	}
	gone := []ocispec.Descriptor{tr.dockerList, tr.dockerManifest, tr.config2, tr.layer3, tr.orphanManifest, tr.orphanLayer}
	if !slices.Equal(sorted(report.Blobs), digests(gone...)) || report.BlobBytes != sizes(gone...) {
		t.Fatalf("report = %v, want %v", sorted(report.Blobs), digests(gone...))
	}
	if got := tr.present(t); !slices.Equal(got, digests(tr.ociIndex, tr.ociManifest, tr.config, tr.layer1, tr.layer2)) {
		t.Fatalf("after the second Prune: %v", got)
	}

	if _, err := tr.s.Prune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := tr.present(t); len(got) != 0 {
		t.Fatalf("Prune without roots kept %v", got)
	}
}

func TestProtectNests(t *testing.T) {
	ctx := context.Background()
	tr := newTree(t)
	r1 := tr.s.Protect(tr.orphan.Digest)
	r2 := tr.s.Protect(tr.orphan.Digest, tr.layer3.Digest)
	r1()
	if _, err := tr.s.Prune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := tr.present(t); !slices.Equal(got, digests(tr.orphan, tr.layer3)) {
		t.Fatalf("kept %v", got)
	}
	r2()
	if _, err := tr.s.Prune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := tr.present(t); len(got) != 0 {
		t.Fatalf("kept %v after release", got)
	}
}

func TestPruneStopsOnAnUnreadableManifest(t *testing.T) {
	ctx := context.Background()
	tr := newTree(t)
	before := tr.present(t)
	bad := put(t, tr.s, ocispec.MediaTypeImageManifest, []byte("{not json"))
	if _, err := tr.s.Prune(ctx, []ocispec.Descriptor{tr.ociIndex, bad}); err == nil {
		t.Fatal("Prune walked past a manifest it could not parse")
	}
	if got := tr.present(t); !slices.Equal(got, sorted(append(before, bad.Digest))) {
		t.Fatalf("Prune deleted blobs before failing: %v", got)
	}
}

func TestPruneHonoursTheLayoutIndex(t *testing.T) {
	ctx := context.Background()
	tr := newTree(t)
	b, err := json.Marshal(index(ocispec.MediaTypeImageIndex, tr.ociManifest))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr.root, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.s.Prune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := tr.present(t); !slices.Equal(got, digests(tr.ociManifest, tr.config, tr.layer1, tr.layer2)) {
		t.Fatalf("kept %v", got)
	}
}

func TestPruneIngests(t *testing.T) {
	ctx := context.Background()
	s, root := openStore(t)
	ingestData := func(ref string) string {
		return filepath.Join(root, "ingest", digest.FromString(ref).Encoded(), "data")
	}
	age := func(ref string, d time.Duration) {
		t.Helper()
		old := time.Now().Add(-d)
		if err := os.Chtimes(ingestData(ref), old, old); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"old", "fresh", "open"} {
		w, err := s.Writer(ctx, ref, ocispec.Descriptor{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial " + ref))
		w.Close()
	}
	age("old", 48*time.Hour)
	open, err := s.Writer(ctx, "open", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	age("open", 48*time.Hour)
	// An ingest directory without its records, as a crash can leave.
	broken := filepath.Join(root, "ingest", "broken")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(broken, old, old); err != nil {
		t.Fatal(err)
	}

	report, err := s.Prune(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(report.Ingests)
	if !slices.Equal(report.Ingests, []string{"broken", "old"}) {
		t.Fatalf("removed ingests %v", report.Ingests)
	}
	refs := func() []string {
		var out []string
		for _, st := range statuses(t, s) {
			out = append(out, st.Ref)
		}
		sort.Strings(out)
		return out
	}
	if got := refs(); !slices.Equal(got, []string{"fresh", "open"}) {
		t.Fatalf("ingests left %v", got)
	}

	if _, err := s.Prune(ctx, nil, content.WithIngestAge(0)); err != nil {
		t.Fatal(err)
	}
	if got := refs(); !slices.Equal(got, []string{"open"}) {
		t.Fatalf("age 0 left %v; want only the one a Writer holds", got)
	}
	if _, err := open.Write([]byte(" and more")); err != nil {
		t.Fatal(err)
	}
	open.Close()
	if _, err := s.Prune(ctx, nil, content.WithIngestAge(0)); err != nil {
		t.Fatal(err)
	}
	if got := refs(); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
}

func TestPruneIngestAgeUsesTheClock(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s, _ := openStore(t, content.WithClock(func() time.Time { return now }))
	w, err := s.Writer(ctx, "ref", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	w.Close()
	if r, err := s.Prune(ctx, nil, content.WithIngestAge(time.Hour)); err != nil || len(r.Ingests) != 0 {
		t.Fatalf("a fresh ingest was pruned: %+v %v", r, err)
	}
	now = now.Add(2 * time.Hour)
	if r, err := s.Prune(ctx, nil, content.WithIngestAge(time.Hour)); err != nil || !slices.Equal(r.Ingests, []string{"ref"}) {
		t.Fatalf("an ingest idle for 2h survived a 1h age: %+v %v", r, err)
	}
}
