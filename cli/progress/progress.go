// Package progress renders the JSON message stream that the Docker Engine
// API sends for pull, push, load and import: on a terminal, one line per
// layer ID that is rewritten in place as its progress changes; elsewhere,
// plain lines for status changes only. An error message in the stream ends
// the rendering with that error.
package progress

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	units "github.com/docker/go-units"
)

// Message is one entry of the stream. The daemon sends the error and the
// progress both as a structure and (for old clients) as a string.
type Message struct {
	Stream         string          `json:"stream,omitempty"`
	Status         string          `json:"status,omitempty"`
	ID             string          `json:"id,omitempty"`
	Progress       string          `json:"progress,omitempty"`
	ProgressDetail *Detail         `json:"progressDetail,omitempty"`
	Error          string          `json:"error,omitempty"`
	ErrorDetail    *ErrorDetail    `json:"errorDetail,omitempty"`
	Aux            json.RawMessage `json:"aux,omitempty"`
}

// Detail is the progress of one item: Current of Total units (bytes
// unless Units says otherwise).
type Detail struct {
	Current    int64  `json:"current,omitempty"`
	Total      int64  `json:"total,omitempty"`
	HideCounts bool   `json:"hidecounts,omitempty"`
	Units      string `json:"units,omitempty"`
}

// ErrorDetail is an error reported inside the stream.
type ErrorDetail struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// StreamError is the error a stream carried. Its text is the daemon's
// message, which the CLI prints unchanged.
type StreamError struct {
	Code    int
	Message string
}

func (e *StreamError) Error() string { return e.Message }

// Options change how a stream is rendered.
type Options struct {
	// Terminal enables in-place updates with ANSI cursor movements.
	Terminal bool
	// Width is the terminal's width in columns; lines are cut to fit.
	// Zero means 80.
	Width int
	// Aux, when set, receives each message's aux payload.
	Aux func(json.RawMessage)
}

// Display reads messages from r until EOF and renders them to out. It
// returns a *StreamError when a message carries an error, and an error
// when the stream is not valid JSON.
func Display(r io.Reader, out io.Writer, opts Options) error {
	d := &display{out: out, opts: opts, lines: map[string]int{}}
	if d.opts.Width <= 0 {
		d.opts.Width = 80
	}
	dec := json.NewDecoder(r)
	for {
		var m Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read progress stream: %w", err)
		}
		if err := d.show(m); err != nil {
			return err
		}
	}
}

// display holds the terminal state: the line each ID was printed on,
// counted from the top of the current block of ID lines. The cursor
// always sits at the start of the line below the block.
type display struct {
	out   io.Writer
	opts  Options
	lines map[string]int
	count int
}

func (d *display) show(m Message) error {
	if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
		return &StreamError{Code: m.ErrorDetail.Code, Message: m.ErrorDetail.Message}
	}
	if m.Error != "" {
		return &StreamError{Message: m.Error}
	}
	if m.Aux != nil {
		if d.opts.Aux != nil {
			d.opts.Aux(m.Aux)
		}
		return nil
	}
	if !d.opts.Terminal {
		return d.plain(m)
	}
	if m.ID != "" && (m.ProgressDetail != nil || m.Progress != "") {
		return d.update(m)
	}
	// Anything else ends the block: later progress for an ID starts a
	// new line (pull -a, say, pulls the same layer IDs per tag).
	clear(d.lines)
	d.count = 0
	_, err := io.WriteString(d.out, d.text(m, false)+"\n")
	return err
}

// plain prints status changes, one per line, and skips progress ticks
// that only a terminal can show in place.
func (d *display) plain(m Message) error {
	if bar := d.bar(m); bar != "" {
		return nil
	}
	s := d.text(m, false)
	if m.Stream == "" {
		s += "\n"
	}
	_, err := io.WriteString(d.out, s)
	return err
}

// update rewrites the ID's line, or adds it at the bottom of the block.
func (d *display) update(m Message) error {
	line := d.cut(d.text(m, true))
	i, ok := d.lines[m.ID]
	if !ok {
		d.lines[m.ID] = d.count
		d.count++
		_, err := io.WriteString(d.out, line+"\n")
		return err
	}
	up := d.count - i
	_, err := fmt.Fprintf(d.out, "\x1b[%dA\r\x1b[2K%s\x1b[%dB\r", up, line, up)
	return err
}

// text is the line for m: "ID: status progress".
func (d *display) text(m Message, withBar bool) string {
	if m.Stream != "" {
		return m.Stream
	}
	var b strings.Builder
	if m.ID != "" {
		b.WriteString(m.ID + ": ")
	}
	b.WriteString(m.Status)
	if withBar {
		if bar := d.bar(m); bar != "" {
			b.WriteString(" " + bar)
		}
	}
	return b.String()
}

// cut shortens a line so that it never wraps, which would throw the
// cursor arithmetic off.
func (d *display) cut(s string) string {
	r := []rune(s)
	if len(r) >= d.opts.Width {
		return string(r[:d.opts.Width-1])
	}
	return s
}

// bar renders a progress detail: "[=====>     ]  1.2MB/4.5MB". Details
// without a total show the count only.
func (d *display) bar(m Message) string {
	p := m.ProgressDetail
	if p == nil || (p.Current <= 0 && p.Total <= 0) {
		return m.Progress
	}
	count := func(n int64) string {
		if p.Units == "" {
			return units.HumanSize(float64(n))
		}
		return fmt.Sprintf("%d %s", n, p.Units)
	}
	if p.Total <= 0 {
		if p.HideCounts {
			return ""
		}
		return fmt.Sprintf("%8v", count(p.Current))
	}
	current := min(p.Current, p.Total)
	const width = 50
	filled := int(width * current / p.Total)
	var bar string
	if filled < width {
		bar = "[" + strings.Repeat("=", filled) + ">" + strings.Repeat(" ", width-filled-1) + "]"
	} else {
		bar = "[" + strings.Repeat("=", width) + "]"
	}
	if p.HideCounts {
		return bar
	}
	return fmt.Sprintf("%s %8v/%v", bar, count(current), count(p.Total))
}
