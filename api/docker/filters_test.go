package docker

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"berth.dev/internal/errdefs"
)

func TestParseFilters(t *testing.T) {
	tests := []struct {
		raw  string
		want filters
		bad  bool
	}{
		{``, filters{}, false},
		{`{"dangling":{"true":true}}`, filters{"dangling": {"true"}}, false},
		{`{"dangling":["true"]}`, filters{"dangling": {"true"}}, false},
		{`{"label":{"b":true,"a":true,"c":false}}`, filters{"label": {"a", "b"}}, false},
		{`{"reference":["x","y"],"before":["z"]}`, filters{"reference": {"x", "y"}, "before": {"z"}}, false},
		{`{"nope":["x"]}`, nil, true},
		{`{"label":"x"}`, nil, true},
		{`[1,2]`, nil, true},
		{`{`, nil, true},
	}
	for _, tt := range tests {
		got, err := parseFilters(tt.raw, imageListFilters...)
		if tt.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: error %v, want invalid argument", tt.raw, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.raw, got, err, tt.want)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"1700000000", time.Unix(1700000000, 0), false},
		{"1700000000.5", time.Unix(1700000000, 500000000), false},
		{"1700000000.000000001", time.Unix(1700000000, 1), false},
		{"10m", now.Add(-10 * time.Minute), false},
		{"2h30m", now.Add(-150 * time.Minute), false},
		{"2025-05-01", time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), false},
		{"2025-05-01T10:00:00Z", time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC), false},
		{"2025-05-01T10:00:00.5+02:00", time.Date(2025, 5, 1, 8, 0, 0, 5e8, time.UTC), false},
		{"yesterday", time.Time{}, true},
		{"12.ab", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseTimestamp(tt.in, now)
		if tt.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: %v %v, want invalid argument", tt.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestProgressBar checks the bar against lines dockerd 20.10 wrote for a
// pull and a push of the same 1 MB layer.
func TestProgressBar(t *testing.T) {
	tests := []struct {
		current, total int64
		want           string
	}{
		{0, 0, ""},
		{36445, 1064365, "[=>                                                 ]  36.45kB/1.064MB"},
		{32768, 1064365, "[=>                                                 ]  32.77kB/1.064MB"},
		{34304, 1982256, "[>                                                  ]   34.3kB/1.982MB"},
		{1064365, 1064365, "[==================================================>]  1.064MB/1.064MB"},
		{1986560, 1982256, "[==================================================>]  1.987MB"},
		{2048, 0, " 2.048kB"},
	}
	for _, tt := range tests {
		if got := progressBar(tt.current, tt.total); got != tt.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tt.current, tt.total, got, tt.want)
		}
	}
}
