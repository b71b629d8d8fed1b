package docker

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

// filters is the decoded "filters" query parameter: a JSON object from
// filter name to values. Clients send either {"dangling":{"true":true}}
// (current) or {"dangling":["true"]} (API < 1.22 and some SDKs); both
// decode to the same map.
type filters map[string][]string

// parseFilters decodes the "filters" parameter and checks every key is in
// allowed. An empty parameter is no filter.
func parseFilters(raw string, allowed ...string) (filters, error) {
	f := filters{}
	if raw == "" {
		return f, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return nil, newError(errdefs.ErrInvalidArgument, "invalid filters %q: %w", raw, err)
	}
	for key, v := range doc {
		if !slices.Contains(allowed, key) {
			return nil, newError(errdefs.ErrInvalidArgument, "invalid filter '%s'", key)
		}
		var set map[string]bool
		if err := json.Unmarshal(v, &set); err == nil {
			for value, on := range set {
				if on {
					f[key] = append(f[key], value)
				}
			}
			slices.Sort(f[key])
			continue
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, newError(errdefs.ErrInvalidArgument, "invalid filter '%s': values must be a list or a set of strings", key)
		}
		f[key] = list
	}
	return f, nil
}

// boolValue reads a filter that takes one boolean ("dangling").
func (f filters) boolValue(key string) (*bool, error) {
	vs := f[key]
	if len(vs) == 0 {
		return nil, nil
	}
	if len(vs) > 1 {
		return nil, newError(errdefs.ErrInvalidArgument, "invalid filter '%s': more than one value", key)
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return nil, newError(errdefs.ErrInvalidArgument, "invalid filter '%s=%s'", key, vs[0])
	}
	return &b, nil
}

// timeValue reads a filter that takes one timestamp ("until"), in any form
// parseTimestamp accepts.
func (f filters) timeValue(key string, now time.Time) (time.Time, error) {
	vs := f[key]
	if len(vs) == 0 {
		return time.Time{}, nil
	}
	if len(vs) > 1 {
		return time.Time{}, newError(errdefs.ErrInvalidArgument, "invalid filter '%s': more than one value", key)
	}
	return parseTimestamp(vs[0], now)
}

var imageListFilters = []string{"dangling", "reference", "label", "before", "since", "until"}
var imagePruneFilters = []string{"dangling", "label", "label!", "until"}

// imageFilters turns the filters of /images/json and /images/prune into
// the engine's typed form.
func imageFilters(raw string, now time.Time, allowed []string) (backend.ImageFilters, error) {
	f, err := parseFilters(raw, allowed...)
	if err != nil {
		return backend.ImageFilters{}, err
	}
	dangling, err := f.boolValue("dangling")
	if err != nil {
		return backend.ImageFilters{}, err
	}
	until, err := f.timeValue("until", now)
	if err != nil {
		return backend.ImageFilters{}, err
	}
	return backend.ImageFilters{
		Dangling:  dangling,
		Reference: f["reference"],
		Label:     f["label"],
		LabelNot:  f["label!"],
		Before:    f["before"],
		Since:     f["since"],
		Until:     until,
	}, nil
}

// parseTimestamp reads the time forms Docker accepts in since/until
// parameters and filters: Unix seconds with an optional fraction
// ("1700000000.123456789"), RFC 3339 dates and times, and durations before
// now ("10m", "2h30m").
func parseTimestamp(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(s, "."); ok || sec != "" {
		if n, err := strconv.ParseInt(sec, 10, 64); err == nil {
			var nanos int64
			if ok {
				frac = (frac + "000000000")[:9]
				nanos, err = strconv.ParseInt(frac, 10, 64)
				if err != nil {
					return time.Time{}, newError(errdefs.ErrInvalidArgument, "invalid timestamp %q", s)
				}
			}
			return time.Unix(n, nanos), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, newError(errdefs.ErrInvalidArgument, "invalid timestamp %q", s)
}
