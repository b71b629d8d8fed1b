package testsuite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"berth.dev/internal/errdefs"
	"berth.dev/snapshot"
)

// NewFunc opens a Snapshotter rooted at root. The suite calls it again on
// the same root after Close to check that everything survives.
type NewFunc func(t *testing.T, root string) (snapshot.Snapshotter, error)

type test struct {
	name string
	run  func(ctx context.Context, t *testing.T, s snapshot.Snapshotter, reopen func() snapshot.Snapshotter)
}

var tests = []test{
	{"Lifecycle", testLifecycle},
	{"ViewOfNothing", testViewOfNothing},
	{"MountsRepeatPrepare", testMountsRepeatPrepare},
	{"RemoveRefusedWithChildren", testRemoveWithChildren},
	{"RemoveCommittedLeaf", testRemoveCommittedLeaf},
	{"StatAndWalk", testStatAndWalk},
	{"UpdateLabels", testUpdateLabels},
	{"Usage", testUsage},
	{"Errors", testErrors},
	{"ChainOfFive", testChainOfFive},
	{"ChainOf150", testChainOf150},
	{"ConcurrentPrepare", testConcurrentPrepare},
	{"Reopen", testReopen},
}

// Run runs the conformance suite, each test in a fresh root.
func Run(t *testing.T, newSnapshotter NewFunc) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var current snapshot.Snapshotter
			open := func() snapshot.Snapshotter {
				s, err := newSnapshotter(t, root)
				if err != nil {
					t.Fatalf("open snapshotter in %s: %v", root, err)
				}
				current = s
				return s
			}
			s := open()
			t.Cleanup(func() { current.Close() })
			reopen := func() snapshot.Snapshotter {
				if err := current.Close(); err != nil {
					t.Fatalf("close: %v", err)
				}
				return open()
			}
			tc.run(context.Background(), t, s, reopen)
		})
	}
}

// mount mounts mounts at a new temporary directory and returns it and a
// function that unmounts it; the test's cleanup unmounts it too.
func mount(t testing.TB, mounts []snapshot.Mount) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	if err := snapshot.MountAll(mounts, dir); err != nil {
		t.Fatalf("mount %+v: %v", mounts, err)
	}
	unmount := func() {
		if err := snapshot.UnmountAll(dir); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	}
	t.Cleanup(unmount)
	return dir, unmount
}

func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantFile fails unless dir/name holds content.
func wantFile(t testing.TB, dir, name, content string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Errorf("read %s: %v", name, err)
		return
	}
	if string(b) != content {
		t.Errorf("%s holds %q, want %q", name, b, content)
	}
}

// wantNoFile fails unless dir/name does not exist.
func wantNoFile(t testing.TB, dir, name string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: got %v, want it not to exist", name, err)
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

// layer prepares key on parent, lets write change the mounted tree, and
// commits it as name.
func layer(ctx context.Context, t testing.TB, s snapshot.Snapshotter, name, parent string, write func(dir string)) {
	t.Helper()
	key := name + "-active"
	mounts, err := s.Prepare(ctx, key, parent)
	if err != nil {
		t.Fatalf("prepare %s on %q: %v", key, parent, err)
	}
	dir, unmount := mount(t, mounts)
	write(dir)
	unmount()
	if err := s.Commit(ctx, name, key); err != nil {
		t.Fatalf("commit %s as %s: %v", key, name, err)
	}
}

// view mounts a new View of parent and returns the directory.
func view(ctx context.Context, t testing.TB, s snapshot.Snapshotter, key, parent string) string {
	t.Helper()
	mounts, err := s.View(ctx, key, parent)
	if err != nil {
		t.Fatalf("view %s of %q: %v", key, parent, err)
	}
	dir, _ := mount(t, mounts)
	return dir
}

func wantReadOnly(t testing.TB, dir string) {
	t.Helper()
	err := os.WriteFile(filepath.Join(dir, "write-attempt"), []byte("x"), 0o644)
	if err == nil {
		t.Errorf("wrote into read-only %s", dir)
	}
}

func testLifecycle(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	layer(ctx, t, s, "base", "", func(dir string) {
		writeFile(t, dir, "a", "a1")
		writeFile(t, dir, "d/b", "b1")
		writeFile(t, dir, "gone", "soon deleted")
		writeFile(t, dir, "d/gone-too", "soon deleted")
	})
	if _, err := s.Stat(ctx, "base-active"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stat of a committed key: got %v, want not found", err)
	}
	layer(ctx, t, s, "child", "base", func(dir string) {
		wantFile(t, dir, "a", "a1")
		wantFile(t, dir, "d/b", "b1")
		writeFile(t, dir, "a", "a2")
		writeFile(t, dir, "c", "c2")
		for _, name := range []string{"gone", "d/gone-too"} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	})
	dir := view(ctx, t, s, "child-view", "child")
	wantFile(t, dir, "a", "a2")
	wantFile(t, dir, "c", "c2")
	wantFile(t, dir, "d/b", "b1")
	wantNoFile(t, dir, "gone")
	wantNoFile(t, dir, "d/gone-too")
	wantReadOnly(t, dir)

	// The parent is unchanged by its child.
	dir = view(ctx, t, s, "base-view", "base")
	wantFile(t, dir, "a", "a1")
	wantFile(t, dir, "gone", "soon deleted")
	wantNoFile(t, dir, "c")
	wantReadOnly(t, dir)
}

func testViewOfNothing(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	dir := view(ctx, t, s, "empty", "")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("view of nothing holds %v (%v), want an empty directory", entries, err)
	}
	wantReadOnly(t, dir)
}

func testMountsRepeatPrepare(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	layer(ctx, t, s, "base", "", func(dir string) { writeFile(t, dir, "f", "base") })
	for _, tc := range []struct {
		key, parent string
		create      func(context.Context, string, string, ...snapshot.Opt) ([]snapshot.Mount, error)
	}{
		{"active-empty", "", s.Prepare},
		{"active", "base", s.Prepare},
		{"view-empty", "", s.View},
		{"view", "base", s.View},
	} {
		created, err := tc.create(ctx, tc.key, tc.parent)
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		again, err := s.Mounts(ctx, tc.key)
		if err != nil {
			t.Fatalf("mounts %s: %v", tc.key, err)
		}
		if !reflect.DeepEqual(created, again) {
			t.Errorf("%s: Mounts returned %+v, creation returned %+v", tc.key, again, created)
		}
	}
}

func testRemoveWithChildren(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	layer(ctx, t, s, "base", "", func(dir string) { writeFile(t, dir, "f", "base") })
	layer(ctx, t, s, "mid", "base", func(dir string) { writeFile(t, dir, "g", "mid") })
	if _, err := s.Prepare(ctx, "container", "mid"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.View(ctx, "inspect", "base"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"base", "mid"} {
		wantErr(t, "remove "+key+" with children", s.Remove(ctx, key), errdefs.ErrFailedPrecondition)
	}
	for _, key := range []string{"container", "mid", "inspect", "base"} {
		if err := s.Remove(ctx, key); err != nil {
			t.Fatalf("remove %s: %v", key, err)
		}
		_, err := s.Stat(ctx, key)
		wantErr(t, "stat removed "+key, err, errdefs.ErrNotFound)
	}
	wantErr(t, "remove twice", s.Remove(ctx, "base"), errdefs.ErrNotFound)
}

func testRemoveCommittedLeaf(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	layer(ctx, t, s, "base", "", func(dir string) { writeFile(t, dir, "f", "base") })
	layer(ctx, t, s, "leaf", "base", func(dir string) { writeFile(t, dir, "f", "leaf") })
	if err := s.Remove(ctx, "leaf"); err != nil {
		t.Fatalf("remove committed leaf: %v", err)
	}
	if got := walkNames(ctx, t, s); !reflect.DeepEqual(got, []string{"base"}) {
		t.Errorf("after removing the leaf, walk finds %v, want [base]", got)
	}
	// The name is free again, and the parent is intact.
	layer(ctx, t, s, "leaf", "base", func(dir string) {
		wantFile(t, dir, "f", "base")
		writeFile(t, dir, "f", "leaf again")
	})
	wantFile(t, view(ctx, t, s, "v", "leaf"), "f", "leaf again")
}

func walkNames(ctx context.Context, t testing.TB, s snapshot.Snapshotter, filters ...string) []string {
	t.Helper()
	names := []string{}
	err := s.Walk(ctx, func(_ context.Context, i snapshot.Info) error {
		names = append(names, i.Name)
		return nil
	}, filters...)
	if err != nil {
		t.Fatalf("walk %q: %v", filters, err)
	}
	sort.Strings(names)
	return names
}

func testStatAndWalk(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	if _, err := s.Prepare(ctx, "base-active", "", snapshot.WithLabels(map[string]string{"x": "1"})); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "base", "base-active", snapshot.WithLabels(map[string]string{"y": "2"})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "act", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.View(ctx, "v", "base", snapshot.WithLabels(map[string]string{"x": "view"})); err != nil {
		t.Fatal(err)
	}
	for _, want := range []snapshot.Info{
		{Kind: snapshot.Committed, Name: "base", Labels: map[string]string{"x": "1", "y": "2"}},
		{Kind: snapshot.Active, Name: "act", Parent: "base"},
		{Kind: snapshot.View, Name: "v", Parent: "base", Labels: map[string]string{"x": "view"}},
	} {
		got, err := s.Stat(ctx, want.Name)
		if err != nil {
			t.Fatalf("stat %s: %v", want.Name, err)
		}
		if got.Created.IsZero() || got.Updated.Before(got.Created) {
			t.Errorf("stat %s: created %v, updated %v", want.Name, got.Created, got.Updated)
		}
		got.Created, got.Updated = want.Created, want.Updated
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stat %s = %+v, want %+v", want.Name, got, want)
		}
	}
	for _, tc := range []struct {
		filters []string
		want    []string
	}{
		{nil, []string{"act", "base", "v"}},
		{[]string{"kind==committed"}, []string{"base"}},
		{[]string{"kind!=committed"}, []string{"act", "v"}},
		{[]string{"parent==base"}, []string{"act", "v"}},
		{[]string{"labels.x"}, []string{"base", "v"}},
		{[]string{"labels.x==view"}, []string{"v"}},
		{[]string{"name==act", "kind==view"}, []string{"act", "v"}},
		{[]string{"parent==base,kind==active"}, []string{"act"}},
		{[]string{"labels.nobody"}, []string{}},
	} {
		if got := walkNames(ctx, t, s, tc.filters...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("walk %q = %v, want %v", tc.filters, got, tc.want)
		}
	}
	for _, bad := range []string{"owner==me", "kind==frozen", ""} {
		err := s.Walk(ctx, func(context.Context, snapshot.Info) error { return nil }, bad)
		wantErr(t, fmt.Sprintf("walk %q", bad), err, errdefs.ErrInvalidArgument)
	}
	stop := errors.New("stop")
	calls := 0
	err := s.Walk(ctx, func(context.Context, snapshot.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("walk with a failing fn: %v after %d calls, want stop after 1", err, calls)
	}
	// fn may call the snapshotter.
	err = s.Walk(ctx, func(ctx context.Context, i snapshot.Info) error {
		if i.Kind == snapshot.Committed {
			return nil
		}
		return s.Remove(ctx, i.Name)
	})
	if err != nil {
		t.Fatalf("walk removing: %v", err)
	}
	if got := walkNames(ctx, t, s); !reflect.DeepEqual(got, []string{"base"}) {
		t.Errorf("after removing during walk: %v, want [base]", got)
	}
}

func testUpdateLabels(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	layer(ctx, t, s, "base", "", func(string) {})
	before, err := s.Stat(ctx, "base")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels     map[string]string
		fieldpaths []string
		want       map[string]string
	}{
		{map[string]string{"a": "1", "b": "2"}, nil, map[string]string{"a": "1", "b": "2"}},
		{map[string]string{"c": "3"}, []string{"labels"}, map[string]string{"c": "3"}},
		{map[string]string{"d": "4", "ignored": "x"}, []string{"labels.d"}, map[string]string{"c": "3", "d": "4"}},
		{nil, []string{"labels.c"}, map[string]string{"d": "4"}},
		{map[string]string{"d": "5", "e": "6"}, []string{"labels.d", "labels.e"}, map[string]string{"d": "5", "e": "6"}},
	} {
		got, err := s.Update(ctx, snapshot.Info{Name: "base", Kind: snapshot.Active, Parent: "ignored", Labels: tc.labels}, tc.fieldpaths...)
		if err != nil {
			t.Fatalf("update %v %q: %v", tc.labels, tc.fieldpaths, err)
		}
		stat, err := s.Stat(ctx, "base")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, stat) {
			t.Errorf("update returned %+v, stat says %+v", got, stat)
		}
		if !reflect.DeepEqual(stat.Labels, tc.want) {
			t.Errorf("update %v %q: labels %v, want %v", tc.labels, tc.fieldpaths, stat.Labels, tc.want)
		}
		if stat.Kind != snapshot.Committed || stat.Parent != "" || !stat.Created.Equal(before.Created) || stat.Updated.Before(before.Updated) {
			t.Errorf("update changed more than labels: %+v, was %+v", stat, before)
		}
	}
	_, err = s.Update(ctx, snapshot.Info{Name: "base"}, "parent")
	wantErr(t, "update of parent", err, errdefs.ErrInvalidArgument)
	_, err = s.Update(ctx, snapshot.Info{Name: "missing"})
	wantErr(t, "update of missing", err, errdefs.ErrNotFound)
}

func testUsage(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	mounts, err := s.Prepare(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	dir, unmount := mount(t, mounts)
	big := bytes.Repeat([]byte("berth snapshot usage "), 4096) // 84 KiB
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "big"), filepath.Join(dir, "big-link")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s1", "s2", "s3"} {
		writeFile(t, dir, name, name)
	}
	unmount()
	active, err := s.Usage(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// The root directory, big (twice linked, counted once) and three
	// small files of two bytes; directories count no bytes.
	if want := int64(len(big)) + 6; active.Inodes != 5 || active.Size != want {
		t.Errorf("usage of active = %+v, want 5 inodes and %d bytes", active, want)
	}
	if err := s.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	committed, err := s.Usage(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if committed != active {
		t.Errorf("usage after commit = %+v, before %+v", committed, active)
	}
}

func testErrors(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	layer(ctx, t, s, "base", "", func(dir string) { writeFile(t, dir, "f", "base") })
	if _, err := s.Prepare(ctx, "act", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.View(ctx, "view", "base"); err != nil {
		t.Fatal(err)
	}
	mounts := func(m []snapshot.Mount, err error) error { return err }
	info := func(_ snapshot.Info, err error) error { return err }
	usage := func(_ snapshot.Usage, err error) error { return err }
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"prepare with a taken key", mounts(s.Prepare(ctx, "act", "")), errdefs.ErrAlreadyExists},
		{"prepare with a committed name", mounts(s.Prepare(ctx, "base", "")), errdefs.ErrAlreadyExists},
		{"view with a taken key", mounts(s.View(ctx, "view", "base")), errdefs.ErrAlreadyExists},
		{"prepare on a missing parent", mounts(s.Prepare(ctx, "x", "nope")), errdefs.ErrNotFound},
		{"view of a missing parent", mounts(s.View(ctx, "x", "nope")), errdefs.ErrNotFound},
		{"prepare on an active parent", mounts(s.Prepare(ctx, "x", "act")), errdefs.ErrFailedPrecondition},
		{"prepare on a view", mounts(s.Prepare(ctx, "x", "view")), errdefs.ErrFailedPrecondition},
		{"prepare with an empty key", mounts(s.Prepare(ctx, "", "")), errdefs.ErrInvalidArgument},
		{"commit a view", s.Commit(ctx, "x", "view"), errdefs.ErrFailedPrecondition},
		{"commit a committed snapshot", s.Commit(ctx, "x", "base"), errdefs.ErrFailedPrecondition},
		{"commit to a taken name", s.Commit(ctx, "base", "act"), errdefs.ErrAlreadyExists},
		{"commit to the key of a view", s.Commit(ctx, "view", "act"), errdefs.ErrAlreadyExists},
		{"commit a missing key", s.Commit(ctx, "x", "nope"), errdefs.ErrNotFound},
		{"commit to an empty name", s.Commit(ctx, "", "act"), errdefs.ErrInvalidArgument},
		{"mounts of a committed snapshot", mounts(s.Mounts(ctx, "base")), errdefs.ErrFailedPrecondition},
		{"mounts of a missing key", mounts(s.Mounts(ctx, "nope")), errdefs.ErrNotFound},
		{"stat of a missing key", info(s.Stat(ctx, "nope")), errdefs.ErrNotFound},
		{"usage of a missing key", usage(s.Usage(ctx, "nope")), errdefs.ErrNotFound},
		{"remove of a missing key", s.Remove(ctx, "nope"), errdefs.ErrNotFound},
	} {
		wantErr(t, tc.name, tc.err, tc.want)
	}
	// Failed calls left nothing behind and consumed nothing.
	if got, want := walkNames(ctx, t, s), []string{"act", "base", "view"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after failed calls, walk finds %v, want %v", got, want)
	}
	if err := s.Commit(ctx, "next", "act"); err != nil {
		t.Errorf("commit after failed commits: %v", err)
	}
}

func testChainOfFive(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	parent := ""
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("layer%d", i)
		layer(ctx, t, s, name, parent, func(dir string) {
			if i > 1 {
				wantFile(t, dir, "common", fmt.Sprint(i-1))
			}
			writeFile(t, dir, "common", fmt.Sprint(i))
			writeFile(t, dir, fmt.Sprintf("dir%d/file", i), name)
			if i == 4 {
				if err := os.RemoveAll(filepath.Join(dir, "dir2")); err != nil {
					t.Fatal(err)
				}
			}
		})
		parent = name
	}
	mounts, err := s.Prepare(ctx, "container", "layer5")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := mount(t, mounts)
	writeFile(t, dir, "common", "container")
	for _, d := range []string{dir, view(ctx, t, s, "top", "layer5")} {
		for _, i := range []int{1, 3, 4, 5} {
			wantFile(t, d, fmt.Sprintf("dir%d/file", i), fmt.Sprintf("layer%d", i))
		}
		wantNoFile(t, d, "dir2")
	}
	wantFile(t, dir, "common", "container")
	wantFile(t, view(ctx, t, s, "top-again", "layer5"), "common", "5")
	wantFile(t, view(ctx, t, s, "middle", "layer3"), "dir2/file", "layer2")
}

// testChainOf150 stacks 150 layers, more than the one page of mount
// options holds as absolute lowerdir paths under any realistic root.
func testChainOf150(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	const depth = 150
	parent := ""
	for i := 0; i < depth; i++ {
		name := fmt.Sprintf("layer-%03d", i)
		layer(ctx, t, s, name, parent, func(dir string) {
			switch i {
			case 0:
				writeFile(t, dir, "bottom", "bottom")
				writeFile(t, dir, "shadowed", "bottom")
			case depth - 1:
				writeFile(t, dir, "top", "top")
				writeFile(t, dir, "shadowed", "top")
			}
			// Every tenth layer leaves a mark: enough to see the stack
			// in order, few enough files that copying drivers stay cheap.
			if i%10 == 0 {
				writeFile(t, dir, fmt.Sprintf("layers/%03d", i), "")
			}
		})
		parent = name
	}
	mounts, err := s.Prepare(ctx, "container", parent)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := mount(t, mounts)
	writeFile(t, dir, "written", "by the container")
	for _, d := range []string{dir, view(ctx, t, s, "deep-view", parent)} {
		wantFile(t, d, "bottom", "bottom")
		wantFile(t, d, "top", "top")
		wantFile(t, d, "shadowed", "top")
		if entries, err := os.ReadDir(filepath.Join(d, "layers")); err != nil || len(entries) != depth/10 {
			t.Errorf("layers/ holds %d entries (%v), want %d", len(entries), err, depth/10)
		}
	}
	wantFile(t, dir, "written", "by the container")
}

func testConcurrentPrepare(ctx context.Context, t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	layer(ctx, t, s, "base", "", func(dir string) { writeFile(t, dir, "f", "base") })
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	mounts := make([][]snapshot.Mount, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half of them race for the same key: exactly one may win.
			key := fmt.Sprintf("c%d", i)
			if i%2 == 1 {
				key = "contested"
			}
			mounts[i], errs[i] = s.Prepare(ctx, key, "base")
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil && i%2 == 1:
			won++
		case err != nil && (i%2 == 0 || !errors.Is(err, errdefs.ErrAlreadyExists)):
			t.Errorf("prepare %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d prepares of one key succeeded, want 1", won)
	}
	for i := 0; i < n; i += 2 {
		dir, _ := mount(t, mounts[i])
		wantFile(t, dir, "f", "base")
		writeFile(t, dir, "mine", fmt.Sprint(i))
	}
	for i := 0; i < n; i += 2 {
		dir, _ := mount(t, mounts[i])
		wantFile(t, dir, "mine", fmt.Sprint(i))
	}
}

func testReopen(ctx context.Context, t *testing.T, s snapshot.Snapshotter, reopen func() snapshot.Snapshotter) {
	layer(ctx, t, s, "base", "", func(dir string) { writeFile(t, dir, "f", "base") })
	mounts, err := s.Prepare(ctx, "act", "base", snapshot.WithLabels(map[string]string{"owner": "test"}))
	if err != nil {
		t.Fatal(err)
	}
	dir, unmount := mount(t, mounts)
	writeFile(t, dir, "uncommitted", "kept")
	unmount()
	if _, err := s.View(ctx, "v", "base"); err != nil {
		t.Fatal(err)
	}
	var before []snapshot.Info
	if err := s.Walk(ctx, func(_ context.Context, i snapshot.Info) error { before = append(before, i); return nil }); err != nil {
		t.Fatal(err)
	}

	s = reopen()
	for _, want := range before {
		got, err := s.Stat(ctx, want.Name)
		if err != nil {
			t.Fatalf("stat %s after reopen: %v", want.Name, err)
		}
		if !got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) {
			t.Errorf("%s: times changed across reopen: %+v, was %+v", want.Name, got, want)
		}
		got.Created, got.Updated = want.Created, want.Updated
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stat %s after reopen = %+v, want %+v", want.Name, got, want)
		}
	}
	mounts, err = s.Mounts(ctx, "act")
	if err != nil {
		t.Fatal(err)
	}
	dir, unmount = mount(t, mounts)
	wantFile(t, dir, "uncommitted", "kept")
	wantFile(t, dir, "f", "base")
	unmount()
	mounts, err = s.Mounts(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ = mount(t, mounts)
	wantFile(t, dir, "f", "base")

	// New snapshots after reopening do not clobber the old ones.
	layer(ctx, t, s, "after", "base", func(dir string) { writeFile(t, dir, "f", "after") })
	if err := s.Commit(ctx, "act-committed", "act"); err != nil {
		t.Fatal(err)
	}
	wantFile(t, view(ctx, t, s, "v-after", "after"), "f", "after")
	d := view(ctx, t, s, "v-act", "act-committed")
	wantFile(t, d, "uncommitted", "kept")
	wantFile(t, d, "f", "base")
}

// Benchmark measures what starting a container costs the snapshotter:
// Prepare on top of a 10-layer image, mount, unmount. Removing the
// snapshot is not timed.
func Benchmark(b *testing.B, s snapshot.Snapshotter) {
	ctx := context.Background()
	parent := ""
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("bench-layer%d", i)
		layer(ctx, b, s, name, parent, func(dir string) {
			writeFile(b, dir, fmt.Sprintf("layer%d/file", i), strings.Repeat("x", 1024))
		})
		parent = name
	}
	target := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := fmt.Sprintf("bench-container%d", i)
		mounts, err := s.Prepare(ctx, key, parent)
		if err != nil {
			b.Fatal(err)
		}
		if err := snapshot.MountAll(mounts, target); err != nil {
			b.Fatal(err)
		}
		if err := snapshot.UnmountAll(target); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Remove(ctx, key); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
