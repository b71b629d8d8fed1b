package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/content"
	"berth.dev/image"
	"berth.dev/image/builtin"
	"berth.dev/internal/errdefs"
	"berth.dev/registry"
)

// maxConfigSize bounds an image config read into memory.
const maxConfigSize = 8 << 20

// Pull fetches ref from its registry and records it as a local image:
// the index or manifest, the config and the layer blobs go into the
// content store (each verified against its digest), the layers are
// unpacked in order into snapshots named by chain ID (a layer that is
// already unpacked is neither fetched nor unpacked again), and the name
// is recorded last, so an interrupted pull leaves no image behind, only
// blobs and layers that the next pull reuses.
func (s *Images) Pull(ctx context.Context, ref string, opts backend.PullOptions, pw backend.ProgressWriter) error {
	defer s.unpacker.sync.poke() // the layers it unpacked: synced now
	// The API server sends a ref without a tag for --all-tags.
	named, err := image.ParseNamed(ref)
	if err != nil {
		return err
	}
	if _, isTagged := named.(reference.Tagged); !isTagged {
		if _, isDigested := named.(reference.Digested); !isDigested {
			return s.pullAllTags(ctx, named, opts, pw)
		}
	}
	err = s.pull(ctx, named, opts, pw)
	if errors.Is(err, errdefs.ErrUnavailable) && slices.Contains(builtin.Names(), named.String()) && (opts.Platform == "" || opts.Platform == image.FormatPlatform(s.platform)) {
		return s.loadBuiltin(ctx, named, err, pw)
	}
	return err
}

// loadBuiltin loads berth's own image of that name (hello-world, busybox)
// in place of a pull that could not reach the registry, and says so.
func (s *Images) loadBuiltin(ctx context.Context, named reference.Named, cause error, pw backend.ProgressWriter) error {
	p := &reporter{w: pw}
	fam := image.FamiliarString(named)
	var buf bytes.Buffer
	if err := builtin.Archive(ctx, named.String(), &buf); err != nil {
		return fmt.Errorf("%w (and berth's built-in %s: %w)", cause, fam, err)
	}
	s.log.Info("registry unreachable: loading the built-in image", "image", fam, "err", cause)
	p.send("", fmt.Sprintf("%s is unreachable: using berth's built-in %s", reference.Domain(named), fam))
	_, lookupErr := s.names.Lookup(ctx, named.String())
	if _, err := s.Load(ctx, &buf, backend.DiscardProgress{}); err != nil {
		return err
	}
	if lookupErr == nil {
		p.send("", "Status: Image is up to date for "+fam)
	} else {
		p.send("", "Status: Downloaded newer image for "+fam)
	}
	return nil
}

// pull fetches one tagged or digested reference.
func (s *Images) pull(ctx context.Context, named reference.Named, opts backend.PullOptions, pw backend.ProgressWriter) error {
	var err error
	platform := s.platform
	if opts.Platform != "" {
		if platform, err = image.ParsePlatform(opts.Platform); err != nil {
			return err
		}
	}
	p := &reporter{w: pw}
	c := s.client(opts.Auth)
	s.mu.RLock()
	defer s.mu.RUnlock()

	// A first pull of a name GETs its manifest at once; for a known one a
	// HEAD tells whether it changed (registries that count manifest GETs
	// as pulls do not count it).
	var desc ocispec.Descriptor
	var fetched []byte
	if s.known(ctx, named) {
		desc, err = c.Resolve(ctx, named)
	} else {
		desc, fetched, err = c.ResolveFetch(ctx, named)
	}
	if err != nil {
		return err
	}
	tagOrDigest := desc.Digest.String()
	if t, ok := named.(reference.Tagged); ok {
		tagOrDigest = t.Tag()
	}
	p.send(tagOrDigest, "Pulling from "+reference.Path(named)) // "library/busybox", as dockerd

	// The manifests and the config go into the store beside the rest of
	// the pull; the name is recorded only once they are there.
	var stores errgroup.Group
	defer stores.Wait()
	target := desc
	mdesc := desc
	mdata := fetched
	if mdata != nil {
		if _, err := s.content.Info(ctx, desc.Digest); err != nil {
			stores.Go(func() error { return s.storeBytes(ctx, desc, mdata) })
		}
	} else if mdata, err = s.fetchDocument(ctx, c, named, desc, &stores); err != nil {
		return err
	}
	doc, err := image.Decode(desc, mdata)
	if err != nil {
		return err
	}
	if doc.Index != nil {
		if mdesc, err = image.SelectManifest(*doc.Index, platform); err != nil {
			return fmt.Errorf("%s: %w", image.FamiliarString(named), err)
		}
		if mdata, err = s.fetchDocument(ctx, c, named, mdesc, &stores); err != nil {
			return err
		}
		if doc, err = image.Decode(mdesc, mdata); err != nil {
			return err
		}
		if doc.Manifest == nil {
			return fmt.Errorf("%w: %s: the index entry for %s is not a manifest", errdefs.ErrInvalidArgument, image.FamiliarString(named), image.FormatPlatform(platform))
		}
	}
	man := doc.Manifest
	pre := s.prefetchLayer(ctx, c, named, man.Layers)
	defer pre.release()
	cfgData, err := s.fetchBlobBytes(ctx, c, named, man.Config, maxConfigSize, &stores)
	if err != nil {
		return err
	}
	cfg, err := image.DecodeConfig(man.Config, cfgData)
	if err != nil {
		return err
	}
	if len(cfg.RootFS.DiffIDs) != len(man.Layers) {
		return fmt.Errorf("%w: %s: the manifest has %d layers, the config %d diff IDs", errdefs.ErrInvalidArgument,
			image.FamiliarString(named), len(man.Layers), len(cfg.RootFS.DiffIDs))
	}
	for _, l := range man.Layers {
		if image.IsForeignLayer(l.MediaType) {
			return fmt.Errorf("%w: %s: foreign layer %s", errdefs.ErrNotImplemented, image.FamiliarString(named), l.Digest)
		}
	}
	chainIDs := image.ChainIDs(cfg.RootFS.DiffIDs)
	protect := []digest.Digest{target.Digest, mdesc.Digest, man.Config.Digest}
	for _, l := range man.Layers {
		protect = append(protect, l.Digest)
	}
	release := s.content.Protect(protect...)
	defer release()

	existed, err := s.fetchAndUnpack(ctx, c, named, man.Layers, cfg.RootFS.DiffIDs, chainIDs, p, pre)
	if err != nil {
		return err
	}
	if err := stores.Wait(); err != nil {
		return err
	}

	res, err := s.putName(ctx, image.Image{Name: named.String(), Target: target, ConfigDigest: man.Config.Digest})
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Digested); !ok {
		p.send("", "Digest: "+target.Digest.String())
	}
	fam := image.FamiliarString(named)
	if existed && res.Previous != nil && res.Previous.ConfigDigest == man.Config.Digest && res.Previous.Target.Digest == target.Digest {
		p.send("", "Status: Image is up to date for "+fam)
	} else {
		p.send("", "Status: Downloaded newer image for "+fam)
	}
	s.events.Publish(events.ImageEventType, events.ActionPull, fam, map[string]string{"name": fam})
	return nil
}

// pullAllTags pulls every tag of a repository (docker pull --all-tags).
func (s *Images) pullAllTags(ctx context.Context, named reference.Named, opts backend.PullOptions, pw backend.ProgressWriter) error {
	tags, err := s.client(opts.Auth).Tags(ctx, named)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return fmt.Errorf("%w: %s has no tags", errdefs.ErrNotFound, image.FamiliarName(named))
	}
	for _, tag := range tags {
		tagged, err := reference.WithTag(named, tag)
		if err != nil {
			return err
		}
		if err := s.Pull(ctx, tagged.String(), opts, pw); err != nil {
			return err
		}
	}
	return nil
}

// known reports whether named is an image here, or names by digest a
// manifest the store has.
func (s *Images) known(ctx context.Context, named reference.Named) bool {
	if d, ok := named.(reference.Digested); ok {
		if _, err := s.content.Info(ctx, d.Digest()); err == nil {
			return true
		}
	}
	_, err := s.names.Get(ctx, named.String())
	return err == nil
}

// fetchDocument fetches a manifest or index (or reads it from the content
// store) and returns its bytes; a fetched one is stored by a goroutine of
// stores.
func (s *Images) fetchDocument(ctx context.Context, c *registry.Client, named reference.Named, desc ocispec.Descriptor, stores *errgroup.Group) ([]byte, error) {
	if data, err := content.ReadBlob(ctx, s.content, desc); err == nil {
		return data, nil
	}
	data, err := c.FetchManifest(ctx, named, desc)
	if err != nil {
		return nil, err
	}
	stores.Go(func() error { return s.storeBytes(ctx, desc, data) })
	return data, nil
}

// fetchBlobBytes fetches a small blob (a config), or reads it from the
// content store, and returns it; a fetched one is stored by a goroutine of
// stores.
func (s *Images) fetchBlobBytes(ctx context.Context, c *registry.Client, named reference.Named, desc ocispec.Descriptor, max int64, stores *errgroup.Group) ([]byte, error) {
	if desc.Size > max {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", errdefs.ErrInvalidArgument, desc.Digest, desc.Size, max)
	}
	if data, err := content.ReadBlob(ctx, s.content, desc); err == nil {
		return data, nil
	}
	rc, err := c.FetchBlob(ctx, named, desc, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	stores.Go(func() error { return s.storeBytes(ctx, desc, data) })
	return data, nil
}

func (s *Images) storeBytes(ctx context.Context, desc ocispec.Descriptor, data []byte) error {
	err := content.WriteBlob(ctx, s.content, "fetch-"+desc.Digest.String(), bytes.NewReader(data), desc)
	if err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return err
	}
	return nil
}

// fetchAndUnpack makes sure every layer is unpacked: layers whose snapshot
// exists are skipped, the others are downloaded into the content store in
// parallel (at most max_concurrent_downloads at once) and unpacked in
// order as soon as each and its parent are ready. It reports whether every
// layer was already there.
func (s *Images) fetchAndUnpack(ctx context.Context, c *registry.Client, named reference.Named, layers []ocispec.Descriptor, diffIDs, chainIDs []digest.Digest, p *reporter, pre *layerPrefetch) (allExisted bool, err error) {
	need := make([]bool, len(layers))
	var fetch []int
	for i := range layers {
		has, err := s.unpacker.has(ctx, chainIDs[i])
		if err != nil {
			return false, err
		}
		id := shortDigest(layers[i].Digest)
		if has {
			p.send(id, "Already exists")
			continue
		}
		need[i] = true
		p.send(id, "Pulling fs layer")
		fetch = append(fetch, i)
	}
	if len(fetch) == 0 {
		return true, nil
	}
	// The downloads report progress on the pull's stream: whatever ends
	// the pull, they are stopped and waited for before it returns.
	ctx, cancel := context.WithCancel(ctx)
	downloads := make(chan struct{})
	defer func() {
		cancel()
		<-downloads
	}()
	// The first layer to unpack is unpacked as it downloads; the others
	// download in parallel meanwhile and are unpacked from the store.
	streamed := -1
	if s.streamable(ctx, layers[fetch[0]]) {
		streamed = fetch[0]
	}
	ready := make([]chan error, len(layers))
	for _, i := range fetch {
		ready[i] = make(chan error, 1)
	}
	go func() {
		defer close(downloads)
		sem := make(chan struct{}, s.cfg.MaxConcurrentDownloads)
		var wg sync.WaitGroup
		for _, i := range fetch {
			if i == streamed {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ready[i] <- ctx.Err()
				continue
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				ready[i] <- s.download(ctx, c, named, layers[i], p)
			}(i)
		}
		wg.Wait()
	}()
	for i := range layers {
		if !need[i] {
			continue
		}
		var parent digest.Digest
		if i > 0 {
			parent = chainIDs[i-1]
		}
		// Another pull may be unpacking the same layer (two pulls of one
		// image, or of two images on one base): wait for it and take its
		// layer.
		unlock, err := s.unpacker.lock(ctx, chainIDs[i])
		if err != nil {
			return false, err
		}
		has, err := s.unpacker.has(ctx, chainIDs[i])
		switch {
		case err != nil || has:
		case i == streamed:
			err = s.downloadAndUnpack(ctx, c, named, layers[i], parent, chainIDs[i], diffIDs[i], p, pre)
		default:
			if err = <-ready[i]; err == nil {
				err = s.unpackBlob(ctx, layers[i], parent, chainIDs[i], diffIDs[i], p)
			}
		}
		unlock()
		if err != nil {
			return false, err
		}
		if has {
			p.send(shortDigest(layers[i].Digest), "Already exists")
		} else {
			p.send(shortDigest(layers[i].Digest), "Pull complete")
		}
	}
	return false, nil
}

// download fetches one layer blob into the content store, resuming a
// partial download a previous pull left, and verifying it as it goes.
func (s *Images) download(ctx context.Context, c *registry.Client, named reference.Named, desc ocispec.Descriptor, p *reporter) error {
	id := shortDigest(desc.Digest)
	if _, err := s.content.Info(ctx, desc.Digest); err == nil {
		p.send(id, "Download complete")
		return nil
	}
	w, err := content.OpenWriter(ctx, s.content, "pull-"+desc.Digest.String(), desc)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		p.send(id, "Download complete")
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	st, err := w.Status()
	if err != nil {
		return err
	}
	rc, err := c.FetchBlobResume(ctx, named, desc, st.Offset, w.Hash())
	if err != nil {
		return err
	}
	defer rc.Close()
	counter := &progressReader{r: rc, n: st.Offset, total: desc.Size, report: func(n, total int64) {
		p.progress(id, "Downloading", n, total)
	}}
	if _, err := io.CopyBuffer(w, counter, make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("download layer %s: %w", desc.Digest, err)
	}
	p.send(id, "Verifying Checksum")
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return fmt.Errorf("download layer %s: %w", desc.Digest, err)
	}
	p.send(id, "Download complete")
	return nil
}

// streamable reports whether a layer can be unpacked as it downloads: it
// is not in the store yet, and no earlier pull left part of it (that one
// resumes instead).
func (s *Images) streamable(ctx context.Context, desc ocispec.Descriptor) bool {
	if _, err := s.content.Info(ctx, desc.Digest); err == nil {
		return false
	}
	statuses, err := s.content.ListStatuses(ctx)
	if err != nil {
		return false
	}
	for _, st := range statuses {
		if st.Ref == "pull-"+desc.Digest.String() && st.Offset > 0 {
			return false
		}
	}
	return true
}

// downloadAndUnpack fetches a layer and unpacks it in one pass: the bytes
// go into the content store and through gunzip into the snapshot at once.
// The snapshot is committed only after the blob's digest and size are
// verified and it is committed to the store; on any error both are
// discarded.
func (s *Images) downloadAndUnpack(ctx context.Context, c *registry.Client, named reference.Named, desc ocispec.Descriptor, parent, chainID, diffID digest.Digest, p *reporter, pre *layerPrefetch) error {
	id := shortDigest(desc.Digest)
	w, err := content.OpenWriter(ctx, s.content, "pull-"+desc.Digest.String(), desc)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return s.unpackBlob(ctx, desc, parent, chainID, diffID, p)
	}
	if err != nil {
		return err
	}
	defer w.Close()
	// The content writer hashes the blob and its Commit checks the
	// digest before the snapshot is committed: the registry reader only
	// checks the size (a second SHA-256 of the blob would cost as much
	// CPU as the download).
	rc, ex, err := pre.take(desc, parent)
	if ex != nil {
		defer func() {
			if ex != nil {
				ex.discard(ctx)
			}
		}()
	}
	if rc == nil && err == nil {
		rc, err = c.FetchBlobResume(ctx, named, desc, 0, nil)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	blob := &committingTee{r: rc, commit: func() error {
		if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
			return fmt.Errorf("download layer %s: %w", desc.Digest, err)
		}
		return nil
	}, w: w}
	counter := &progressReader{r: blob, total: desc.Size, report: func(n, total int64) {
		p.progress(id, "Downloading", n, total)
	}}
	tar, _, err := archive.DecompressStream(counter, s.decompress...)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer tar.Close()
	if ex == nil {
		if ex, err = s.unpacker.prepare(ctx, parent); err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
	}
	e := ex
	ex = nil // apply commits or discards it
	_, _, err = e.apply(ctx, tar, func(got digest.Digest) (digest.Digest, error) {
		if got != diffID {
			return "", fmt.Errorf("%w: layer %s: content is %s, the image config says %s", errdefs.ErrFailedPrecondition, desc.Digest, got, diffID)
		}
		// Whatever follows the compressed stream's end is part of the
		// blob too; the registry reader checks the size at its end, the
		// commit the digest. Usually the blob was read to its end, and
		// committed, while the last of the layer was applied.
		if _, err := io.Copy(io.Discard, blob); err != nil {
			return "", fmt.Errorf("download layer %s: %w", desc.Digest, err)
		}
		p.send(id, "Download complete")
		return chainID, nil
	})
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	return nil
}

// layerPrefetch starts a pull's first layer as soon as the manifest names
// it, beside the request for the config: the request for the blob is sent
// and the snapshot it is unpacked into is prepared and mounted, so that
// the unpack starts as soon as the config is read. That is done only for a
// blob the store lacks and no earlier pull began, which the pull then
// streams unless the config shows the layer already unpacked; what is not
// taken is dropped when the pull ends.
type layerPrefetch struct {
	desc   ocispec.Descriptor
	cancel context.CancelFunc
	done   sync.WaitGroup
	rc     io.ReadCloser
	err    error
	ex     *extraction // nil if its prepare failed: the unpack tries again
	taken  bool
}

func (s *Images) prefetchLayer(ctx context.Context, c *registry.Client, named reference.Named, layers []ocispec.Descriptor) *layerPrefetch {
	if len(layers) == 0 || image.IsForeignLayer(layers[0].MediaType) || !s.streamable(ctx, layers[0]) {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	pf := &layerPrefetch{desc: layers[0], cancel: cancel}
	pf.done.Add(2)
	go func() {
		defer pf.done.Done()
		// The size is checked here, the digest by the content writer, as
		// for any streamed layer.
		pf.rc, pf.err = c.FetchBlobResume(ctx, named, pf.desc, 0, nil)
	}()
	go func() {
		defer pf.done.Done()
		pf.ex, _ = s.unpacker.prepare(ctx, "")
	}()
	return pf
}

// take returns the answer for desc when desc is the prefetched blob (the
// caller's to close), with the extraction to unpack it into when parent is
// the prefetched layer's ("": the caller's to apply or discard), and
// nils else.
func (pf *layerPrefetch) take(desc ocispec.Descriptor, parent digest.Digest) (io.ReadCloser, *extraction, error) {
	if pf == nil || pf.taken || pf.desc.Digest != desc.Digest {
		return nil, nil, nil
	}
	pf.taken = true
	pf.done.Wait()
	ex := pf.ex
	if ex != nil && (parent != "" || pf.err != nil) {
		ex.discard(context.Background())
		ex = nil
	}
	return pf.rc, ex, pf.err
}

// release ends the prefetch at the end of the pull, dropping what was not
// taken.
func (pf *layerPrefetch) release() {
	if pf == nil {
		return
	}
	// Cancelled first: a pull that ends early (the config failed, say)
	// does not wait for an answer it will not read.
	pf.cancel()
	if !pf.taken {
		pf.taken = true
		pf.done.Wait()
		if pf.rc != nil {
			pf.rc.Close()
		}
		if pf.ex != nil {
			pf.ex.discard(context.Background())
		}
	}
}

// committingTee writes what it reads from r to w and, once r is at its
// end, runs commit (the content writer's, which checks the digest) and
// returns its error in place of io.EOF: a blob is committed as soon as it
// is downloaded, while its layer may still be being applied.
type committingTee struct {
	r      io.Reader
	w      io.Writer
	commit func() error
	done   bool
	err    error // commit's, returned from then on
}

func (t *committingTee) Read(p []byte) (int, error) {
	if t.done {
		if t.err != nil {
			return 0, t.err
		}
		return 0, io.EOF
	}
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			t.done, t.err = true, werr
			return n, werr
		}
	}
	if err == io.EOF {
		t.done = true
		if t.err = t.commit(); t.err != nil {
			return n, t.err
		}
	}
	return n, err
}

// unpackBlob unpacks a downloaded layer blob into its snapshot.
func (s *Images) unpackBlob(ctx context.Context, desc ocispec.Descriptor, parent, chainID, diffID digest.Digest, p *reporter) error {
	id := shortDigest(desc.Digest)
	ra, err := s.content.ReaderAt(ctx, desc)
	if err != nil {
		return err
	}
	defer ra.Close()
	counter := &progressReader{r: io.NewSectionReader(ra, 0, ra.Size()), total: ra.Size(), report: func(n, total int64) {
		p.progress(id, "Extracting", n, total)
	}}
	tar, _, err := archive.DecompressStream(counter, s.decompress...)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer tar.Close()
	_, err = s.unpacker.unpack(ctx, parent, chainID, diffID, tar)
	return err
}

// shortDigest is the 12-hex ID docker shows for a layer.
func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// reporter sends the progress of a pull, push or load to the client,
// one message at a time (layers download in parallel), with byte counts
// rate-limited.
type reporter struct {
	w  backend.ProgressWriter
	mu sync.Mutex
	// last is when each ID last reported bytes.
	last map[string]time.Time
}

// write sends one message; a nil writer discards it.
func (p *reporter) write(m backend.Progress) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.WriteProgress(m)
}

// send reports a status line, for the layer id ("" for a line of its own).
func (p *reporter) send(id, status string) {
	p.write(backend.Progress{ID: id, Status: status})
}

// progress reports n of total bytes, at most every 100 ms per ID and at
// the end.
func (p *reporter) progress(id, status string, n, total int64) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	now := time.Now()
	if n < total && now.Sub(p.last[id]) < 100*time.Millisecond {
		return
	}
	p.last[id] = now
	p.w.WriteProgress(backend.Progress{ID: id, Status: status, Current: n, Total: total})
}

// progressReader counts the bytes read through it.
type progressReader struct {
	r      io.Reader
	n      int64
	total  int64
	report func(n, total int64)
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	if n > 0 {
		r.report(r.n, r.total)
	}
	return n, err
}
