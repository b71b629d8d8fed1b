package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const pullStream = `{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaa"}
{"status":"Pulling fs layer","progressDetail":{},"id":"bbb"}
{"status":"Downloading","progressDetail":{"current":1000,"total":2000},"progress":"[==>  ]","id":"aaa"}
{"status":"Download complete","progressDetail":{},"id":"bbb"}
{"status":"Pull complete","progressDetail":{},"id":"aaa"}
{"status":"Digest: sha256:1234"}
`

func TestDisplayPlain(t *testing.T) {
	var out bytes.Buffer
	if err := Display(strings.NewReader(pullStream), &out, Options{}); err != nil {
		t.Fatal(err)
	}
	// Progress ticks are dropped; every status change is its own line.
	want := "latest: Pulling from library/busybox\n" +
		"aaa: Pulling fs layer\n" +
		"bbb: Pulling fs layer\n" +
		"bbb: Download complete\n" +
		"aaa: Pull complete\n" +
		"Digest: sha256:1234\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestDisplayTerminal(t *testing.T) {
	var out bytes.Buffer
	if err := Display(strings.NewReader(pullStream), &out, Options{Terminal: true, Width: 200}); err != nil {
		t.Fatal(err)
	}
	bar := "[=========================>                        ]      1kB/2kB"
	want := "latest: Pulling from library/busybox\n" +
		// The ID lines form a block below the last plain line.
		"aaa: Pulling fs layer\n" +
		"bbb: Pulling fs layer\n" +
		// aaa is two lines up from the cursor, bbb one.
		"\x1b[2A\r\x1b[2Kaaa: Downloading " + bar + "\x1b[2B\r" +
		"\x1b[1A\r\x1b[2Kbbb: Download complete\x1b[1B\r" +
		"\x1b[2A\r\x1b[2Kaaa: Pull complete\x1b[2B\r" +
		"Digest: sha256:1234\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}

func TestDisplayTerminalCutsLongLines(t *testing.T) {
	var out bytes.Buffer
	in := `{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"aaa"}`
	if err := Display(strings.NewReader(in), &out, Options{Terminal: true, Width: 20}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "aaa: Downloading [=\n" {
		t.Errorf("got %q", got)
	}
}

func TestDisplayStream(t *testing.T) {
	var out bytes.Buffer
	in := `{"stream":"Loaded image: busybox:latest\n"}`
	if err := Display(strings.NewReader(in), &out, Options{}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "Loaded image: busybox:latest\n" {
		t.Errorf("got %q", out.String())
	}
}

func TestDisplayErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, msg string
		code          int
	}{
		{"detail", `{"status":"x"}` + "\n" + `{"errorDetail":{"code":5,"message":"unexpected EOF"},"error":"unexpected EOF"}`, "unexpected EOF", 5},
		{"string only", `{"error":"manifest unknown"}`, "manifest unknown", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Display(strings.NewReader(tc.in), &out, Options{})
			var se *StreamError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a StreamError", err)
			}
			if se.Message != tc.msg || se.Code != tc.code {
				t.Errorf("got %+v, want message %q code %d", se, tc.msg, tc.code)
			}
		})
	}
	var out bytes.Buffer
	err := Display(strings.NewReader(`{"status":`), &out, Options{})
	var se *StreamError
	if err == nil || errors.As(err, &se) {
		t.Errorf("truncated JSON: got %v, want a read error", err)
	}
}

func TestDisplayAux(t *testing.T) {
	var got []string
	in := `{"status":"done"}` + "\n" + `{"progressDetail":{},"aux":{"Tag":"1.36","Size":527}}`
	var out bytes.Buffer
	err := Display(strings.NewReader(in), &out, Options{Aux: func(m json.RawMessage) { got = append(got, string(m)) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != `{"Tag":"1.36","Size":527}` {
		t.Errorf("aux = %q", got)
	}
	if out.String() != "done\n" {
		t.Errorf("output = %q; aux must not print", out.String())
	}
}
