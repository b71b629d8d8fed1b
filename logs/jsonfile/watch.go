package jsonfile

import (
	"context"
	"time"
)

// pollInterval is how long a follower waits before looking at the log again
// when no change notification arrives (there are none without inotify).
const pollInterval = 250 * time.Millisecond

// watcher tells a follower when the log's directory may have changed.
type watcher interface {
	// Wait returns when the log may have changed, after at most
	// pollInterval, or when ctx ends (with its error), or when done is
	// closed (with true).
	Wait(ctx context.Context, done <-chan struct{}) (bool, error)
	Close() error
}

// poller is the watcher that only waits pollInterval.
type poller struct{}

func (poller) Wait(ctx context.Context, done <-chan struct{}) (bool, error) {
	t := time.NewTimer(pollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-done:
		return true, nil
	case <-t.C:
		return false, nil
	}
}

func (poller) Close() error { return nil }
