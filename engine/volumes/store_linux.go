package volumes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"
	bolt "go.etcd.io/bbolt"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
)

// Store is the volume service. It implements the Docker API's
// VolumeBackend and what the container service needs (Acquire, Populate,
// Release). It is safe for concurrent use; changes are serialized.
type Store struct {
	root   string
	db     *metadata.DB
	events EventFunc

	// mu serializes changes, so that a volume's record and its directory
	// (and mount) change together.
	mu sync.Mutex
	// cleaned names the directories without a record that New removed.
	cleaned []string
}

// EventFunc receives the store's volume events: create, destroy and prune
// (attributes: driver, or reclaimed for prune). The engine publishes them
// as events.VolumeEventType.
type EventFunc func(action events.Action, name string, attributes map[string]string)

// Option changes how New sets up the store.
type Option func(*Store)

// WithEvents sends the store's events to fn.
func WithEvents(fn EventFunc) Option { return func(s *Store) { s.events = fn } }

// New opens the store whose volumes live in root/<name>/_data (root is
// /var/lib/berth/volumes) and whose records are in db's
// metadata.BucketVolumes. It repairs what a crash may have left: a
// directory without a record is removed (after unmounting whatever is
// mounted in it; see Cleaned), a record without a directory gets an empty
// one, a volume filesystem no container uses is unmounted and one that
// containers use but that is not mounted (after a reboot) is mounted again.
// A repair that fails is not an error: the next New tries again, and
// Acquire and Populate mount what they need.
func New(root string, db *metadata.DB, opts ...Option) (*Store, error) {
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	// Mount points are compared with /proc/self/mountinfo, which shows
	// resolved paths.
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	s := &Store{root: real, db: db}
	for _, o := range opts {
		o(s)
	}
	if err := s.repair(context.Background()); err != nil {
		return nil, fmt.Errorf("volumes %s: %w", root, err)
	}
	return s, nil
}

// Cleaned returns the names of the directories without a record that New
// removed: volumes whose creation or removal a crash interrupted.
func (s *Store) Cleaned() []string { return slices.Clone(s.cleaned) }

func (s *Store) repair(ctx context.Context) error {
	recs, err := s.all(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, r := range recs {
		known[r.Name] = true
		_ = os.MkdirAll(s.dataDir(r.Name), 0o755)
		if !r.mounts() {
			continue
		}
		mounted, err := isMountpoint(s.dataDir(r.Name))
		switch {
		case err != nil: // unknown: Acquire and Populate check again
		case mounted && len(r.Users) == 0:
			_ = unmountAll(s.dataDir(r.Name))
		case !mounted && len(r.Users) > 0:
			_ = mountFS(r.Options, s.dataDir(r.Name))
		}
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		if err := removeDir(filepath.Join(s.root, e.Name())); err == nil {
			s.cleaned = append(s.cleaned, e.Name())
		}
	}
	return nil
}

// dir is the volume's own directory; dataDir is what containers see.
func (s *Store) dir(name string) string     { return filepath.Join(s.root, name) }
func (s *Store) dataDir(name string) string { return filepath.Join(s.root, name, "_data") }

// Create makes a volume with the local driver. Without a name it gets a
// generated 64-hex one and the label AnonymousLabel, as in dockerd 23+.
// Creating one that exists returns it unchanged, whatever labels and
// options req carries, as dockerd does. A driver other than "local" is
// ErrNotFound; a bad name or driver option ErrInvalidArgument.
func (s *Store) Create(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	name, labels := req.Name, req.Labels
	if name == "" {
		var err error
		if name, err = newName(); err != nil {
			return volume.Volume{}, err
		}
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	if req.Driver != "" && req.Driver != localDriver {
		return volume.Volume{}, fmt.Errorf("%w: create %s: error looking up volume plugin %s: plugin %q not found", errdefs.ErrNotFound, name, req.Driver, req.Driver)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.create(ctx, name, labels, req.DriverOpts, "")
	if err != nil {
		return volume.Volume{}, err
	}
	return s.volumeOf(r), nil
}

// create returns the volume name, making it when missing; a volume it
// makes for a container (user not empty) is recorded with that use in
// the same transaction, so no crash leaves it unused. s.mu is held.
func (s *Store) create(ctx context.Context, name string, labels, opts map[string]string, user string) (*record, error) {
	if err := validateName(name); err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", errdefs.ErrInvalidArgument, name, err)
	}
	if err := validateOptions(opts); err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", errdefs.ErrInvalidArgument, name, err)
	}
	r, err := s.lookup(ctx, name)
	if err != nil || r != nil {
		return r, err
	}
	// A directory without a record is what a failed removal left: start
	// from nothing rather than hand out its old content.
	if _, err := os.Lstat(s.dir(name)); err == nil {
		if err := removeDir(s.dir(name)); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	// The directory before the record: a crash in between leaves a
	// directory without a record, which New removes.
	if err := os.MkdirAll(s.dir(name), 0o701); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	if err := os.Mkdir(s.dataDir(name), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	r = &record{
		Name:      name,
		Driver:    localDriver,
		Labels:    nonEmpty(labels),
		Options:   nonEmpty(opts),
		CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	if user != "" {
		r.addUser(user)
	}
	if err := s.put(ctx, r); err != nil {
		_ = os.RemoveAll(s.dir(name))
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	s.emit(events.ActionCreate, name, map[string]string{"driver": localDriver})
	return r, nil
}

// nonEmpty copies m, or returns nil for an empty one (dockerd's JSON shows
// null then).
func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// Inspect describes one volume; an unknown one is ErrNotFound.
func (s *Store) Inspect(ctx context.Context, name string) (volume.Volume, error) {
	r, err := s.get(ctx, name)
	if err != nil {
		return volume.Volume{}, err
	}
	return s.volumeOf(r), nil
}

// List returns the volumes the filters select, by name. Filters: dangling
// (true: no container uses it; false: one does), driver (exact), label
// (key or key=value; all must match), label! (left out when all match),
// name (a regular expression, matched anywhere in the name). Other keys
// and malformed booleans are ErrInvalidArgument.
func (s *Store) List(ctx context.Context, filters backend.VolumeFilters) ([]volume.Volume, error) {
	sel, err := parseSelector(filters, listFilterKeys)
	if err != nil {
		return nil, err
	}
	recs, err := s.all(ctx)
	if err != nil {
		return nil, err
	}
	out := []volume.Volume{}
	for _, r := range recs {
		if sel.match(r) {
			out = append(out, s.volumeOf(r))
		}
	}
	return out, nil
}

// Remove deletes a volume and its content. One that a container uses is
// ErrConflict ("remove x: volume is in use - [id]"), with or without
// force; an unknown one is ErrNotFound unless force.
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.get(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) && force {
		return nil
	}
	if err != nil {
		return err
	}
	if len(r.Users) > 0 {
		return fmt.Errorf("%w: remove %s: volume is in use - [%s]", errdefs.ErrConflict, name, strings.Join(r.Users, ", "))
	}
	return s.remove(ctx, r)
}

// remove deletes an unused volume: the record first, then the directory,
// so a crash in between leaves only a directory that New removes. s.mu is
// held.
func (s *Store) remove(ctx context.Context, r *record) error {
	if err := s.db.Update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketVolumes).Delete([]byte(r.Name))
	}); err != nil {
		return fmt.Errorf("remove %s: %w", r.Name, err)
	}
	s.emit(events.ActionDestroy, r.Name, map[string]string{"driver": localDriver})
	if err := removeDir(s.dir(r.Name)); err != nil {
		return fmt.Errorf("remove %s: %w", r.Name, err)
	}
	return nil
}

// Prune removes the volumes no container uses: only anonymous ones unless
// the filter all=true is given (docker 23+), and never one with driver
// options (a tmpfs or bind holds nothing to reclaim), as dockerd. Filters:
// all, label, label! (as in List). It reports the names removed and the
// bytes their files took. A volume that cannot be removed is skipped and
// its error returned with the report of the others.
func (s *Store) Prune(ctx context.Context, filters backend.VolumeFilters) (volume.PruneReport, error) {
	rep := volume.PruneReport{VolumesDeleted: []string{}}
	sel, err := parseSelector(filters, pruneFilterKeys)
	if err != nil {
		return rep, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.all(ctx)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, r := range recs {
		if len(r.Users) > 0 || len(r.Options) > 0 || (!sel.all && !r.anonymous()) || !sel.match(r) {
			continue
		}
		size, _ := sizeOf(s.dataDir(r.Name))
		if err := s.remove(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, r.Name)
		rep.SpaceReclaimed += uint64(size)
	}
	s.emit(events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	return rep, errors.Join(errs...)
}

// Acquire marks the volume name as used by container containerID and
// returns its host path (the _data directory) for the container's mount.
// A missing volume is created: with the label AnonymousLabel when
// anonymous. A volume with driver options is mounted by its first user.
// Acquiring twice for one container is one use. The use is recorded, so
// the volume stays in use across restarts of the engine until Release.
func (s *Store) Acquire(ctx context.Context, name, containerID string, anonymous bool) (string, error) {
	if containerID == "" {
		return "", fmt.Errorf("%w: acquire volume %s: no container ID", errdefs.ErrInvalidArgument, name)
	}
	var labels map[string]string
	if anonymous {
		labels = map[string]string{AnonymousLabel: ""}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.create(ctx, name, labels, nil, containerID)
	if err != nil {
		return "", err
	}
	if err := s.ensureMounted(r); err != nil {
		return "", err
	}
	if r.addUser(containerID) { // an existing volume
		if err := s.put(ctx, r); err != nil {
			return "", fmt.Errorf("acquire volume %s: %w", name, err)
		}
	}
	return s.dataDir(name), nil
}

// ensureMounted mounts the filesystem of a volume with driver options
// when it is not mounted yet.
func (s *Store) ensureMounted(r *record) error {
	if !r.mounts() {
		return nil
	}
	mounted, err := isMountpoint(s.dataDir(r.Name))
	if err != nil || mounted {
		return err
	}
	if err := mountFS(r.Options, s.dataDir(r.Name)); err != nil {
		return fmt.Errorf("mount volume %s: %w", r.Name, err)
	}
	return nil
}

// Release drops every use of container containerID. A volume with driver
// options that lost its last user is unmounted; with removeAnonymous
// (docker rm -v), an anonymous volume that lost its last user is removed.
// Named volumes are never removed. Releasing a container that uses
// nothing does nothing.
func (s *Store) Release(ctx context.Context, containerID string, removeAnonymous bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.all(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range recs {
		if !r.removeUser(containerID) {
			continue
		}
		if err := s.put(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("release volume %s: %w", r.Name, err))
			continue
		}
		if len(r.Users) > 0 {
			continue
		}
		if r.mounts() {
			if err := unmountAll(s.dataDir(r.Name)); err != nil {
				errs = append(errs, fmt.Errorf("release volume %s: %w", r.Name, err))
			}
		}
		if removeAnonymous && r.anonymous() {
			if err := s.remove(ctx, r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Populate copies the directory src (an image's content at the mount
// point: a host path inside the container's root filesystem, already
// resolved in it) into the volume, as docker does on a volume's first use:
// files, directories, symbolic and hard links, devices, fifos, modes,
// owners, extended attributes and times; the volume's root takes src's
// owner, mode and attributes. It copies only when the volume was never
// populated and is empty, and records that it was populated, so a later
// call (the next start, another container) copies nothing. A src that does
// not exist or is no directory gives nothing to copy. A copy that fails is
// undone. A volume with driver options is mounted first if it is not
// (after a reboot).
//
// src must not be a symbolic link, and nothing under it is followed; the
// caller resolves the mount point inside the container's root. The
// store's changes wait while Populate copies.
func (s *Store) Populate(ctx context.Context, name, src string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.get(ctx, name)
	if err != nil {
		return err
	}
	if err := s.ensureMounted(r); err != nil {
		return err
	}
	if r.Populated {
		return nil
	}
	fi, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("populate volume %s: %w", name, err)
	}
	dst := s.dataDir(name)
	empty, err := isEmptyDir(dst)
	if err != nil || !empty {
		return err
	}
	if err := copyTree(ctx, src, dst); err != nil {
		_ = clearDir(dst)
		return fmt.Errorf("populate volume %s from %s: %w", name, src, err)
	}
	r.Populated = true
	if err := s.put(ctx, r); err != nil {
		return fmt.Errorf("populate volume %s: %w", name, err)
	}
	return nil
}

// Usage returns the volumes, by name, with their UsageData: the bytes
// their files take (hard links counted once; -1 when it cannot be read)
// and how many containers use each (docker system df -v). As in dockerd,
// volumes with driver options are left out: their content is not local.
func (s *Store) Usage(ctx context.Context) ([]volume.Volume, error) {
	recs, err := s.all(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]volume.Volume, 0, len(recs))
	for _, r := range recs {
		if len(r.Options) > 0 {
			continue
		}
		v := s.volumeOf(r)
		size, err := sizeOf(s.dataDir(r.Name))
		if err != nil {
			size = -1
		}
		v.UsageData = &volume.UsageData{Size: size, RefCount: int64(len(r.Users))}
		out = append(out, v)
	}
	return out, nil
}

// volumeOf is the API's view of a record.
func (s *Store) volumeOf(r *record) volume.Volume {
	return volume.Volume{
		Name:       r.Name,
		Driver:     r.Driver,
		Mountpoint: s.dataDir(r.Name),
		CreatedAt:  r.CreatedAt.Local().Format(time.RFC3339),
		Labels:     maps.Clone(r.Labels),
		Options:    maps.Clone(r.Options),
		Scope:      "local",
	}
}

func (s *Store) emit(action events.Action, name string, attrs map[string]string) {
	if s.events != nil {
		s.events(action, name, attrs)
	}
}

// lookup returns the record of name, or nil when there is none.
func (s *Store) lookup(ctx context.Context, name string) (*record, error) {
	var r *record
	err := s.db.View(ctx, func(tx *bolt.Tx) error {
		data := tx.Bucket(metadata.BucketVolumes).Get([]byte(name))
		if data == nil {
			return nil
		}
		r = new(record)
		if err := json.Unmarshal(data, r); err != nil {
			return fmt.Errorf("volume record %s: %w", name, err)
		}
		return nil
	})
	return r, err
}

// get is lookup with docker's error for a missing volume.
func (s *Store) get(ctx context.Context, name string) (*record, error) {
	r, err := s.lookup(ctx, name)
	if err == nil && r == nil {
		err = fmt.Errorf("%w: get %s: no such volume", errdefs.ErrNotFound, name)
	}
	return r, err
}

// all returns every record, by name.
func (s *Store) all(ctx context.Context) ([]*record, error) {
	var out []*record
	err := s.db.View(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketVolumes).ForEach(func(k, v []byte) error {
			r := new(record)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("volume record %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

func (s *Store) put(ctx context.Context, r *record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketVolumes).Put([]byte(r.Name), data)
	})
}
