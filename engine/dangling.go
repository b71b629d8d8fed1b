package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
)

// dangling keeps the images that lost their last name because the name
// moved to another image (a newer pull, a tag, a load): docker's
// <none>:<none> images. They stay, findable by ID, until removed or pruned.
// The records are image.Image values with an empty Name, keyed by ID.
type dangling struct {
	db *metadata.DB
}

func (d *dangling) put(ctx context.Context, img image.Image) error {
	img.Name = ""
	data, err := json.Marshal(img)
	if err != nil {
		return err
	}
	return d.db.Update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketDanglingImages).Put([]byte(img.ConfigDigest.String()), data)
	})
}

func (d *dangling) delete(ctx context.Context, id digest.Digest) error {
	return d.db.Update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketDanglingImages).Delete([]byte(id.String()))
	})
}

func (d *dangling) list(ctx context.Context) ([]image.Image, error) {
	var out []image.Image
	err := d.db.View(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketDanglingImages).ForEach(func(k, v []byte) error {
			var img image.Image
			if err := json.Unmarshal(v, &img); err != nil {
				return fmt.Errorf("dangling image %s: %w", k, err)
			}
			out = append(out, img)
			return nil
		})
	})
	return out, err
}

// find returns the dangling image an ID or unique ID prefix names.
func (d *dangling) find(ctx context.Context, idOrPrefix string) (image.Image, bool, error) {
	hex := strings.TrimPrefix(idOrPrefix, "sha256:")
	if _, ok := image.IDPrefix(idOrPrefix); !ok {
		return image.Image{}, false, nil
	}
	all, err := d.list(ctx)
	if err != nil {
		return image.Image{}, false, err
	}
	var found []image.Image
	for _, img := range all {
		if strings.HasPrefix(img.ConfigDigest.Encoded(), hex) {
			found = append(found, img)
		}
	}
	switch len(found) {
	case 0:
		return image.Image{}, false, nil
	case 1:
		return found[0], true, nil
	}
	return image.Image{}, false, fmt.Errorf("%w: image ID prefix %s is ambiguous", errdefs.ErrConflict, idOrPrefix)
}

// lookup finds the image a user's argument names: a name or an ID of a
// named image, or the ID (or a unique prefix) of a dangling one.
func (s *Images) lookup(ctx context.Context, name string) (image.Match, error) {
	m, err := s.names.Lookup(ctx, name)
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		return m, err
	}
	img, ok, derr := s.dangling.find(ctx, name)
	if derr != nil {
		return image.Match{}, derr
	}
	if !ok {
		return image.Match{}, err
	}
	return image.Match{ID: img.ConfigDigest, Images: []image.Image{img}}, nil
}

// putName records a name and keeps the image the name leaves, if it has
// no other, as a dangling one.
func (s *Images) putName(ctx context.Context, img image.Image) (image.PutResult, error) {
	res, err := s.names.Put(ctx, img)
	if err != nil {
		return res, err
	}
	if err := s.dangling.delete(ctx, img.ConfigDigest); err != nil {
		return res, err
	}
	if prev := res.Previous; prev != nil && prev.ConfigDigest != img.ConfigDigest {
		left, err := s.names.List(ctx, image.WithID(prev.ConfigDigest))
		if err != nil {
			return res, err
		}
		if len(left) == 0 {
			if err := s.dangling.put(ctx, *prev); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}
