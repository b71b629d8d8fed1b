package format

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	const def = "table {{.A}}\t{{.B}}"
	for _, tc := range []struct {
		value string
		want  Format
	}{
		{"", Format{Table: true, Template: "{{.A}}\t{{.B}}"}},
		{"table", Format{Table: true, Template: "{{.A}}\t{{.B}}"}},
		{"table {{.B}}", Format{Table: true, Template: "{{.B}}"}},
		{"json", Format{Template: "{{json .}}"}},
		{"{{.A}}", Format{Template: "{{.A}}"}},
	} {
		if got := Parse(tc.value, def); got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.value, got, tc.want)
		}
	}
}

func TestWrite(t *testing.T) {
	type row struct{ Name, Size string }
	headers := map[string]string{"Name": "NAME", "Size": "SIZE"}
	rows := []Row{row{"busybox", "4.26MB"}, row{"localhost:5000/team/app", "120B"}}
	for _, tc := range []struct {
		name string
		f    Format
		want string
	}{
		{"table", Format{Table: true, Template: `{{.Name}}\t{{.Size}}`},
			"NAME                      SIZE\nbusybox                   4.26MB\nlocalhost:5000/team/app   120B\n"},
		{"narrow columns pad to ten", Format{Table: true, Template: `{{.Size}}\t{{.Size}}`},
			"SIZE      SIZE\n4.26MB    4.26MB\n120B      120B\n"},
		{"raw template", Format{Template: `{{.Name}}:{{.Size}}`},
			"busybox:4.26MB\nlocalhost:5000/team/app:120B\n"},
		{"json escapes like docker", Format{Template: `{{json .}}`},
			"{\"Name\":\"busybox\",\"Size\":\"4.26MB\"}\n{\"Name\":\"localhost:5000/team/app\",\"Size\":\"120B\"}\n"},
		{"functions", Format{Template: `{{upper .Name | printf "%.3s"}} {{join (split .Name "/") "|"}}`},
			"BUS busybox\nLOC localhost:5000|team|app\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tc.f, headers, rows); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
}

func TestWriteTemplateErrors(t *testing.T) {
	var b bytes.Buffer
	err := Write(&b, Format{Template: "{{"}, nil, nil)
	if !errors.Is(err, ErrTemplate) {
		t.Errorf("unclosed action: got %v, want ErrTemplate", err)
	}
	err = Write(&b, Format{Template: "{{.Missing}}"}, nil, []Row{struct{ A string }{"x"}})
	if !errors.Is(err, ErrTemplate) {
		t.Errorf("unknown field: got %v, want ErrTemplate", err)
	}
}

func TestHumanValues(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ got, want string }{
		{Size(4261234), "4.26MB"},
		{Size(0), "0B"},
		{Size(1500), "1.5kB"},
		{Since(now.Add(-15*24*time.Hour), now), "2 weeks ago"},
		{Since(now.Add(-3*time.Hour), now), "3 hours ago"},
		{Since(now.Add(-30*time.Second), now), "30 seconds ago"},
		{TruncateID("sha256:6d3e4188a38af91b0c1577b9e88c5336"), "6d3e4188a38a"},
		{TruncateID("6d3e4188a38af91b"), "6d3e4188a38a"},
		{TruncateID("abc"), "abc"},
		{Ellipsis("abcdef", 4), "abc…"},
		{Ellipsis("abcd", 4), "abcd"},
		{Ellipsis("äöüäöü", 3), "äö…"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
