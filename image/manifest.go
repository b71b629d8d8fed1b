package image

import (
	"bytes"
	_ "crypto/sha256" // go-digest computes sha256 digests only when the hash is linked in
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// Media types of image documents and layers. The OCI ones repeat ocispec's
// so that one list is here to read.
const (
	MediaTypeOCIIndex     = ocispec.MediaTypeImageIndex
	MediaTypeOCIManifest  = ocispec.MediaTypeImageManifest
	MediaTypeOCIConfig    = ocispec.MediaTypeImageConfig
	MediaTypeOCILayer     = ocispec.MediaTypeImageLayer
	MediaTypeOCILayerGzip = ocispec.MediaTypeImageLayerGzip
	MediaTypeOCILayerZstd = ocispec.MediaTypeImageLayerZstd
	// Non-distributable layers are deprecated by OCI but still found.
	MediaTypeOCILayerForeign     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	MediaTypeOCILayerForeignGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	MediaTypeOCILayerForeignZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	// Docker writes uncompressed layers with this type in `docker save`
	// archives of old; registries never serve it.
	MediaTypeDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"

	// Schema 1 manifests, signed or not, from docker before 1.10. berth
	// refuses them (ErrSchema1).
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// ErrSchema1 is the error, wrapping errdefs.ErrNotImplemented, for Docker
// schema 1 manifests.
var ErrSchema1 = fmt.Errorf("%w: schema 1 manifests are not supported", errdefs.ErrNotImplemented)

// IsIndex reports whether a media type is a list of manifests: an OCI
// index or a Docker manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == MediaTypeOCIIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether a media type is one image's manifest: OCI or
// Docker schema 2.
func IsManifest(mediaType string) bool {
	return mediaType == MediaTypeOCIManifest || mediaType == MediaTypeDockerManifest
}

// IsSchema1 reports whether a media type is a Docker schema 1 manifest.
func IsSchema1(mediaType string) bool {
	return mediaType == MediaTypeDockerSchema1 || mediaType == MediaTypeDockerSchema1Signed
}

// IsConfig reports whether a media type is an image config, OCI or
// Docker. A manifest whose config is anything else is an artifact, not an
// image that can run.
func IsConfig(mediaType string) bool {
	return mediaType == MediaTypeOCIConfig || mediaType == MediaTypeDockerConfig
}

// Compression is how a layer blob is compressed.
type Compression string

const (
	Uncompressed Compression = ""
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
)

// LayerCompression reports whether a media type is a filesystem layer
// and, if so, how it is compressed.
func LayerCompression(mediaType string) (Compression, bool) {
	switch mediaType {
	case MediaTypeOCILayer, MediaTypeOCILayerForeign, MediaTypeDockerLayerTar:
		return Uncompressed, true
	case MediaTypeOCILayerGzip, MediaTypeOCILayerForeignGzip, MediaTypeDockerLayer, MediaTypeDockerForeignLayer:
		return Gzip, true
	case MediaTypeOCILayerZstd, MediaTypeOCILayerForeignZstd:
		return Zstd, true
	}
	return Uncompressed, false
}

// IsForeignLayer reports whether a layer may be left out of pushes and
// exports (Windows base layers, OCI non-distributable layers).
func IsForeignLayer(mediaType string) bool {
	switch mediaType {
	case MediaTypeDockerForeignLayer, MediaTypeOCILayerForeign, MediaTypeOCILayerForeignGzip, MediaTypeOCILayerForeignZstd:
		return true
	}
	return false
}

// Document is a decoded index or manifest: exactly one of Index and
// Manifest is set. MediaType is the document's kind, from its descriptor
// or, when that had none, from the document itself.
type Document struct {
	MediaType string
	Index     *ocispec.Index
	Manifest  *ocispec.Manifest
}

// Decode reads an index or manifest. The bytes must match desc's digest
// and size (when desc has them); the document's mediaType field, when
// set, must agree with desc.MediaType; when desc has no media type the
// document's field or shape decides. Docker manifest lists and schema 2
// manifests decode into the OCI types, whose fields they share. Schema 1
// is ErrSchema1 (errdefs.ErrNotImplemented); other kinds and malformed
// documents are errdefs.ErrInvalidArgument errors, a digest or size
// mismatch errdefs.ErrFailedPrecondition.
func Decode(desc ocispec.Descriptor, data []byte) (Document, error) {
	if err := Verify(desc, data); err != nil {
		return Document{}, err
	}
	var head struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Document{}, fmt.Errorf("%w: decode %s: %w", errdefs.ErrInvalidArgument, describe(desc), err)
	}
	mt := desc.MediaType
	if IsSchema1(mt) || IsSchema1(head.MediaType) || head.SchemaVersion == 1 || head.FSLayers != nil {
		return Document{}, fmt.Errorf("decode %s: %w", describe(desc), ErrSchema1)
	}
	switch {
	case mt != "" && head.MediaType != "" && mt != head.MediaType:
		return Document{}, fmt.Errorf("%w: decode %s: the document says it is %s", errdefs.ErrInvalidArgument, describe(desc), head.MediaType)
	case mt == "" && head.MediaType != "":
		mt = head.MediaType
	case mt == "" && head.Manifests != nil:
		mt = MediaTypeOCIIndex
	case mt == "" && head.Config != nil:
		mt = MediaTypeOCIManifest
	}
	if head.SchemaVersion != 2 {
		return Document{}, fmt.Errorf("%w: decode %s: schemaVersion %d, want 2", errdefs.ErrInvalidArgument, describe(desc), head.SchemaVersion)
	}
	doc := Document{MediaType: mt}
	switch {
	case IsIndex(mt) && head.Manifests == nil:
		return Document{}, fmt.Errorf("%w: decode %s: an index without manifests", errdefs.ErrInvalidArgument, describe(desc))
	case IsManifest(mt) && head.Config == nil:
		return Document{}, fmt.Errorf("%w: decode %s: a manifest without config", errdefs.ErrInvalidArgument, describe(desc))
	case IsIndex(mt):
		doc.Index = new(ocispec.Index)
		if err := decodeStrict(data, doc.Index); err != nil {
			return Document{}, fmt.Errorf("%w: decode %s: %w", errdefs.ErrInvalidArgument, describe(desc), err)
		}
	case IsManifest(mt):
		doc.Manifest = new(ocispec.Manifest)
		if err := decodeStrict(data, doc.Manifest); err != nil {
			return Document{}, fmt.Errorf("%w: decode %s: %w", errdefs.ErrInvalidArgument, describe(desc), err)
		}
		if err := doc.Manifest.Config.Digest.Validate(); err != nil {
			return Document{}, fmt.Errorf("%w: decode %s: config: %w", errdefs.ErrInvalidArgument, describe(desc), err)
		}
		for i, l := range doc.Manifest.Layers {
			if err := l.Digest.Validate(); err != nil {
				return Document{}, fmt.Errorf("%w: decode %s: layer %d: %w", errdefs.ErrInvalidArgument, describe(desc), i, err)
			}
		}
	case mt == "":
		return Document{}, fmt.Errorf("%w: decode %s: neither an index nor a manifest", errdefs.ErrInvalidArgument, describe(desc))
	default:
		return Document{}, fmt.Errorf("%w: decode %s: media type %s is not an index or manifest", errdefs.ErrInvalidArgument, describe(desc), mt)
	}
	return doc, nil
}

// decodeStrict unmarshals one JSON value and refuses trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON document")
	}
	return nil
}

// Verify checks data against desc's digest and, when desc has one, its
// size. A descriptor without a digest verifies nothing; a malformed digest
// is errdefs.ErrInvalidArgument, a mismatch errdefs.ErrFailedPrecondition.
func Verify(desc ocispec.Descriptor, data []byte) error {
	if desc.Size > 0 && int64(len(data)) != desc.Size {
		return fmt.Errorf("%w: %s: %d bytes, the descriptor says %d", errdefs.ErrFailedPrecondition, describe(desc), len(data), desc.Size)
	}
	if desc.Digest == "" {
		return nil
	}
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: %s: %w", errdefs.ErrInvalidArgument, describe(desc), err)
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return fmt.Errorf("%w: %s: content has digest %s", errdefs.ErrFailedPrecondition, describe(desc), got)
	}
	return nil
}

// describe names a descriptor in messages.
func describe(desc ocispec.Descriptor) string {
	kind := "document"
	switch {
	case IsIndex(desc.MediaType):
		kind = "index"
	case IsManifest(desc.MediaType):
		kind = "manifest"
	case IsConfig(desc.MediaType):
		kind = "config"
	}
	if desc.Digest == "" {
		return kind
	}
	return kind + " " + desc.Digest.String()
}

// Descriptor returns the descriptor of data as a blob of mediaType.
func Descriptor(mediaType string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
}
