// Package metadata is the engine's database: one bbolt file that berthd
// alone writes. It records images, containers, snapshot references, leases
// and anything else the engine must remember across restarts.
//
// The schema carries a version from the first day. Open runs every
// migration between the file's version and the version this binary knows,
// inside one transaction, so a crash mid-migration leaves the old schema
// intact. A file written by a newer berth is refused rather than guessed at.
//
// Packages that keep state here own a top-level bucket each (see the
// Bucket constants) and reach it through View and Update.
package metadata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Top-level buckets. A package that stores engine state adds its bucket
// here and, if it changes the shape of existing data, a migration.
var (
	BucketMeta       = []byte("meta")       // schema version and other database facts
	BucketImages     = []byte("images")     // image name -> image record
	BucketContainers = []byte("containers") // container id -> container record
	BucketSnapshots  = []byte("snapshots")  // snapshot key -> owner, for garbage collection
	BucketLeases     = []byte("leases")     // lease id -> content and snapshots it holds
	BucketVolumes    = []byte("volumes")    // volume name -> volume record
	BucketNetworks   = []byte("networks")   // network id -> network record
	// BucketDanglingImages holds images that lost their last name (docker's
	// <none>:<none>), keyed by image ID.
	BucketDanglingImages = []byte("dangling-images")
	// BucketBuildCache holds the builder's cache: cache key (a digest of
	// the parent state, the instruction and what it reads) -> the layer
	// that step made.
	BucketBuildCache = []byte("build-cache")
)

var keyVersion = []byte("schema-version")

// ErrNewerSchema is returned by Open when the file was written by a newer
// berth whose schema this binary does not know.
var ErrNewerSchema = errors.New("metadata: database schema is newer than this berth")

// A Migration moves the database from version From to From+1.
type Migration struct {
	From int
	Name string
	Run  func(tx *bolt.Tx) error
}

// migrations lists every schema change in order. Version 0 is an empty
// file; migration 0 creates the first schema.
var migrations = []Migration{
	{From: 0, Name: "create buckets", Run: func(tx *bolt.Tx) error {
		for _, b := range [][]byte{BucketImages, BucketContainers, BucketSnapshots, BucketLeases, BucketVolumes, BucketNetworks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}},
	{From: 1, Name: "dangling images", Run: func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketDanglingImages)
		return err
	}},
	{From: 2, Name: "build cache", Run: func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(BucketBuildCache)
		return err
	}},
}

// SchemaVersion is the schema this binary writes.
func SchemaVersion() int { return len(migrations) }

// DB is an open metadata database.
type DB struct {
	bolt *bolt.DB
}

type options struct {
	timeout    time.Duration
	migrations []Migration
}

// Option changes how Open works.
type Option func(*options)

// WithTimeout bounds how long Open waits for the file lock another process
// holds. The default is 10 seconds.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// withMigrations replaces the migration list; tests use it to exercise
// upgrades.
func withMigrations(m []Migration) Option { return func(o *options) { o.migrations = m } }

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(path string, opts ...Option) (*DB, error) {
	o := options{timeout: 10 * time.Second, migrations: migrations}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.timeout})
	if err != nil {
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	db := &DB{bolt: b}
	if err := db.migrate(o.migrations); err != nil {
		b.Close()
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	return db, nil
}

func (db *DB) migrate(ms []Migration) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(BucketMeta)
		if err != nil {
			return err
		}
		v := 0
		if raw := meta.Get(keyVersion); raw != nil {
			if len(raw) != 8 {
				return fmt.Errorf("corrupt schema version %x", raw)
			}
			v = int(binary.BigEndian.Uint64(raw))
		}
		if v > len(ms) {
			return fmt.Errorf("%w: file has version %d, this berth knows %d", ErrNewerSchema, v, len(ms))
		}
		for _, m := range ms[v:] {
			if err := m.Run(tx); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.From, m.Name, err)
			}
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(len(ms)))
		return meta.Put(keyVersion, buf[:])
	})
}

// Version reports the schema version stored in the file.
func (db *DB) Version() (int, error) {
	var v int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(BucketMeta).Get(keyVersion)
		v = int(binary.BigEndian.Uint64(raw))
		return nil
	})
	return v, err
}

// View runs fn in a read-only transaction.
func (db *DB) View(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(fn)
}

// Update runs fn in a read-write transaction; the changes are committed
// (and fsynced) only if fn returns nil.
func (db *DB) Update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.Update(fn)
}

// Close closes the file and releases its lock.
func (db *DB) Close() error { return db.bolt.Close() }
