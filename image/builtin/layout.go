package builtin

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/image"
)

// imageSpec is what a built-in image is made of: the files of its one
// layer, its runtime config and what its history says made the layer.
type imageSpec struct {
	entries   []entry
	config    ocispec.ImageConfig
	createdBy string
}

// builtImage is an image ready to archive: its blobs by digest and the
// descriptors that point at them.
type builtImage struct {
	blobs    map[digest.Digest][]byte
	manifest ocispec.Descriptor // with the platform, as index.json lists it
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
}

// build makes the layer, the config and the manifest of spec for platform,
// every time set to created.
func build(spec imageSpec, platform ocispec.Platform, created time.Time) (builtImage, error) {
	l, err := buildLayer(spec.entries, created)
	if err != nil {
		return builtImage{}, err
	}
	layerDesc := image.Descriptor(image.MediaTypeOCILayerGzip, l.blob)

	var cfg image.Config
	cfg.Created = &created
	cfg.Architecture = platform.Architecture
	cfg.OS = platform.OS
	cfg.Variant = platform.Variant
	cfg.Config.ImageConfig = spec.config
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.diffID}}
	cfg.History = []ocispec.History{
		{Created: &created, CreatedBy: spec.createdBy},
		{Created: &created, CreatedBy: cmdHistory(spec.config.Cmd), EmptyLayer: true},
	}
	cfgData, cfgDesc, err := image.EncodeConfig(cfg, image.MediaTypeOCIConfig)
	if err != nil {
		return builtImage{}, err
	}

	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: image.MediaTypeOCIManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	}
	mData, err := json.Marshal(m)
	if err != nil {
		return builtImage{}, fmt.Errorf("encode manifest: %w", err)
	}
	mDesc := image.Descriptor(image.MediaTypeOCIManifest, mData)
	mDesc.Platform = &platform
	return builtImage{
		blobs: map[digest.Digest][]byte{
			layerDesc.Digest: l.blob,
			cfgDesc.Digest:   cfgData,
			mDesc.Digest:     mData,
		},
		manifest: mDesc,
		config:   cfgDesc,
		layers:   m.Layers,
	}, nil
}

// cmdHistory is the created_by of the config-only history entry, in the
// form docker build writes for a CMD instruction.
func cmdHistory(cmd []string) string {
	data, _ := json.Marshal(cmd) // a []string always encodes
	return "CMD " + string(data)
}

// dockerManifestEntry is the one entry of a docker save manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// blobPath is where a blob lives in an OCI image layout.
func blobPath(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// writeArchive writes img, named ref, as an OCI image layout tar with a
// docker manifest.json. Members are sorted by name and carry mtime as
// their time, so the archive depends on its arguments alone.
func writeArchive(w io.Writer, ref reference.NamedTagged, img builtImage, mtime time.Time) error {
	files := map[string][]byte{}
	for d, data := range img.blobs {
		files[blobPath(d)] = data
	}

	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	files[ocispec.ImageLayoutFile] = layout

	target := img.manifest
	target.Annotations = map[string]string{
		"io.containerd.image.name": ref.String(),
		ocispec.AnnotationRefName:  ref.Tag(),
	}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: image.MediaTypeOCIIndex,
		Manifests: []ocispec.Descriptor{target},
	}
	if files[ocispec.ImageIndexFile], err = json.Marshal(idx); err != nil {
		return err
	}

	entry := dockerManifestEntry{
		Config:   blobPath(img.config.Digest),
		RepoTags: []string{image.FamiliarString(ref)},
	}
	for _, l := range img.layers {
		entry.Layers = append(entry.Layers, blobPath(l.Digest))
	}
	if files["manifest.json"], err = json.Marshal([]dockerManifestEntry{entry}); err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	dirs := []string{ocispec.ImageBlobsDir, path.Join(ocispec.ImageBlobsDir, digest.SHA256.String())}
	for _, d := range dirs {
		h := &tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		data := files[name]
		h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}
