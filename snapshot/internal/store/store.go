// Package store is the part every berth snapshotter shares: the bbolt
// database of snapshots (metadata.db under the root), the directory layout
// (<root>/<id>, with short numeric ids so overlay options stay short), the
// lifecycle rules of snapshot.Snapshotter, and crash safety. A driver only
// says how a new snapshot's directory is filled and how it is mounted.
//
// Crash safety: a new snapshot's directory is filled under a "new-" name
// and renamed to its id inside the write transaction that adds its row;
// Remove renames the directory to a "removing-" name inside the transaction
// that deletes the row and deletes it after the commit. Open removes every
// directory under the root that no row owns, so a crash at any point
// leaves either the old or the new state and some garbage Open collects.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"berth.dev/internal/errdefs"
	"berth.dev/snapshot"
)

// Driver fills and mounts snapshot directories.
type Driver interface {
	// Create fills dir, an empty directory that becomes the snapshot's, for
	// a new snapshot of kind Active or View whose Committed ancestors have
	// the directories parents (nearest first; empty for no parent).
	Create(ctx context.Context, dir string, kind snapshot.Kind, parents []string) error
	// Mounts returns the mounts of the Active or View snapshot in dir.
	Mounts(dir string, kind snapshot.Kind, parents []string) []snapshot.Mount
	// UsageDir is the directory, under dir, whose files Usage counts.
	UsageDir(dir string) string
}

const dbName = "metadata.db"

// Directory name prefixes of work in progress; Open removes them.
const (
	prefixNew      = "new-"
	prefixRemoving = "removing-"
)

var (
	bucketRoot      = []byte("v1")
	bucketSnapshots = []byte("snapshots") // key or name -> JSON record
	bucketChildren  = []byte("children")  // parent NUL child -> empty
)

// record is a snapshot's row.
type record struct {
	ID      uint64            `json:"id"`
	Kind    snapshot.Kind     `json:"kind"`
	Parent  string            `json:"parent,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
	// Size and Inodes are the Usage of a Committed snapshot, measured on
	// the first Usage call after Commit (Inodes 0: not yet; the top
	// directory always counts one).
	Size   int64 `json:"size,omitempty"`
	Inodes int64 `json:"inodes,omitempty"`
}

// Store implements snapshot.Snapshotter over a Driver.
type Store struct {
	root   string
	db     *bolt.DB
	driver Driver
	// mu orders the filling of new directories against Remove's deletion
	// of a parent: Create holds it shared, Remove's delete exclusively.
	mu sync.RWMutex
}

var _ snapshot.Snapshotter = (*Store)(nil)

// Open opens (creating if needed) the store under root, removes every
// directory no snapshot owns, and uses driver for the rest.
func Open(root string, driver Driver) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot root: %w", err)
	}
	db, err := bolt.Open(filepath.Join(root, dbName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: in use by another snapshotter: %w", filepath.Join(root, dbName), errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("open %s: %w", filepath.Join(root, dbName), err)
	}
	s := &Store{root: root, db: db, driver: driver}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		if _, err := b.CreateBucketIfNotExists(bucketSnapshots); err != nil {
			return err
		}
		_, err = b.CreateBucketIfNotExists(bucketChildren)
		return err
	})
	if err == nil {
		err = s.collectGarbage()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open snapshots in %s: %w", root, err)
	}
	return s, nil
}

// Root is the directory the store keeps its snapshots in.
func (s *Store) Root() string { return s.root }

// collectGarbage removes every entry under the root but the database and
// the directories of existing snapshots.
func (s *Store) collectGarbage() error {
	owned := map[string]bool{dbName: true}
	err := s.db.View(func(tx *bolt.Tx) error {
		return snapshots(tx).ForEach(func(_, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			owned[strconv.FormatUint(r.ID, 10)] = true
			return nil
		})
	})
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if owned[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.root, e.Name())); err != nil {
			return fmt.Errorf("remove unowned %s: %w", e.Name(), err)
		}
	}
	return nil
}

func snapshots(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(bucketRoot).Bucket(bucketSnapshots) }
func children(tx *bolt.Tx) *bolt.Bucket  { return tx.Bucket(bucketRoot).Bucket(bucketChildren) }

func childKey(parent, child string) []byte {
	return append(append([]byte(parent), 0), child...)
}

func (s *Store) dir(id uint64) string {
	return filepath.Join(s.root, strconv.FormatUint(id, 10))
}

func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty snapshot key: %w", errdefs.ErrInvalidArgument)
	}
	if bytes.IndexByte([]byte(key), 0) >= 0 {
		return fmt.Errorf("snapshot key %q contains NUL: %w", key, errdefs.ErrInvalidArgument)
	}
	return nil
}

func get(tx *bolt.Tx, key string) (record, error) {
	var r record
	v := snapshots(tx).Get([]byte(key))
	if v == nil {
		return r, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("snapshot %q: decode: %w", key, err)
	}
	return r, nil
}

func put(tx *bolt.Tx, key string, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return snapshots(tx).Put([]byte(key), v)
}

func hasChildren(tx *bolt.Tx, key string) bool {
	prefix := childKey(key, "")
	k, _ := children(tx).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// parentDirs returns the directories of parent and its ancestors,
// nearest first.
func (s *Store) parentDirs(tx *bolt.Tx, parent string) ([]string, error) {
	var dirs []string
	for parent != "" {
		r, err := get(tx, parent)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, s.dir(r.ID))
		parent = r.Parent
	}
	return dirs, nil
}

func info(key string, r record) snapshot.Info {
	var labels map[string]string
	if len(r.Labels) > 0 {
		labels = make(map[string]string, len(r.Labels))
		for k, v := range r.Labels {
			labels[k] = v
		}
	}
	return snapshot.Info{Kind: r.Kind, Name: key, Parent: r.Parent, Labels: labels, Created: r.Created, Updated: r.Updated}
}

// Stat implements snapshot.Snapshotter.
func (s *Store) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	var r record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = get(tx, key)
		return err
	})
	if err != nil {
		return snapshot.Info{}, fmt.Errorf("stat: %w", err)
	}
	return info(key, r), nil
}

// Update implements snapshot.Snapshotter.
func (s *Store) Update(ctx context.Context, in snapshot.Info, fieldpaths ...string) (snapshot.Info, error) {
	var r record
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if r, err = get(tx, in.Name); err != nil {
			return err
		}
		if r.Labels, err = updateLabels(r.Labels, in.Labels, fieldpaths); err != nil {
			return err
		}
		r.Updated = time.Now().UTC()
		return put(tx, in.Name, r)
	})
	if err != nil {
		return snapshot.Info{}, fmt.Errorf("update: %w", err)
	}
	return info(in.Name, r), nil
}

func updateLabels(old, in map[string]string, fieldpaths []string) (map[string]string, error) {
	if len(fieldpaths) == 0 {
		fieldpaths = []string{"labels"}
	}
	labels := make(map[string]string, len(old))
	for k, v := range old {
		labels[k] = v
	}
	for _, f := range fieldpaths {
		if f == "labels" {
			labels = make(map[string]string, len(in))
			for k, v := range in {
				labels[k] = v
			}
			continue
		}
		k, ok := strings.CutPrefix(f, "labels.")
		if !ok || k == "" {
			return nil, fmt.Errorf("field %q cannot be updated: %w", f, errdefs.ErrInvalidArgument)
		}
		if v := in[k]; v != "" {
			labels[k] = v
		} else {
			delete(labels, k)
		}
	}
	return labels, nil
}

// Usage implements snapshot.Snapshotter.
func (s *Store) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	var r record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = get(tx, key)
		return err
	})
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("usage: %w", err)
	}
	if r.Kind == snapshot.Committed && r.Inodes > 0 {
		return snapshot.Usage{Size: r.Size, Inodes: r.Inodes}, nil
	}
	u, err := diskUsage(ctx, s.driver.UsageDir(s.dir(r.ID)))
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("usage of %q: %w", key, err)
	}
	if r.Kind == snapshot.Committed {
		// A committed snapshot never changes: keep the figure. Failing
		// to keep it only means measuring again next time.
		s.db.Update(func(tx *bolt.Tx) error {
			cur, err := get(tx, key)
			if err != nil || cur.ID != r.ID || cur.Kind != snapshot.Committed {
				return err
			}
			cur.Size, cur.Inodes = u.Size, u.Inodes
			return put(tx, key, cur)
		})
	}
	return u, nil
}

// Mounts implements snapshot.Snapshotter.
func (s *Store) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	var (
		r       record
		parents []string
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if r, err = get(tx, key); err != nil {
			return err
		}
		if r.Kind == snapshot.Committed {
			return fmt.Errorf("snapshot %q is committed and has no mounts; view it: %w", key, errdefs.ErrFailedPrecondition)
		}
		parents, err = s.parentDirs(tx, r.Parent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	return s.driver.Mounts(s.dir(r.ID), r.Kind, parents), nil
}

// Prepare implements snapshot.Snapshotter.
func (s *Store) Prepare(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]snapshot.Mount, error) {
	m, err := s.create(ctx, snapshot.Active, key, parent, opts)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return m, nil
}

// View implements snapshot.Snapshotter.
func (s *Store) View(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]snapshot.Mount, error) {
	m, err := s.create(ctx, snapshot.View, key, parent, opts)
	if err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	return m, nil
}

// checkCreate checks that key is free and parent committed, and returns
// the parent's directories.
func (s *Store) checkCreate(tx *bolt.Tx, key, parent string) ([]string, error) {
	if snapshots(tx).Get([]byte(key)) != nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
	}
	if parent == "" {
		return nil, nil
	}
	p, err := get(tx, parent)
	if err != nil {
		return nil, fmt.Errorf("parent: %w", err)
	}
	if p.Kind != snapshot.Committed {
		return nil, fmt.Errorf("parent %q is %s, not committed: %w", parent, p.Kind, errdefs.ErrFailedPrecondition)
	}
	return s.parentDirs(tx, parent)
}

func (s *Store) create(ctx context.Context, kind snapshot.Kind, key, parent string, opts []snapshot.Opt) ([]snapshot.Mount, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var in snapshot.Info
	for _, o := range opts {
		if err := o(&in); err != nil {
			return nil, err
		}
	}
	// Check first, so a doomed call does not fill a directory for nothing.
	if err := s.db.View(func(tx *bolt.Tx) error {
		_, err := s.checkCreate(tx, key, parent)
		return err
	}); err != nil {
		return nil, err
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	tmp, err := os.MkdirTemp(s.root, prefixNew)
	if err != nil {
		return nil, err
	}
	var mounts []snapshot.Mount
	err = func() error {
		var parents []string
		if err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			parents, err = s.parentDirs(tx, parent)
			return err
		}); err != nil {
			return err
		}
		if err := s.driver.Create(ctx, tmp, kind, parents); err != nil {
			return fmt.Errorf("create %s snapshot %q: %w", kind, key, err)
		}
		return s.db.Update(func(tx *bolt.Tx) error {
			parents, err := s.checkCreate(tx, key, parent)
			if err != nil {
				return err
			}
			id, err := snapshots(tx).NextSequence()
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			r := record{ID: id, Kind: kind, Parent: parent, Labels: in.Labels, Created: now, Updated: now}
			if err := put(tx, key, r); err != nil {
				return err
			}
			if parent != "" {
				if err := children(tx).Put(childKey(parent, key), nil); err != nil {
					return err
				}
			}
			// A directory of this id can only be left over from a
			// transaction that never committed.
			if err := os.RemoveAll(s.dir(id)); err != nil {
				return err
			}
			if err := os.Rename(tmp, s.dir(id)); err != nil {
				return err
			}
			mounts = s.driver.Mounts(s.dir(id), kind, parents)
			tmp = s.dir(id) // removed below if the commit fails
			return nil
		})
	}()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return mounts, nil
}

// Commit implements snapshot.Snapshotter.
func (s *Store) Commit(ctx context.Context, name, key string, opts ...snapshot.Opt) error {
	if err := checkKey(name); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	var r record
	check := func(tx *bolt.Tx) error {
		var err error
		if r, err = get(tx, key); err != nil {
			return err
		}
		if r.Kind != snapshot.Active {
			return fmt.Errorf("snapshot %q is %s, not active: %w", key, r.Kind, errdefs.ErrFailedPrecondition)
		}
		if snapshots(tx).Get([]byte(name)) != nil {
			return fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
		}
		return nil
	}
	if err := s.db.View(check); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	in := snapshot.Info{Labels: r.Labels}
	for _, o := range opts {
		if err := o(&in); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		id := r.ID
		if err := check(tx); err != nil {
			return err
		}
		if r.ID != id {
			return fmt.Errorf("snapshot %q was replaced during commit: %w", key, errdefs.ErrConflict)
		}
		if err := snapshots(tx).Delete([]byte(key)); err != nil {
			return err
		}
		r.Kind = snapshot.Committed
		r.Labels = in.Labels
		r.Updated = time.Now().UTC()
		r.Size, r.Inodes = 0, 0 // measured by the first Usage
		if err := put(tx, name, r); err != nil {
			return err
		}
		if r.Parent != "" {
			if err := children(tx).Delete(childKey(r.Parent, key)); err != nil {
				return err
			}
			return children(tx).Put(childKey(r.Parent, name), nil)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Remove implements snapshot.Snapshotter.
func (s *Store) Remove(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dir, removing string
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := get(tx, key)
		if err != nil {
			return err
		}
		if hasChildren(tx, key) {
			return fmt.Errorf("snapshot %q has children: %w", key, errdefs.ErrFailedPrecondition)
		}
		if err := snapshots(tx).Delete([]byte(key)); err != nil {
			return err
		}
		if r.Parent != "" {
			if err := children(tx).Delete(childKey(r.Parent, key)); err != nil {
				return err
			}
		}
		dir = s.dir(r.ID)
		removing = filepath.Join(s.root, prefixRemoving+filepath.Base(dir))
		if err := os.Rename(dir, removing); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		if removing != "" {
			// The row is back (rolled back); so must the directory be.
			_ = os.Rename(removing, dir)
		}
		return fmt.Errorf("remove: %w", err)
	}
	if err := os.RemoveAll(removing); err != nil {
		// The row is gone; the next Open deletes what is left.
		return fmt.Errorf("remove %q: delete files: %w", key, err)
	}
	return nil
}

// Walk implements snapshot.Snapshotter.
func (s *Store) Walk(ctx context.Context, fn func(context.Context, snapshot.Info) error, filters ...string) error {
	match, err := parseFilters(filters)
	if err != nil {
		return fmt.Errorf("walk: %w", err)
	}
	var infos []snapshot.Info
	err = s.db.View(func(tx *bolt.Tx) error {
		return snapshots(tx).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("snapshot %q: decode: %w", k, err)
			}
			if i := info(string(k), r); match(i) {
				infos = append(infos, i)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("walk: %w", err)
	}
	// fn runs outside the transaction so it may call the Store.
	for _, i := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// Close implements snapshot.Snapshotter.
func (s *Store) Close() error {
	return s.db.Close()
}
