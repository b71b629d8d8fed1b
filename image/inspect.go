package image

import (
	"slices"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Inspect is the data of `docker image inspect` that the image itself
// holds, apart from the API's JSON shape (the API layer maps it).
type Inspect struct {
	ID          digest.Digest
	RepoTags    []string // familiar name:tag of each tagged name
	RepoDigests []string // familiar name@digest of the manifest or index each name points at
	Created     *time.Time
	Author      string
	// Comment is the comment of the last history step (docker's commit
	// message or "Imported from -").
	Comment  string
	Config   dockerspec.DockerOCIImageConfig
	Platform ocispec.Platform
	// Size is the sum of the layers' uncompressed sizes, as the caller
	// knows them.
	Size int64
	// Layers are the diff IDs, bottom first (RootFS.Layers in docker).
	Layers []digest.Digest
	// LastTagTime is the latest UpdatedAt of the image's names.
	LastTagTime time.Time
	// Target is the descriptor the first name (in name order) points at.
	Target ocispec.Descriptor
}

// NewInspect gathers the inspect data of the image id from its config,
// its name records (those of Store.Lookup's Match.Images) and its size.
func NewInspect(id digest.Digest, cfg Config, records []Image, size int64) Inspect {
	in := Inspect{
		ID:       id,
		Created:  cfg.Created,
		Author:   cfg.Author,
		Config:   cfg.Config,
		Platform: cfg.Platform,
		Size:     size,
		Layers:   slices.Clone(cfg.RootFS.DiffIDs),
	}
	if n := len(cfg.History); n > 0 {
		in.Comment = cfg.History[n-1].Comment
	}
	in.RepoTags, in.RepoDigests = RepoTagsAndDigests(records)
	for i, r := range records {
		if i == 0 {
			in.Target = r.Target
		}
		if r.UpdatedAt.After(in.LastTagTime) {
			in.LastTagTime = r.UpdatedAt
		}
	}
	return in
}

// RepoTagsAndDigests returns docker's RepoTags and RepoDigests for the
// names of one image: each tagged name as busybox:latest; each name's
// repository with the digest of what it points at as busybox@sha256:...
// (a name pulled by digest gives only that). Both lists are sorted and
// without duplicates; names that do not parse are left out.
func RepoTagsAndDigests(records []Image) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, r := range records {
		ref, err := reference.ParseNormalizedNamed(r.Name)
		if err != nil {
			continue
		}
		if _, ok := ref.(reference.Tagged); ok {
			tags = append(tags, reference.FamiliarString(ref))
		}
		if r.Target.Digest == "" {
			continue
		}
		if c, err := reference.WithDigest(reference.TrimNamed(ref), r.Target.Digest); err == nil {
			digests = append(digests, reference.FamiliarString(c))
		}
	}
	slices.Sort(tags)
	slices.Sort(digests)
	return slices.Compact(tags), slices.Compact(digests)
}
