package engine

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/api/docker/backend"
	"berth.dev/content"
	"berth.dev/image"
	"berth.dev/internal/errdefs"
	"berth.dev/registry"
)

// pushAux is the last message of a push, as dockerd sends it.
type pushAux struct {
	Tag    string
	Digest string
	Size   int
}

// Push uploads ref (every local tag of the repository when ref has no
// tag) to its registry: layers and config that the registry lacks, then the
// manifest under the tag. The manifest bytes are the ones pulled (or
// built), so pushing an image pulled unchanged gives the same digest. For
// a multi-platform image the index is pushed when every manifest it lists
// is here; otherwise the manifest of this host's platform.
func (s *Images) Push(ctx context.Context, ref string, opts backend.PushOptions, pw backend.ProgressWriter) error {
	named, err := image.ParseNormalized(ref)
	if err != nil {
		return err
	}
	recs, err := s.names.List(ctx)
	if err != nil {
		return err
	}
	var todo []image.Image
	_, tagged := named.(reference.Tagged)
	_, digested := named.(reference.Digested)
	for _, r := range recs {
		rn, err := r.Reference()
		if err != nil {
			continue
		}
		if tagged || digested {
			if rn.String() == named.String() {
				todo = append(todo, r)
			}
		} else if _, ok := rn.(reference.Tagged); ok && rn.Name() == named.Name() {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return fmt.Errorf("%w: An image does not exist locally with the tag: %s", errdefs.ErrNotFound, image.FamiliarString(named))
	}
	p := &reporter{w: pw}
	p.send("", "The push refers to repository ["+named.Name()+"]")
	c := s.client(opts.Auth)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, rec := range todo {
		rn, _ := rec.Reference()
		if err := s.pushOne(ctx, c, rn, rec, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Images) pushOne(ctx context.Context, c *registry.Client, named reference.Named, rec image.Image, p *reporter) error {
	top := rec.Target
	var manifests []ocispec.Descriptor
	if image.IsIndex(top.MediaType) {
		data, err := content.ReadBlob(ctx, s.content, top)
		if err != nil {
			return err
		}
		doc, err := image.Decode(top, data)
		if err != nil {
			return err
		}
		complete := true
		for _, m := range doc.Index.Manifests {
			if _, err := s.content.Info(ctx, m.Digest); err != nil {
				complete = false
			}
		}
		if complete {
			manifests = doc.Index.Manifests
		} else {
			m, err := image.SelectManifest(*doc.Index, s.platform)
			if err != nil {
				return err
			}
			manifests, top = []ocispec.Descriptor{m}, m
		}
	} else {
		manifests = []ocispec.Descriptor{top}
	}
	for _, mdesc := range manifests {
		data, err := content.ReadBlob(ctx, s.content, mdesc)
		if err != nil {
			return err
		}
		doc, err := image.Decode(mdesc, data)
		if err != nil {
			return err
		}
		if doc.Manifest == nil {
			continue
		}
		for _, l := range doc.Manifest.Layers {
			if err := s.pushBlob(ctx, c, named, l, p, true); err != nil {
				return err
			}
		}
		if err := s.pushBlob(ctx, c, named, doc.Manifest.Config, p, false); err != nil {
			return err
		}
		if mdesc.Digest != top.Digest {
			// A manifest of an index goes up by digest, before the index.
			byDigest, err := reference.WithDigest(reference.TrimNamed(named), mdesc.Digest)
			if err != nil {
				return err
			}
			if _, err := c.PushManifest(ctx, byDigest, mdesc.MediaType, data); err != nil {
				return err
			}
		}
	}
	data, err := content.ReadBlob(ctx, s.content, top)
	if err != nil {
		return err
	}
	desc, err := c.PushManifest(ctx, named, top.MediaType, data)
	if err != nil {
		return err
	}
	tag := desc.Digest.String()
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	p.send("", fmt.Sprintf("%s: digest: %s size: %d", tag, desc.Digest, desc.Size))
	p.write(backend.Progress{Aux: pushAux{Tag: tag, Digest: desc.Digest.String(), Size: int(desc.Size)}})
	fam := image.FamiliarString(named)
	s.events.Publish(events.ImageEventType, events.ActionPush, fam, map[string]string{"name": fam})
	return nil
}

// pushBlob uploads one blob unless the registry has it; layers report
// progress under their short digest, as docker shows them.
func (s *Images) pushBlob(ctx context.Context, c *registry.Client, named reference.Named, desc ocispec.Descriptor, p *reporter, layer bool) error {
	id := shortDigest(desc.Digest)
	if layer {
		p.send(id, "Preparing")
	}
	ra, err := s.content.ReaderAt(ctx, desc)
	if err != nil {
		return fmt.Errorf("push %s: %w", image.FamiliarString(named), err)
	}
	defer ra.Close()
	var r io.Reader = io.NewSectionReader(ra, 0, ra.Size())
	if layer {
		r = &progressReader{r: r, total: ra.Size(), report: func(n, total int64) { p.progress(id, "Pushing", n, total) }}
	}
	var st registry.PushStatus
	opts := []registry.PushOption{registry.WithPushStatus(&st)}
	if from := s.mountSource(ctx, named, desc); from != "" {
		opts = append(opts, registry.WithMountFrom(from))
	}
	if err := c.PushBlob(ctx, named, desc, r, opts...); err != nil {
		return err
	}
	if layer {
		switch st {
		case registry.BlobExisted:
			p.send(id, "Layer already exists")
		case registry.BlobMounted:
			p.send(id, "Mounted from "+s.mountSource(ctx, named, desc))
		default:
			p.send(id, "Pushed")
		}
	}
	return nil
}

// mountSource names another repository on the same registry that a local
// image of the blob came from, for a cross-repository mount, or "".
func (s *Images) mountSource(ctx context.Context, named reference.Named, desc ocispec.Descriptor) string {
	recs, err := s.names.List(ctx)
	if err != nil {
		return ""
	}
	domain := reference.Domain(named)
	for _, r := range recs {
		rn, err := r.Reference()
		if err != nil || reference.Domain(rn) != domain || rn.Name() == named.Name() {
			continue
		}
		res, err := s.load(ctx, r)
		if err != nil {
			continue
		}
		for _, l := range res.manifest.Layers {
			if l.Digest == desc.Digest {
				return strings.TrimPrefix(reference.Path(rn), "/")
			}
		}
	}
	return ""
}
