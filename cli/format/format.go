// Package format renders the berth CLI's listings the way the docker CLI
// does: a --format value selects a table with column headers (the
// default, or "table TEMPLATE"), one JSON object per line ("json"), or a
// raw Go template applied to each row; the helpers here turn sizes, times
// and IDs into the strings docker prints.
package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	units "github.com/docker/go-units"

	"berth.dev/internal/errdefs"
)

// Format is a parsed --format value.
type Format struct {
	// Table is true when rows are aligned in columns under a header.
	Table bool
	// Template is the Go template applied to each row.
	Template string
}

// Parse interprets a --format value. An empty value and "table" select
// defaultTable, a "table ..." template that prints headers; "json" prints
// each row as one JSON object; anything else is a raw template.
func Parse(value, defaultTable string) Format {
	switch {
	case value == "" || value == "table":
		return Format{Table: true, Template: strings.TrimPrefix(defaultTable, "table ")}
	case value == "json":
		return Format{Template: "{{json .}}"}
	case strings.HasPrefix(value, "table "):
		return Format{Table: true, Template: value[len("table "):]}
	default:
		return Format{Template: value}
	}
}

// ErrTemplate marks a --format value that does not parse or does not fit
// the rows. Its text is docker's prefix for such errors.
var ErrTemplate = errors.New("template parsing error")

// NewTemplate parses text with the functions docker's templates offer:
// json, join, split, title, lower, upper, pad, truncate and println.
func NewTemplate(text string) (*template.Template, error) {
	// Docker turns the two-character sequences \t and \n into the
	// characters so that shells need no quoting tricks.
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(text)
	tmpl, err := template.New("").Funcs(Funcs()).Parse(text)
	if err != nil {
		return nil, errors.Join(ErrTemplate, errdefs.ErrInvalidArgument, err)
	}
	return tmpl, nil
}

// Funcs returns the template functions docker's --format offers.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"join":  strings.Join,
		"split": strings.Split,
		"title": func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + s[1:]
		},
		"lower": strings.ToLower,
		"upper": strings.ToUpper,
		"pad": func(s string, before, after int) string {
			return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
		},
		"truncate": func(s string, n int) string {
			if r := []rune(s); len(r) > n {
				return string(r[:n])
			}
			return s
		},
		"println": func(args ...any) string { return fmt.Sprintln(args...) },
	}
}

// Row is one line of output. Fields are read by the template; for a
// table's header the template runs over Header instead.
type Row = any

// Write renders rows to out. headers maps each field name a template may
// use to its column title; a table prints the titles of the fields its
// template uses as the first line, then aligns all columns with three
// spaces of padding like docker's tables.
func Write(out io.Writer, f Format, headers map[string]string, rows []Row) error {
	tmpl, err := NewTemplate(f.Template)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if f.Table {
		if err := tmpl.Execute(&buf, headers); err != nil {
			// A template over fields that have no column (a
			// function of a row, say) prints no header.
			buf.Reset()
		} else {
			buf.WriteByte('\n')
		}
	}
	for _, row := range rows {
		if err := tmpl.Execute(&buf, row); err != nil {
			return errors.Join(ErrTemplate, errdefs.ErrInvalidArgument, err)
		}
		buf.WriteByte('\n')
	}
	if !f.Table {
		_, err := out.Write(buf.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	if _, err := tw.Write(buf.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

// Size prints a byte count like docker: "4.26MB", "1.5kB", "0B".
func Size(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// Since prints how long ago t was: "2 weeks ago", "About an hour ago".
func Since(t, now time.Time) string {
	return units.HumanDuration(now.UTC().Sub(t)) + " ago"
}

// TruncateID drops the algorithm prefix of a digest ("sha256:") and keeps
// the first 12 hex characters.
func TruncateID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Ellipsis shortens s to at most n runes, the last one an ellipsis.
func Ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}
