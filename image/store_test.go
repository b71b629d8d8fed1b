package image

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
)

// clock is a test clock that moves one second per reading.
type clock struct{ t time.Time }

func (c *clock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func openStore(t *testing.T, path string, c *clock) (*Store, func()) {
	t.Helper()
	db, err := metadata.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return NewStore(db, WithClock(c.now)), func() { db.Close() }
}

func newTestStore(t *testing.T) (*Store, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, closeDB := openStore(t, filepath.Join(t.TempDir(), "metadata.db"), c)
	t.Cleanup(closeDB)
	return s, c
}

func manifest(s string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: MediaTypeOCIManifest, Digest: digest.FromString(s), Size: int64(len(s))}
}

// idWithPrefix makes an ID whose hex starts with prefix.
func idWithPrefix(prefix string) digest.Digest {
	h := digest.FromString(prefix).Encoded()
	return digest.NewDigestFromEncoded(digest.SHA256, prefix+h[len(prefix):])
}

func names(imgs []Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Name)
	}
	return out
}

func TestStoreCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	id := digest.FromString("config-1")

	created, err := s.Create(ctx, Image{Name: "busybox", Target: manifest("m1"), ConfigDigest: id, Labels: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if created.Name != "docker.io/library/busybox:latest" {
		t.Errorf("stored name %q", created.Name)
	}
	if created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.UpdatedAt) {
		t.Errorf("times %v %v", created.CreatedAt, created.UpdatedAt)
	}
	for _, name := range []string{"busybox", "busybox:latest", "docker.io/library/busybox:latest", "library/busybox"} {
		got, err := s.Get(ctx, name)
		if err != nil {
			t.Fatalf("Get(%q): %v", name, err)
		}
		if got.Target.Digest != created.Target.Digest || got.ConfigDigest != id || got.Labels["a"] != "1" || !got.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("Get(%q) = %+v", name, got)
		}
	}
	if _, err := s.Create(ctx, Image{Name: "docker.io/busybox:latest", Target: manifest("m2"), ConfigDigest: id}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Create: %v, want ErrAlreadyExists", err)
	}
	if _, err := s.Get(ctx, "busybox:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get of an unknown tag: %v", err)
	}

	updated, err := s.Update(ctx, Image{Name: "busybox", Target: manifest("m2"), ConfigDigest: digest.FromString("config-2")})
	if err != nil {
		t.Fatal(err)
	}
	if !updated.CreatedAt.Equal(created.CreatedAt) || !updated.UpdatedAt.After(created.UpdatedAt) || updated.Labels != nil {
		t.Errorf("Update = %+v", updated)
	}
	if got, _ := s.Get(ctx, "busybox"); got.Target.Digest != manifest("m2").Digest {
		t.Errorf("after Update, target %s", got.Target.Digest)
	}
	if _, err := s.Update(ctx, Image{Name: "alpine", Target: manifest("m"), ConfigDigest: id}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Update of an unknown name: %v", err)
	}

	deleted, err := s.Delete(ctx, "busybox:latest")
	if err != nil || deleted.Target.Digest != manifest("m2").Digest {
		t.Fatalf("Delete = %+v, %v", deleted, err)
	}
	if _, err := s.Get(ctx, "busybox"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if _, err := s.Delete(ctx, "busybox"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
}

func TestStoreRejectsInvalidRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	good := Image{Name: "busybox", Target: manifest("m"), ConfigDigest: digest.FromString("c")}
	for name, mangle := range map[string]func(*Image){
		"upper-case name":   func(i *Image) { i.Name = "BusyBox" },
		"empty name":        func(i *Image) { i.Name = "" },
		"target digest":     func(i *Image) { i.Target.Digest = "sha256:12" },
		"target media type": func(i *Image) { i.Target.MediaType = MediaTypeOCIConfig },
		"config digest":     func(i *Image) { i.ConfigDigest = "" },
	} {
		img := good
		mangle(&img)
		if _, err := s.Create(ctx, img); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: Create error %v", name, err)
		}
		if _, err := s.Put(ctx, img); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: Put error %v", name, err)
		}
	}
	if imgs, err := s.List(ctx); err != nil || len(imgs) != 0 {
		t.Errorf("List after refusals = %v, %v", imgs, err)
	}
}

func TestStorePutMovesTag(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	old, img := digest.FromString("old"), digest.FromString("new")

	res, err := s.Put(ctx, Image{Name: "app:1", Target: manifest("m-old"), ConfigDigest: old})
	if err != nil || res.Previous != nil {
		t.Fatalf("first Put = %+v, %v", res, err)
	}
	first := res.Image
	res, err = s.Put(ctx, Image{Name: "docker.io/library/app:1", Target: manifest("m-new"), ConfigDigest: img})
	if err != nil {
		t.Fatal(err)
	}
	if res.Previous == nil || res.Previous.ConfigDigest != old || res.Previous.Target.Digest != manifest("m-old").Digest {
		t.Errorf("Previous = %+v, want the old record", res.Previous)
	}
	if res.Image.ConfigDigest != img || !res.Image.CreatedAt.Equal(first.CreatedAt) || !res.Image.UpdatedAt.After(first.UpdatedAt) {
		t.Errorf("moved record = %+v", res.Image)
	}
	got, err := s.Get(ctx, "app:1")
	if err != nil || got.ConfigDigest != img {
		t.Errorf("Get after the move = %+v, %v", got, err)
	}
	all, _ := s.List(ctx)
	if len(all) != 1 {
		t.Errorf("a moved tag left %d records", len(all))
	}
}

func TestStoreList(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	a, b := digest.FromString("a"), digest.FromString("b")
	for _, img := range []Image{
		{Name: "busybox:1.36", ConfigDigest: a, Labels: map[string]string{"tier": "base"}},
		{Name: "busybox", ConfigDigest: a},
		{Name: "user/app:v2", ConfigDigest: b, Labels: map[string]string{"tier": "app"}},
		{Name: "localhost:5000/app", ConfigDigest: b},
	} {
		img.Target = manifest(img.Name)
		if _, err := s.Create(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		filters []Filter
		want    []string
	}{
		{"all", nil, []string{"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest", "docker.io/user/app:v2", "localhost:5000/app:latest"}},
		{"by id", []Filter{WithID(b)}, []string{"docker.io/user/app:v2", "localhost:5000/app:latest"}},
		{"label key", []Filter{WithLabel("tier", "")}, []string{"docker.io/library/busybox:1.36", "docker.io/user/app:v2"}},
		{"label value", []Filter{WithLabel("tier", "app")}, []string{"docker.io/user/app:v2"}},
		{"repository", []Filter{WithReference("busybox")}, []string{"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest"}},
		{"tag pattern", []Filter{WithReference("busybox:1.*")}, []string{"docker.io/library/busybox:1.36"}},
		{"path pattern", []Filter{WithReference("*/app")}, []string{"docker.io/user/app:v2", "localhost:5000/app:latest"}},
		{"two filters", []Filter{WithID(a), WithLabel("tier", "")}, []string{"docker.io/library/busybox:1.36"}},
		{"none", []Filter{WithReference("alpine")}, nil},
	} {
		imgs, err := s.List(ctx, tc.filters...)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(imgs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: List = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestStoreResolveID(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	one := idWithPrefix("abcdef0123456")
	two := idWithPrefix("abcdef0129999")
	three := idWithPrefix("0123")
	for _, img := range []Image{
		{Name: "one", ConfigDigest: one},
		{Name: "one-again", ConfigDigest: one},
		{Name: "two", ConfigDigest: two},
		{Name: "three", ConfigDigest: three},
	} {
		img.Target = manifest(img.Name)
		if _, err := s.Create(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		in   string
		want digest.Digest
		err  error
	}{
		{one.String(), one, nil},
		{one.Encoded(), one, nil},
		{one.Encoded()[:12], one, nil},
		{"sha256:" + one.Encoded()[:12], one, nil},
		{"abcdef01234", one, nil},
		{"abcdef0129", two, nil},
		{"0", three, nil},
		{"abcdef012", "", errdefs.ErrConflict},
		{"a", "", errdefs.ErrConflict},
		{"fff", "", errdefs.ErrNotFound},
		{idWithPrefix("ffff").String(), "", errdefs.ErrNotFound},
		{"busybox", "", errdefs.ErrInvalidArgument},
		{"", "", errdefs.ErrInvalidArgument},
	} {
		got, err := s.ResolveID(ctx, tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ResolveID(%q) = %s, %v; want %v", tc.in, got, err, tc.err)
			}
			if tc.err == errdefs.ErrConflict && !strings.Contains(err.Error(), "ambiguous") {
				t.Errorf("ResolveID(%q): %q does not say ambiguous", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveID(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestStoreLookup(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	bb := idWithPrefix("beef00")
	// An image named like a hex prefix of another image's ID: the name
	// wins, as in docker.
	hexName := idWithPrefix("abc123")
	for _, img := range []Image{
		{Name: "busybox", ConfigDigest: bb},
		{Name: "busybox:1.36", ConfigDigest: bb},
		{Name: "beef", ConfigDigest: hexName},
		{Name: "localhost:5000/bb@" + manifest("x").Digest.String(), ConfigDigest: bb},
	} {
		img.Target = manifest(img.Name)
		if _, err := s.Create(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	allBB := []string{"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest", "localhost:5000/bb@" + manifest("x").Digest.String()}
	for _, tc := range []struct {
		in     string
		id     digest.Digest
		name   string
		images []string
		err    error
	}{
		{"busybox", bb, "docker.io/library/busybox:latest", allBB, nil},
		{"busybox:1.36", bb, "docker.io/library/busybox:1.36", allBB, nil},
		{"localhost:5000/bb@" + manifest("x").Digest.String(), bb, "localhost:5000/bb@" + manifest("x").Digest.String(), allBB, nil},
		{bb.String(), bb, "", allBB, nil},
		{bb.Encoded(), bb, "", allBB, nil},
		{"beef00", bb, "", allBB, nil},
		{"beef", hexName, "docker.io/library/beef:latest", []string{"docker.io/library/beef:latest"}, nil},
		{"abc1", hexName, "", []string{"docker.io/library/beef:latest"}, nil},
		{"alpine", "", "", nil, errdefs.ErrNotFound},
		{"busybox:2", "", "", nil, errdefs.ErrNotFound},
		{idWithPrefix("ffff").String(), "", "", nil, errdefs.ErrNotFound},
		{"Busybox", "", "", nil, errdefs.ErrInvalidArgument},
	} {
		m, err := s.Lookup(ctx, tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Lookup(%q) = %+v, %v; want %v", tc.in, m, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Lookup(%q): %v", tc.in, err)
			continue
		}
		if m.ID != tc.id || m.Name != tc.name || !slices.Equal(names(m.Images), tc.images) {
			t.Errorf("Lookup(%q) = {%s %q %q}, want {%s %q %q}", tc.in, m.ID, m.Name, names(m.Images), tc.id, tc.name, tc.images)
		}
	}
}

func TestStorePersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "metadata.db")
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	id := digest.FromString("config")
	s, closeDB := openStore(t, path, c)
	want, err := s.Create(ctx, Image{Name: "localhost:5000/x:1", Target: manifest("m"), ConfigDigest: id, Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, Image{Name: "gone", Target: manifest("g"), ConfigDigest: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	closeDB()

	s, closeDB = openStore(t, path, c)
	defer closeDB()
	all, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("after reopen: %q", names(all))
	}
	got := all[0]
	if got.Name != want.Name || got.Target.Digest != want.Target.Digest || got.Target.MediaType != want.Target.MediaType ||
		got.ConfigDigest != id || got.Labels["k"] != "v" || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("after reopen: %+v, want %+v", got, want)
	}
	if found, err := s.ResolveID(ctx, id.Encoded()[:12]); err != nil || found != id {
		t.Errorf("ResolveID after reopen = %s, %v", found, err)
	}
}

func TestStoreHonoursContext(t *testing.T) {
	s, _ := newTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Create(ctx, Image{Name: "busybox", Target: manifest("m"), ConfigDigest: digest.FromString("c")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: %v", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context: %v", err)
	}
}
