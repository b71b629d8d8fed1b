package registry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestFetchAll(t *testing.T) {
	descs := make([]ocispec.Descriptor, 10)
	for i := range descs {
		descs[i] = ocispec.Descriptor{Size: int64(i)}
	}
	var running, peak atomic.Int32
	var mu sync.Mutex
	seen := map[int64]bool{}
	release := make(chan struct{})
	arrived := make(chan struct{}, len(descs))
	done := make(chan error)
	go func() {
		done <- FetchAll(context.Background(), descs, 3, func(ctx context.Context, d ocispec.Descriptor) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			arrived <- struct{}{}
			<-release
			running.Add(-1)
			mu.Lock()
			seen[d.Size] = true
			mu.Unlock()
			return nil
		})
	}()
	for range 3 {
		<-arrived
	}
	if n := running.Load(); n != 3 {
		t.Fatalf("%d calls running, want 3", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 3 || len(seen) != len(descs) {
		t.Fatalf("peak %d (want 3), %d of %d done", peak.Load(), len(seen), len(descs))
	}
}

func TestFetchAllStopsAtFirstError(t *testing.T) {
	descs := make([]ocispec.Descriptor, 20)
	for i := range descs {
		descs[i] = ocispec.Descriptor{Size: int64(i)}
	}
	boom := errors.New("boom")
	var calls, cancelled atomic.Int32
	err := FetchAll(context.Background(), descs, 2, func(ctx context.Context, d ocispec.Descriptor) error {
		calls.Add(1)
		if d.Size == 1 {
			return boom
		}
		if d.Size == 0 {
			<-ctx.Done() // the other call sees the cancellation
			cancelled.Add(1)
			return ctx.Err()
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("FetchAll: %v, want the first error", err)
	}
	if cancelled.Load() != 1 || calls.Load() != 2 {
		t.Fatalf("%d calls, %d cancelled; want 2 and 1 (nothing started after the error)", calls.Load(), cancelled.Load())
	}
}
