package volumes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"

	"berth.dev/api/docker"
	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
)

var _ docker.VolumeBackend = (*Store)(nil)

// testRoot is a store's directories in a test: the volumes root and the
// database file.
type testRoot struct {
	root, dbPath string
}

// newStore opens a store in a fresh temporary directory. Whatever the
// test leaves mounted under it is unmounted before the directory goes.
func newStore(t *testing.T, opts ...Option) (*Store, testRoot) {
	t.Helper()
	dir := t.TempDir()
	tr := testRoot{root: filepath.Join(dir, "volumes"), dbPath: filepath.Join(dir, "metadata.db")}
	t.Cleanup(func() {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			_ = unmountAll(real)
		}
	})
	return tr.open(t, opts...), tr
}

// open opens the store of tr; the database is closed when the test ends
// or by the returned store's close.
func (tr testRoot) open(t *testing.T, opts ...Option) *Store {
	t.Helper()
	db, err := metadata.Open(tr.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(tr.root, db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reopen closes s's database and opens the store again, as a restart of
// the engine does.
func (tr testRoot) reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	return tr.open(t)
}

func names(vs []volume.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func mustCreate(t *testing.T, s *Store, req volume.CreateRequest) volume.Volume {
	t.Helper()
	v, err := s.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustAcquire(t *testing.T, s *Store, name, id string, anonymous bool) string {
	t.Helper()
	p, err := s.Acquire(context.Background(), name, id, anonymous)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateInspect(t *testing.T) {
	ctx := context.Background()
	var got []string
	s, tr := newStore(t, WithEvents(func(a events.Action, name string, attrs map[string]string) {
		got = append(got, string(a)+" "+name+" "+attrs["driver"])
	}))
	before := time.Now().Add(-time.Second)
	v := mustCreate(t, s, volume.CreateRequest{Name: "data", Labels: map[string]string{"k": "v"}})
	want := volume.Volume{
		Name: "data", Driver: "local", Scope: "local",
		Mountpoint: filepath.Join(s.root, "data", "_data"),
		Labels:     map[string]string{"k": "v"},
		CreatedAt:  v.CreatedAt,
	}
	if !equalVolume(v, want) {
		t.Errorf("Create = %+v, want %+v", v, want)
	}
	created, err := time.Parse(time.RFC3339, v.CreatedAt)
	if err != nil || created.Before(before.Truncate(time.Second)) || created.After(time.Now()) {
		t.Errorf("CreatedAt = %q (%v)", v.CreatedAt, err)
	}
	for path, mode := range map[string]os.FileMode{filepath.Join(tr.root, "data"): 0o701, filepath.Join(tr.root, "data", "_data"): 0o755} {
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want a directory with mode %v", path, fi, err, mode)
		}
	}

	// Creating it again returns it unchanged, whatever the request says.
	again := mustCreate(t, s, volume.CreateRequest{Name: "data", Labels: map[string]string{"other": ""}, DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	if !equalVolume(again, v) {
		t.Errorf("second Create = %+v, want %+v", again, v)
	}
	// Options are checked before the name is looked up, as dockerd does.
	if _, err := s.Create(ctx, volume.CreateRequest{Name: "data", DriverOpts: map[string]string{"foo": "bar"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Create(existing, bad options) = %v", err)
	}
	in, err := s.Inspect(ctx, "data")
	if err != nil || !equalVolume(in, v) {
		t.Errorf("Inspect = %+v, %v; want %+v", in, err, v)
	}
	if _, err := s.Inspect(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), "get nope: no such volume") {
		t.Errorf("Inspect(nope) = %v", err)
	}

	plain := mustCreate(t, s, volume.CreateRequest{})
	if len(plain.Name) != 64 || !equalMap(plain.Labels, map[string]string{AnonymousLabel: ""}) || plain.Options != nil {
		t.Errorf("Create without a name = %+v, want an anonymous volume", plain)
	}
	if v := mustCreate(t, s, volume.CreateRequest{Labels: map[string]string{"k": "v"}}); !equalMap(v.Labels, map[string]string{"k": "v", AnonymousLabel: ""}) {
		t.Errorf("Create without a name, with labels: %v", v.Labels)
	}
	opts := map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
	if v := mustCreate(t, s, volume.CreateRequest{Name: "fs", DriverOpts: opts}); !equalMap(v.Options, opts) {
		t.Errorf("Options = %v, want %v", v.Options, opts)
	}
	if len(got) != 4 || got[0] != "create data local" || got[1] != "create "+plain.Name+" local" || got[3] != "create fs local" {
		t.Errorf("events %q, want a create of each volume", got)
	}
}

func equalMap(a, b map[string]string) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func equalVolume(a, b volume.Volume) bool {
	return a.Name == b.Name && a.Driver == b.Driver && a.Scope == b.Scope && a.Mountpoint == b.Mountpoint &&
		a.CreatedAt == b.CreatedAt && equalMap(a.Labels, b.Labels) && equalMap(a.Options, b.Options)
}

func TestListFilters(t *testing.T) {
	s, _ := newStore(t)
	mustCreate(t, s, volume.CreateRequest{Name: "alpha", Labels: map[string]string{"a": "1"}})
	mustCreate(t, s, volume.CreateRequest{Name: "beta", Labels: map[string]string{"a": "2", "b": ""}})
	mustCreate(t, s, volume.CreateRequest{Name: "gamma"})
	mustAcquire(t, s, "gamma", "c1", false)
	mustAcquire(t, s, "zz-anon", "c1", true)

	cases := []struct {
		name    string
		filters backend.VolumeFilters
		want    []string
		err     error
	}{
		{"none", nil, []string{"alpha", "beta", "gamma", "zz-anon"}, nil},
		{"dangling", backend.VolumeFilters{"dangling": {"true"}}, []string{"alpha", "beta"}, nil},
		{"dangling 1", backend.VolumeFilters{"dangling": {"1"}}, []string{"alpha", "beta"}, nil},
		{"not dangling", backend.VolumeFilters{"dangling": {"false"}}, []string{"gamma", "zz-anon"}, nil},
		{"bad dangling", backend.VolumeFilters{"dangling": {"maybe"}}, nil, errdefs.ErrInvalidArgument},
		{"driver", backend.VolumeFilters{"driver": {"local"}}, []string{"alpha", "beta", "gamma", "zz-anon"}, nil},
		{"driver is exact", backend.VolumeFilters{"driver": {"loc"}}, nil, nil},
		{"label key", backend.VolumeFilters{"label": {"a"}}, []string{"alpha", "beta"}, nil},
		{"label value", backend.VolumeFilters{"label": {"a=1"}}, []string{"alpha"}, nil},
		{"labels all match", backend.VolumeFilters{"label": {"a", "b"}}, []string{"beta"}, nil},
		{"anonymous label", backend.VolumeFilters{"label": {AnonymousLabel}}, []string{"zz-anon"}, nil},
		{"not label", backend.VolumeFilters{"label!": {"a"}}, []string{"gamma", "zz-anon"}, nil},
		{"not label value", backend.VolumeFilters{"label!": {"a=1"}}, []string{"beta", "gamma", "zz-anon"}, nil},
		{"name substring", backend.VolumeFilters{"name": {"lph"}}, []string{"alpha"}, nil},
		{"name regexp", backend.VolumeFilters{"name": {"^[bg]"}}, []string{"beta", "gamma"}, nil},
		{"names are alternatives", backend.VolumeFilters{"name": {"alpha", "beta"}}, []string{"alpha", "beta"}, nil},
		{"name not a regexp", backend.VolumeFilters{"name": {"a("}}, nil, nil},
		{"keys all match", backend.VolumeFilters{"name": {"a"}, "dangling": {"true"}, "label": {"b"}}, []string{"beta"}, nil},
		{"unknown key", backend.VolumeFilters{"foo": {"x"}}, nil, errdefs.ErrInvalidArgument},
		{"all is for prune", backend.VolumeFilters{"all": {"true"}}, nil, errdefs.ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.List(context.Background(), c.filters)
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("List err = %v, want %v", err, c.err)
			}
			if c.err == nil && !slices.Equal(names(got), c.want) {
				t.Errorf("List = %v, want %v", names(got), c.want)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	s, tr := newStore(t)
	mustCreate(t, s, volume.CreateRequest{Name: "data"})
	mustAcquire(t, s, "data", "c2", false)
	mustAcquire(t, s, "data", "c1", false)
	mustAcquire(t, s, "data", "c1", false) // one use per container
	for _, force := range []bool{false, true} {
		err := s.Remove(ctx, "data", force)
		if !errors.Is(err, errdefs.ErrConflict) || !strings.HasSuffix(err.Error(), "remove data: volume is in use - [c1, c2]") {
			t.Errorf("Remove(in use, force=%v) = %v", force, err)
		}
	}
	if err := s.Remove(ctx, "nope", false); !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), "get nope: no such volume") {
		t.Errorf("Remove(nope) = %v", err)
	}
	if err := s.Remove(ctx, "nope", true); err != nil {
		t.Errorf("Remove(nope, force) = %v", err)
	}
	for _, id := range []string{"c1", "c2"} {
		if err := s.Release(ctx, id, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Inspect(ctx, "data"); err != nil {
		t.Fatalf("a named volume went with its containers: %v", err)
	}
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
	if _, err := s.Inspect(ctx, "data"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after Remove = %v", err)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	var prunes []string
	s, tr := newStore(t, WithEvents(func(a events.Action, name string, attrs map[string]string) {
		if a == events.ActionPrune {
			prunes = append(prunes, attrs["reclaimed"])
		}
	}))
	anonFree := mustAcquire(t, s, "anon-free", "c1", true)
	mustAcquire(t, s, "anon-used", "c2", true)
	mustCreate(t, s, volume.CreateRequest{Name: "named", Labels: map[string]string{"keep": "yes"}})
	mustCreate(t, s, volume.CreateRequest{Name: "named2"})
	if err := s.Release(ctx, "c1", false); err != nil {
		t.Fatal(err)
	}
	// 1000 bytes under two names count once; a directory counts nothing.
	if err := os.WriteFile(filepath.Join(anonFree, "f"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(anonFree, "f"), filepath.Join(anonFree, "g")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(anonFree, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(anonFree, "d", "h"), make([]byte, 10), 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Prune(ctx, backend.VolumeFilters{"name": {"x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Prune(name filter) = %v", err)
	}
	rep, err := s.Prune(ctx, nil)
	if err != nil || !slices.Equal(rep.VolumesDeleted, []string{"anon-free"}) || rep.SpaceReclaimed != 1010 {
		t.Fatalf("Prune = %+v, %v; want anon-free, 1010 bytes", rep, err)
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "anon-free")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pruned directory left: %v", err)
	}
	rep, err = s.Prune(ctx, backend.VolumeFilters{"all": {"true"}, "label!": {"keep=yes"}})
	if err != nil || !slices.Equal(rep.VolumesDeleted, []string{"named2"}) || rep.SpaceReclaimed != 0 {
		t.Fatalf("Prune(all, label!) = %+v, %v; want named2", rep, err)
	}
	rep, err = s.Prune(ctx, backend.VolumeFilters{"all": {"1"}, "label": {"keep"}})
	if err != nil || !slices.Equal(rep.VolumesDeleted, []string{"named"}) {
		t.Fatalf("Prune(all, label) = %+v, %v; want named", rep, err)
	}
	for _, bad := range []backend.VolumeFilters{{"all": {"yes"}}, {"all": {"true", "false"}}, {"dangling": {"true"}}} {
		if _, err := s.Prune(ctx, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Prune(%v) = %v", bad, err)
		}
	}
	mustCreate(t, s, volume.CreateRequest{Name: "fs", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	rep, err = s.Prune(ctx, backend.VolumeFilters{"all": {"TRUE"}})
	if err != nil || rep.VolumesDeleted == nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("Prune with nothing to prune = %+v, %v", rep, err)
	}
	left, err := s.List(ctx, nil)
	if err != nil || !slices.Equal(names(left), []string{"anon-used", "fs"}) {
		t.Errorf("left %v, %v; want the volume in use and the one with options", names(left), err)
	}
	if want := []string{"1010", "0", "0", "0"}; !slices.Equal(prunes, want) {
		t.Errorf("prune events reclaimed %v, want %v", prunes, want)
	}
}

func TestAcquireReleaseSurviveRestart(t *testing.T) {
	ctx := context.Background()
	s, tr := newStore(t)
	p := mustAcquire(t, s, "data", "c1", false)
	if want := filepath.Join(s.root, "data", "_data"); p != want {
		t.Errorf("Acquire path = %s, want %s", p, want)
	}
	mustAcquire(t, s, "data", "c2", false)
	mustAcquire(t, s, "anon1", "c1", true)
	mustAcquire(t, s, "anon2", "c1", true)
	mustAcquire(t, s, "anon2", "c2", true)
	if _, err := s.Acquire(ctx, "x", "c1", false); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Acquire(bad name) = %v", err)
	}
	if _, err := s.Acquire(ctx, "data", "", false); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Acquire(no container) = %v", err)
	}
	v, err := s.Inspect(ctx, "anon1")
	if err != nil || !equalMap(v.Labels, map[string]string{AnonymousLabel: ""}) {
		t.Errorf("anonymous volume %+v, %v", v, err)
	}
	if v, _ := s.Inspect(ctx, "data"); v.Labels != nil {
		t.Errorf("named volume labels %v", v.Labels)
	}

	s = tr.reopen(t, s)
	if err := s.Remove(ctx, "data", true); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "[c1, c2]") {
		t.Errorf("Remove after restart = %v, want in use by c1, c2", err)
	}
	used, err := s.List(ctx, backend.VolumeFilters{"dangling": {"false"}})
	if err != nil || !slices.Equal(names(used), []string{"anon1", "anon2", "data"}) {
		t.Errorf("in use after restart: %v, %v", names(used), err)
	}

	// rm -v of c1: its anonymous volume goes, the one c2 shares stays.
	if err := s.Release(ctx, "c1", true); err != nil {
		t.Fatal(err)
	}
	s = tr.reopen(t, s)
	all, _ := s.List(ctx, nil)
	if !slices.Equal(names(all), []string{"anon2", "data"}) {
		t.Errorf("after Release(c1, rm -v): %v", names(all))
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "anon1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("anon1 directory left: %v", err)
	}
	// rm of c2 without -v keeps its anonymous volume, now dangling.
	if err := s.Release(ctx, "c2", false); err != nil {
		t.Fatal(err)
	}
	dangling, _ := s.List(ctx, backend.VolumeFilters{"dangling": {"true"}})
	if !slices.Equal(names(dangling), []string{"anon2", "data"}) {
		t.Errorf("dangling after Release(c2): %v", names(dangling))
	}
	if err := s.Release(ctx, "c2", true); err != nil {
		t.Errorf("Release of a container using nothing = %v", err)
	}
	if all, _ := s.List(ctx, nil); len(all) != 2 {
		t.Errorf("a second Release removed %v", names(all))
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	p := mustAcquire(t, s, "data", "c1", false)
	mustAcquire(t, s, "data", "c2", false)
	mustCreate(t, s, volume.CreateRequest{Name: "empty"})
	mustCreate(t, s, volume.CreateRequest{Name: "fs", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	if err := os.WriteFile(filepath.Join(p, "f"), make([]byte, 4321), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(p, "l")); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Usage(ctx)
	if err != nil || len(vs) != 2 {
		t.Fatalf("Usage = %+v, %v", vs, err)
	}
	want := map[string]volume.UsageData{"data": {Size: 4321 + 1, RefCount: 2}, "empty": {Size: 0, RefCount: 0}}
	for _, v := range vs {
		if v.UsageData == nil || *v.UsageData != want[v.Name] {
			t.Errorf("%s: UsageData %+v, want %+v", v.Name, v.UsageData, want[v.Name])
		}
	}
}

func TestNewRemovesLeftovers(t *testing.T) {
	ctx := context.Background()
	s, tr := newStore(t)
	mustCreate(t, s, volume.CreateRequest{Name: "kept"})
	mustCreate(t, s, volume.CreateRequest{Name: "lost-dir"})
	if len(s.Cleaned()) != 0 {
		t.Errorf("fresh store cleaned %v", s.Cleaned())
	}
	// A create interrupted after its directory, a removal interrupted
	// before its directory went, a directory removed by hand.
	orphan := filepath.Join(tr.root, "orphan", "_data")
	if err := os.MkdirAll(filepath.Join(orphan, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan, "sub", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(tr.root, "lost-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tr.root, "not-a-volume"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	s = tr.reopen(t, s)
	if got := s.Cleaned(); !slices.Equal(got, []string{"orphan"}) {
		t.Errorf("Cleaned = %v, want [orphan]", got)
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "orphan")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan left: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "not-a-volume")); err != nil {
		t.Errorf("a file that is no volume was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tr.root, "lost-dir", "_data")); err != nil {
		t.Errorf("record without a directory: %v", err)
	}
	all, err := s.List(ctx, nil)
	if err != nil || !slices.Equal(names(all), []string{"kept", "lost-dir"}) {
		t.Errorf("List after New = %v, %v", names(all), err)
	}
	// The orphan's name is free again, and empty.
	v := mustCreate(t, s, volume.CreateRequest{Name: "orphan"})
	if empty, err := isEmptyDir(v.Mountpoint); !empty || err != nil {
		t.Errorf("recreated volume not empty: %v", err)
	}
}
