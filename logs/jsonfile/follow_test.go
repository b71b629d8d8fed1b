package jsonfile

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// follower runs a Follow Read in the background and checks that it sees
// lines first, first+1, ... each exactly once, in order.
type follower struct {
	next int           // the line expected next (read by the test after done)
	seen chan int      // each line as seen
	errc chan error    // Read's result
	done chan struct{} // closed to end the follow once the writer closed
}

func startFollower(ctx context.Context, t *testing.T, path string, opts ReadOptions, first int) *follower {
	t.Helper()
	f := &follower{next: first, seen: make(chan int, 100000), errc: make(chan error, 1), done: make(chan struct{})}
	opts.Follow = true
	opts.Done = f.done
	go func() {
		f.errc <- Read(ctx, path, opts, func(e Entry) error {
			s := strings.TrimSuffix(strings.TrimPrefix(string(e.Line), "line "), "\n")
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("entry %q: %w", e.Line, err)
			}
			if n != f.next {
				return fmt.Errorf("saw line %d, want %d", n, f.next)
			}
			f.next++
			f.seen <- n
			return nil
		})
	}()
	return f
}

// finish ends the follow gracefully and returns how many lines it saw.
func (f *follower) finish(t *testing.T) int {
	t.Helper()
	close(f.done)
	if err := <-f.errc; err != nil {
		t.Fatalf("follow: %v", err)
	}
	return f.next
}

func TestFollowThroughManyRotations(t *testing.T) {
	const lines = 10000
	path := filepath.Join(t.TempDir(), "c-json.log")
	// About 50 entries a file: 200 rotations. Enough files are kept that
	// none is dropped before the followers read it.
	w, err := NewWriter(path, Options{MaxSize: 4096, MaxFiles: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	early := startFollower(ctx, t, path, ReadOptions{Tail: -1}, 0)
	var late *follower
	for i := range lines {
		if i == lines/2 {
			// This one opens the log while it rotates.
			late = startFollower(ctx, t, path, ReadOptions{Tail: -1}, 0)
		}
		if err := w.WriteLog("stdout", fmt.Appendf(nil, "line %d\n", i), t0.Add(time.Duration(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*follower{"early": early, "late": late} {
		if n := f.finish(t); n != lines {
			t.Errorf("%s follower saw %d lines, want %d", name, n, lines)
		}
	}
}

// TestFollowLockstep lets the writer go on only after the follower saw the
// previous line, so the follower never lags behind a dropped file even with
// few files kept; every line makes a rotation.
func TestFollowLockstep(t *testing.T) {
	for _, maxFiles := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("max-file=%d", maxFiles), func(t *testing.T) {
			const lines = 300
			path := filepath.Join(t.TempDir(), "log")
			w, err := NewWriter(path, Options{MaxSize: 100, MaxFiles: maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := startFollower(ctx, t, path, ReadOptions{Tail: -1}, 0)
			for i := range lines {
				if err := w.WriteLog("stdout", fmt.Appendf(nil, "line %d\n", i), t0); err != nil {
					t.Fatal(err)
				}
				select {
				case n := <-f.seen:
					if n != i {
						t.Fatalf("follower saw %d, want %d", n, i)
					}
				case err := <-f.errc:
					t.Fatalf("follow ended: %v", err)
				}
			}
			w.Close()
			if n := f.finish(t); n != lines {
				t.Fatalf("follower saw %d lines, want %d", n, lines)
			}
		})
	}
}

func TestFollowTailThenNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path, Options{MaxSize: 300, MaxFiles: 10})
	if err != nil {
		t.Fatal(err)
	}
	writeNumbered(t, w, 0, 20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Tail counts from the end when Read opens the log, so no line is
	// written until the tail has been seen.
	f := startFollower(ctx, t, path, ReadOptions{Tail: 5}, 15)
	for i := 15; i < 20; i++ {
		if n := <-f.seen; n != i {
			t.Fatalf("saw line %d, want %d", n, i)
		}
	}
	writeNumbered(t, w, 20, 40)
	w.Close()
	if n := f.finish(t); n != 40 {
		t.Fatalf("follower stopped before line %d, want 40", n)
	}
}

func TestFollowUntilStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, _ := NewWriter(path, Options{})
	defer w.Close()
	writeNumbered(t, w, 0, 5)
	errc := make(chan error, 1)
	var got []Entry
	go func() {
		errc <- Read(context.Background(), path, ReadOptions{Tail: -1, Follow: true, Until: t0.Add(6 * time.Second)}, func(e Entry) error {
			got = append(got, e)
			return nil
		})
	}()
	writeNumbered(t, w, 5, 10)
	// Without Until the follow would go on for ever: this returns only
	// because line 7 is after Until.
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ns := numbers(t, got); !equalInts(ns, seq(0, 7)) {
		t.Fatalf("lines %v, want 0..6", ns)
	}
}

func TestFollowCancelLeavesNoGoroutine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, _ := NewWriter(path, Options{})
	writeNumbered(t, w, 0, 3)
	w.Close()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	// Cancelled from the callback's timer once the history is read, while
	// Read waits for more.
	err := Read(ctx, path, ReadOptions{Tail: -1, Follow: true}, func(Entry) error {
		n++
		if n == 3 {
			time.AfterFunc(50*time.Millisecond, cancel)
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Read: %v, want context.Canceled", err)
	}
	// The timer's goroutine may still be finishing: allow it to.
	for range 1000 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d goroutines after Read returned, %d before", runtime.NumGoroutine(), before)
}
