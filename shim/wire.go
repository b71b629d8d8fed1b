package shim

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"berth.dev/internal/errdefs"
)

// The shim's side of the wire is written by hand instead of through
// encoding/json. The first use of a type by encoding/json builds and caches
// its codec by reflection, and an idle shim never collects garbage (its heap
// stays far below the collector's first goal), so that work stayed resident
// in every shim: about 80 kB of each idle shim's anonymous memory, measured
// with bench/shim.sh. The client keeps encoding/json; both sides speak the
// JSON that encoding/json writes and reads for Request, Response and Ready.

// wireRequest is a decoded Request whose process is still JSON: only exec
// needs it, and only exec pays for decoding it.
type wireRequest struct {
	Request
	process []byte // the raw "process" value; nil when absent or null
}

// decodeRequest parses one Request object. Unknown members are skipped, as
// encoding/json skips them.
func decodeRequest(data []byte) (wireRequest, error) {
	var req wireRequest
	d := jsonDecoder{data: data}
	err := d.object(func(key string) error {
		var err error
		switch key {
		case "op":
			req.Op, err = d.string()
		case "stdin":
			req.Stdin, err = d.bool()
		case "stdout":
			req.Stdout, err = d.bool()
		case "stderr":
			req.Stderr, err = d.bool()
		case "closeStdin":
			req.CloseStdin, err = d.bool()
		case "width":
			req.Width, err = decodeInt[uint16](&d)
		case "height":
			req.Height, err = decodeInt[uint16](&d)
		case "exec":
			req.Exec, err = d.string()
		case "signal":
			req.Signal, err = decodeInt[int](&d)
		case "all":
			req.All, err = d.bool()
		case "id":
			req.ID, err = d.string()
		case "tty":
			req.Tty, err = d.bool()
		case "process":
			start := d.skipSpace()
			if err = d.skip(); err == nil && string(data[start:d.pos]) != "null" {
				req.process = data[start:d.pos]
			}
		default:
			err = d.skip()
		}
		return err
	})
	if err == nil {
		d.skipSpace()
		if d.pos != len(d.data) {
			err = d.errorf("data after the request")
		}
	}
	if err != nil {
		return wireRequest{}, fmt.Errorf("bad request: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	return req, nil
}

// appendJSON appends r as encoding/json marshals it.
func (r Response) appendJSON(dst []byte) []byte {
	o := jsonObject{dst: dst}
	if r.Error != "" {
		o.string("error", r.Error)
	}
	if r.Kind != "" {
		o.string("kind", r.Kind)
	}
	if r.Pid != 0 {
		o.int("pid", int64(r.Pid))
	}
	if r.Status != "" {
		o.string("status", r.Status)
	}
	if r.Exit != nil {
		o.key("exit")
		e := jsonObject{dst: o.dst}
		e.int("code", int64(r.Exit.Code))
		e.key("exitedAt")
		e.dst = append(e.dst, '"')
		e.dst = r.Exit.ExitedAt.AppendFormat(e.dst, time.RFC3339Nano)
		e.dst = append(e.dst, '"')
		if r.Exit.OOM {
			e.key("oom")
			e.dst = append(e.dst, "true"...)
		}
		o.dst = e.end()
	}
	return o.end()
}

// MarshalJSON encodes r as encoding/json would, without reflection.
func (r Ready) MarshalJSON() ([]byte, error) {
	o := jsonObject{}
	if r.Pid != 0 {
		o.int("pid", int64(r.Pid))
	}
	if r.Error != "" {
		o.string("error", r.Error)
	}
	return o.end(), nil
}

// jsonObject appends the members of one JSON object.
type jsonObject struct {
	dst  []byte
	open bool
}

func (o *jsonObject) key(k string) {
	if o.open {
		o.dst = append(o.dst, ',')
	} else {
		o.dst = append(o.dst, '{')
		o.open = true
	}
	o.dst = appendJSONString(o.dst, k)
	o.dst = append(o.dst, ':')
}

func (o *jsonObject) string(k, v string) {
	o.key(k)
	o.dst = appendJSONString(o.dst, v)
}

func (o *jsonObject) int(k string, v int64) {
	o.key(k)
	o.dst = strconv.AppendInt(o.dst, v, 10)
}

func (o *jsonObject) end() []byte {
	if !o.open {
		return append(o.dst, "{}"...)
	}
	return append(o.dst, '}')
}

// appendJSONString appends s quoted as encoding/json quotes it: invalid
// UTF-8 becomes U+FFFD, and <, >, & and U+2028/U+2029 are escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// jsonDecoder reads JSON values from data.
type jsonDecoder struct {
	data []byte
	pos  int
}

var errJSONSyntax = errors.New("JSON syntax error")

func (d *jsonDecoder) errorf(what string) error {
	return fmt.Errorf("%w at offset %d: %s", errJSONSyntax, d.pos, what)
}

// skipSpace moves past white space and returns the new position.
func (d *jsonDecoder) skipSpace() int {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return d.pos
		}
	}
	return d.pos
}

// peek returns the next byte that is not white space, 0 at the end.
func (d *jsonDecoder) peek() byte {
	if d.skipSpace() == len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

func (d *jsonDecoder) consume(c byte) error {
	if d.peek() != c {
		return d.errorf("want " + strconv.QuoteRune(rune(c)))
	}
	d.pos++
	return nil
}

// object reads an object, calling member for each key with the decoder
// at the member's value, which member must consume.
func (d *jsonDecoder) object(member func(key string) error) error {
	if err := d.consume('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		key, err := d.string()
		if err != nil {
			return err
		}
		if err := d.consume(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.errorf("want , or }")
		}
	}
}

// string reads a string, or null as "".
func (d *jsonDecoder) string() (string, error) {
	if d.literal("null") {
		return "", nil
	}
	if err := d.consume('"'); err != nil {
		return "", err
	}
	var out []byte
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := string(append(out, d.data[start:d.pos]...))
			d.pos++
			return s, nil
		case c < 0x20:
			return "", d.errorf("control character in string")
		case c == '\\':
			out = append(out, d.data[start:d.pos]...)
			var err error
			if out, err = d.escape(out); err != nil {
				return "", err
			}
			start = d.pos
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				out = append(out, d.data[start:d.pos]...)
				out = utf8.AppendRune(out, utf8.RuneError)
				d.pos++
				start = d.pos
				continue
			}
			d.pos += size
		default:
			d.pos++
		}
	}
	return "", d.errorf("unterminated string")
}

// escape decodes the escape sequence at d.pos (a backslash) onto out.
func (d *jsonDecoder) escape(out []byte) ([]byte, error) {
	if d.pos+1 >= len(d.data) {
		return nil, d.errorf("unterminated escape")
	}
	c := d.data[d.pos+1]
	d.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
		r, ok := d.hex4()
		if !ok {
			return nil, d.errorf("bad \\u escape")
		}
		if utf16.IsSurrogate(r) {
			// A pair makes one rune; a lone half is U+FFFD, as in
			// encoding/json.
			save := d.pos
			if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
				d.pos += 2
				if r2, ok := d.hex4(); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						return utf8.AppendRune(out, dec), nil
					}
				}
			}
			d.pos = save
			r = utf8.RuneError
		}
		return utf8.AppendRune(out, r), nil
	}
	return nil, d.errorf("bad escape")
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.pos += 4
	return r, true
}

// literal consumes word if it comes next.
func (d *jsonDecoder) literal(word string) bool {
	d.skipSpace()
	if len(d.data)-d.pos >= len(word) && string(d.data[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return true
	}
	return false
}

// bool reads true, false, or null as false.
func (d *jsonDecoder) bool() (bool, error) {
	switch {
	case d.literal("true"):
		return true, nil
	case d.literal("false"), d.literal("null"):
		return false, nil
	}
	return false, d.errorf("want a boolean")
}

// number returns the text of the number at d.pos.
func (d *jsonDecoder) number() ([]byte, error) {
	start := d.skipSpace()
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		d.pos++
	}
	if d.pos == start {
		return nil, d.errorf("want a number")
	}
	return d.data[start:d.pos], nil
}

// decodeInt reads an integer that fits T, or null as 0.
func decodeInt[T int | uint16](d *jsonDecoder) (T, error) {
	if d.literal("null") {
		return 0, nil
	}
	text, err := d.number()
	if err != nil {
		return 0, err
	}
	var zero T
	n, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil || int64(T(n)) != n {
		return zero, fmt.Errorf("number %s does not fit a %T: %w", text, zero, errJSONSyntax)
	}
	return T(n), nil
}

// skip moves past one value of any kind.
func (d *jsonDecoder) skip() error {
	switch c := d.peek(); {
	case c == '{':
		return d.object(func(string) error { return d.skip() })
	case c == '[':
		d.pos++
		if d.peek() == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skip(); err != nil {
				return err
			}
			switch d.peek() {
			case ',':
				d.pos++
			case ']':
				d.pos++
				return nil
			default:
				return d.errorf("want , or ]")
			}
		}
	case c == '"':
		_, err := d.string()
		return err
	case c == 't' || c == 'f' || c == 'n':
		if d.literal("true") || d.literal("false") || d.literal("null") {
			return nil
		}
		return d.errorf("bad literal")
	default:
		_, err := d.number()
		return err
	}
}
