package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/internal/errdefs"
	"berth.dev/internal/openat2"
	"berth.dev/snapshot"
)

// initSnapshot is the name of a container's own init layer, as containers
// made before init layers were shared have; it goes with the container.
func initSnapshot(id string) string { return "init-" + id }

// sharedInit is the name of the init layer over the committed snapshot
// parent (an image's top layer; "" for an image without layers).
func sharedInit(parent string) string {
	if parent == "" {
		return "init-empty"
	}
	return "init-" + parent
}

// isSharedInit tells a shared init layer's name from a container's own.
func isSharedInit(name string) bool {
	return name == "init-empty" || strings.HasPrefix(name, "init-sha256:")
}

// prepareInit returns the init layer over the image's top layer parent,
// making it the first time: the mount points the runtime needs (/proc,
// /sys, /dev, and the files /etc/hosts, /etc/hostname and
// /etc/resolv.conf are bind-mounted on), so that they never show in a
// container's own changes, its diff or a commit. Its content depends on
// the image alone, so every container of the image shares it (docker makes
// one per container): a create then costs no mount, unmount or commit, and
// a removal one snapshot less. id names the temporary snapshot while it is
// made; creates racing for the same image each make one and all but the
// first commit give theirs up. The images' garbage collection removes an
// init layer with its image.
func (c *Containers) prepareInit(ctx context.Context, id, parent string) (string, error) {
	name := sharedInit(parent)
	if _, err := c.snaps.Stat(ctx, name); err == nil {
		return name, nil
	}
	key := initSnapshot(id) + "-active"
	mounts, err := c.snaps.Prepare(ctx, key, parent)
	if err != nil {
		return "", err
	}
	bg := context.WithoutCancel(ctx)
	dir, err := os.MkdirTemp(c.cfg.tmpDir(), "init-")
	if err != nil {
		os.MkdirAll(c.cfg.tmpDir(), 0o700)
		if dir, err = os.MkdirTemp(c.cfg.tmpDir(), "init-"); err != nil {
			c.snaps.Remove(bg, key)
			return "", err
		}
	}
	defer os.Remove(dir)
	if err := snapshot.MountAll(mounts, dir); err != nil {
		c.snaps.Remove(bg, key)
		return "", err
	}
	err = makeMountPoints(dir)
	if uerr := snapshot.UnmountAll(dir); err == nil {
		err = uerr
	}
	if err == nil {
		err = c.snaps.Commit(ctx, name, key)
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			err = nil // made meanwhile by another create: use that one
			c.snaps.Remove(bg, key)
		}
	}
	if err != nil {
		c.snaps.Remove(bg, key)
		return "", fmt.Errorf("init layer: %w", err)
	}
	return name, nil
}

// mountRootfs mounts a container's snapshot at target. A --rm container's
// overlay is volatile: its writes are never synced, so its unmount at the
// exit does not wait for a sync of the whole filesystem under the
// snapshots (milliseconds, and more while other programs write), and its
// fsyncs cost nothing; its files go with it, so a host crash loses nothing
// kept. A volatile mount leaves a marker in the work directory that makes
// the kernel refuse the snapshot's next mount: every mount removes it
// first. A kernel without volatile (before 5.10) gets the plain mount.
func mountRootfs(mounts []snapshot.Mount, target string, volatile bool) error {
	if len(mounts) == 1 && mounts[0].Type == "overlay" {
		m := mounts[0]
		for _, o := range m.Options {
			if dir, ok := strings.CutPrefix(o, "workdir="); ok {
				os.RemoveAll(filepath.Join(dir, "work", "incompat"))
			}
		}
		if volatile {
			m.Options = append(slices.Clip(m.Options), "volatile")
			if err := m.Mount(target); err == nil {
				return nil
			}
		}
	}
	return snapshot.MountAll(mounts, target)
}

// makeMountPoints creates the mount points of a container's init layer
// where the image lacks them, never following the image's symlinks out of
// the root.
func makeMountPoints(root string) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, d := range []string{"proc", "sys", "dev", "etc"} {
		if err := r.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	for _, f := range []string{"etc/hosts", "etc/hostname", "etc/resolv.conf"} {
		if _, err := r.Lstat(f); err == nil {
			continue
		}
		fh, err := r.OpenFile(f, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		fh.Close()
	}
	return nil
}

// mountedRootfs returns the container's root filesystem: its live mount
// while it runs, or a mount made for the caller, which release undoes.
func (c *Containers) mountedRootfs(ctx context.Context, x *ctr) (string, func(), error) {
	rec := x.snapshotRecord()
	if rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused {
		return c.rootfs(rec.ID), func() {}, nil
	}
	mounts, err := c.snaps.Mounts(ctx, snapshotKey(rec.ID))
	if err != nil {
		return "", nil, err
	}
	os.MkdirAll(c.cfg.tmpDir(), 0o700)
	dir, err := os.MkdirTemp(c.cfg.tmpDir(), "rootfs-")
	if err != nil {
		return "", nil, err
	}
	if err := mountRootfs(mounts, dir, false); err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, func() {
		snapshot.UnmountAll(dir)
		os.Remove(dir)
	}, nil
}

// resolveInRoot returns the host path of p inside root: every component
// but the last is resolved as the container would see it, with symlinks
// and ".." kept inside root; the last one is not followed.
func resolveInRoot(root, p string) (string, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return root, nil
	}
	dir, base := path.Split(p)
	real, err := resolveFollow(root, dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(real, base), nil
}

// resolveFollow is resolveInRoot that also follows a last symlink.
func resolveFollow(root, p string) (string, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(rfd)
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := openat2.Open(rfd, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return "", &os.PathError{Op: "resolve", Path: p, Err: err}
	}
	defer unix.Close(fd)
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if real != root && !strings.HasPrefix(real, root+"/") {
		return "", fmt.Errorf("%w: %s resolves outside the container", errdefs.ErrInvalidArgument, p)
	}
	return real, nil
}

// locate finds which tree holds the container path p: the files berthd
// bind-mounts (/etc/hostname, /etc/hosts, /etc/resolv.conf), a volume or
// bind mount, or the root filesystem root. It returns that tree's host
// directory and p relative to it; for a file mount, the file itself and "".
func (c *Containers) locate(rec *record, root, p string) (string, string) {
	p = path.Clean("/" + p)
	dir := c.dataDir(rec.ID)
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if p == "/etc/"+f {
			return filepath.Join(dir, f), ""
		}
	}
	best, base, rel := "", root, p
	for _, m := range rec.Mounts {
		d := path.Clean(m.Destination)
		if m.Source == "" || len(d) <= len(best) {
			continue
		}
		if p == d || strings.HasPrefix(p, d+"/") {
			best, base, rel = d, m.Source, strings.TrimPrefix(p, d)
		}
	}
	if rel == "" {
		rel = "/"
	}
	return base, rel
}

// resolve is resolveInRoot (follow false) or resolveFollow of the
// container path p, in whichever tree holds it.
func (c *Containers) resolve(rec *record, root, p string, follow bool) (string, error) {
	base, rel := c.locate(rec, root, p)
	if rel == "" {
		return base, nil // a file mount
	}
	if follow {
		return resolveFollow(base, rel)
	}
	return resolveInRoot(base, rel)
}

func pathStat(name, host string) (container.PathStat, error) {
	fi, err := os.Lstat(host)
	if err != nil {
		return container.PathStat{}, err
	}
	st := container.PathStat{Name: name, Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		st.LinkTarget, _ = os.Readlink(host)
	}
	return st, nil
}

func noSuchPath(p, id string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%w: Could not find the file %s in container %s", errdefs.ErrNotFound, p, id)
	}
	return err
}

// StatPath describes path inside the container.
func (c *Containers) StatPath(ctx context.Context, name, p string) (container.PathStat, error) {
	x, err := c.find(name)
	if err != nil {
		return container.PathStat{}, err
	}
	root, release, err := c.mountedRootfs(ctx, x)
	if err != nil {
		return container.PathStat{}, err
	}
	defer release()
	rec := x.snapshotRecord()
	host, err := c.resolve(&rec, root, p, false)
	if err != nil {
		return container.PathStat{}, noSuchPath(p, x.rec.ID, err)
	}
	st, err := pathStat(path.Base(path.Clean("/"+p)), host)
	if err != nil {
		return st, noSuchPath(p, x.rec.ID, err)
	}
	return st, nil
}

// ArchivePath returns a tar of path inside the container.
func (c *Containers) ArchivePath(ctx context.Context, name, p string) (io.ReadCloser, container.PathStat, error) {
	x, err := c.find(name)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	root, release, err := c.mountedRootfs(ctx, x)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	rec := x.snapshotRecord()
	host, err := c.resolve(&rec, root, p, strings.HasSuffix(p, "/"))
	if err != nil {
		release()
		return nil, container.PathStat{}, noSuchPath(p, x.rec.ID, err)
	}
	base := path.Base(path.Clean("/" + p))
	if base == "/" {
		base = "."
	}
	st, err := pathStat(base, host)
	if err != nil {
		release()
		return nil, st, noSuchPath(p, x.rec.ID, err)
	}
	pr, pw := io.Pipe()
	go func() {
		err := archive.WriteTree(ctx, pw, host, base, false)
		release()
		pw.CloseWithError(err)
	}()
	return pr, st, nil
}

// ExtractToPath unpacks a tar into the directory path in the container.
func (c *Containers) ExtractToPath(ctx context.Context, name, p string, r io.Reader, opts backend.ArchiveOptions) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	rec := x.snapshotRecord()
	if rec.HostConfig.ReadonlyRootfs {
		return fmt.Errorf("%w: container rootfs is marked read-only", errdefs.ErrForbidden)
	}
	root, release, err := c.mountedRootfs(ctx, x)
	if err != nil {
		return err
	}
	defer release()
	host, err := c.resolve(&rec, root, p, true)
	if err != nil {
		return noSuchPath(p, rec.ID, err)
	}
	fi, err := os.Stat(host)
	if err != nil {
		return noSuchPath(p, rec.ID, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: extraction point is not a directory", errdefs.ErrInvalidArgument)
	}
	var ao []archive.ApplyOption
	if !opts.CopyUIDGID {
		ao = append(ao, archive.WithNoSameOwner())
	}
	tr, _, err := archive.DecompressStream(r)
	if err != nil {
		return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}
	defer tr.Close()
	if _, err := archive.Apply(ctx, host, tr, ao...); err != nil {
		return fmt.Errorf("%w: copy to %s: %w", errdefs.ErrInvalidArgument, p, err)
	}
	return nil
}

// changes compares the container's filesystem with its image (its init
// layer) and calls fn with the changes and the container's tree.
func (c *Containers) changes(ctx context.Context, x *ctr, fn func(upper string, changes []archive.Change) error) error {
	rec := x.snapshotRecord()
	root, release, err := c.mountedRootfs(ctx, x)
	if err != nil {
		return err
	}
	defer release()
	info, err := c.snaps.Stat(ctx, snapshotKey(rec.ID))
	if err != nil {
		return err
	}
	viewKey := "view-" + rec.ID + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	mounts, err := c.snaps.View(ctx, viewKey, info.Parent)
	if err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	defer c.snaps.Remove(bg, viewKey)
	lower, err := os.MkdirTemp(c.cfg.tmpDir(), "lower-")
	if err != nil {
		return err
	}
	defer os.Remove(lower)
	if err := snapshot.MountAll(mounts, lower); err != nil {
		return err
	}
	defer snapshot.UnmountAll(lower)
	ch, err := archive.Changes(ctx, lower, root)
	if err != nil {
		return err
	}
	return fn(root, ch)
}

// Changes lists what changed in the container's filesystem.
func (c *Containers) Changes(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	x, err := c.find(name)
	if err != nil {
		return nil, err
	}
	out := []container.FilesystemChange{}
	err = c.changes(ctx, x, func(_ string, ch []archive.Change) error {
		for _, k := range ch {
			out = append(out, container.FilesystemChange{Kind: container.ChangeType(k.Kind), Path: k.Path})
		}
		return nil
	})
	return out, err
}

// Commit makes an image of the container's changes.
func (c *Containers) Commit(ctx context.Context, name string, opts backend.CommitOptions) (string, error) {
	x, err := c.find(name)
	if err != nil {
		return "", err
	}
	rec := x.snapshotRecord()
	if opts.Pause && rec.State.Status == container.StateRunning {
		if err := c.runtimeCmd(ctx, &rec, "pause", rec.ID); err != nil {
			return "", err
		}
		defer c.runtimeCmd(context.WithoutCancel(ctx), &rec, "resume", rec.ID)
	}
	m, err := c.images.lookup(ctx, rec.Image)
	if err != nil {
		return "", fmt.Errorf("image of the container: %w", err)
	}
	parent, err := c.images.load(ctx, m.Images[0])
	if err != nil {
		return "", err
	}
	cfg := parent.config
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.Author = opts.Author
	cc := rec.Config
	if opts.Config != nil {
		merged := mergeCommitConfig(*cc, *opts.Config)
		cc = &merged
	}
	ic := &cfg.Config
	ic.Env, ic.Cmd, ic.Entrypoint, ic.WorkingDir, ic.User = cc.Env, cc.Cmd, cc.Entrypoint, cc.WorkingDir, cc.User
	ic.Labels, ic.StopSignal = cc.Labels, cc.StopSignal
	if len(cc.ExposedPorts) > 0 {
		ic.ExposedPorts = map[string]struct{}{}
		for p := range cc.ExposedPorts {
			ic.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(cc.Volumes) > 0 {
		ic.Volumes = cc.Volumes
	}
	for _, ch := range opts.Changes {
		if err := applyChange(&cfg, ch); err != nil {
			return "", err
		}
	}
	path, args := command(rec.Config)
	createdBy := strings.Join(append([]string{path}, args...), " ")

	c.images.mu.RLock()
	defer c.images.mu.RUnlock()
	var layer ocispec.Descriptor
	var diffID digest.Digest
	err = c.changes(ctx, x, func(upper string, ch []archive.Change) error {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(archive.WriteChanges(ctx, pw, upper, ch)) }()
		var top digest.Digest
		if n := len(parent.chainIDs); n > 0 {
			top = parent.chainIDs[n-1]
		}
		var err error
		layer, diffID, err = c.images.storeLayer(ctx, top, pr, "commit-"+rec.ID+"-"+strconv.FormatInt(now.UnixNano(), 36))
		pr.CloseWithError(err)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", strings.TrimPrefix(rec.Name, "/"), err)
	}
	cfg.RootFS.DiffIDs = append(append([]digest.Digest{}, cfg.RootFS.DiffIDs...), diffID)
	cfg.History = append(append([]ocispec.History{}, cfg.History...), ocispec.History{Created: &now, CreatedBy: createdBy, Comment: opts.Comment, Author: opts.Author})
	layers := append(append([]ocispec.Descriptor{}, parent.manifest.Layers...), layer)
	id, err := c.images.storeImage(ctx, cfg, layers, opts.Ref)
	if err != nil {
		return "", err
	}
	c.publish(&rec, events.ActionCommit, map[string]string{"comment": opts.Comment})
	c.images.events.Publish(events.ImageEventType, events.ActionCreate, id.String(), nil)
	return id.String(), nil
}

// mergeCommitConfig puts the fields set in over (docker commit's request
// body) on the container's config.
func mergeCommitConfig(base, over container.Config) container.Config {
	out := base
	if len(over.Cmd) > 0 {
		out.Cmd = over.Cmd
	}
	if len(over.Entrypoint) > 0 {
		out.Entrypoint = over.Entrypoint
	}
	if len(over.Env) > 0 {
		out.Env = over.Env
	}
	if over.WorkingDir != "" {
		out.WorkingDir = over.WorkingDir
	}
	if over.User != "" {
		out.User = over.User
	}
	if len(over.Labels) > 0 {
		out.Labels = over.Labels
	}
	if len(over.ExposedPorts) > 0 {
		out.ExposedPorts = over.ExposedPorts
	}
	if len(over.Volumes) > 0 {
		out.Volumes = over.Volumes
	}
	if over.StopSignal != "" {
		out.StopSignal = over.StopSignal
	}
	return out
}
