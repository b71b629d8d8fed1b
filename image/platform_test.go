package image

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // FormatPlatform of the result, "" for an error
	}{
		{"linux/amd64", "linux/amd64"},
		{"linux/arm64", "linux/arm64/v8"},
		{"linux/arm64/v8", "linux/arm64/v8"},
		{"linux/arm64/8", "linux/arm64/v8"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/amd64/v1", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"Linux/X86_64", "linux/amd64"},
		{"linux/aarch64", "linux/arm64/v8"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/i386", "linux/386"},
		{"arm64", "linux/arm64/v8"},
		{"s390x", "linux/s390x"},
		{"linux", "linux/" + NormalizePlatform(ocispec.Platform{Architecture: runtime.GOARCH}).Architecture},
		{"windows/amd64", "windows/amd64"},
		{"", ""},
		{"linux/", ""},
		{"/amd64", ""},
		{"linux/amd64/v3/x", ""},
		{"linux/am d64", ""},
	} {
		p, err := ParsePlatform(tc.in)
		if tc.want == "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParsePlatform(%q) = %+v, %v; want ErrInvalidArgument", tc.in, p, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePlatform(%q): %v", tc.in, err)
			continue
		}
		if got := FormatPlatform(p); got != tc.want {
			t.Errorf("ParsePlatform(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestDefaultPlatform(t *testing.T) {
	p := DefaultPlatform()
	if p.OS != "linux" || p.Architecture != runtime.GOARCH {
		t.Errorf("DefaultPlatform = %+v", p)
	}
}

func plat(s string) ocispec.Platform {
	parts := strings.Split(s, "/")
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p
}

func TestMatchPlatform(t *testing.T) {
	for _, tc := range []struct {
		want, have string
		match      bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/amd64/v1", true},
		{"linux/amd64", "linux/amd64/v2", false},
		{"linux/amd64/v3", "linux/amd64", true},
		{"linux/amd64/v3", "linux/amd64/v2", true},
		{"linux/amd64/v3", "linux/amd64/v4", false},
		{"linux/amd64", "linux/arm64", false},
		{"linux/amd64", "windows/amd64", false},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64", "linux/arm64/v9", false},
		{"linux/arm64/v9", "linux/arm64", true},
		{"linux/arm64", "linux/arm/v7", false},
		{"linux/arm/v7", "linux/arm", true},
		{"linux/arm/v7", "linux/arm/v6", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm", "linux/arm/v5", true},
		{"linux/riscv64", "linux/riscv64", true},
		{"linux/ppc64le", "linux/ppc64le/power9", false},
		{"linux/x86_64", "linux/amd64", true},
	} {
		if got := MatchPlatform(plat(tc.want), plat(tc.have)); got != tc.match {
			t.Errorf("MatchPlatform(want %s, have %s) = %v", tc.want, tc.have, got)
		}
	}
	win := ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1"}
	if MatchPlatform(ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.1"}, win) {
		t.Error("an OS version that was asked for is ignored")
	}
	if !MatchPlatform(ocispec.Platform{OS: "windows", Architecture: "amd64"}, win) {
		t.Error("an OS version nobody asked for is required")
	}
}

func entry(name, platform string, annotations map[string]string) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: MediaTypeOCIManifest, Digest: digest.FromString(name), Size: 1, Annotations: annotations}
	if platform != "" {
		p := plat(platform)
		d.Platform = &p
	}
	return d
}

func TestSelectManifest(t *testing.T) {
	attestation := entry("attest", "unknown/unknown", map[string]string{"vnd.docker.reference.type": "attestation-manifest"})
	nested := entry("nested", "linux/amd64", nil)
	nested.MediaType = MediaTypeOCIIndex
	docker := entry("docker-arm64", "linux/arm64/v8", nil)
	docker.MediaType = MediaTypeDockerManifest
	index := ocispec.Index{Manifests: []ocispec.Descriptor{
		nested,
		attestation,
		entry("noplatform", "", nil),
		entry("amd64", "linux/amd64", nil),
		entry("amd64v3", "linux/amd64/v3", nil),
		entry("amd64-again", "linux/amd64", nil),
		docker,
		entry("armv6", "linux/arm/v6", nil),
		entry("armv7", "linux/arm/v7", nil),
		entry("s390x", "linux/s390x", nil),
	}}
	for _, tc := range []struct {
		platform, want string
	}{
		{"linux/amd64", "amd64"},
		{"linux/amd64/v2", "amd64"},
		{"linux/amd64/v3", "amd64v3"},
		{"linux/amd64/v4", "amd64v3"},
		{"linux/arm64", "docker-arm64"},
		{"linux/arm/v7", "armv7"},
		{"linux/arm/v8", "armv7"},
		{"linux/arm/v6", "armv6"},
		{"linux/s390x", "s390x"},
	} {
		got, err := SelectManifest(index, plat(tc.platform))
		if err != nil {
			t.Errorf("SelectManifest(%s): %v", tc.platform, err)
			continue
		}
		if got.Digest != digest.FromString(tc.want) {
			t.Errorf("SelectManifest(%s) chose %s, want the %s entry", tc.platform, got.Digest, tc.want)
		}
	}

	_, err := SelectManifest(index, plat("linux/riscv64"))
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("no riscv64 entry: error %v, want ErrNotFound", err)
	}
	msg := err.Error()
	for _, s := range []string{"linux/riscv64", "linux/amd64, linux/amd64/v3", "linux/arm64/v8", "linux/arm/v6", "linux/s390x"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %s", msg, s)
		}
	}
	if strings.Contains(msg, "unknown") {
		t.Errorf("error %q lists the attestation", msg)
	}
	_, err = SelectManifest(ocispec.Index{Manifests: []ocispec.Descriptor{attestation}}, plat("linux/amd64"))
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("an index of attestations: error %v, want ErrNotFound", err)
	}
}
