package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/build"
	engspec "berth.dev/engine/ocispec"
	"berth.dev/image"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
	"berth.dev/shim"
	"berth.dev/snapshot"
)

// maxReadFile bounds a file ReadFile returns (an /etc/passwd, an
// /etc/group).
const maxReadFile = 16 << 20

// executor is the engine's build.Executor for one build: RUN steps run in
// ephemeral containers that no container list shows (an init layer and a
// writable snapshot over the state's layers, a shim, the runtime, the
// network the build asks for), COPY and ADD apply a tar on a snapshot, and
// both store the diff of their snapshot as a layer (a gzip blob and a
// layer snapshot named by its chain ID), as commit does. The blobs a build
// made or uses are protected from garbage collection until close. It is
// safe for concurrent use (stages may build in parallel).
type executor struct {
	b *Builds

	mu       sync.Mutex
	releases []func()
}

var (
	_ build.Executor   = (*executor)(nil)
	_ build.FileSource = (*executor)(nil)
)

func (b *Builds) newExecutor() *executor { return &executor{b: b} }

// close releases the protections of the build's blobs.
func (x *executor) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, r := range x.releases {
		r()
	}
	x.releases = nil
}

// protect keeps the blobs of descs from the content store's pruning until
// the build ends.
func (x *executor) protect(descs ...ocispec.Descriptor) {
	ds := make([]digest.Digest, 0, len(descs))
	for _, d := range descs {
		ds = append(ds, d.Digest)
	}
	r := x.b.images.content.Protect(ds...)
	x.mu.Lock()
	x.releases = append(x.releases, r)
	x.mu.Unlock()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Image returns the state of the image ref, pulled first when it is
// missing or pull is set. The pull's messages go to out as lines of text.
func (x *executor) Image(ctx context.Context, ref string, pull bool, out io.Writer) (build.State, error) {
	imgs := x.b.images
	m, err := imgs.lookup(ctx, ref)
	if pull || errors.Is(err, errdefs.ErrNotFound) {
		named, perr := image.ParseNormalized(ref)
		if perr != nil {
			if err != nil {
				return build.State{}, noSuchImage(ref, err)
			}
			return build.State{}, perr
		}
		if perr := imgs.Pull(ctx, named.String(), backend.PullOptions{}, textProgress{out}); perr != nil {
			return build.State{}, fmt.Errorf("pull %s: %w", ref, perr)
		}
		m, err = imgs.lookup(ctx, named.String())
	}
	if err != nil {
		return build.State{}, noSuchImage(ref, err)
	}
	r, err := imgs.load(ctx, m.Images[0])
	if err != nil {
		return build.State{}, err
	}
	x.protect(r.record.Target)
	x.protect(r.manifest.Layers...)
	return build.State{Layers: r.manifest.Layers, Config: r.config}, nil
}

// textProgress writes pull messages as text: "<id>: <status>" lines, and
// no byte counts.
type textProgress struct{ w io.Writer }

func (p textProgress) WriteProgress(m backend.Progress) error {
	if p.w == nil || m.Total > 0 || m.Current > 0 {
		return nil
	}
	line := m.Status
	if m.ID != "" {
		line = m.ID + ": " + line
	}
	_, err := io.WriteString(p.w, line+"\n")
	return err
}

// layers makes sure s's layer snapshots are there, unpacking the missing
// ones from their blobs (a layer of a cached step, or one the garbage
// collector took), and returns the chain ID of the top one ("" for none).
// The caller holds the image service's lock for reading.
func (x *executor) layers(ctx context.Context, s build.State) (digest.Digest, error) {
	diffIDs := s.Config.RootFS.DiffIDs
	if len(diffIDs) != len(s.Layers) {
		return "", fmt.Errorf("%w: build state has %d layers and %d diff IDs", errdefs.ErrInvalidArgument, len(s.Layers), len(diffIDs))
	}
	if len(diffIDs) == 0 {
		return "", nil
	}
	chains := image.ChainIDs(diffIDs)
	imgs := x.b.images
	// A committed snapshot's parents exist: the first present one from the
	// top ends the search.
	first := len(chains)
	for first > 0 {
		ok, err := imgs.unpacker.has(ctx, chains[first-1])
		if err != nil {
			return "", err
		}
		if ok {
			break
		}
		first--
	}
	for i := first; i < len(chains); i++ {
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		if err := imgs.unpackBlob(ctx, s.Layers[i], parent, chains[i], diffIDs[i], &reporter{}); err != nil {
			return "", fmt.Errorf("layer %d of the build state: %w", i+1, err)
		}
	}
	return chains[len(chains)-1], nil
}

// on calls fn with the chain ID of s's top layer, once its snapshots are
// there, under the image service's lock: fn makes the snapshot a step
// works in, whose parent the garbage collector then leaves alone.
func (x *executor) on(ctx context.Context, s build.State, fn func(ctx context.Context, top digest.Digest) error) (digest.Digest, error) {
	x.b.images.mu.RLock()
	defer x.b.images.mu.RUnlock()
	top, err := x.layers(ctx, s)
	if err != nil {
		return "", err
	}
	return top, fn(ctx, top)
}

// Run runs r in an ephemeral container on s's filesystem and stores what
// it changed as a layer.
func (x *executor) Run(ctx context.Context, s build.State, r build.RunSpec, epoch time.Time, out io.Writer) (_ build.Layer, err error) {
	if len(r.Args) == 0 {
		return build.Layer{}, fmt.Errorf("%w: RUN without a command", errdefs.ErrInvalidArgument)
	}
	cs := x.b.ctrs
	id := randomHex(32)
	bg := context.WithoutCancel(ctx)
	run := &ephemeral{x: x, id: id}
	defer run.cleanup(bg)
	top, err := x.on(ctx, s, run.prepare)
	if err != nil {
		return build.Layer{}, err
	}
	code, err := run.run(ctx, s.Config, r, out)
	if err != nil {
		return build.Layer{}, err
	}
	// The runtime forgets the container while the diff is made.
	deleted := make(chan struct{})
	go func() {
		defer close(deleted)
		run.deleteRuntime(bg)
	}()
	defer func() { <-deleted }()
	if code != 0 {
		return build.Layer{}, &build.ExitError{Code: code}
	}
	return x.storeDiff(ctx, top, cs.rootfs(id), run.mounts, run.init, epoch, "build-"+id)
}

// ephemeral is one RUN's container: its record (never saved), snapshots,
// bundle, shim and network, all under the container paths of the
// container service, so that the recovery of a crashed berthd removes
// what was left as it does for containers without a record.
type ephemeral struct {
	x      *executor
	id     string
	rec    record
	mounts []snapshot.Mount

	init string // the init layer under the container's snapshot

	prepared, mounted, started bool
}

// prepare makes the init layer over top and the container's snapshot over
// it, mounted at the bundle's rootfs.
func (e *ephemeral) prepare(ctx context.Context, top digest.Digest) error {
	cs := e.x.b.ctrs
	init, err := cs.prepareInit(ctx, e.id, string(top))
	if err != nil {
		return err
	}
	e.init = init
	if e.mounts, err = cs.snaps.Prepare(ctx, snapshotKey(e.id), init); err != nil {
		return fmt.Errorf("build container snapshot: %w", err)
	}
	e.prepared = true
	if err := os.MkdirAll(cs.rootfs(e.id), 0o711); err != nil {
		return err
	}
	if err := snapshot.MountAll(e.mounts, cs.rootfs(e.id)); err != nil {
		return fmt.Errorf("mount the build container's rootfs: %w", err)
	}
	e.mounted = true
	return nil
}

// run starts r under a shim with its output going to out and waits for
// its exit code.
func (e *ephemeral) run(ctx context.Context, img image.Config, r build.RunSpec, out io.Writer) (int, error) {
	cs := e.x.b.ctrs
	id := e.id
	mode := container.NetworkMode(r.Network)
	if mode == "" || mode == "default" {
		mode = "bridge"
	}
	e.rec = record{
		ID: id, Name: "/build-" + id[:12],
		Config:     &container.Config{Hostname: id[:12]},
		HostConfig: &container.HostConfig{NetworkMode: mode},
	}
	if userNetwork(mode) {
		e.rec.Networks = map[string]*network.EndpointSettings{networkName(mode): {}}
	}
	if err := os.MkdirAll(cs.dataDir(id), 0o700); err != nil {
		return 0, err
	}
	if err := cs.setupNetwork(ctx, &e.rec); err != nil {
		return 0, err
	}
	if err := cs.writeEtcFiles(&e.rec); err != nil {
		return 0, err
	}
	o, err := cs.runOptions(&e.rec)
	if err != nil {
		return 0, err
	}
	if mode.IsHost() {
		o.NetworkMode, o.NetNSPath = "host", ""
	}
	o.Cmd, o.Entrypoint = r.Args, []string{""}
	o.Env, o.User, o.WorkingDir = r.Env, r.User, r.WorkDir
	o.CgroupParent = e.x.b.cgroupParent
	spec, err := engspec.Generate(img, cs.rootfs(id), o)
	if err != nil {
		return 0, err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(cs.bundle(id), "config.json"), data, 0o600); err != nil {
		return 0, err
	}
	runtime, err := cs.runtimeBinary("")
	if err != nil {
		return 0, err
	}
	e.started = true
	cl, _, err := shim.Start(ctx, shim.StartOptions{
		Binary: cs.shimBin, ID: id, Bundle: cs.bundle(id), Dir: cs.shimDir(id),
		Runtime: runtime, RuntimeRoot: cs.runtimeRoot(), Log: shim.LogOptions{MaxFiles: 1}, Deferred: true,
	})
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", strings.Join(r.Args, " "), err)
	}
	bg := context.WithoutCancel(ctx)
	if out == nil {
		out = io.Discard
	}
	// Attached before the start, so that no output is lost.
	a, err := cl.AttachStream(bg, shim.Streams{Stdout: out, Stderr: out}, false)
	if err != nil {
		cl.Kill(bg, syscall.SIGKILL, true)
		cl.Wait(bg)
		return 0, err
	}
	if err := cl.StartContainer(ctx); err != nil {
		cl.Kill(bg, syscall.SIGKILL, true)
		cl.Wait(bg)
		a.Wait()
		return 0, fmt.Errorf("run %s: %w", strings.Join(r.Args, " "), err)
	}
	exit, err := cl.Wait(ctx)
	if err != nil {
		// Cancelled: the command goes, with everything it started.
		cl.Kill(bg, syscall.SIGKILL, true)
		cl.Wait(bg)
		a.Wait()
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, err
	}
	// The output ends when the container has exited and the shim has
	// sent all of it.
	if err := a.Wait(); err != nil {
		return 0, err
	}
	return exit.Code, nil
}

// deleteRuntime makes the runtime forget the container (its state and
// cgroup).
func (e *ephemeral) deleteRuntime(ctx context.Context) {
	if !e.started {
		return
	}
	e.started = false
	cs := e.x.b.ctrs
	runtime, err := cs.runtimeBinary("")
	if err != nil {
		return
	}
	if out, err := exec.CommandContext(ctx, runtime, "--root", cs.runtimeRoot(), "delete", "--force", e.id).CombinedOutput(); err != nil {
		cs.log.Warn("build: runtime delete", "id", e.id, "err", err, "output", strings.TrimSpace(string(out)))
	}
}

// cleanup removes all that prepare and run made. Failures are logged: the
// next berthd's recovery removes what is left.
func (e *ephemeral) cleanup(ctx context.Context) {
	cs := e.x.b.ctrs
	e.deleteRuntime(ctx)
	cs.teardownNetwork(ctx, &e.rec)
	if e.mounted {
		if err := snapshot.UnmountAll(cs.rootfs(e.id)); err != nil {
			cs.log.Warn("build: unmount", "id", e.id, "err", err)
		}
	}
	if e.prepared {
		if err := cs.snaps.Remove(ctx, snapshotKey(e.id)); err != nil {
			cs.log.Warn("build: remove snapshot", "id", e.id, "err", err)
		}
	}
	os.RemoveAll(cs.dir(e.id))
	os.RemoveAll(cs.shimDir(e.id))
	os.RemoveAll(cs.dataDir(e.id))
}

// storeDiff stores the changes of the snapshot mounted at root (its mounts
// as the snapshotter gave them, over the committed snapshot parent) as a
// layer on top of the layer snapshot top, with times clamped to epoch.
func (x *executor) storeDiff(ctx context.Context, top digest.Digest, root string, mounts []snapshot.Mount, parent string, epoch time.Time, ref string) (build.Layer, error) {
	x.b.images.mu.RLock()
	defer x.b.images.mu.RUnlock()
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(x.writeDiff(ctx, pw, root, mounts, parent, epoch))
	}()
	blob, diffID, err := x.b.images.storeLayer(ctx, top, pr, ref)
	pr.CloseWithError(err)
	<-written // the tree is not read any more when the caller unmounts it
	if err != nil {
		return build.Layer{}, fmt.Errorf("store the layer: %w", err)
	}
	x.protect(blob)
	return build.Layer{DiffID: diffID, Blob: blob}, nil
}

// writeDiff writes the layer tar of a snapshot's changes: for an overlay
// snapshot, its upper directory over its lower ones; for a snapshot that
// started empty, its whole tree; otherwise (the native snapshotter) the
// changes between its tree and a view of its parent.
func (x *executor) writeDiff(ctx context.Context, w io.Writer, root string, mounts []snapshot.Mount, parent string, epoch time.Time) error {
	clamp := archive.ClampTimes(epoch)
	if len(mounts) == 1 && mounts[0].Type == "overlay" {
		var upper string
		var lowers []string
		for _, o := range mounts[0].Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				upper = v
			} else if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lowers = strings.Split(v, ":")
			}
		}
		if upper != "" {
			return archive.WriteDiff(ctx, w, upper, lowers, clamp)
		}
	}
	if parent == "" {
		return archive.WriteDiff(ctx, w, root, nil, clamp)
	}
	snaps := x.b.ctrs.snaps
	key := viewPrefix + randomHex(8)
	vm, err := snaps.View(ctx, key, parent)
	if err != nil {
		return err
	}
	defer snaps.Remove(context.WithoutCancel(ctx), key)
	lower, err := x.b.mountDir("lower-")
	if err != nil {
		return err
	}
	defer os.Remove(lower)
	if err := snapshot.MountAll(vm, lower); err != nil {
		return err
	}
	defer snapshot.UnmountAll(lower)
	ch, err := archive.Changes(ctx, lower, root)
	if err != nil {
		return err
	}
	return archive.WriteChanges(ctx, w, root, ch, clamp)
}

// Apply applies the tar over s's filesystem in a snapshot and stores the
// changes as a layer.
func (x *executor) Apply(ctx context.Context, s build.State, tar io.Reader, epoch time.Time) (build.Layer, error) {
	snaps := x.b.ctrs.snaps
	bg := context.WithoutCancel(ctx)
	// "extract-": the recovery of a crashed berthd removes it.
	key := "extract-build-" + randomHex(8)
	var mounts []snapshot.Mount
	top, err := x.on(ctx, s, func(ctx context.Context, top digest.Digest) (err error) {
		if mounts, err = snaps.Prepare(ctx, key, string(top)); err != nil {
			return fmt.Errorf("prepare snapshot: %w", err)
		}
		return nil
	})
	if err != nil {
		return build.Layer{}, err
	}
	defer snaps.Remove(bg, key)
	dir, err := x.b.mountDir("apply-")
	if err != nil {
		return build.Layer{}, err
	}
	defer os.Remove(dir)
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return build.Layer{}, fmt.Errorf("mount snapshot: %w", err)
	}
	defer snapshot.UnmountAll(dir)
	if _, err := archive.Apply(ctx, dir, tar); err != nil {
		return build.Layer{}, fmt.Errorf("%w: copy: %w", errdefs.ErrInvalidArgument, err)
	}
	return x.storeDiff(ctx, top, dir, mounts, string(top), epoch, "build-"+key)
}

// view mounts a read-only view of s's filesystem and returns its root
// and the function that unmounts and removes it. The image service's lock
// is held only while the view is made: a stream of the view may be read
// while other steps of the build take the lock.
func (x *executor) view(ctx context.Context, s build.State) (string, func(), error) {
	snaps := x.b.ctrs.snaps
	dir, err := x.b.mountDir("view-")
	if err != nil {
		return "", nil, err
	}
	key := viewPrefix + randomHex(8)
	viewed := false
	_, err = x.on(ctx, s, func(ctx context.Context, top digest.Digest) error {
		if top == "" {
			return nil // FROM scratch: an empty tree
		}
		mounts, err := snaps.View(ctx, key, string(top))
		if err != nil {
			return err
		}
		viewed = true
		return snapshot.MountAll(mounts, dir)
	})
	bg := context.WithoutCancel(ctx)
	release := func() {
		if viewed {
			snapshot.UnmountAll(dir)
			snaps.Remove(bg, key)
		}
		os.Remove(dir)
	}
	if err != nil {
		release()
		return "", nil, err
	}
	return dir, release, nil
}

// notFoundInImage words a path that resolves to nothing.
func notFoundInImage(p string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: %s: no such file or directory in the image", errdefs.ErrNotFound, p)
	}
	return err
}

// ReadFile reads the file p of s's filesystem from a view of its layers;
// symlinks are followed inside the image.
func (x *executor) ReadFile(ctx context.Context, s build.State, p string) ([]byte, error) {
	root, release, err := x.view(ctx, s)
	if err != nil {
		return nil, err
	}
	defer release()
	host, err := resolveFollow(root, p)
	if err != nil {
		return nil, notFoundInImage(p, err)
	}
	f, err := os.Open(host)
	if err != nil {
		return nil, notFoundInImage(p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxReadFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxReadFile {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", errdefs.ErrInvalidArgument, p, maxReadFile)
	}
	return data, nil
}

// Stat describes the file p of s's filesystem (its parents resolved
// inside the image, the last component not followed).
func (x *executor) Stat(ctx context.Context, s build.State, p string) (fs.FileInfo, error) {
	root, release, err := x.view(ctx, s)
	if err != nil {
		return nil, err
	}
	defer release()
	host, err := resolveInRoot(root, p)
	if err != nil {
		return nil, notFoundInImage(p, err)
	}
	fi, err := os.Lstat(host)
	if err != nil {
		return nil, notFoundInImage(p, err)
	}
	return fi, nil
}

// Export streams p of s's filesystem, a file or a tree, as a tar whose
// names are relative to the image's root (its parents resolved inside the
// image, p itself not followed). The view stays mounted until the stream
// ends or is closed.
func (x *executor) Export(ctx context.Context, s build.State, p string) (io.ReadCloser, error) {
	root, release, err := x.view(ctx, s)
	if err != nil {
		return nil, err
	}
	host, err := resolveInRoot(root, p)
	if err == nil {
		_, err = os.Lstat(host)
	}
	if err != nil {
		release()
		return nil, notFoundInImage(p, err)
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := archive.WriteTree(ctx, pw, host, name, false)
		release()
		pw.CloseWithError(err)
	}()
	return &exportStream{PipeReader: pr, done: done}, nil
}

// exportStream is Export's stream: Close returns once the view is
// released.
type exportStream struct {
	*io.PipeReader
	done chan struct{}
}

func (e *exportStream) Close() error {
	e.PipeReader.Close()
	<-e.done
	return nil
}

// Commit stores s as an image named by every tag.
func (x *executor) Commit(ctx context.Context, s build.State, tags []string) (string, error) {
	imgs := x.b.images
	var named []string
	for _, t := range tags {
		ref, err := image.ParseNormalized(t)
		if err != nil {
			return "", err
		}
		if _, ok := ref.(reference.Digested); ok {
			return "", fmt.Errorf("%w: tag %s: refusing to create a tag with a digest reference", errdefs.ErrInvalidArgument, t)
		}
		named = append(named, ref.String())
	}
	imgs.mu.RLock()
	defer imgs.mu.RUnlock()
	if _, err := x.layers(ctx, s); err != nil {
		return "", err
	}
	cfg := s.Config
	if cfg.RootFS.Type == "" {
		cfg.RootFS.Type = "layers"
	}
	first := ""
	if len(named) > 0 {
		first = named[0]
	}
	id, err := imgs.storeImage(ctx, cfg, s.Layers, first)
	if err != nil {
		return "", err
	}
	for i, n := range named {
		if i > 0 {
			m, err := imgs.lookup(ctx, id.String())
			if err != nil {
				return "", err
			}
			src := m.Images[0]
			if _, err := imgs.putName(ctx, image.Image{Name: n, Target: src.Target, ConfigDigest: id}); err != nil {
				return "", err
			}
		}
		ref, _ := image.ParseNormalized(n)
		imgs.events.Publish(events.ImageEventType, events.ActionTag, id.String(), map[string]string{"name": image.FamiliarString(ref)})
	}
	return id.String(), nil
}

// cacheEntry is a build-cache record: the layer a step made.
type cacheEntry struct {
	DiffID digest.Digest      `json:"diffID"`
	Blob   ocispec.Descriptor `json:"blob"`
	// Created is when the step was cached (prune's until filter).
	Created time.Time `json:"created,omitzero"`
}

// CacheGet returns the layer cached under key when its blob is still in
// the content store (its snapshot is unpacked again from the blob when it
// is missing); an entry whose blob is gone is dropped.
func (x *executor) CacheGet(ctx context.Context, key digest.Digest) (build.Layer, bool, error) {
	var e cacheEntry
	found := false
	err := x.b.db.View(ctx, func(tx *bolt.Tx) error {
		data := tx.Bucket(metadata.BucketBuildCache).Get([]byte(key))
		if data == nil {
			return nil
		}
		found = json.Unmarshal(data, &e) == nil && e.DiffID != "" && e.Blob.Digest != ""
		return nil
	})
	if err != nil || !found {
		return build.Layer{}, false, err
	}
	// Protected before the check, so that a prune cannot take it after.
	x.protect(e.Blob)
	if _, err := x.b.images.content.Info(ctx, e.Blob.Digest); err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			return build.Layer{}, false, err
		}
		return build.Layer{}, false, x.b.db.Update(ctx, func(tx *bolt.Tx) error {
			return tx.Bucket(metadata.BucketBuildCache).Delete([]byte(key))
		})
	}
	return build.Layer{DiffID: e.DiffID, Blob: e.Blob}, true, nil
}

// CachePut records the layer a step made under its cache key.
func (x *executor) CachePut(ctx context.Context, key digest.Digest, l build.Layer) error {
	data, err := json.Marshal(cacheEntry{DiffID: l.DiffID, Blob: l.Blob, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	return x.b.db.Update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketBuildCache).Put([]byte(key), data)
	})
}
