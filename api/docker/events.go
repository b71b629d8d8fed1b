package docker

import (
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
)

var eventFilterKeys = []string{"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret", "service", "type", "volume"}

// eventMessage is an event as API versions before 1.52 send it: the
// message plus the deprecated status/id/from fields that old clients read,
// filled for container and image events.
type eventMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

func legacyEvent(m events.Message) eventMessage {
	e := eventMessage{Message: m}
	switch m.Type {
	case events.ContainerEventType:
		e.Status, e.ID, e.From = string(m.Action), m.Actor.ID, m.Actor.Attributes["image"]
	case events.ImageEventType:
		e.Status, e.ID = string(m.Action), m.Actor.ID
	}
	return e
}

// getEvents streams events as JSON lines (docker events): first the
// recorded ones since "since", then live ones, until "until" passes, the
// client leaves or the server stops. Headers go out at once because the
// docker CLI waits for them before it prints anything.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	now := s.now()
	var since, until time.Time
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = parseTimestamp(v, now); err != nil {
			return err
		}
	}
	if v := q.Get("until"); v != "" {
		if until, err = parseTimestamp(v, now); err != nil {
			return err
		}
	}
	f, err := parseFilters(q.Get("filters"), eventFilterKeys...)
	if err != nil {
		return err
	}

	ctx := r.Context()
	recorded, live, err := s.b.System.SubscribeEvents(ctx, since)
	if err != nil {
		return err
	}
	stream := newJSONStream(w)
	stream.start()

	past := func(m events.Message) bool { return !until.IsZero() && eventTime(m).After(until) }
	for _, m := range recorded {
		if past(m) {
			return nil
		}
		if f.includeEvent(m) && stream.send(legacyEvent(m)) != nil {
			return nil
		}
	}
	if !until.IsZero() && !until.After(s.now()) {
		return nil
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(until.Sub(s.now()))
		defer t.Stop()
		deadline = t.C
	}
	stopping := serverStopping(ctx)
	for {
		select {
		case m, ok := <-live:
			if !ok || past(m) {
				return nil
			}
			if f.includeEvent(m) && stream.send(legacyEvent(m)) != nil {
				return nil
			}
		case <-deadline:
			return nil
		case <-stopping:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func eventTime(m events.Message) time.Time {
	if m.TimeNano != 0 {
		return time.Unix(0, m.TimeNano)
	}
	return time.Unix(m.Time, 0)
}

// includeEvent applies the events filters as dockerd does: every filter
// given must match, and a filter matches when any of its values does.
func (f filters) includeEvent(m events.Message) bool {
	name := m.Actor.Attributes["name"]
	return f.anyOf("type", func(v string) bool { return v == string(m.Type) }) &&
		f.anyOf("event", func(v string) bool { return matchAction(v, string(m.Action)) }) &&
		f.anyOf("scope", func(v string) bool { return v == m.Scope }) &&
		f.anyOf("daemon", func(v string) bool { return v == m.Actor.ID || v == name }) &&
		f.actorMatch("container", m) && f.actorMatch("plugin", m) &&
		f.actorMatch("volume", m) && f.actorMatch("network", m) &&
		f.actorMatch("node", m) && f.actorMatch("service", m) &&
		f.actorMatch("secret", m) && f.actorMatch("config", m) &&
		f.anyOf("image", func(v string) bool { return matchEventImage(v, m) }) &&
		f.allLabels(m.Actor.Attributes)
}

// anyOf is true when key is not filtered or one of its values matches.
func (f filters) anyOf(key string, match func(string) bool) bool {
	vs, ok := f[key]
	if !ok || len(vs) == 0 {
		return true
	}
	for _, v := range vs {
		if match(v) {
			return true
		}
	}
	return false
}

// actorMatch matches the event's actor by ID, ID prefix or name.
func (f filters) actorMatch(key string, m events.Message) bool {
	return f.anyOf(key, func(v string) bool {
		return strings.HasPrefix(m.Actor.ID, v) || v == m.Actor.Attributes["name"]
	})
}

// allLabels is true when every "label" value ("key" or "key=value") is in
// attrs.
func (f filters) allLabels(attrs map[string]string) bool {
	for _, l := range f["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := attrs[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// matchAction matches "health_status" against "health_status: healthy" as
// well as exact actions.
func matchAction(filter, action string) bool {
	if filter == action {
		return true
	}
	head, _, ok := strings.Cut(action, ":")
	return ok && head == filter
}

// matchEventImage matches an image filter against the event's actor ID or
// its image name (attribute "name" on image events, "image" on container
// events), with or without the tag.
func matchEventImage(filter string, m events.Message) bool {
	name := m.Actor.Attributes["image"]
	if m.Type == events.ImageEventType {
		name = m.Actor.Attributes["name"]
	}
	for _, c := range []string{m.Actor.ID, name, withoutTag(m.Actor.ID), withoutTag(name)} {
		if c != "" && c == filter {
			return true
		}
	}
	return false
}

// withoutTag drops a ":tag" after the last path component.
func withoutTag(ref string) string {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.HasPrefix(ref, "sha256:") || strings.Contains(ref[i:], "/") {
		return ref
	}
	return ref[:i]
}
