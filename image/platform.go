package image

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// DefaultPlatform is the platform images are chosen for when the user
// names none: linux on the architecture berth was built for.
func DefaultPlatform() ocispec.Platform {
	return NormalizePlatform(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
}

// ParsePlatform reads the --platform syntax: os[/arch[/variant]], or a
// bare architecture, which means linux on it ("arm64" is linux/arm64/v8).
// The result is normalised (see NormalizePlatform). An empty string, too
// many parts or characters outside [a-z0-9_.-] are
// errdefs.ErrInvalidArgument errors.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if s == "" || len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("%w: platform %q: want os[/arch[/variant]]", errdefs.ErrInvalidArgument, s)
	}
	for _, p := range parts {
		if !validPlatformPart(p) {
			return ocispec.Platform{}, fmt.Errorf("%w: platform %q: want os[/arch[/variant]]", errdefs.ErrInvalidArgument, s)
		}
	}
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if knownOS(parts[0]) {
			p = ocispec.Platform{OS: parts[0], Architecture: runtime.GOARCH}
		} else {
			p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
		}
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	}
	return NormalizePlatform(p), nil
}

func validPlatformPart(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// knownOS lists the operating systems that can stand alone in --platform.
func knownOS(s string) bool {
	switch s {
	case "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "plan9", "android", "ios", "js", "wasip1", "dragonfly":
		return true
	}
	return false
}

// NormalizePlatform spells a platform the way images do: lower case,
// architecture aliases folded (x86_64 is amd64, aarch64 is arm64, armhf
// is arm/v7), and variants in one form: arm64's default v8 written out,
// arm's default v7 filled in, "7" written "v7", amd64's baseline v1
// dropped (images leave it out).
func NormalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i686", "x86":
		p.Architecture = "386"
	}
	if p.Variant != "" && p.Variant[0] >= '0' && p.Variant[0] <= '9' {
		p.Variant = "v" + p.Variant
	}
	switch {
	case p.Architecture == "arm64" && p.Variant == "":
		p.Variant = "v8"
	case p.Architecture == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Architecture == "amd64" && p.Variant == "v1":
		p.Variant = ""
	}
	return p
}

// FormatPlatform is os/arch[/variant], the form of --platform and of
// messages.
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// variantLevels orders the variants of the architectures whose newer
// variants run the code of older ones. A host of a later variant runs
// images of an earlier one, never the reverse.
var variantLevels = map[string][]string{
	"amd64": {"", "v2", "v3", "v4"},
	"arm":   {"v5", "v6", "v7", "v8"},
	"arm64": {"v8", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.1", "v9.2", "v9.3", "v9.4", "v9.5"},
}

// MatchPlatform reports whether an image built for have runs on want:
// the same OS (and OS version, when want names one) and architecture,
// and a variant no newer than want's (arm64 with no variant is v8, amd64
// v3 runs amd64 and amd64/v2 images, arm/v7 runs arm/v6). Other
// architectures' variants must be equal.
func MatchPlatform(want, have ocispec.Platform) bool {
	_, ok := platformRank(NormalizePlatform(want), NormalizePlatform(have))
	return ok
}

// platformRank says whether have (normalised) runs on want (normalised)
// and how good a choice it is: 0 for the exact variant, larger for older
// variants.
func platformRank(want, have ocispec.Platform) (int, bool) {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return 0, false
	}
	if want.OSVersion != "" && want.OSVersion != have.OSVersion {
		return 0, false
	}
	if want.Variant == have.Variant {
		return 0, true
	}
	levels := variantLevels[want.Architecture]
	w, h := slices.Index(levels, want.Variant), slices.Index(levels, have.Variant)
	if w < 0 || h < 0 || h > w {
		return 0, false
	}
	return w - h, true
}

// attestationAnnotation marks the provenance and SBOM manifests BuildKit
// puts in indexes beside the images (with platform unknown/unknown).
const attestationAnnotation = "vnd.docker.reference.type"

// SelectManifest picks from an index (OCI index or Docker manifest list)
// the image manifest for platform: the entry that MatchPlatform accepts,
// the exact variant before older ones, the first entry among equals.
// Entries that are not image manifests (attestations, nested indexes,
// artifacts) and entries without a platform are passed over. No match is
// an errdefs.ErrNotFound error that lists the platforms the index has.
func SelectManifest(index ocispec.Index, platform ocispec.Platform) (ocispec.Descriptor, error) {
	want := NormalizePlatform(platform)
	best, bestRank := -1, 0
	var have []string
	for i, d := range index.Manifests {
		if !IsManifest(d.MediaType) || d.Platform == nil || d.Annotations[attestationAnnotation] != "" {
			continue
		}
		p := NormalizePlatform(*d.Platform)
		have = append(have, FormatPlatform(p))
		if r, ok := platformRank(want, p); ok && (best < 0 || r < bestRank) {
			best, bestRank = i, r
		}
	}
	if best >= 0 {
		return index.Manifests[best], nil
	}
	if len(have) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: no manifest for %s: the index lists no image with a platform", errdefs.ErrNotFound, FormatPlatform(want))
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w: no manifest for %s in the index (it has %s)", errdefs.ErrNotFound, FormatPlatform(want), strings.Join(have, ", "))
}

// ConfigPlatform is the platform an image config says it was built for.
func ConfigPlatform(cfg ocispec.Image) ocispec.Platform {
	return NormalizePlatform(cfg.Platform)
}
