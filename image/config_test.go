package image

import (
	"errors"
	"slices"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

func TestChainIDs(t *testing.T) {
	// sha256 of "a", "b", "c", then worked out with sha256sum:
	// printf '%s %s' "$A" "$B" | sha256sum, and so on.
	a := digest.Digest("sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")
	b := digest.Digest("sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d")
	c := digest.Digest("sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6")
	ab := digest.Digest("sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676")
	abc := digest.Digest("sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106")

	if got := ChainIDs([]digest.Digest{a, b, c}); !slices.Equal(got, []digest.Digest{a, ab, abc}) {
		t.Errorf("ChainIDs = %v", got)
	}
	if got := ChainID([]digest.Digest{a, b, c}); got != abc {
		t.Errorf("ChainID = %s", got)
	}
	if got := ChainID([]digest.Digest{a}); got != a {
		t.Errorf("ChainID of one layer = %s, want its diff ID", got)
	}
	if got := ChainID(nil); got != "" {
		t.Errorf("ChainID of none = %q", got)
	}
}

func TestDecodeConfig(t *testing.T) {
	doc := []byte(`{"architecture":"arm64","variant":"v8","os":"linux","created":"2024-01-02T03:04:05Z",` +
		`"config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},"Shell":["/bin/ash","-c"]},` +
		`"rootfs":{"type":"layers","diff_ids":["` + digest.FromString("l").String() + `"]},` +
		`"history":[{"created_by":"ADD x /"}]}`)
	for _, mt := range []string{MediaTypeOCIConfig, MediaTypeDockerConfig, ""} {
		cfg, err := DecodeConfig(Descriptor(mt, doc), doc)
		if err != nil {
			t.Fatalf("%q: %v", mt, err)
		}
		if cfg.Architecture != "arm64" || cfg.Variant != "v8" || !slices.Equal(cfg.Config.Cmd, []string{"sh"}) {
			t.Errorf("%q: config %+v", mt, cfg)
		}
		if cfg.Config.Healthcheck == nil || cfg.Config.Healthcheck.Interval != time.Second || !slices.Equal(cfg.Config.Shell, []string{"/bin/ash", "-c"}) {
			t.Errorf("%q: docker's fields lost: %+v", mt, cfg.Config)
		}
		if p := ConfigPlatform(cfg.Image); FormatPlatform(p) != "linux/arm64/v8" {
			t.Errorf("ConfigPlatform = %s", FormatPlatform(p))
		}
	}
	// What EncodeConfig writes decodes to the same config, and its digest
	// is the ID.
	cfg, _ := DecodeConfig(ocispec.Descriptor{}, doc)
	data, desc, err := EncodeConfig(cfg, MediaTypeOCIConfig)
	if err != nil {
		t.Fatal(err)
	}
	if ID(desc) != digest.FromBytes(data) {
		t.Errorf("ID = %s", ID(desc))
	}
	again, err := DecodeConfig(desc, data)
	if err != nil || again.Config.Healthcheck == nil || again.RootFS.DiffIDs[0] != cfg.RootFS.DiffIDs[0] {
		t.Errorf("round trip: %+v, %v", again, err)
	}

	for name, bad := range map[string]struct {
		desc ocispec.Descriptor
		doc  string
		want error
	}{
		"not a config": {ocispec.Descriptor{MediaType: MediaTypeOCIManifest}, `{"rootfs":{"type":"layers"}}`, errdefs.ErrInvalidArgument},
		"rootfs type":  {ocispec.Descriptor{}, `{"rootfs":{"type":"tarballs"}}`, errdefs.ErrInvalidArgument},
		"no rootfs":    {ocispec.Descriptor{}, `{}`, errdefs.ErrInvalidArgument},
		"bad diff ID":  {ocispec.Descriptor{}, `{"rootfs":{"type":"layers","diff_ids":["sha256:1"]}}`, errdefs.ErrInvalidArgument},
		"not JSON":     {ocispec.Descriptor{}, `{`, errdefs.ErrInvalidArgument},
		"wrong digest": {ocispec.Descriptor{Digest: digest.FromString("x")}, `{"rootfs":{"type":"layers"}}`, errdefs.ErrFailedPrecondition},
	} {
		if _, err := DecodeConfig(bad.desc, []byte(bad.doc)); !errors.Is(err, bad.want) {
			t.Errorf("%s: error %v, want %v", name, err, bad.want)
		}
	}
}

func TestHistory(t *testing.T) {
	t1 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	id := digest.FromString("config")
	d := func(s string) digest.Digest { return digest.FromString(s) }
	var cfg Config
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{d("1"), d("2")}}
	cfg.History = []ocispec.History{
		{Created: &t1, CreatedBy: "/bin/sh -c #(nop) ADD file:abc in / "},
		{Created: &t1, CreatedBy: `/bin/sh -c #(nop)  ENV A=1`, EmptyLayer: true},
		{Created: &t2, CreatedBy: "/bin/sh -c echo hi > /hi", Comment: "buildkit.dockerfile.v0", Author: "me"},
		{Created: &t2, CreatedBy: `/bin/sh -c #(nop)  CMD ["sh"]`, EmptyLayer: true},
	}
	rows, err := History(cfg, id, []int64{4096, 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []HistoryEntry{
		{ID: id.String(), Created: &t2, CreatedBy: `/bin/sh -c #(nop)  CMD ["sh"]`, EmptyLayer: true, Layer: -1},
		{ID: Missing, Created: &t2, CreatedBy: "/bin/sh -c echo hi > /hi", Comment: "buildkit.dockerfile.v0", Author: "me", Size: 3, Layer: 1},
		{ID: Missing, Created: &t1, CreatedBy: `/bin/sh -c #(nop)  ENV A=1`, EmptyLayer: true, Layer: -1},
		{ID: Missing, Created: &t1, CreatedBy: "/bin/sh -c #(nop) ADD file:abc in / ", Size: 4096, Layer: 0},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("History =\n%+v\nwant\n%+v", rows, want)
	}

	// Sizes not known count as 0.
	rows, err = History(cfg, id, nil)
	if err != nil || rows[1].Size != 0 || rows[3].Size != 0 {
		t.Errorf("History without sizes = %+v, %v", rows, err)
	}

	// No history: one row per layer.
	bare := Config{}
	bare.RootFS = cfg.RootFS
	rows, err = History(bare, id, []int64{10, 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != id.String() || rows[0].Size != 20 || rows[1].ID != Missing || rows[1].Size != 10 {
		t.Errorf("History of an image without history = %+v", rows)
	}

	// More non-empty steps than layers.
	cfg.RootFS.DiffIDs = cfg.RootFS.DiffIDs[:1]
	if _, err := History(cfg, id, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("too many steps: error %v", err)
	}
}

func TestInspect(t *testing.T) {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	index := ocispec.Descriptor{MediaType: MediaTypeOCIIndex, Digest: digest.FromString("index"), Size: 1}
	local := ocispec.Descriptor{MediaType: MediaTypeOCIManifest, Digest: digest.FromString("local"), Size: 1}
	id := digest.FromString("config")
	records := []Image{
		{Name: "docker.io/library/busybox:latest", Target: index, ConfigDigest: id, UpdatedAt: created},
		{Name: "docker.io/library/busybox:1.36", Target: index, ConfigDigest: id, UpdatedAt: created.Add(time.Hour)},
		{Name: "docker.io/library/busybox@" + index.Digest.String(), Target: index, ConfigDigest: id, UpdatedAt: created},
		{Name: "localhost:5000/bb:1", Target: local, ConfigDigest: id, UpdatedAt: created},
	}
	var cfg Config
	cfg.Created = &created
	cfg.Author = "berth"
	cfg.Config.Cmd = []string{"sh"}
	cfg.Platform = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("l")}}
	cfg.History = []ocispec.History{{CreatedBy: "ADD"}, {CreatedBy: "commit", Comment: "fixed it", EmptyLayer: true}}

	in := NewInspect(id, cfg, records, 1234)
	if want := []string{"busybox:1.36", "busybox:latest", "localhost:5000/bb:1"}; !slices.Equal(in.RepoTags, want) {
		t.Errorf("RepoTags = %q, want %q", in.RepoTags, want)
	}
	if want := []string{"busybox@" + index.Digest.String(), "localhost:5000/bb@" + local.Digest.String()}; !slices.Equal(in.RepoDigests, want) {
		t.Errorf("RepoDigests = %q, want %q", in.RepoDigests, want)
	}
	if in.ID != id || in.Size != 1234 || in.Comment != "fixed it" || in.Author != "berth" || in.Platform.Architecture != "amd64" ||
		!slices.Equal(in.Config.Cmd, []string{"sh"}) || len(in.Layers) != 1 || !in.LastTagTime.Equal(created.Add(time.Hour)) || in.Target.Digest != index.Digest {
		t.Errorf("Inspect = %+v", in)
	}

	tags, digests := RepoTagsAndDigests(nil)
	if tags == nil || digests == nil || len(tags)+len(digests) != 0 {
		t.Errorf("no records: %q, %q; want two empty lists", tags, digests)
	}
}
