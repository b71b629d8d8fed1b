package engine

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestEventsHistoryAndSubscribe(t *testing.T) {
	e := NewEvents(3)
	clock := time.Unix(1000, 0)
	e.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	for _, id := range []string{"a", "b", "c", "d"} {
		e.Publish(events.ImageEventType, events.ActionPull, id, nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	past, ch := e.Subscribe(ctx, time.Unix(1003, 0), true)
	if len(past) != 2 || past[0].Actor.ID != "c" || past[1].Actor.ID != "d" {
		t.Fatalf("replay since 1003 = %+v, want c and d (a fell out of the history)", past)
	}
	e.Publish(events.ImageEventType, events.ActionTag, "e", map[string]string{"name": "x:1"})
	m := <-ch
	if m.Actor.ID != "e" || m.Action != events.ActionTag || m.Actor.Attributes["name"] != "x:1" || m.Scope != "local" {
		t.Fatalf("live event %+v", m)
	}
	cancel()
	for range ch {
	}
	// Publishing after the subscriber left neither blocks nor panics.
	e.Publish(events.ImageEventType, events.ActionDelete, "f", nil)
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	e := NewEvents(10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _ = e.Subscribe(ctx, time.Time{}, false)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			e.Publish(events.ImageEventType, events.ActionPull, "x", nil)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a subscriber that never reads")
	}
}
