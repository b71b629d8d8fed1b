package engine

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/content"
	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

// Docker's media types for what a docker save archive holds.
const (
	mediaTypeDockerManifest    = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerConfig      = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer       = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeDockerLayerGzip   = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	maxLoadMetadataFile        = 16 << 20
	loadDirPrefix              = "load-"
	annotationContainerdImages = "io.containerd.image.name"
)

// Load reads an archive written by docker save (any version), podman save
// or an OCI image layout tar, stores its blobs (each checked against its
// digest), unpacks its layers and records its names. It returns a
// reference for each named image and the ID of each unnamed one. An archive
// is unpacked into a temp dir under the engine's root first (only regular
// files, directories and symlinks inside it), because its members come in
// no useful order; the dir is removed at the end.
func (s *Images) Load(ctx context.Context, r io.Reader, pw backend.ProgressWriter) ([]string, error) {
	defer s.unpacker.sync.poke() // the layers it unpacked: synced now
	tmp := filepath.Join(s.cfg.Root, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, loadDirPrefix)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := extractArchive(r, dir); err != nil {
		return nil, fmt.Errorf("%w: load: %w", errdefs.ErrInvalidArgument, err)
	}
	p := &reporter{w: pw}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		return s.loadDocker(ctx, dir, p)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return s.loadOCI(ctx, dir, p)
	}
	return nil, fmt.Errorf("%w: load: the archive has neither manifest.json (docker save) nor index.json (OCI layout)", errdefs.ErrInvalidArgument)
}

// extractArchive writes the regular files, directories and symlinks of a
// tar under dir. Names are cleaned and must stay inside dir; symlinks are
// kept as written and only followed later through openIn.
func extractArchive(r io.Reader, dir string) error {
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<20))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)[1:]
		if name == "" {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		default:
			return fmt.Errorf("%s: unexpected entry type %q in an image archive", h.Name, h.Typeflag)
		}
	}
}

// openIn opens name inside dir, following symlinks only while they stay
// inside dir (docker 25 archives link legacy layer paths to blobs/).
func openIn(dir, name string) (*os.File, error) {
	p := path.Clean("/" + name)
	for hops := 0; hops < 16; hops++ {
		full := filepath.Join(dir, filepath.FromSlash(p))
		st, err := os.Lstat(full)
		if err != nil {
			return nil, err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("%s is not a file", name)
			}
			return os.Open(full)
		}
		link, err := os.Readlink(full)
		if err != nil {
			return nil, err
		}
		if path.IsAbs(link) {
			p = path.Clean(link)
		} else {
			p = path.Clean(path.Join(path.Dir(p), link))
		}
	}
	return nil, fmt.Errorf("%s: too many symlinks", name)
}

func readJSONIn(dir, name string, v any) error {
	f, err := openIn(dir, name)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLoadMetadataFile+1))
	if err != nil {
		return err
	}
	if len(data) > maxLoadMetadataFile {
		return fmt.Errorf("%s is larger than %d bytes", name, maxLoadMetadataFile)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// storeFile puts a file of the archive into the content store and returns
// its descriptor: the digest it has, which the caller checks against what
// the archive claims.
func (s *Images) storeFile(ctx context.Context, dir, name, mediaType string) (desc ocispec.Descriptor, err error) {
	f, err := openIn(dir, name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer f.Close()
	// One pass: the store hashes what it is written, and the digest is
	// known at the end. The ingest has a name of its own, so a failed load
	// leaves nothing to resume: it is aborted.
	var rnd [8]byte
	rand.Read(rnd[:])
	ref := "load-" + hex.EncodeToString(rnd[:])
	w, err := s.content.Writer(ctx, ref, ocispec.Descriptor{})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer func() {
		w.Close()
		if err != nil {
			s.content.Abort(context.WithoutCancel(ctx), ref)
		}
	}()
	n, err := io.CopyBuffer(w, f, make([]byte, 1<<20))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc = ocispec.Descriptor{MediaType: mediaType, Digest: w.Digest(), Size: n}
	if err := w.Commit(ctx, n, desc.Digest); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

// loadDocker loads a docker save archive through its manifest.json.
func (s *Images) loadDocker(ctx context.Context, dir string, p *reporter) ([]string, error) {
	var entries []dockerManifestEntry
	if err := readJSONIn(dir, "manifest.json", &entries); err != nil {
		return nil, fmt.Errorf("%w: load: %w", errdefs.ErrInvalidArgument, err)
	}
	var loaded []string
	for _, e := range entries {
		cfgDesc, err := s.storeFile(ctx, dir, e.Config, mediaTypeDockerConfig)
		if err != nil {
			return loaded, fmt.Errorf("load: config %s: %w", e.Config, err)
		}
		cfgData, err := content.ReadBlob(ctx, s.content, cfgDesc)
		if err != nil {
			return loaded, err
		}
		cfg, err := image.DecodeConfig(cfgDesc, cfgData)
		if err != nil {
			return loaded, err
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return loaded, fmt.Errorf("%w: load: %s lists %d layers, its config %d", errdefs.ErrInvalidArgument, e.Config, len(e.Layers), len(cfg.RootFS.DiffIDs))
		}
		man := ocispec.Manifest{MediaType: mediaTypeDockerManifest, Config: cfgDesc}
		man.SchemaVersion = 2
		for i, lp := range e.Layers {
			desc, err := s.storeLayerFile(ctx, dir, lp, p)
			if err != nil {
				return loaded, err
			}
			if desc.MediaType == mediaTypeDockerLayer && desc.Digest != cfg.RootFS.DiffIDs[i] {
				return loaded, fmt.Errorf("%w: load: layer %s is %s, the config says %s", errdefs.ErrFailedPrecondition, lp, desc.Digest, cfg.RootFS.DiffIDs[i])
			}
			man.Layers = append(man.Layers, desc)
		}
		// The archive of docker 25+ (and berth) also holds the original
		// manifest: keep it, and so the image's digest, when it matches.
		mdata, mdesc, err := s.originalManifest(ctx, dir, man)
		if err != nil {
			return loaded, err
		}
		if err := s.storeBytes(ctx, mdesc, mdata); err != nil {
			return loaded, err
		}
		if err := s.unpackAll(ctx, man, cfg.RootFS.DiffIDs, p); err != nil {
			return loaded, err
		}
		names, err := s.recordLoaded(ctx, e.RepoTags, mdesc, cfgDesc.Digest)
		if err != nil {
			return loaded, err
		}
		loaded = append(loaded, names...)
	}
	return loaded, nil
}

// storeLayerFile stores one layer of a docker archive, uncompressed or
// compressed as it is, with the media type that says which.
func (s *Images) storeLayerFile(ctx context.Context, dir, name string, p *reporter) (ocispec.Descriptor, error) {
	f, err := openIn(dir, name)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("load: layer %s: %w", name, err)
	}
	_, comp, err := archive.DecompressStream(f)
	f.Close()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("load: layer %s: %w", name, err)
	}
	mt := mediaTypeDockerLayer
	switch comp {
	case archive.Gzip:
		mt = mediaTypeDockerLayerGzip
	case archive.Zstd:
		mt = ocispec.MediaTypeImageLayerZstd
	}
	desc, err := s.storeFile(ctx, dir, name, mt)
	if err != nil {
		return desc, fmt.Errorf("load: layer %s: %w", name, err)
	}
	p.progress(shortDigest(desc.Digest), "Loading layer", desc.Size, desc.Size)
	return desc, nil
}

// originalManifest returns the manifest to record for a docker archive
// entry: the archive's own stored manifest (docker 25+ write an OCI
// index.json) when it describes the same config and layers, else man.
func (s *Images) originalManifest(ctx context.Context, dir string, man ocispec.Manifest) ([]byte, ocispec.Descriptor, error) {
	var index ocispec.Index
	if err := readJSONIn(dir, "index.json", &index); err == nil {
		for _, d := range index.Manifests {
			data, err := readBlobIn(dir, d)
			if err != nil {
				continue
			}
			doc, err := image.Decode(d, data)
			if err != nil || doc.Manifest == nil || doc.Manifest.Config.Digest != man.Config.Digest || len(doc.Manifest.Layers) != len(man.Layers) {
				continue
			}
			same := true
			for i, l := range doc.Manifest.Layers {
				if l.Digest != man.Layers[i].Digest {
					same = false
				}
			}
			if same {
				return data, ocispec.Descriptor{MediaType: doc.MediaType, Digest: d.Digest, Size: d.Size}, nil
			}
		}
	}
	data, err := json.Marshal(man)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	return data, ocispec.Descriptor{MediaType: man.MediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, nil
}

// readBlobIn reads a small blob of an OCI layout in dir, checked against
// its descriptor.
func readBlobIn(dir string, d ocispec.Descriptor) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, err
	}
	if d.Size > maxLoadMetadataFile {
		return nil, fmt.Errorf("%s: %d bytes is too large", d.Digest, d.Size)
	}
	f, err := openIn(dir, path.Join("blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, d.Size+1))
	if err != nil {
		return nil, err
	}
	if err := image.Verify(d, data); err != nil {
		return nil, err
	}
	return data, nil
}

// loadOCI loads an OCI image layout: every manifest of its index.json.
func (s *Images) loadOCI(ctx context.Context, dir string, p *reporter) ([]string, error) {
	var index ocispec.Index
	if err := readJSONIn(dir, "index.json", &index); err != nil {
		return nil, fmt.Errorf("%w: load: %w", errdefs.ErrInvalidArgument, err)
	}
	var loaded []string
	for _, top := range index.Manifests {
		mdesc := top
		data, err := readBlobIn(dir, top)
		if err != nil {
			return loaded, fmt.Errorf("%w: load: %w", errdefs.ErrInvalidArgument, err)
		}
		doc, err := image.Decode(top, data)
		if err != nil {
			return loaded, err
		}
		if doc.Index != nil {
			if mdesc, err = image.SelectManifest(*doc.Index, s.platform); err != nil {
				return loaded, err
			}
			if err := s.storeBytes(ctx, top, data); err != nil {
				return loaded, err
			}
			if data, err = readBlobIn(dir, mdesc); err != nil {
				return loaded, fmt.Errorf("%w: load: %w", errdefs.ErrInvalidArgument, err)
			}
			if doc, err = image.Decode(mdesc, data); err != nil {
				return loaded, err
			}
		}
		man := doc.Manifest
		blobs := append([]ocispec.Descriptor{man.Config}, man.Layers...)
		for _, b := range blobs {
			desc, err := s.storeFile(ctx, dir, path.Join("blobs", b.Digest.Algorithm().String(), b.Digest.Encoded()), b.MediaType)
			if err != nil {
				return loaded, fmt.Errorf("load: blob %s: %w", b.Digest, err)
			}
			if desc.Digest != b.Digest {
				return loaded, fmt.Errorf("%w: load: blob %s has digest %s", errdefs.ErrFailedPrecondition, b.Digest, desc.Digest)
			}
		}
		if err := s.storeBytes(ctx, mdesc, data); err != nil {
			return loaded, err
		}
		cfgData, err := content.ReadBlob(ctx, s.content, man.Config)
		if err != nil {
			return loaded, err
		}
		cfg, err := image.DecodeConfig(man.Config, cfgData)
		if err != nil {
			return loaded, err
		}
		if err := s.unpackAll(ctx, *man, cfg.RootFS.DiffIDs, p); err != nil {
			return loaded, err
		}
		var names []string
		if n := top.Annotations[annotationContainerdImages]; n != "" {
			names = append(names, n)
		} else if n := top.Annotations[ocispec.AnnotationRefName]; n != "" && strings.ContainsAny(n, "/:") {
			names = append(names, n)
		}
		got, err := s.recordLoaded(ctx, names, top, man.Config.Digest)
		if err != nil {
			return loaded, err
		}
		loaded = append(loaded, got...)
	}
	return loaded, nil
}

// unpackAll unpacks the layers of a loaded image that are not unpacked yet.
func (s *Images) unpackAll(ctx context.Context, man ocispec.Manifest, diffIDs []digest.Digest, p *reporter) error {
	if len(diffIDs) != len(man.Layers) {
		return fmt.Errorf("%w: the manifest has %d layers, the config %d", errdefs.ErrInvalidArgument, len(man.Layers), len(diffIDs))
	}
	chainIDs := image.ChainIDs(diffIDs)
	for i, l := range man.Layers {
		has, err := s.unpacker.has(ctx, chainIDs[i])
		if err != nil {
			return err
		}
		if has {
			continue
		}
		var parent digest.Digest
		if i > 0 {
			parent = chainIDs[i-1]
		}
		if err := s.unpackBlob(ctx, l, parent, chainIDs[i], diffIDs[i], p); err != nil {
			return err
		}
	}
	return nil
}

// recordLoaded records names for a loaded image; with none it reports the
// image's ID.
func (s *Images) recordLoaded(ctx context.Context, names []string, target ocispec.Descriptor, id digest.Digest) ([]string, error) {
	if len(names) == 0 {
		s.events.Publish(events.ImageEventType, events.ActionLoad, id.String(), nil)
		return []string{id.String()}, nil
	}
	var out []string
	for _, n := range names {
		ref, err := image.ParseNormalized(n)
		if err != nil {
			return out, fmt.Errorf("%w: load: image name %q: %w", errdefs.ErrInvalidArgument, n, err)
		}
		if _, ok := ref.(reference.Tagged); !ok {
			continue
		}
		if _, err := s.putName(ctx, image.Image{Name: ref.String(), Target: target, ConfigDigest: id}); err != nil {
			return out, err
		}
		fam := image.FamiliarString(ref)
		out = append(out, fam)
		s.events.Publish(events.ImageEventType, events.ActionLoad, id.String(), map[string]string{"name": fam})
	}
	return out, nil
}
