package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"

	"berth.dev/internal/errdefs"
)

// DefaultTag is the tag a reference gets when it names neither a tag nor a
// digest.
const DefaultTag = "latest"

// ShortIDLen is the number of hex digits of an ID that docker prints.
const ShortIDLen = 12

// ParseNormalized parses a reference the way the docker CLI and daemon do
// and returns it in full: the registry domain (docker.io when none is
// given), the repository path (library/ added for official images on
// docker.io), and a tag or a digest. A reference without either gets
// DefaultTag; one with both keeps only the digest, which is what is pulled.
//
//	busybox                    docker.io/library/busybox:latest
//	user/repo:1                docker.io/user/repo:1
//	localhost:5000/x           localhost:5000/x:latest
//	busybox@sha256:<hex>       docker.io/library/busybox@sha256:<hex>
//
// An invalid reference (upper case in the repository, a bad tag or digest,
// a bare 64-digit hex string, which docker keeps for IDs) is an
// errdefs.ErrInvalidArgument error.
func ParseNormalized(s string) (reference.Named, error) {
	named, err := ParseNamed(s)
	if err != nil {
		return nil, err
	}
	if canonical, ok := named.(reference.Canonical); ok {
		if _, tagged := named.(reference.Tagged); tagged {
			trimmed, err := reference.WithDigest(reference.TrimNamed(named), canonical.Digest())
			if err != nil {
				return nil, fmt.Errorf("%w: reference %q: %w", errdefs.ErrInvalidArgument, s, err)
			}
			return trimmed, nil
		}
		return named, nil
	}
	return reference.TagNameOnly(named), nil
}

// ParseNamed parses and normalises a reference like ParseNormalized but
// adds no tag: "busybox" stays docker.io/library/busybox. Use it where a
// repository alone means something (docker pull --all-tags, docker images
// busybox).
func ParseNamed(s string) (reference.Named, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty image reference", errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid reference %q: %w", errdefs.ErrInvalidArgument, s, err)
	}
	return named, nil
}

// FamiliarName is the repository as docker prints it: without the
// docker.io domain and the library/ path of official images
// (busybox, user/repo, localhost:5000/x).
func FamiliarName(ref reference.Named) string { return reference.FamiliarName(ref) }

// FamiliarString is the whole reference as docker prints it
// (busybox:latest, localhost:5000/x:1, busybox@sha256:<hex>).
func FamiliarString(ref reference.Reference) string { return reference.FamiliarString(ref) }

// Domain is the registry part of a normalised reference (docker.io,
// localhost:5000).
func Domain(ref reference.Named) string { return reference.Domain(ref) }

// Path is the repository path within the registry (library/busybox, x).
func Path(ref reference.Named) string { return reference.Path(ref) }

// Tag returns the reference's tag, if it has one.
func Tag(ref reference.Named) (string, bool) {
	if t, ok := ref.(reference.Tagged); ok {
		return t.Tag(), true
	}
	return "", false
}

// Digest returns the reference's digest, if it has one.
func Digest(ref reference.Named) (digest.Digest, bool) {
	if d, ok := ref.(reference.Digested); ok {
		return d.Digest(), true
	}
	return "", false
}

// FamiliarNameString turns a stored full name (as ParseNormalized writes
// it) into its familiar form; a name that does not parse is returned as
// is.
func FamiliarNameString(name string) string {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(ref)
}

// ParseID accepts a full image ID in either of the forms docker does,
// sha256:<64 hex> or the bare 64 hex digits, and returns it as a digest.
// Anything else is an errdefs.ErrInvalidArgument error.
func ParseID(s string) (digest.Digest, error) {
	if !strings.Contains(s, ":") {
		s = string(digest.SHA256) + ":" + s
	}
	d, err := digest.Parse(s)
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("%w: %q is not an image ID", errdefs.ErrInvalidArgument, s)
	}
	return d, nil
}

// IsFullID reports whether s is a full image ID (see ParseID).
func IsFullID(s string) bool {
	_, err := ParseID(s)
	return err == nil
}

// IDPrefix returns the lower-case hex digits s holds if s can be the
// start of an image ID: one to 64 hex digits, optionally after "sha256:".
// Docker accepts such prefixes wherever an image is named, once no image
// is called by that name and when exactly one ID starts with it.
func IDPrefix(s string) (string, bool) {
	hex := strings.TrimPrefix(s, string(digest.SHA256)+":")
	if hex == "" || len(hex) > 64 {
		return "", false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return hex, true
}

// ShortID is the 12-digit form of an ID that docker prints in tables.
func ShortID(id digest.Digest) string {
	hex := id.Encoded()
	if len(hex) > ShortIDLen {
		return hex[:ShortIDLen]
	}
	return hex
}
