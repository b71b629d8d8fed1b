package image

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
)

// Image is one record of the name store: an image name and what it points
// at. Several names may point at the same image (docker tag); an image
// without a name is not recorded here.
type Image struct {
	// Name is the full normalised reference (see ParseNormalized):
	// docker.io/library/busybox:latest, or repo@sha256:<hex> for an image
	// pulled by digest.
	Name string `json:"name"`
	// Target is the manifest or index the name resolves to in the content
	// store.
	Target ocispec.Descriptor `json:"target"`
	// ConfigDigest is the digest of the image config of the manifest used
	// on this host (the one chosen for the platform when Target is an
	// index): the image's ID.
	ConfigDigest digest.Digest     `json:"configDigest"`
	Labels       map[string]string `json:"labels,omitempty"`
	// CreatedAt is when the name was first recorded; UpdatedAt when it was
	// last pointed somewhere (docker's LastTagTime).
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// ID is the image's ID, its config digest.
func (i Image) ID() digest.Digest { return i.ConfigDigest }

// Reference parses the record's name.
func (i Image) Reference() (reference.Named, error) { return ParseNormalized(i.Name) }

// Store is the image name store: image records in the metadata database
// (bucket metadata.BucketImages), keyed by full name, the values JSON.
//
// Create adds a name and fails if it exists; Update changes where an
// existing name points; Put does either, and is what a pull, a tag, a
// build or a load does (a tag that moves to a new image). Delete removes
// a name: the image's content and snapshots are the engine's to collect
// once no name (and no container) holds them. Names may be given in any
// form ParseNormalized accepts ("busybox" is
// docker.io/library/busybox:latest) and are stored in full.
//
// Images are also found by ID, the config digest: ResolveID turns a full
// ID or a unique prefix into the ID, and Lookup finds what a user's
// argument names the way docker does for rmi, inspect, run and tag.
//
// A Store holds no state besides the database, so any number of them may
// share one; every method is one transaction.
type Store struct {
	db  *metadata.DB
	now func() time.Time
}

// StoreOption changes a Store.
type StoreOption func(*Store)

// WithClock sets the clock that stamps CreatedAt and UpdatedAt (tests).
func WithClock(now func() time.Time) StoreOption { return func(s *Store) { s.now = now } }

// NewStore returns the name store kept in db.
func NewStore(db *metadata.DB, opts ...StoreOption) *Store {
	s := &Store{db: db, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// normalizeName turns a user's or caller's name into the stored key.
func normalizeName(name string) (string, error) {
	ref, err := ParseNormalized(name)
	if err != nil {
		return "", err
	}
	return ref.String(), nil
}

// check validates img and returns it with its name normalised.
func check(img Image) (Image, error) {
	name, err := normalizeName(img.Name)
	if err != nil {
		return Image{}, err
	}
	img.Name = name
	if err := img.Target.Digest.Validate(); err != nil {
		return Image{}, fmt.Errorf("%w: image %s: target: %w", errdefs.ErrInvalidArgument, name, err)
	}
	if !IsIndex(img.Target.MediaType) && !IsManifest(img.Target.MediaType) {
		return Image{}, fmt.Errorf("%w: image %s: target media type %q is not an index or manifest", errdefs.ErrInvalidArgument, name, img.Target.MediaType)
	}
	if err := img.ConfigDigest.Validate(); err != nil {
		return Image{}, fmt.Errorf("%w: image %s: config digest: %w", errdefs.ErrInvalidArgument, name, err)
	}
	img.Labels = maps.Clone(img.Labels)
	return img, nil
}

func bucket(tx *bolt.Tx) (*bolt.Bucket, error) {
	b := tx.Bucket(metadata.BucketImages)
	if b == nil {
		return nil, fmt.Errorf("%w: the metadata database has no images bucket", errdefs.ErrFailedPrecondition)
	}
	return b, nil
}

func get(b *bolt.Bucket, name string) (Image, bool, error) {
	raw := b.Get([]byte(name))
	if raw == nil {
		return Image{}, false, nil
	}
	var img Image
	if err := json.Unmarshal(raw, &img); err != nil {
		return Image{}, false, fmt.Errorf("image record %s: %w", name, err)
	}
	return img, true, nil
}

func put(b *bolt.Bucket, img Image) error {
	raw, err := json.Marshal(img)
	if err != nil {
		return fmt.Errorf("image record %s: %w", img.Name, err)
	}
	return b.Put([]byte(img.Name), raw)
}

// forEach calls fn for every record, in name order.
func forEach(b *bolt.Bucket, fn func(Image) error) error {
	return b.ForEach(func(k, v []byte) error {
		var img Image
		if err := json.Unmarshal(v, &img); err != nil {
			return fmt.Errorf("image record %s: %w", k, err)
		}
		return fn(img)
	})
}

func errNoSuchImage(name string) error {
	return fmt.Errorf("%w: no such image: %s", errdefs.ErrNotFound, name)
}

// Get returns the record of name; errdefs.ErrNotFound if there is none.
func (s *Store) Get(ctx context.Context, name string) (Image, error) {
	key, err := normalizeName(name)
	if err != nil {
		return Image{}, err
	}
	var img Image
	err = s.db.View(ctx, func(tx *bolt.Tx) error {
		b, err := bucket(tx)
		if err != nil {
			return err
		}
		var ok bool
		if img, ok, err = get(b, key); err != nil {
			return err
		} else if !ok {
			return errNoSuchImage(FamiliarNameString(key))
		}
		return nil
	})
	return img, err
}

// A Filter selects records in List.
type Filter func(Image) bool

// WithID selects the records of one image.
func WithID(id digest.Digest) Filter { return func(i Image) bool { return i.ConfigDigest == id } }

// WithLabel selects records with label key; with value too unless value
// is empty.
func WithLabel(key, value string) Filter {
	return func(i Image) bool {
		v, ok := i.Labels[key]
		return ok && (value == "" || v == value)
	}
}

// WithReference selects records whose familiar name or familiar
// name:tag matches a docker reference pattern ("busybox", "busybox:1*",
// "*/app"), like `docker images --filter reference=`. A malformed pattern
// selects nothing.
func WithReference(pattern string) Filter {
	return func(i Image) bool {
		ref, err := reference.ParseNormalizedNamed(i.Name)
		if err != nil {
			return false
		}
		ok, err := reference.FamiliarMatch(pattern, ref)
		return err == nil && ok
	}
}

// List returns the records that pass every filter, in name order.
func (s *Store) List(ctx context.Context, filters ...Filter) ([]Image, error) {
	var out []Image
	err := s.db.View(ctx, func(tx *bolt.Tx) error {
		b, err := bucket(tx)
		if err != nil {
			return err
		}
		return forEach(b, func(img Image) error {
			for _, f := range filters {
				if !f(img) {
					return nil
				}
			}
			out = append(out, img)
			return nil
		})
	})
	return out, err
}

// Create records a new name and returns the stored record (name in full,
// both times set). A name already recorded is an errdefs.ErrAlreadyExists
// error; an invalid name, target or config digest
// errdefs.ErrInvalidArgument.
func (s *Store) Create(ctx context.Context, img Image) (Image, error) {
	img, err := check(img)
	if err != nil {
		return Image{}, err
	}
	img.CreatedAt = s.now().UTC()
	img.UpdatedAt = img.CreatedAt
	err = s.db.Update(ctx, func(tx *bolt.Tx) error {
		b, err := bucket(tx)
		if err != nil {
			return err
		}
		if b.Get([]byte(img.Name)) != nil {
			return fmt.Errorf("%w: image %s", errdefs.ErrAlreadyExists, FamiliarNameString(img.Name))
		}
		return put(b, img)
	})
	if err != nil {
		return Image{}, fmt.Errorf("create image: %w", err)
	}
	return img, nil
}

// Update points an existing name at img's target, config digest and
// labels, keeps its CreatedAt and stamps UpdatedAt. A name not recorded
// is an errdefs.ErrNotFound error.
func (s *Store) Update(ctx context.Context, img Image) (Image, error) {
	img, err := check(img)
	if err != nil {
		return Image{}, err
	}
	err = s.db.Update(ctx, func(tx *bolt.Tx) error {
		b, err := bucket(tx)
		if err != nil {
			return err
		}
		old, ok, err := get(b, img.Name)
		if err != nil {
			return err
		}
		if !ok {
			return errNoSuchImage(FamiliarNameString(img.Name))
		}
		img.CreatedAt, img.UpdatedAt = old.CreatedAt, s.now().UTC()
		return put(b, img)
	})
	if err != nil {
		return Image{}, fmt.Errorf("update image: %w", err)
	}
	return img, nil
}

// PutResult is what Put did.
type PutResult struct {
	// Image is the record as stored.
	Image Image
	// Previous is the record the name had before, nil if it is new. When
	// its ConfigDigest differs from Image's, the name moved away from that
	// image, which may now have no name left (docker's dangling image).
	Previous *Image
}

// Put records img under its name whether or not the name exists: the
// tag moves to the new target. CreatedAt is kept for an existing name.
func (s *Store) Put(ctx context.Context, img Image) (PutResult, error) {
	img, err := check(img)
	if err != nil {
		return PutResult{}, err
	}
	var res PutResult
	err = s.db.Update(ctx, func(tx *bolt.Tx) error {
		b, err := bucket(tx)
		if err != nil {
			return err
		}
		old, ok, err := get(b, img.Name)
		if err != nil {
			return err
		}
		img.UpdatedAt = s.now().UTC()
		img.CreatedAt = img.UpdatedAt
		if ok {
			res.Previous = &old
			img.CreatedAt = old.CreatedAt
		}
		res.Image = img
		return put(b, img)
	})
	if err != nil {
		return PutResult{}, fmt.Errorf("put image: %w", err)
	}
	return res, nil
}

// Delete removes a name and returns the record it had; an unknown name is
// an errdefs.ErrNotFound error.
func (s *Store) Delete(ctx context.Context, name string) (Image, error) {
	key, err := normalizeName(name)
	if err != nil {
		return Image{}, err
	}
	var img Image
	err = s.db.Update(ctx, func(tx *bolt.Tx) error {
		b, err := bucket(tx)
		if err != nil {
			return err
		}
		var ok bool
		if img, ok, err = get(b, key); err != nil {
			return err
		} else if !ok {
			return errNoSuchImage(FamiliarNameString(key))
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return Image{}, fmt.Errorf("delete image: %w", err)
	}
	return img, nil
}

// ResolveID returns the ID of the one image whose ID is id or starts with
// it: a full ID (sha256:<hex> or <hex>) or a prefix of hex digits, with or
// without "sha256:". No such image is an errdefs.ErrNotFound error, a
// prefix shared by several images an errdefs.ErrConflict error that says
// it is ambiguous, and a string that cannot be an ID
// errdefs.ErrInvalidArgument.
func (s *Store) ResolveID(ctx context.Context, id string) (digest.Digest, error) {
	var found digest.Digest
	err := s.db.View(ctx, func(tx *bolt.Tx) error {
		b, err := bucket(tx)
		if err != nil {
			return err
		}
		found, err = resolveID(b, id)
		return err
	})
	return found, err
}

func resolveID(b *bolt.Bucket, id string) (digest.Digest, error) {
	prefix, ok := IDPrefix(id)
	if !ok {
		return "", fmt.Errorf("%w: %q is not an image ID or ID prefix", errdefs.ErrInvalidArgument, id)
	}
	var matches []digest.Digest
	err := forEach(b, func(img Image) error {
		if img.ConfigDigest.Algorithm() == digest.SHA256 && strings.HasPrefix(img.ConfigDigest.Encoded(), prefix) {
			matches = appendUnique(matches, img.ConfigDigest)
		}
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case len(matches) == 0:
		return "", errNoSuchImage(id)
	case len(matches) > 1:
		return "", fmt.Errorf("%w: image ID prefix %s is ambiguous: %d images start with it", errdefs.ErrConflict, id, len(matches))
	}
	return matches[0], nil
}

func appendUnique(ds []digest.Digest, d digest.Digest) []digest.Digest {
	if slices.Contains(ds, d) {
		return ds
	}
	return append(ds, d)
}

// Match is what Lookup found.
type Match struct {
	// ID is the image's ID.
	ID digest.Digest
	// Name is the full name the argument resolved to when it named an
	// image; "" when it was an ID or ID prefix. docker rmi untags only
	// this name, where an ID removes the image with all its names.
	Name string
	// Images are all the records of the image, in name order.
	Images []Image
}

// Lookup finds the image a user's argument names, in docker's order: a
// full ID (sha256:<hex> or <hex>) is an ID; otherwise a recorded name
// ("busybox" for docker.io/library/busybox:latest); otherwise a unique ID
// prefix. Nothing found is an errdefs.ErrNotFound error ("no such image"),
// an ambiguous prefix errdefs.ErrConflict, and an argument that is
// neither a valid reference nor hex errdefs.ErrInvalidArgument.
func (s *Store) Lookup(ctx context.Context, refOrID string) (Match, error) {
	var m Match
	err := s.db.View(ctx, func(tx *bolt.Tx) error {
		b, err := bucket(tx)
		if err != nil {
			return err
		}
		m, err = lookup(b, refOrID)
		if err != nil {
			return err
		}
		return forEach(b, func(img Image) error {
			if img.ConfigDigest == m.ID {
				m.Images = append(m.Images, img)
			}
			return nil
		})
	})
	if err != nil {
		return Match{}, err
	}
	if len(m.Images) == 0 {
		return Match{}, errNoSuchImage(refOrID)
	}
	return m, nil
}

func lookup(b *bolt.Bucket, refOrID string) (Match, error) {
	if id, err := ParseID(refOrID); err == nil {
		return Match{ID: id}, nil
	}
	ref, perr := ParseNormalized(refOrID)
	if perr == nil {
		img, ok, err := get(b, ref.String())
		if err != nil {
			return Match{}, err
		}
		if ok {
			return Match{ID: img.ConfigDigest, Name: img.Name}, nil
		}
	}
	if _, ok := IDPrefix(refOrID); ok {
		id, err := resolveID(b, refOrID)
		if err != nil {
			return Match{}, err
		}
		return Match{ID: id}, nil
	}
	if perr != nil {
		return Match{}, perr
	}
	return Match{}, errNoSuchImage(refOrID)
}
