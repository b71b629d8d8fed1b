package jsonfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"berth.dev/internal/errdefs"
)

// writeNumbered writes lines from..to-1 as "line N\n", line N at t0+N s.
func writeNumbered(t testing.TB, w *Writer, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := w.WriteLog("stdout", []byte(fmt.Sprintf("line %d\n", i)), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

// numbers returns the N of each "line N\n" entry.
func numbers(t *testing.T, entries []Entry) []int {
	t.Helper()
	var ns []int
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(string(e.Line), "line "), "\n"))
		if err != nil {
			t.Fatalf("entry %q: %v", e.Line, err)
		}
		ns = append(ns, n)
	}
	return ns
}

func seq(from, to int) []int {
	var ns []int
	for i := from; i < to; i++ {
		ns = append(ns, i)
	}
	return ns
}

func equalInts(a, b []int) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// entrySize is the size of one "line N\n" entry for N of 2 digits.
var entrySize = len(appendEntry(nil, "stdout", []byte("line 10\n"), t0.Add(10*time.Second)))

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	w, err := NewWriter(path, Options{MaxSize: int64(4 * entrySize), MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	writeNumbered(t, w, 10, 40)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		fi, _ := e.Info()
		if fi.Size() > int64(4*entrySize) {
			t.Errorf("%s has %d bytes, more than MaxSize %d", e.Name(), fi.Size(), 4*entrySize)
		}
	}
	if strings.Join(names, " ") != "c-json.log c-json.log.1 c-json.log.2" {
		t.Fatalf("files %v, want the live file and 2 rotated", names)
	}
	// 30 lines, 4 a file (10-13, ..., 34-37, 38-39): 3 files keep 30..39.
	if got := numbers(t, readAll(t, path, ReadOptions{Tail: -1})); !equalInts(got, seq(30, 40)) {
		t.Fatalf("lines %v, want 30..39", got)
	}
}

func TestRotationOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path, Options{MaxSize: int64(4 * entrySize), MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	writeNumbered(t, w, 10, 19)
	w.Close()
	if got := numbers(t, readAll(t, path, ReadOptions{Tail: -1})); !equalInts(got, seq(18, 19)) {
		t.Fatalf("lines %v, want 18", got)
	}
	if _, err := os.Stat(path + ".1"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a rotated file exists with MaxFiles 1: %v", err)
	}
}

func TestEntryLargerThanMaxSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path, Options{MaxSize: 10, MaxFiles: 5})
	if err != nil {
		t.Fatal(err)
	}
	writeNumbered(t, w, 10, 14)
	w.Close()
	if got := numbers(t, readAll(t, path, ReadOptions{Tail: -1})); !equalInts(got, seq(10, 14)) {
		t.Fatalf("lines %v, want 10..13 (one a file)", got)
	}
}

func TestReadSelection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path, Options{MaxSize: int64(5 * entrySize), MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	writeNumbered(t, w, 10, 60)
	w.Close()
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	cases := []struct {
		name string
		opts ReadOptions
		want []int
	}{
		{"all", ReadOptions{Tail: -1}, seq(10, 60)},
		{"tail none", ReadOptions{Tail: 0}, nil},
		{"tail within live file", ReadOptions{Tail: 3}, seq(57, 60)},
		{"tail across files", ReadOptions{Tail: 23}, seq(37, 60)},
		{"tail more than all", ReadOptions{Tail: 1000}, seq(10, 60)},
		{"since inclusive", ReadOptions{Tail: -1, Since: at(42)}, seq(42, 60)},
		{"until inclusive", ReadOptions{Tail: -1, Until: at(21)}, seq(10, 22)},
		{"since and until", ReadOptions{Tail: -1, Since: at(30), Until: at(35)}, seq(30, 36)},
		{"tail then since", ReadOptions{Tail: 10, Since: at(45)}, seq(50, 60)},
		{"tail then since within", ReadOptions{Tail: 10, Since: at(55)}, seq(55, 60)},
		{"since after all", ReadOptions{Tail: -1, Since: at(100)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := numbers(t, readAll(t, path, tc.opts))
			if !equalInts(got, tc.want) {
				t.Fatalf("lines %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadTimes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, _ := NewWriter(path, Options{})
	w.WriteLog("stderr", []byte("x\n"), t0)
	w.Close()
	got := readAll(t, path, ReadOptions{Tail: -1})
	if len(got) != 1 || !got[0].Time.Equal(t0) || got[0].Stream != "stderr" {
		t.Fatalf("entries %+v, want one stderr entry at %v", got, t0)
	}
}

func TestReadCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	good := func(n int) string {
		return string(appendEntry(nil, "stdout", []byte(fmt.Sprintf("line %d\n", n)), t0))
	}
	content := good(1) + "garbage\n" + `{"log":"no stream"}` + "\n" + good(2) + `{"log":"cut` + "\n" + good(3)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []Entry
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(e Entry) error {
		got = append(got, e)
		return nil
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "3 lines skipped") {
		t.Fatalf("Read: %v, want ErrCorrupt for 3 lines", err)
	}
	if ns := numbers(t, got); !equalInts(ns, []int{1, 2, 3}) {
		t.Fatalf("lines %v, want 1 2 3", ns)
	}
}

func TestReadIncompleteLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	whole := string(appendEntry(nil, "stdout", []byte("line 1\n"), t0))
	next := string(appendEntry(nil, "stdout", []byte("line 2\n"), t0))
	if err := os.WriteFile(path, []byte(whole+next[:20]), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not yet complete: not returned, and not corrupt.
	if ns := numbers(t, readAll(t, path, ReadOptions{Tail: -1})); !equalInts(ns, []int{1}) {
		t.Fatalf("lines %v, want 1", ns)
	}
	// A follower returns it once the writer completes it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan int, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- Read(ctx, path, ReadOptions{Tail: -1, Follow: true}, func(e Entry) error {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(e.Line), "line ")))
			seen <- n
			return nil
		})
	}()
	if n := <-seen; n != 1 {
		t.Fatalf("first line %d, want 1", n)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(next[20:])
	f.Close()
	if n := <-seen; n != 2 {
		t.Fatalf("second line %d, want 2", n)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel: %v, want context.Canceled", err)
	}
}

func TestReadNotFound(t *testing.T) {
	err := Read(context.Background(), filepath.Join(t.TempDir(), "log"), ReadOptions{Tail: -1}, func(Entry) error { return nil })
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Read: %v, want ErrNotFound", err)
	}
}

func TestReadCallbackError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, _ := NewWriter(path, Options{})
	writeNumbered(t, w, 10, 20)
	w.Close()
	stop := errors.New("stop")
	n := 0
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(Entry) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("Read: %v after %d entries, want the callback's error after 3", err, n)
	}
}

func TestReadDockerWrittenLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	// As dockerd writes them with --log-opt labels=...: attrs are ignored.
	content := `{"log":"\u003cb\u003e hi\n","stream":"stderr","attrs":{"app":"web"},"time":"2026-11-26T22:00:00.5Z"}` + "\n" +
		`{"log":"partial","stream":"stdout","time":"2026-11-26T23:00:00.000000001+01:00"}` + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, path, ReadOptions{Tail: -1})
	want := []Entry{
		{"stderr", []byte("<b> hi\n"), t0.Add(-123456789 + 500000000)},
		{"stdout", []byte("partial"), t0.Add(-123456789 + 1)},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Stream != want[i].Stream || string(got[i].Line) != string(want[i].Line) || !got[i].Time.Equal(want[i].Time) {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
