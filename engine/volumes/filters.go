package volumes

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

// Filter keys each operation accepts.
var (
	listFilterKeys  = []string{"dangling", "driver", "label", "label!", "name"}
	pruneFilterKeys = []string{"all", "label", "label!"}
)

// selector is a parsed backend.VolumeFilters. Values of one key are
// alternatives, except labels: every label= must match and a volume is
// left out only when every label!= matches, as in dockerd.
type selector struct {
	dangling  *bool // nil: any
	all       bool  // prune: named volumes too
	drivers   []string
	names     []*regexp.Regexp
	labels    []string
	notLabels []string
}

// parseSelector checks f against the allowed keys and parses its values.
func parseSelector(f backend.VolumeFilters, allowed []string) (selector, error) {
	var s selector
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if !slices.Contains(allowed, k) {
			return s, fmt.Errorf("%w: invalid filter '%s'", errdefs.ErrInvalidArgument, k)
		}
	}
	var err error
	if s.dangling, err = boolFilter(f, "dangling"); err != nil {
		return s, err
	}
	if s.all, err = allFilter(f); err != nil {
		return s, err
	}
	s.drivers = f["driver"]
	for _, n := range f["name"] {
		re, err := regexp.Compile(n)
		if err != nil {
			// dockerd skips a value that is no regular expression; a
			// plain substring is what the user meant.
			re = regexp.MustCompile(regexp.QuoteMeta(n))
		}
		s.names = append(s.names, re)
	}
	s.labels, s.notLabels = f["label"], f["label!"]
	return s, nil
}

// boolFilter reads a filter that takes one boolean (true/1, false/0, in
// any case); nil when absent.
func boolFilter(f backend.VolumeFilters, key string) (*bool, error) {
	vals, ok := f[key]
	if !ok {
		return nil, nil
	}
	if len(vals) != 1 {
		return nil, fmt.Errorf("%w: invalid filter '%s=%v'", errdefs.ErrInvalidArgument, key, vals)
	}
	var b bool
	switch strings.ToLower(vals[0]) {
	case "true", "1":
		b = true
	case "false", "0":
	default:
		return nil, fmt.Errorf("%w: invalid filter '%s=%v'", errdefs.ErrInvalidArgument, key, vals)
	}
	return &b, nil
}

// allFilter reads prune's all filter, which dockerd parses as Go does
// (1, t, TRUE, false, ...).
func allFilter(f backend.VolumeFilters) (bool, error) {
	vals := f["all"]
	switch len(vals) {
	case 0:
		return false, nil
	case 1:
	default:
		return false, fmt.Errorf("%w: invalid filter 'all=%v': only one value is expected", errdefs.ErrInvalidArgument, vals)
	}
	all, err := strconv.ParseBool(vals[0])
	if err != nil {
		return false, fmt.Errorf("%w: invalid filter 'all': %w", errdefs.ErrInvalidArgument, err)
	}
	return all, nil
}

// match reports whether r passes every filter but all.
func (s selector) match(r *record) bool {
	if s.dangling != nil && *s.dangling != (len(r.Users) == 0) {
		return false
	}
	if len(s.drivers) > 0 && !slices.Contains(s.drivers, r.Driver) {
		return false
	}
	if len(s.names) > 0 && !slices.ContainsFunc(s.names, func(re *regexp.Regexp) bool { return re.MatchString(r.Name) }) {
		return false
	}
	for _, l := range s.labels {
		if !hasLabel(r.Labels, l) {
			return false
		}
	}
	if len(s.notLabels) > 0 && !slices.ContainsFunc(s.notLabels, func(l string) bool { return !hasLabel(r.Labels, l) }) {
		return false
	}
	return true
}

// hasLabel matches one label filter: "key" wants the key, "key=value" the
// key with that value.
func hasLabel(labels map[string]string, filter string) bool {
	k, v, withValue := strings.Cut(filter, "=")
	got, ok := labels[k]
	return ok && (!withValue || got == v)
}
