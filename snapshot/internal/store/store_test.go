package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	bolt "go.etcd.io/bbolt"

	"berth.dev/internal/errdefs"
	"berth.dev/snapshot"
)

// fakeDriver makes <dir>/fs and mounts nothing, so the store's rules and
// crash safety are tested without root.
type fakeDriver struct {
	fail error // returned by Create when set
}

func (d *fakeDriver) Create(ctx context.Context, dir string, kind snapshot.Kind, parents []string) error {
	if d.fail != nil {
		return d.fail
	}
	return os.Mkdir(filepath.Join(dir, "fs"), 0o755)
}

func (d *fakeDriver) Mounts(dir string, kind snapshot.Kind, parents []string) []snapshot.Mount {
	return []snapshot.Mount{{Type: "bind", Source: filepath.Join(dir, "fs")}}
}

func (d *fakeDriver) UsageDir(dir string) string { return filepath.Join(dir, "fs") }

func open(t *testing.T, root string, d Driver) *Store {
	t.Helper()
	s, err := Open(root, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLayoutAndRemove(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := open(t, root, &fakeDriver{})
	m, err := s.Prepare(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "1", "fs"); m[0].Source != want {
		t.Errorf("first snapshot at %s, want %s", m[0].Source, want)
	}
	if err := s.Commit(ctx, "base", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "b", "base"); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(t, root), []string{"1", "2", dbName}; !equal(got, want) {
		t.Errorf("root holds %v, want %v", got, want)
	}
	if err := s.Remove(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if got, want := entries(t, root), []string{"1", dbName}; !equal(got, want) {
		t.Errorf("after remove, root holds %v, want %v", got, want)
	}
}

// TestOpenCollectsGarbage plays the leftovers of crashes at every step:
// a directory filled but never recorded (new-), one whose row was deleted
// (removing-), one whose creating transaction never committed (a bare id),
// and the overlay driver's support probe.
func TestOpenCollectsGarbage(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := open(t, root, &fakeDriver{})
	if _, err := s.Prepare(ctx, "kept", ""); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, d := range []string{"new-123", "removing-7", "2", "check-99", "17/fs"} {
		if err := os.MkdirAll(filepath.Join(root, d, "inner"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s = open(t, root, &fakeDriver{})
	if got, want := entries(t, root), []string{"1", dbName}; !equal(got, want) {
		t.Errorf("after reopening, root holds %v, want %v", got, want)
	}
	// The id of the crashed creation is handed out again, cleanly.
	m, err := s.Prepare(ctx, "next", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Dir(m[0].Source)); !equal(got, []string{"fs"}) {
		t.Errorf("new snapshot dir holds %v, want [fs]", got)
	}
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := &fakeDriver{fail: errors.New("disk full")}
	s := open(t, root, d)
	if _, err := s.Prepare(ctx, "a", ""); err == nil || !errors.Is(err, d.fail) {
		t.Fatalf("prepare with a failing driver: %v", err)
	}
	if _, err := s.Stat(ctx, "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stat after failed prepare: %v, want not found", err)
	}
	if got := entries(t, root); !equal(got, []string{dbName}) {
		t.Errorf("root holds %v after a failed prepare", got)
	}
}

func TestOpenTwiceRefused(t *testing.T) {
	root := t.TempDir()
	open(t, root, &fakeDriver{})
	if s, err := Open(root, &fakeDriver{}); !errors.Is(err, errdefs.ErrUnavailable) {
		if err == nil {
			s.Close()
		}
		t.Errorf("second Open of a root: %v, want unavailable", err)
	}
}

func TestFilters(t *testing.T) {
	infos := []snapshot.Info{
		{Name: "a", Kind: snapshot.Committed, Labels: map[string]string{"x": "1"}},
		{Name: "b", Kind: snapshot.Active, Parent: "a"},
		{Name: "c", Kind: snapshot.View, Parent: "a", Labels: map[string]string{"x": "2"}},
	}
	for _, tc := range []struct {
		filters []string
		want    []string
		err     error
	}{
		{nil, []string{"a", "b", "c"}, nil},
		{[]string{"kind==active"}, []string{"b"}, nil},
		{[]string{"kind!=active"}, []string{"a", "c"}, nil},
		{[]string{"parent==a,labels.x==2"}, []string{"c"}, nil},
		{[]string{"parent"}, []string{"b", "c"}, nil},
		{[]string{"labels.x!=1"}, []string{"b", "c"}, nil},
		{[]string{"name==a", "name==b"}, []string{"a", "b"}, nil},
		{[]string{" name == a , kind==committed"}, []string{"a"}, nil},
		{[]string{"labels."}, nil, errdefs.ErrInvalidArgument},
		{[]string{"kind==other"}, nil, errdefs.ErrInvalidArgument},
		{[]string{"size==1"}, nil, errdefs.ErrInvalidArgument},
	} {
		match, err := parseFilters(tc.filters)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("parseFilters(%q): %v, want %v", tc.filters, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("parseFilters(%q): %v", tc.filters, err)
		}
		var got []string
		for _, i := range infos {
			if match(i) {
				got = append(got, i.Name)
			}
		}
		if !equal(got, tc.want) {
			t.Errorf("filters %q match %v, want %v", tc.filters, got, tc.want)
		}
	}
}

// A committed snapshot's usage is measured by the first Usage, not by
// Commit, and kept in its record: later calls return the figure without
// walking the tree again.
func TestCommittedUsageMeasuredOnceLazily(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), &fakeDriver{})
	m, err := s.Prepare(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m[0].Source, "f"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	row := func() record {
		t.Helper()
		var r record
		if err := s.db.View(func(tx *bolt.Tx) error { r, err = get(tx, "c"); return err }); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := row(); r.Inodes != 0 {
		t.Fatalf("Commit measured the usage: %+v", r)
	}
	u, err := s.Usage(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if u.Inodes != 2 || u.Size != 5 {
		t.Fatalf("usage = %+v, want 2 inodes and 5 bytes", u)
	}
	if r := row(); r.Inodes != 2 || r.Size != 5 {
		t.Fatalf("the measured usage was not kept: %+v", r)
	}
	// The tree is not walked again: a file added behind the store's back
	// (which a committed snapshot never gets) does not count.
	if err := os.WriteFile(filepath.Join(m[0].Source, "g"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Usage(ctx, "c"); err != nil || again != u {
		t.Errorf("second usage = %+v, %v; want %+v", again, err, u)
	}
}
