package jsonfile

import (
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendEntry appends one log line of the json-file format, "\n" included.
func appendEntry(dst []byte, stream string, log []byte, t time.Time) []byte {
	dst = append(dst, `{"log":`...)
	dst = appendJSONString(dst, log)
	dst = append(dst, `,"stream":`...)
	dst = appendJSONString(dst, []byte(stream))
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n"...)
}

// appendJSONString appends s as a JSON string the way Docker's json-file
// driver writes it: control characters, quotes and backslashes escaped, <, >
// and & escaped as \u00XX, U+2028 and U+2029 escaped, and bytes that are not
// valid UTF-8 replaced by U+FFFD.
func appendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
