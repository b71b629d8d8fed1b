package registry

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// DefaultPlatform is the platform of this machine: linux and the
// architecture berth was built for.
func DefaultPlatform() ocispec.Platform {
	return NormalizePlatform(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
}

// NormalizePlatform spells a platform the way images do: architecture
// aliases folded (x86_64 is amd64, aarch64 is arm64), the default variant
// of arm (v7) and arm64 (v8) filled in.
func NormalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i686":
		p.Architecture = "386"
	}
	switch {
	case p.Architecture == "arm64" && (p.Variant == "" || p.Variant == "8"):
		p.Variant = "v8"
	case p.Architecture == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Architecture == "arm" && len(p.Variant) == 1:
		p.Variant = "v" + p.Variant
	case p.Architecture == "amd64" && p.Variant == "v1":
		p.Variant = ""
	}
	return p
}

// attestationAnnotation marks the provenance and SBOM manifests BuildKit
// adds to indexes (with the platform unknown/unknown).
const attestationAnnotation = "vnd.docker.reference.type"

// SelectManifest picks from an index (OCI index or Docker manifest list)
// the manifest for platform: same OS and architecture, and the same
// variant (missing variants taking their architecture's default). Entries
// that are not image manifests (attestations, nested indexes) are skipped.
// No match is an ErrNotFound error naming the platforms there are.
func SelectManifest(index []byte, platform ocispec.Platform) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(index, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: image index: %w", errdefs.ErrInvalidArgument, err)
	}
	want := NormalizePlatform(platform)
	var seen []string
	for _, d := range idx.Manifests {
		if d.Platform == nil || !IsManifest(d.MediaType) || d.Annotations[attestationAnnotation] != "" {
			continue
		}
		got := NormalizePlatform(*d.Platform)
		if got.OS == want.OS && got.Architecture == want.Architecture && got.Variant == want.Variant &&
			(want.OSVersion == "" || got.OSVersion == want.OSVersion) {
			return d, nil
		}
		seen = append(seen, platformString(got))
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w: no manifest for %s in the index (it has %s)", errdefs.ErrNotFound, platformString(want), strings.Join(seen, ", "))
}

// platformString is os/arch[/variant].
func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
