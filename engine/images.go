package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	mobyimage "github.com/moby/moby/api/types/image"
	mobyregistry "github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/content"
	"berth.dev/image"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
	"berth.dev/registry"
	"berth.dev/snapshot"
)

// Images is the engine's image service: pull, push, list, inspect, tag,
// remove, save, load and import, on top of the content store (blobs), the
// snapshotter (unpacked layers, by chain ID), the name store and the
// registry client. It implements the Docker API's image backend.
type Images struct {
	cfg      *Config
	content  *content.Store
	snaps    snapshot.Snapshotter
	names    *image.Store
	hosts    *registry.Hosts
	events   *Events
	log      *slog.Logger
	unpacker *unpacker
	dangling *dangling
	platform ocispec.Platform
	// decompress are the options layers are decompressed with at pulls.
	decompress []archive.DecompressOption

	// inUse returns the containers made from an image (nil: none).
	inUse func(imageID string) []string

	// mu serialises the changes that decide what may be collected
	// (remove, prune) against pulls in progress.
	mu sync.RWMutex
}

// ImagesConfig gathers what NewImages needs.
type ImagesConfig struct {
	Config   *Config
	Content  *content.Store
	Snaps    snapshot.Snapshotter
	Names    *image.Store
	DB       *metadata.DB // for the dangling images
	Hosts    *registry.Hosts
	Events   *Events
	Log      *slog.Logger
	Platform *ocispec.Platform // nil: the host's
	// Inflater is berth-inflate's path ("": none). It inflates gzip
	// layers when it works here (it needs ISA-L's library); igzip, then
	// the Go decoder, where it does not.
	Inflater string
}

// NewImages returns the image service.
func NewImages(c ImagesConfig) *Images {
	p := image.DefaultPlatform()
	if c.Platform != nil {
		p = *c.Platform
	}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Images{
		cfg: c.Config, content: c.Content, snaps: c.Snaps, names: c.Names, hosts: c.Hosts,
		events: c.Events, log: log, platform: p,
		unpacker: &unpacker{snaps: c.Snaps, tmp: c.Config.tmpDir(), sync: newLayerSyncer(c.Snaps, c.Config.SnapshotDir(), log)},
		dangling: &dangling{db: c.DB},
	}
	s.unpacker.sync.start()
	// ISA-L's igzip (Debian's isal), where installed, inflates gzip layers
	// about 2.5 times as fast as the Go decoder, in a process of its own;
	// berth-inflate does the same into memory shared with berthd, which
	// saves copying every byte through a pipe.
	if igzip, err := exec.LookPath("igzip"); err == nil {
		s.decompress = append(s.decompress, archive.WithGzipCommand(igzip))
	}
	if c.Inflater != "" {
		if err := archive.CheckInflater(c.Inflater); err != nil {
			log.Info("gzip layers not inflated by berth-inflate", "err", err)
		} else {
			s.decompress = append(s.decompress, archive.WithInflater(c.Inflater))
		}
	}
	return s
}

// client returns a registry client that presents auth (the X-Registry-Auth
// of the request) to the registry it is for.
func (s *Images) client(auth mobyregistry.AuthConfig) *registry.Client {
	creds := func(host string) (registry.AuthConfig, error) {
		if auth.Username == "" && auth.Password == "" && auth.IdentityToken == "" && auth.RegistryToken == "" {
			return registry.AuthConfig{}, nil
		}
		return registry.AuthConfig{
			Username: auth.Username, Password: auth.Password,
			IdentityToken: auth.IdentityToken, RegistryToken: auth.RegistryToken,
			ServerAddress: auth.ServerAddress,
		}, nil
	}
	return registry.New(registry.WithHosts(s.hosts), registry.WithCredentials(creds), registry.WithUserAgent("berth"))
}

// resolved is an image as the engine needs it: its manifest for this
// host's platform, its config, and the chain IDs of its layers.
type resolved struct {
	record   image.Image
	manifest ocispec.Manifest
	config   image.Config
	chainIDs []digest.Digest
}

// load reads an image's manifest and config from the content store.
func (s *Images) load(ctx context.Context, rec image.Image) (*resolved, error) {
	mdesc, err := s.platformManifest(ctx, rec.Target)
	if err != nil {
		return nil, err
	}
	data, err := content.ReadBlob(ctx, s.content, mdesc)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", rec.Name, err)
	}
	doc, err := image.Decode(mdesc, data)
	if err != nil {
		return nil, err
	}
	if doc.Manifest == nil {
		return nil, fmt.Errorf("%w: image %s: %s is not a manifest", errdefs.ErrFailedPrecondition, rec.Name, mdesc.Digest)
	}
	cdata, err := content.ReadBlob(ctx, s.content, doc.Manifest.Config)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", rec.Name, err)
	}
	cfg, err := image.DecodeConfig(doc.Manifest.Config, cdata)
	if err != nil {
		return nil, err
	}
	return &resolved{record: rec, manifest: *doc.Manifest, config: cfg, chainIDs: image.ChainIDs(cfg.RootFS.DiffIDs)}, nil
}

// platformManifest returns desc itself for a manifest, or the manifest an
// index holds for this host's platform.
func (s *Images) platformManifest(ctx context.Context, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	if !image.IsIndex(desc.MediaType) {
		return desc, nil
	}
	data, err := content.ReadBlob(ctx, s.content, desc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	doc, err := image.Decode(desc, data)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return image.SelectManifest(*doc.Index, s.platform)
}

// records returns every image record, grouped by image ID: the named
// ones and the dangling ones (a single record with no name).
func (s *Images) records(ctx context.Context) (map[digest.Digest][]image.Image, error) {
	all, err := s.names.List(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[digest.Digest][]image.Image{}
	for _, r := range all {
		byID[r.ConfigDigest] = append(byID[r.ConfigDigest], r)
	}
	dangling, err := s.dangling.list(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range dangling {
		if _, named := byID[r.ConfigDigest]; !named {
			byID[r.ConfigDigest] = []image.Image{r}
		}
	}
	return byID, nil
}

// repoTagsDigests splits an image's names into docker's RepoTags and
// RepoDigests (familiar forms).
func repoTagsDigests(recs []image.Image) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, r := range recs {
		ref, err := r.Reference()
		if err != nil {
			continue
		}
		if _, ok := ref.(reference.Digested); ok {
			digests = append(digests, image.FamiliarString(ref))
			continue
		}
		tags = append(tags, image.FamiliarString(ref))
		if r.Target.Digest != "" {
			if d, err := reference.WithDigest(reference.TrimNamed(ref), r.Target.Digest); err == nil {
				s := image.FamiliarString(d)
				if !slices.Contains(digests, s) {
					digests = append(digests, s)
				}
			}
		}
	}
	sort.Strings(tags)
	sort.Strings(digests)
	return tags, digests
}

// layersSize is the unpacked size of an image's layers.
func (s *Images) layersSize(ctx context.Context, r *resolved) int64 {
	var total int64
	for _, c := range r.chainIDs {
		if u, err := s.snaps.Usage(ctx, c.String()); err == nil {
			total += u.Size
		}
	}
	return total
}

// List returns the images for docker images, newest first.
func (s *Images) List(ctx context.Context, opts backend.ImageListOptions) ([]mobyimage.Summary, error) {
	listed, err := s.list(ctx, opts.Filters)
	if err != nil {
		return nil, err
	}
	out := make([]mobyimage.Summary, len(listed))
	for i, l := range listed {
		out[i] = l.summary
	}
	return out, nil
}

// listed is an image of List with the chain IDs of its layers.
type listed struct {
	summary  mobyimage.Summary
	chainIDs []digest.Digest
}

// list returns the images the filters select, newest first.
func (s *Images) list(ctx context.Context, f backend.ImageFilters) ([]listed, error) {
	byID, err := s.records(ctx)
	if err != nil {
		return nil, err
	}
	out := []listed{}
	for id, recs := range byID {
		r, err := s.load(ctx, recs[0])
		if err != nil {
			s.log.Warn("list: skipping unreadable image", "id", id, "err", err)
			continue
		}
		if !matchFilters(f, recs, r) {
			continue
		}
		tags, digests := repoTagsDigests(recs)
		created := int64(0)
		if r.config.Created != nil {
			created = r.config.Created.Unix()
		}
		labels := map[string]string{}
		if r.config.Config.Labels != nil {
			labels = r.config.Config.Labels
		}
		out = append(out, listed{chainIDs: r.chainIDs, summary: mobyimage.Summary{
			ID:          id.String(),
			ParentID:    "",
			RepoTags:    tags,
			RepoDigests: digests,
			Created:     created,
			Size:        s.layersSize(ctx, r),
			SharedSize:  -1,
			Labels:      labels,
			Containers:  -1,
		}})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].summary, out[j].summary
		if a.Created != b.Created {
			return a.Created > b.Created
		}
		return a.ID < b.ID
	})
	return out, nil
}

// matchFilters applies docker images' filters to one image.
func matchFilters(f backend.ImageFilters, recs []image.Image, r *resolved) bool {
	if f.Dangling != nil {
		tagged := false
		for _, r := range recs {
			if r.Name != "" {
				tagged = true
			}
		}
		if *f.Dangling == tagged {
			return false
		}
	}
	if len(f.Reference) > 0 {
		ok := false
		for _, rec := range recs {
			ref, err := rec.Reference()
			if err != nil {
				continue
			}
			for _, pat := range f.Reference {
				if matchReference(pat, ref) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	for _, l := range f.Label {
		k, v, hasValue := strings.Cut(l, "=")
		got, present := r.config.Config.Labels[k]
		if !present || hasValue && got != v {
			return false
		}
	}
	if !f.Until.IsZero() && r.config.Created != nil && !r.config.Created.Before(f.Until) {
		return false
	}
	return true
}

// matchReference matches docker's reference filter: a pattern against
// the familiar name with or without tag ("busybox", "busybox:1.*").
func matchReference(pattern string, ref reference.Named) bool {
	full := image.FamiliarString(ref)
	name := image.FamiliarName(ref)
	for _, s := range []string{full, name} {
		if ok, _ := path.Match(pattern, s); ok {
			return true
		}
	}
	return false
}

// Inspect describes one image.
func (s *Images) Inspect(ctx context.Context, name string) (mobyimage.InspectResponse, error) {
	m, err := s.lookup(ctx, name)
	if err != nil {
		return mobyimage.InspectResponse{}, noSuchImage(name, err)
	}
	r, err := s.load(ctx, m.Images[0])
	if err != nil {
		return mobyimage.InspectResponse{}, err
	}
	tags, digests := repoTagsDigests(m.Images)
	created := ""
	if r.config.Created != nil {
		created = r.config.Created.UTC().Format(time.RFC3339Nano)
	}
	layers := make([]string, len(r.config.RootFS.DiffIDs))
	for i, d := range r.config.RootFS.DiffIDs {
		layers[i] = d.String()
	}
	var lastTag time.Time
	for _, rec := range m.Images {
		if rec.UpdatedAt.After(lastTag) {
			lastTag = rec.UpdatedAt
		}
	}
	resp := mobyimage.InspectResponse{
		ID:           m.ID.String(),
		RepoTags:     tags,
		RepoDigests:  digests,
		Comment:      lastComment(r.config),
		Created:      created,
		Author:       r.config.Author,
		Config:       &r.config.Config,
		Architecture: r.config.Architecture,
		Variant:      r.config.Variant,
		Os:           r.config.OS,
		OsVersion:    r.config.OSVersion,
		Size:         s.layersSize(ctx, r),
		GraphDriver:  &storage.DriverData{Name: "overlay2", Data: map[string]string{}},
		RootFS:       mobyimage.RootFS{Type: "layers", Layers: layers},
		Metadata:     mobyimage.Metadata{LastTagTime: lastTag},
		Descriptor:   &m.Images[0].Target,
	}
	return resp, nil
}

func lastComment(cfg image.Config) string {
	if n := len(cfg.History); n > 0 {
		return cfg.History[n-1].Comment
	}
	return ""
}

// History lists the image's history, newest first.
func (s *Images) History(ctx context.Context, name string) ([]mobyimage.HistoryResponseItem, error) {
	m, err := s.lookup(ctx, name)
	if err != nil {
		return nil, noSuchImage(name, err)
	}
	r, err := s.load(ctx, m.Images[0])
	if err != nil {
		return nil, err
	}
	sizes := make([]int64, len(r.chainIDs))
	for i, c := range r.chainIDs {
		// A layer snapshot's usage is its own directory's.
		if u, err := s.snaps.Usage(ctx, c.String()); err == nil {
			sizes[i] = u.Size
		}
	}
	entries, err := image.History(r.config, m.ID, sizes)
	if err != nil {
		return nil, err
	}
	tags, _ := repoTagsDigests(m.Images)
	out := make([]mobyimage.HistoryResponseItem, 0, len(entries))
	for i, e := range entries { // newest first already
		item := mobyimage.HistoryResponseItem{
			ID:        e.ID,
			CreatedBy: e.CreatedBy,
			Size:      e.Size,
			Comment:   e.Comment,
			Tags:      []string{},
		}
		if e.Created != nil {
			item.Created = e.Created.Unix()
		}
		if i == 0 {
			item.Tags = tags
		}
		out = append(out, item)
	}
	return out, nil
}

// Tag gives the image source the additional name target.
func (s *Images) Tag(ctx context.Context, source, target string) error {
	m, err := s.lookup(ctx, source)
	if err != nil {
		return noSuchImage(source, err)
	}
	ref, err := image.ParseNormalized(target)
	if err != nil {
		return err
	}
	if _, ok := ref.(reference.Digested); ok {
		return fmt.Errorf("%w: refusing to create a tag with a digest reference", errdefs.ErrInvalidArgument)
	}
	src := m.Images[0]
	if _, err := s.putName(ctx, image.Image{Name: ref.String(), Target: src.Target, ConfigDigest: m.ID, Labels: src.Labels}); err != nil {
		return err
	}
	s.events.Publish(events.ImageEventType, events.ActionTag, m.ID.String(), map[string]string{"name": image.FamiliarString(ref)})
	return nil
}

// noSuchImage words a failed lookup as dockerd does.
func noSuchImage(name string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("%w: No such image: %s", errdefs.ErrNotFound, name)
	}
	return err
}

// SetContainerUse sets the function that tells which containers use an
// image: such an image is not deleted (remove refuses unless forced, and
// then only untags it; prune skips it).
func (s *Images) SetContainerUse(f func(imageID string) []string) { s.inUse = f }

func (s *Images) users(id digest.Digest) []string {
	if s.inUse == nil {
		return nil
	}
	return s.inUse(id.String())
}

// Remove untags name and deletes the image when no name is left.
func (s *Images) Remove(ctx context.Context, name string, opts backend.RemoveOptions) ([]mobyimage.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookup(ctx, name)
	if err != nil {
		return nil, noSuchImage(name, err)
	}
	var out []mobyimage.DeleteResponse
	untag := func(rec image.Image) error {
		if _, err := s.names.Delete(ctx, rec.Name); err != nil {
			return err
		}
		ref, _ := rec.Reference()
		fam := rec.Name
		if ref != nil {
			fam = image.FamiliarString(ref)
		}
		out = append(out, mobyimage.DeleteResponse{Untagged: fam})
		s.events.Publish(events.ImageEventType, events.ActionUnTag, m.ID.String(), map[string]string{"name": fam})
		return nil
	}
	users := s.users(m.ID)
	if len(users) > 0 && (m.Name == "" || len(m.Images) == 1) && !opts.Force {
		if m.Name != "" {
			return nil, fmt.Errorf("%w: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", errdefs.ErrConflict, name, users[0][:12], image.ShortID(m.ID))
		}
		return nil, fmt.Errorf("%w: unable to delete %s (must be forced) - image is being used by container %s", errdefs.ErrConflict, image.ShortID(m.ID), users[0][:12])
	}
	if m.Name != "" {
		// A name: untag it; the image goes when it was the last one.
		for _, rec := range m.Images {
			if rec.Name == m.Name {
				if err := untag(rec); err != nil {
					return out, err
				}
			}
		}
		if len(m.Images) > 1 {
			return out, nil
		}
	} else {
		// An ID removes every name, but only when forced if there are
		// several repositories.
		repos := map[string]bool{}
		for _, rec := range m.Images {
			if ref, err := rec.Reference(); err == nil {
				repos[ref.Name()] = true
			}
		}
		if len(repos) > 1 && !opts.Force {
			return nil, fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", errdefs.ErrConflict, image.ShortID(m.ID))
		}
		for _, rec := range m.Images {
			if rec.Name == "" {
				continue // a dangling image has no name to untag
			}
			if err := untag(rec); err != nil {
				return out, err
			}
		}
	}
	if len(users) > 0 {
		// Forced: the names are gone, the image stays for its containers.
		rec := m.Images[0]
		rec.Name = ""
		return out, s.dangling.put(ctx, rec)
	}
	if err := s.dangling.delete(ctx, m.ID); err != nil {
		return out, err
	}
	out = append(out, mobyimage.DeleteResponse{Deleted: m.ID.String()})
	s.events.Publish(events.ImageEventType, events.ActionDelete, m.ID.String(), nil)
	if err := s.collect(ctx); err != nil {
		s.log.Warn("remove: garbage collection", "err", err)
	}
	return out, nil
}

// collect removes the layer snapshots and blobs no image record holds.
// The caller holds s.mu.
func (s *Images) collect(ctx context.Context) error {
	recs, err := s.names.List(ctx)
	if err != nil {
		return err
	}
	dangling, err := s.dangling.list(ctx)
	if err != nil {
		return err
	}
	recs = append(recs, dangling...)
	keep := map[string]bool{}
	var roots []ocispec.Descriptor
	for _, rec := range recs {
		roots = append(roots, rec.Target)
		r, err := s.load(ctx, rec)
		if err != nil {
			return fmt.Errorf("collect: %w", err) // never delete on a partial view
		}
		for _, c := range r.chainIDs {
			keep[c.String()] = true
		}
	}
	// Snapshots: committed layers nobody needs, from the top of each
	// chain down (a parent cannot go before its children).
	for {
		var leaves []string
		parents := map[string]bool{}
		var all []snapshot.Info
		err := s.snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
			all = append(all, info)
			if info.Parent != "" {
				parents[info.Parent] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, info := range all {
			if info.Kind != snapshot.Committed || parents[info.Name] {
				continue
			}
			layer := strings.HasPrefix(info.Name, "sha256:") && !keep[info.Name]
			// The containers' shared init layer over a layer that goes.
			init := isSharedInit(info.Name) && !keep[info.Parent]
			if layer || init {
				leaves = append(leaves, info.Name)
			}
		}
		if len(leaves) == 0 {
			break
		}
		for _, l := range leaves {
			if err := s.snaps.Remove(ctx, l); err != nil {
				return err
			}
		}
	}
	_, err = s.content.Prune(ctx, roots)
	return err
}

// Prune removes the images the filters select: the dangling ones, or with
// dangling=false (image prune -a) every image no container uses.
func (s *Images) Prune(ctx context.Context, f backend.ImageFilters) (mobyimage.PruneReport, error) {
	report := mobyimage.PruneReport{ImagesDeleted: []mobyimage.DeleteResponse{}}
	if f.Dangling == nil {
		yes := true
		f.Dangling = &yes
	}
	byID, err := s.records(ctx)
	if err != nil {
		return report, err
	}
	for id, recs := range byID {
		r, err := s.load(ctx, recs[0])
		if err != nil {
			continue
		}
		sel := f
		if !*f.Dangling {
			sel.Dangling = nil // -a: every image, tagged or not
		}
		if !matchFilters(sel, recs, r) || hasAnyLabel(r.config.Config.Labels, f.LabelNot) || len(s.users(id)) > 0 {
			continue
		}
		size := s.layersSize(ctx, r)
		resp, err := s.Remove(ctx, id.String(), backend.RemoveOptions{Force: true})
		if err != nil {
			return report, err
		}
		report.ImagesDeleted = append(report.ImagesDeleted, resp...)
		report.SpaceReclaimed += uint64(size)
	}
	return report, nil
}

func hasAnyLabel(labels map[string]string, sel []string) bool {
	for _, l := range sel {
		k, v, hasValue := strings.Cut(l, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == v) {
			return true
		}
	}
	return false
}

// Counts reports the number of images for docker info.
func (s *Images) Count(ctx context.Context) int {
	byID, err := s.records(ctx)
	if err != nil {
		return 0
	}
	return len(byID)
}

// Recover cleans up what a previous engine left half done (see
// unpacker.recover) and unpacks again, from their blobs, the layers it
// had to remove; berthd calls it at start, before serving.
func (s *Images) Recover(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed, err := s.unpacker.recover(ctx)
	if err != nil || len(removed) == 0 {
		return err
	}
	byID, err := s.records(ctx)
	if err != nil {
		return err
	}
	for id, recs := range byID {
		r, err := s.load(ctx, recs[0])
		if err == nil {
			err = s.unpackAll(ctx, r.manifest, r.config.RootFS.DiffIDs, &reporter{})
		}
		if err != nil {
			s.log.Error("image has lost unpacked layers and cannot be unpacked again; pull it again", "image", id, "err", err)
		}
	}
	return nil
}

// Close makes the layers unpacked so far durable and stops the syncer.
func (s *Images) Close() { s.unpacker.sync.close() }

// DiskUsage reports the images part of docker system df: each image with
// its size and the size it shares with others, and the size of all
// unpacked layers.
func (s *Images) DiskUsage(ctx context.Context, opts backend.DiskUsageOptions) (backend.DiskUsage, error) {
	var du backend.DiskUsage
	all := !opts.Images && !opts.Containers && !opts.Volumes && !opts.BuildCache
	if !all && !opts.Images {
		return du, nil
	}
	images, err := s.list(ctx, backend.ImageFilters{})
	if err != nil {
		return du, err
	}
	// Layers used by more than one image are shared.
	users := map[string]int{}
	for _, img := range images {
		for _, c := range img.chainIDs {
			users[c.String()]++
		}
	}
	sizes := map[string]int64{}
	err = s.snaps.Walk(ctx, func(ctx context.Context, info snapshot.Info) error {
		if info.Kind == snapshot.Committed {
			if u, err := s.snaps.Usage(ctx, info.Name); err == nil {
				sizes[info.Name] = u.Size
				du.LayersSize += u.Size
			}
		}
		return nil
	})
	if err != nil {
		return du, err
	}
	list := make([]mobyimage.Summary, len(images))
	for i, img := range images {
		var shared int64
		for _, c := range img.chainIDs {
			if users[c.String()] > 1 {
				shared += sizes[c.String()]
			}
		}
		list[i] = img.summary
		list[i].SharedSize = shared
		list[i].Containers = 0
	}
	du.Images = list
	return du, nil
}
