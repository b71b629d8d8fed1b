package store

import (
	"fmt"
	"strings"

	"berth.dev/internal/errdefs"
	"berth.dev/snapshot"
)

// condition is one field==value, field!=value or bare field test.
type condition struct {
	field string // name, parent, kind or labels.<k>
	op    string // "==", "!=" or "" (non-empty)
	value string
}

func (c condition) holds(i snapshot.Info) bool {
	var v string
	switch c.field {
	case "name":
		v = i.Name
	case "parent":
		v = i.Parent
	case "kind":
		v = i.Kind.String()
	default:
		v = i.Labels[strings.TrimPrefix(c.field, "labels.")]
	}
	switch c.op {
	case "==":
		return v == c.value
	case "!=":
		return v != c.value
	}
	return v != ""
}

func parseCondition(s string) (condition, error) {
	var c condition
	c.field = s
	for _, op := range []string{"==", "!="} {
		if f, v, ok := strings.Cut(s, op); ok {
			c = condition{field: f, op: op, value: v}
			break
		}
	}
	c.field, c.value = strings.TrimSpace(c.field), strings.TrimSpace(c.value)
	switch {
	case c.field == "name", c.field == "parent":
	case c.field == "kind":
		if _, ok := snapshot.ParseKind(c.value); c.op != "" && !ok {
			return c, fmt.Errorf("filter %q: unknown kind %q: %w", s, c.value, errdefs.ErrInvalidArgument)
		}
	case strings.HasPrefix(c.field, "labels.") && len(c.field) > len("labels."):
	default:
		return c, fmt.Errorf("filter %q: unknown field %q: %w", s, c.field, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

// parseFilters returns a predicate that holds when any filter holds; a
// filter holds when all its comma-separated conditions do.
func parseFilters(filters []string) (func(snapshot.Info) bool, error) {
	var alts [][]condition
	for _, f := range filters {
		var all []condition
		for _, part := range strings.Split(f, ",") {
			c, err := parseCondition(part)
			if err != nil {
				return nil, err
			}
			all = append(all, c)
		}
		alts = append(alts, all)
	}
	return func(i snapshot.Info) bool {
		if len(alts) == 0 {
			return true
		}
		for _, all := range alts {
			ok := true
			for _, c := range all {
				ok = ok && c.holds(i)
			}
			if ok {
				return true
			}
		}
		return false
	}, nil
}
