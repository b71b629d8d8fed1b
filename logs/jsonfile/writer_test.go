package jsonfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth.dev/internal/errdefs"
)

var t0 = time.Date(2026, 11, 26, 22, 0, 0, 123456789, time.UTC)

// readAll returns every entry of the log at path.
func readAll(t *testing.T, path string, opts ReadOptions) []Entry {
	t.Helper()
	var got []Entry
	err := Read(context.Background(), path, opts, func(e Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got
}

func TestWriterExactFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteLog("stdout", []byte("hello\n"), t0.In(time.FixedZone("X", 3600))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"log":"hello\n","stream":"stdout","time":"2026-11-26T22:00:00.123456789Z"}` + "\n"
	if string(got) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriterEscaping(t *testing.T) {
	cases := map[string]string{
		"quotes":     `say "hi" \ bye`,
		"html":       "<a href='x'>&amp;</a>",
		"controls":   "\x00\x01\x1b[31mred\x1b[0m\t\r\b\f",
		"unicode":    "héllo wörld ✓ 😀",
		"separators": "a\u2028b\u2029c",
		"invalid":    "bad \xff\xfe bytes \xc3",
		"truncated":  "\xe2\x9c",
		"empty":      "",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			enc := appendJSONString(nil, []byte(in))
			var got string
			if err := json.Unmarshal(enc, &got); err != nil {
				t.Fatalf("%s does not decode: %v", enc, err)
			}
			// encoding/json replaces each invalid byte by U+FFFD, as Docker.
			ref, _ := json.Marshal(in)
			var want string
			if err := json.Unmarshal(ref, &want); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("round trip of %q gave %q, want %q", in, got, want)
			}
			if bytes.ContainsAny(enc, "<>&\n") {
				t.Fatalf("%s holds a character Docker escapes", enc)
			}
		})
	}
}

type chunk struct {
	stream string
	data   string
}

func TestWriterSplitting(t *testing.T) {
	long := strings.Repeat("x", 40000)
	exact := strings.Repeat("y", MaxEntrySize)
	cases := []struct {
		name   string
		chunks []chunk
		want   []chunk // entries after Close
	}{
		{"lines", []chunk{{"stdout", "a\nb\n"}}, []chunk{{"stdout", "a\n"}, {"stdout", "b\n"}}},
		{"empty lines", []chunk{{"stdout", "\n\n"}}, []chunk{{"stdout", "\n"}, {"stdout", "\n"}}},
		{"joined partial", []chunk{{"stdout", "par"}, {"stdout", "tial\nnext"}, {"stdout", "\n"}},
			[]chunk{{"stdout", "partial\n"}, {"stdout", "next\n"}}},
		{"partial at close", []chunk{{"stdout", "a\nabc"}}, []chunk{{"stdout", "a\n"}, {"stdout", "abc"}}},
		{"streams apart", []chunk{{"stdout", "o1"}, {"stderr", "e1\n"}, {"stdout", "o2\n"}},
			[]chunk{{"stderr", "e1\n"}, {"stdout", "o1o2\n"}}},
		{"long line", []chunk{{"stdout", long + "\n"}},
			[]chunk{{"stdout", long[:MaxEntrySize]}, {"stdout", long[MaxEntrySize : 2*MaxEntrySize]}, {"stdout", long[2*MaxEntrySize:] + "\n"}}},
		{"exactly the cap", []chunk{{"stdout", exact + "\n"}}, []chunk{{"stdout", exact}, {"stdout", "\n"}}},
		{"one under the cap", []chunk{{"stdout", exact[1:] + "\n"}}, []chunk{{"stdout", exact[1:] + "\n"}}},
		{"cap reached across chunks", []chunk{{"stdout", long[:10000]}, {"stdout", long[:10000]}},
			[]chunk{{"stdout", long[:MaxEntrySize]}, {"stdout", long[:20000-MaxEntrySize]}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			w, err := NewWriter(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.chunks {
				if err := w.WriteLog(c.stream, []byte(c.data), t0); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var got []chunk
			for _, e := range readAll(t, path, ReadOptions{Tail: -1}) {
				got = append(got, chunk{e.Stream, string(e.Line)})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("entry %d: %s %q (%d bytes), want %s %q (%d bytes)", i, got[i].stream, abbrev(got[i].data), len(got[i].data), tc.want[i].stream, abbrev(tc.want[i].data), len(tc.want[i].data))
				}
			}
		})
	}
}

func abbrev(s string) string {
	if len(s) > 20 {
		return s[:10] + "..." + s[len(s)-10:]
	}
	return s
}

func TestWriterAppendsAndFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteLog("stdout", []byte("one\ntw"), t0)
	if got := readAll(t, path, ReadOptions{Tail: -1}); len(got) != 1 {
		t.Fatalf("before Flush: %d entries, want 1 (the partial is buffered)", len(got))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteLog("stdout", []byte("x\n"), t0); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("WriteLog after Close: %v, want ErrFailedPrecondition", err)
	}
	w, err = NewWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteLog("stderr", []byte("three\n"), t0)
	w.Close()
	var lines []string
	for _, e := range readAll(t, path, ReadOptions{Tail: -1}) {
		lines = append(lines, e.Stream+":"+string(e.Line))
	}
	want := []string{"stdout:one\n", "stdout:tw", "stderr:three\n"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("entries %q, want %q", lines, want)
	}
}

func TestNewWriterOptions(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		opts Options
		want error
	}{
		{"compress", Options{MaxSize: 100, MaxFiles: 2, Compress: true}, errdefs.ErrNotImplemented},
		{"negative size", Options{MaxSize: -1}, errdefs.ErrInvalidArgument},
		{"negative files", Options{MaxFiles: -1}, errdefs.ErrInvalidArgument},
		{"no dir", Options{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if tc.want == nil {
				path = filepath.Join(dir, "missing", "log")
			}
			_, err := NewWriter(path, tc.opts)
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if tc.want == nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("err %v, want not exist", err)
			}
		})
	}
}

func BenchmarkWriteLog(b *testing.B) {
	w, err := NewWriter(filepath.Join(b.TempDir(), "log"), Options{MaxSize: 10 << 20, MaxFiles: 3})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	chunk := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 64)
	now := time.Now()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if err := w.WriteLog("stdout", chunk, now); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFailedRotationKeepsEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	// A non-empty directory where the live file must be renamed to.
	if err := os.MkdirAll(filepath.Join(path+".1", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(path, Options{MaxSize: 100, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	failures := 0
	for i := range 5 {
		if err := w.WriteLog("stdout", fmt.Appendf(nil, "line %d\n", i), t0); err != nil {
			failures++
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if failures != 4 {
		t.Fatalf("%d WriteLog calls failed, want 4 (each rotation)", failures)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 5 {
		t.Fatalf("live file has %d entries, want all 5:\n%s", n, data)
	}
}
