package registry

import (
	"context"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultParallel is how many blobs FetchAll handles at once by default,
// as dockerd's max-concurrent-downloads.
const DefaultParallel = 3

// FetchAll calls fn for every descriptor, at most parallel at a time (0 or
// less means DefaultParallel), and returns the first error. After an error
// the context given to the other calls is cancelled and no new call starts.
// It returns when every call started has returned.
func FetchAll(ctx context.Context, descs []ocispec.Descriptor, parallel int, fn func(context.Context, ocispec.Descriptor) error) error {
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		slots = make(chan struct{}, parallel)
	)
	fail := func(err error) {
		once.Do(func() {
			first = err
			cancel()
		})
	}
	started := 0
	for _, d := range descs {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := fn(ctx, d); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if first == nil && started < len(descs) {
		// The caller's context ended before every call was started.
		return context.Cause(ctx)
	}
	return first
}
