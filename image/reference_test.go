package image

import (
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"berth.dev/internal/errdefs"
)

const hexA = "8ac48589692a53a9b8c2d1ceaa6b402665aa7fe667ba51ccc03002300856d8c7"

func TestParseNormalized(t *testing.T) {
	for _, tc := range []struct {
		in, full, familiar, familiarName, domain, path string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest", "busybox", "docker.io", "library/busybox"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest", "busybox", "docker.io", "library/busybox"},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "busybox", "docker.io", "library/busybox"},
		{"docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "busybox", "docker.io", "library/busybox"},
		{"index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "busybox", "docker.io", "library/busybox"},
		{"user/repo:tag", "docker.io/user/repo:tag", "user/repo:tag", "user/repo", "docker.io", "user/repo"},
		{"localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest", "localhost:5000/x", "localhost:5000", "x"},
		{"localhost:5000/x:1", "localhost:5000/x:1", "localhost:5000/x:1", "localhost:5000/x", "localhost:5000", "x"},
		{"localhost/x", "localhost/x:latest", "localhost/x:latest", "localhost/x", "localhost", "x"},
		{"quay.io/a/b/c:v2", "quay.io/a/b/c:v2", "quay.io/a/b/c:v2", "quay.io/a/b/c", "quay.io", "a/b/c"},
		{"127.0.0.1:5000/a/b@sha256:" + hexA, "127.0.0.1:5000/a/b@sha256:" + hexA, "127.0.0.1:5000/a/b@sha256:" + hexA, "127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b"},
		{"busybox@sha256:" + hexA, "docker.io/library/busybox@sha256:" + hexA, "busybox@sha256:" + hexA, "busybox", "docker.io", "library/busybox"},
		// Tag and digest: the digest is what is pulled, the tag is dropped.
		{"busybox:1@sha256:" + hexA, "docker.io/library/busybox@sha256:" + hexA, "busybox@sha256:" + hexA, "busybox", "docker.io", "library/busybox"},
		{"[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest", "[::1]:5000/x", "[::1]:5000", "x"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ref, err := ParseNormalized(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ref.String(); got != tc.full {
				t.Errorf("String() = %q, want %q", got, tc.full)
			}
			if got := FamiliarString(ref); got != tc.familiar {
				t.Errorf("FamiliarString = %q, want %q", got, tc.familiar)
			}
			if got := FamiliarName(ref); got != tc.familiarName {
				t.Errorf("FamiliarName = %q, want %q", got, tc.familiarName)
			}
			if got := Domain(ref); got != tc.domain {
				t.Errorf("Domain = %q, want %q", got, tc.domain)
			}
			if got := Path(ref); got != tc.path {
				t.Errorf("Path = %q, want %q", got, tc.path)
			}
			if got := FamiliarNameString(tc.full); got != tc.familiar {
				t.Errorf("FamiliarNameString(%q) = %q, want %q", tc.full, got, tc.familiar)
			}
			// Normalising twice changes nothing.
			again, err := ParseNormalized(ref.String())
			if err != nil || again.String() != tc.full {
				t.Errorf("ParseNormalized(%q) = %v, %v", ref, again, err)
			}
		})
	}
}

func TestParseNormalizedTagAndDigest(t *testing.T) {
	ref, err := ParseNormalized("busybox:1.36")
	if err != nil {
		t.Fatal(err)
	}
	if tag, ok := Tag(ref); !ok || tag != "1.36" {
		t.Errorf("Tag = %q, %v", tag, ok)
	}
	if _, ok := Digest(ref); ok {
		t.Error("a tagged reference has a digest")
	}
	ref, err = ParseNormalized("busybox@sha256:" + hexA)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := Digest(ref); !ok || d != digest.Digest("sha256:"+hexA) {
		t.Errorf("Digest = %q, %v", d, ok)
	}
	if _, ok := Tag(ref); ok {
		t.Error("a digest reference got a tag")
	}
}

func TestParseNamedAddsNoTag(t *testing.T) {
	ref, err := ParseNamed("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if ref.String() != "docker.io/library/busybox" {
		t.Errorf("ParseNamed(busybox) = %q", ref)
	}
}

func TestParseNormalizedInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"Busybox",
		"docker.io/User/repo",
		"busybox:",
		"busybox:bad tag",
		"busybox:" + strings.Repeat("t", 129),
		"busybox@sha256:abc",
		"busybox@sha256:" + strings.ToUpper(hexA),
		"busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
		hexA, // 64 hex digits are an ID, never a name
		"a//b",
		"-a/b",
		"localhost:5000/",
	} {
		t.Run(in, func(t *testing.T) {
			ref, err := ParseNormalized(in)
			if err == nil {
				t.Fatalf("ParseNormalized(%q) = %q, want an error", in, ref)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	full := digest.Digest("sha256:" + hexA)
	for _, tc := range []struct {
		in       string
		fullID   bool
		prefix   string
		prefixOK bool
	}{
		{"sha256:" + hexA, true, hexA, true},
		{hexA, true, hexA, true},
		{hexA[:12], false, hexA[:12], true},
		{"sha256:" + hexA[:5], false, hexA[:5], true},
		{"8", false, "8", true},
		{"busybox", false, "", false},
		{"sha256:", false, "", false},
		{"", false, "", false},
		{strings.ToUpper(hexA[:12]), false, "", false},
		{hexA + "0", false, "", false},
		{"sha512:" + hexA, false, "", false},
	} {
		if got := IsFullID(tc.in); got != tc.fullID {
			t.Errorf("IsFullID(%q) = %v", tc.in, got)
		}
		if p, ok := IDPrefix(tc.in); p != tc.prefix || ok != tc.prefixOK {
			t.Errorf("IDPrefix(%q) = %q, %v; want %q, %v", tc.in, p, ok, tc.prefix, tc.prefixOK)
		}
	}
	if id, err := ParseID(hexA); err != nil || id != full {
		t.Errorf("ParseID(hex) = %q, %v", id, err)
	}
	if _, err := ParseID("busybox"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ParseID(busybox) error %v", err)
	}
	if got := ShortID(full); got != hexA[:12] {
		t.Errorf("ShortID = %q", got)
	}
}
