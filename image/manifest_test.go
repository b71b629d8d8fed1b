package image

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

var (
	testConfig = ocispec.Descriptor{MediaType: MediaTypeOCIConfig, Digest: digest.FromString("config"), Size: 6}
	testLayer  = ocispec.Descriptor{MediaType: MediaTypeOCILayerGzip, Digest: digest.FromString("layer"), Size: 5}
)

func TestDecode(t *testing.T) {
	ociManifest := `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":` + jsonOf(t, testConfig) + `,"layers":[` + jsonOf(t, testLayer) + `]}`
	bareManifest := `{"schemaVersion":2,"config":` + jsonOf(t, testConfig) + `,"layers":[]}`
	dockerManifest := `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":{"mediaType":"` + MediaTypeDockerConfig + `","digest":"` + testConfig.Digest.String() + `","size":6},"layers":[{"mediaType":"` + MediaTypeDockerLayer + `","digest":"` + testLayer.Digest.String() + `","size":5}]}`
	entry := `{"mediaType":"` + MediaTypeOCIManifest + `","digest":"` + digest.FromString("m").String() + `","size":1,"platform":{"os":"linux","architecture":"amd64"}}`
	ociIndex := `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIIndex + `","manifests":[` + entry + `]}`
	bareIndex := `{"schemaVersion":2,"manifests":[` + entry + `]}`
	dockerList := `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifestList + `","manifests":[` + entry + `]}`

	for _, tc := range []struct {
		name      string
		descType  string // media type of the descriptor
		doc       string
		wantType  string
		wantIndex bool
	}{
		{"oci manifest", MediaTypeOCIManifest, ociManifest, MediaTypeOCIManifest, false},
		{"oci manifest, untyped descriptor", "", ociManifest, MediaTypeOCIManifest, false},
		{"oci manifest without mediaType", MediaTypeOCIManifest, bareManifest, MediaTypeOCIManifest, false},
		{"manifest by shape", "", bareManifest, MediaTypeOCIManifest, false},
		{"docker manifest", MediaTypeDockerManifest, dockerManifest, MediaTypeDockerManifest, false},
		{"docker manifest, untyped descriptor", "", dockerManifest, MediaTypeDockerManifest, false},
		{"oci index", MediaTypeOCIIndex, ociIndex, MediaTypeOCIIndex, true},
		{"oci index without mediaType", MediaTypeOCIIndex, bareIndex, MediaTypeOCIIndex, true},
		{"index by shape", "", bareIndex, MediaTypeOCIIndex, true},
		{"docker manifest list", MediaTypeDockerManifestList, dockerList, MediaTypeDockerManifestList, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desc := Descriptor(tc.descType, []byte(tc.doc))
			doc, err := Decode(desc, []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if doc.MediaType != tc.wantType {
				t.Errorf("MediaType = %q, want %q", doc.MediaType, tc.wantType)
			}
			if tc.wantIndex {
				if doc.Index == nil || doc.Manifest != nil {
					t.Fatalf("want an index, got %+v", doc)
				}
				if len(doc.Index.Manifests) != 1 || doc.Index.Manifests[0].Platform.Architecture != "amd64" {
					t.Errorf("index manifests = %+v", doc.Index.Manifests)
				}
				return
			}
			if doc.Manifest == nil || doc.Index != nil {
				t.Fatalf("want a manifest, got %+v", doc)
			}
			if doc.Manifest.Config.Digest != testConfig.Digest {
				t.Errorf("config digest = %s", doc.Manifest.Config.Digest)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	ociManifest := `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIManifest + `","config":` + jsonOf(t, testConfig) + `,"layers":[]}`
	schema1 := `{"schemaVersion":1,"name":"library/busybox","tag":"latest","architecture":"amd64","fsLayers":[{"blobSum":"` + digest.FromString("x").String() + `"}],"history":[]}`
	for _, tc := range []struct {
		name     string
		descType string
		doc      string
		mangle   func(*ocispec.Descriptor)
		want     error
	}{
		{"schema 1 by descriptor", MediaTypeDockerSchema1, schema1, nil, errdefs.ErrNotImplemented},
		{"signed schema 1 by descriptor", MediaTypeDockerSchema1Signed, schema1, nil, errdefs.ErrNotImplemented},
		{"schema 1 by content", "", schema1, nil, errdefs.ErrNotImplemented},
		{"schema 1 under a schema 2 type", MediaTypeDockerManifest, schema1, nil, errdefs.ErrNotImplemented},
		{"mediaType disagrees", MediaTypeOCIIndex, ociManifest, nil, errdefs.ErrInvalidArgument},
		{"docker type, oci document", MediaTypeDockerManifest, ociManifest, nil, errdefs.ErrInvalidArgument},
		{"not JSON", MediaTypeOCIManifest, "manifest", nil, errdefs.ErrInvalidArgument},
		{"trailing data", MediaTypeOCIManifest, ociManifest + "{}", nil, errdefs.ErrInvalidArgument},
		{"schemaVersion 3", MediaTypeOCIManifest, strings.Replace(ociManifest, `"schemaVersion":2`, `"schemaVersion":3`, 1), nil, errdefs.ErrInvalidArgument},
		{"manifest under an index type", MediaTypeOCIIndex, `{"schemaVersion":2,"config":` + jsonOf(t, testConfig) + `,"layers":[]}`, nil, errdefs.ErrInvalidArgument},
		{"index under a manifest type", MediaTypeDockerManifest, `{"schemaVersion":2,"manifests":[]}`, nil, errdefs.ErrInvalidArgument},
		{"unknown shape", "", `{"schemaVersion":2}`, nil, errdefs.ErrInvalidArgument},
		{"a config is no manifest", MediaTypeOCIConfig, `{"schemaVersion":2}`, nil, errdefs.ErrInvalidArgument},
		{"bad config digest", MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:12","size":1},"layers":[]}`, nil, errdefs.ErrInvalidArgument},
		{"digest mismatch", MediaTypeOCIManifest, ociManifest, func(d *ocispec.Descriptor) { d.Digest = digest.FromString("other") }, errdefs.ErrFailedPrecondition},
		{"size mismatch", MediaTypeOCIManifest, ociManifest, func(d *ocispec.Descriptor) { d.Size++ }, errdefs.ErrFailedPrecondition},
		{"malformed digest", MediaTypeOCIManifest, ociManifest, func(d *ocispec.Descriptor) { d.Digest = "sha256:zz" }, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desc := Descriptor(tc.descType, []byte(tc.doc))
			if tc.mangle != nil {
				tc.mangle(&desc)
			}
			doc, err := Decode(desc, []byte(tc.doc))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %+v, %v; want %v", doc, err, tc.want)
			}
			if tc.want == errdefs.ErrNotImplemented && !strings.Contains(err.Error(), "schema 1 manifests are not supported") {
				t.Errorf("schema 1 error does not say so: %v", err)
			}
		})
	}
}

func TestLayerMediaTypes(t *testing.T) {
	for _, tc := range []struct {
		mt      string
		c       Compression
		layer   bool
		foreign bool
	}{
		{MediaTypeOCILayer, Uncompressed, true, false},
		{MediaTypeOCILayerGzip, Gzip, true, false},
		{MediaTypeOCILayerZstd, Zstd, true, false},
		{MediaTypeOCILayerForeignGzip, Gzip, true, true},
		{MediaTypeDockerLayer, Gzip, true, false},
		{MediaTypeDockerForeignLayer, Gzip, true, true},
		{MediaTypeDockerLayerTar, Uncompressed, true, false},
		{MediaTypeOCIConfig, Uncompressed, false, false},
		{"application/octet-stream", Uncompressed, false, false},
	} {
		c, ok := LayerCompression(tc.mt)
		if c != tc.c || ok != tc.layer {
			t.Errorf("LayerCompression(%s) = %q, %v", tc.mt, c, ok)
		}
		if got := IsForeignLayer(tc.mt); got != tc.foreign {
			t.Errorf("IsForeignLayer(%s) = %v", tc.mt, got)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
