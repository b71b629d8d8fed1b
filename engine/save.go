package engine

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/image"
)

// dockerManifestEntry is one image of a docker save archive's
// manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Save writes the named images as one tar archive that is at once an OCI
// image layout (oci-layout, index.json, blobs/sha256/...) and a docker save
// archive (manifest.json and repositories pointing into blobs/), as docker
// 25 and later write it: docker, podman and skopeo load either view. The
// blobs are the stored ones, so the manifests keep their digests.
func (s *Images) Save(ctx context.Context, names []string, w io.Writer) error {
	type saved struct {
		res  *resolved
		tags []reference.NamedTagged
		mdsc ocispec.Descriptor
	}
	byID := map[digest.Digest]*saved{}
	var order []digest.Digest
	for _, name := range names {
		m, err := s.lookup(ctx, name)
		if err != nil {
			return noSuchImage(name, err)
		}
		sv := byID[m.ID]
		if sv == nil {
			res, err := s.load(ctx, m.Images[0])
			if err != nil {
				return err
			}
			mdesc, err := s.platformManifest(ctx, m.Images[0].Target)
			if err != nil {
				return err
			}
			sv = &saved{res: res, mdsc: mdesc}
			byID[m.ID] = sv
			order = append(order, m.ID)
		}
		// A name saves that tag; an ID saves every tag of the image.
		for _, rec := range m.Images {
			if m.Name != "" && rec.Name != m.Name {
				continue
			}
			if ref, err := rec.Reference(); err == nil {
				if t, ok := ref.(reference.NamedTagged); ok {
					sv.tags = append(sv.tags, t)
				}
			}
		}
	}

	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	mtime := time.Unix(0, 0)
	writeFile := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	writeBlob := func(desc ocispec.Descriptor) error {
		if written[desc.Digest] {
			return nil
		}
		written[desc.Digest] = true
		ra, err := s.content.ReaderAt(ctx, desc)
		if err != nil {
			return err
		}
		defer ra.Close()
		name := path.Join("blobs", desc.Digest.Algorithm().String(), desc.Digest.Encoded())
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: ra.Size(), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, io.NewSectionReader(ra, 0, ra.Size()))
		return err
	}
	blobPath := func(d digest.Digest) string { return path.Join("blobs", d.Algorithm().String(), d.Encoded()) }

	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	index.SchemaVersion = 2
	var dockerManifest []dockerManifestEntry
	repositories := map[string]map[string]string{}
	if err := writeFile("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	for _, id := range order {
		sv := byID[id]
		if err := writeBlob(sv.mdsc); err != nil {
			return err
		}
		if err := writeBlob(sv.res.manifest.Config); err != nil {
			return err
		}
		entry := dockerManifestEntry{Config: blobPath(sv.res.manifest.Config.Digest), RepoTags: []string{}}
		for _, l := range sv.res.manifest.Layers {
			if err := writeBlob(l); err != nil {
				return err
			}
			entry.Layers = append(entry.Layers, blobPath(l.Digest))
		}
		sort.Slice(sv.tags, func(i, j int) bool { return sv.tags[i].String() < sv.tags[j].String() })
		for _, t := range sv.tags {
			fam := image.FamiliarString(t)
			entry.RepoTags = append(entry.RepoTags, fam)
			repo := image.FamiliarName(t)
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			repositories[repo][t.Tag()] = id.Encoded()
			d := sv.mdsc
			d.Annotations = map[string]string{
				"io.containerd.image.name": t.String(),
				ocispec.AnnotationRefName:  t.Tag(),
			}
			index.Manifests = append(index.Manifests, d)
		}
		if len(sv.tags) == 0 {
			index.Manifests = append(index.Manifests, sv.mdsc)
		}
		dockerManifest = append(dockerManifest, entry)
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"index.json", index}, {"manifest.json", dockerManifest}, {"repositories", repositories}} {
		data, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeFile(f.name, data); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	for _, id := range order {
		s.events.Publish(events.ImageEventType, events.ActionSave, id.String(), nil)
	}
	return nil
}
