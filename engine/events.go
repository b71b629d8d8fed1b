package engine

import (
	"context"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Events is the engine's event bus: every change the engine makes (an
// image pulled, tagged, deleted; later containers and networks) is
// published here, kept in a bounded history for `events --since`, and
// sent to every live subscriber. A subscriber that does not keep up
// loses events rather than stalling the engine.
type Events struct {
	mu      sync.Mutex
	history []events.Message
	max     int
	subs    map[chan events.Message]struct{}
	now     func() time.Time
}

// NewEvents returns a bus that remembers the last max events.
func NewEvents(max int) *Events {
	return &Events{max: max, subs: map[chan events.Message]struct{}{}, now: time.Now}
}

// Publish records an event of type typ about the object id.
func (e *Events) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	t := e.now()
	m := events.Message{
		Type:     typ,
		Action:   action,
		Actor:    events.Actor{ID: id, Attributes: attrs},
		Scope:    "local",
		Time:     t.Unix(),
		TimeNano: t.UnixNano(),
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.history = append(e.history, m)
	if len(e.history) > e.max {
		e.history = append(e.history[:0:0], e.history[len(e.history)-e.max:]...)
	}
	for ch := range e.subs {
		select {
		case ch <- m:
		default: // too slow: drop rather than block the engine
		}
	}
}

// Subscribe returns the recorded events at or after since (all of them
// when since is zero and replay is set) and a channel of the events that
// follow, until ctx ends. The channel is closed then.
func (e *Events) Subscribe(ctx context.Context, since time.Time, replay bool) ([]events.Message, <-chan events.Message) {
	ch := make(chan events.Message, 256)
	e.mu.Lock()
	var past []events.Message
	if replay {
		for _, m := range e.history {
			if m.TimeNano >= since.UnixNano() {
				past = append(past, m)
			}
		}
	}
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		delete(e.subs, ch)
		close(ch)
		e.mu.Unlock()
	}()
	return past, ch
}
