package image

import (
	"encoding/json"
	"fmt"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// Config is an image config: the OCI image config with the fields docker
// adds to its runtime part (Healthcheck, OnBuild, Shell), so that an image
// built by docker keeps them through berth. Its Config field shadows the
// embedded ocispec.Image.Config: read and write cfg.Config, never
// cfg.Image.Config.
type Config = dockerspec.DockerOCIImage

// DecodeConfig reads an image config blob. The bytes must match desc's
// digest and size; desc's media type, when set, must be an image config
// (OCI or Docker). The rootfs must be of type "layers" with valid diff
// IDs. Failures are errdefs.ErrInvalidArgument errors (a digest or size
// mismatch errdefs.ErrFailedPrecondition).
func DecodeConfig(desc ocispec.Descriptor, data []byte) (Config, error) {
	if desc.MediaType != "" && !IsConfig(desc.MediaType) {
		return Config{}, fmt.Errorf("%w: %s is %s, not an image config", errdefs.ErrInvalidArgument, desc.Digest, desc.MediaType)
	}
	if err := Verify(desc, data); err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := decodeStrict(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("%w: decode %s: %w", errdefs.ErrInvalidArgument, describe(desc), err)
	}
	if cfg.RootFS.Type != "layers" {
		return Config{}, fmt.Errorf("%w: decode %s: rootfs type %q, want \"layers\"", errdefs.ErrInvalidArgument, describe(desc), cfg.RootFS.Type)
	}
	for i, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return Config{}, fmt.Errorf("%w: decode %s: diff ID %d: %w", errdefs.ErrInvalidArgument, describe(desc), i, err)
		}
	}
	return cfg, nil
}

// EncodeConfig is the JSON of cfg and its descriptor with mediaType (use
// MediaTypeOCIConfig or MediaTypeDockerConfig). The digest of this
// encoding is the image's ID.
func EncodeConfig(cfg Config, mediaType string) ([]byte, ocispec.Descriptor, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("encode image config: %w", err)
	}
	return data, Descriptor(mediaType, data), nil
}

// ID is an image's ID: the digest of its config blob, as docker has it
// since 1.10.
func ID(config ocispec.Descriptor) digest.Digest { return config.Digest }

// ChainIDs returns the chain ID of each layer of an image whose layers
// have diffIDs, bottom first, as the OCI image spec defines it: the first
// layer's chain ID is its diff ID, each next one is
// sha256(chainID(previous) + " " + diffID). A chain ID names a layer
// together with everything under it, so it keys unpacked snapshots.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	ids := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			ids[i] = d
			continue
		}
		ids[i] = digest.FromString(ids[i-1].String() + " " + d.String())
	}
	return ids
}

// ChainID is the chain ID of the top layer (ChainIDs' last), or "" for no
// layers.
func ChainID(diffIDs []digest.Digest) digest.Digest {
	if len(diffIDs) == 0 {
		return ""
	}
	return ChainIDs(diffIDs)[len(diffIDs)-1]
}

// Missing is what `docker history` prints for the ID of a step whose
// image it does not have.
const Missing = "<missing>"

// HistoryEntry is one row of `docker history`.
type HistoryEntry struct {
	// ID is the image ID for the image's own (last) step and Missing for
	// the steps below it, whose intermediate images a pulled image does not
	// carry.
	ID         string
	Created    *time.Time
	CreatedBy  string
	Comment    string
	Author     string
	Size       int64 // bytes the step's layer adds (uncompressed); 0 for empty layers
	EmptyLayer bool
	// Layer is the index in the config's rootfs of the step's layer, -1
	// for a step that made none.
	Layer int
}

// History returns the rows of `docker history` for the image id with
// config cfg, newest step first. layerSizes[i] is the uncompressed size
// of the i-th layer (the same order as cfg.RootFS.DiffIDs); it may be
// shorter, the missing sizes counting as 0. Each history entry without
// empty_layer takes the next layer. An image without history (some tools
// write none) gets one row per layer with nothing but its size. More
// non-empty steps than layers is an errdefs.ErrInvalidArgument error, as
// in docker.
func History(cfg Config, id digest.Digest, layerSizes []int64) ([]HistoryEntry, error) {
	size := func(i int) int64 {
		if i < len(layerSizes) {
			return layerSizes[i]
		}
		return 0
	}
	nlayers := len(cfg.RootFS.DiffIDs)
	var rows []HistoryEntry
	if len(cfg.History) == 0 {
		for i := range nlayers {
			rows = append(rows, HistoryEntry{Size: size(i), Layer: i})
		}
	}
	layer := 0
	for _, h := range cfg.History {
		row := HistoryEntry{Created: h.Created, CreatedBy: h.CreatedBy, Comment: h.Comment, Author: h.Author, EmptyLayer: h.EmptyLayer, Layer: -1}
		if !h.EmptyLayer {
			if layer >= nlayers {
				return nil, fmt.Errorf("%w: image %s: history has more non-empty steps than the %d layers", errdefs.ErrInvalidArgument, id, nlayers)
			}
			row.Layer, row.Size = layer, size(layer)
			layer++
		}
		rows = append(rows, row)
	}
	// Newest first, the image's own ID on top.
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	for i := range rows {
		rows[i].ID = Missing
	}
	if len(rows) > 0 {
		rows[0].ID = id.String()
	}
	return rows, nil
}
