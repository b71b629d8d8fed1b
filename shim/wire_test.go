package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"berth.dev/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// What the client marshals, the shim decodes to the same Request.
func TestDecodeRequestMatchesEncodingJSON(t *testing.T) {
	for _, req := range []Request{
		{},
		{Op: OpStart},
		{Op: OpAttach, Stdin: true, Stdout: true, Stderr: true, CloseStdin: true},
		{Op: OpResize, Exec: "e1", Width: 65535, Height: 1},
		{Op: OpKill, Signal: 9, All: true},
		{Op: OpExec, ID: "x", Tty: true, Process: &specs.Process{
			Args: []string{"sh", "-c", `echo "<a & b>" \ done`}, Cwd: "/", Env: []string{"A=é\u2028\x01"},
			User: specs.User{UID: 1, GID: 2, AdditionalGids: []uint32{3}},
		}},
		{Op: "o\"p\\\n\t\u00e9\U0001F600"},
	} {
		line, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRequest(line)
		if err != nil {
			t.Fatalf("decodeRequest(%s): %v", line, err)
		}
		if req.Process != nil {
			if got.process == nil {
				t.Fatalf("decodeRequest(%s) kept no process", line)
			}
			var p specs.Process
			if err := json.Unmarshal(got.process, &p); err != nil || !reflect.DeepEqual(&p, req.Process) {
				t.Fatalf("process %s decodes to %+v, %v; want %+v", got.process, p, err, req.Process)
			}
			got.Process = req.Process
		} else if got.process != nil {
			t.Fatalf("decodeRequest(%s) kept process %s", line, got.process)
		}
		if !reflect.DeepEqual(got.Request, req) {
			t.Fatalf("decodeRequest(%s) = %+v, want %+v", line, got.Request, req)
		}
	}
}

// Input encoding/json accepts: spacing, escapes it never writes, unknown
// members, nulls.
func TestDecodeRequestForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Request
	}{
		{" {\n\t\"op\" : \"kill\" , \"signal\" : 15 }\r\n", Request{Op: OpKill, Signal: 15}},
		{`{"op":"\u0073tart\/x","id":"\ud83d\ude00","exec":"\ud83d"}`, Request{Op: "start/x", ID: "\U0001F600", Exec: "\ufffd"}},
		{`{"new":{"a":[1,{"b":null},"c"],"d":-1.5e3},"op":"state","tty":null,"process":null}`, Request{Op: OpState}},
		{"{\"exec\":\"\xff\"}", Request{Exec: "\ufffd"}},
		{`{}`, Request{}},
	} {
		got, err := decodeRequest([]byte(tc.in))
		if err != nil || !reflect.DeepEqual(got.Request, tc.want) || got.process != nil {
			t.Errorf("decodeRequest(%q) = %+v, %v; want %+v", tc.in, got.Request, err, tc.want)
		}
		var std Request
		if err := json.Unmarshal([]byte(tc.in), &std); err != nil || !reflect.DeepEqual(std, tc.want) {
			t.Errorf("encoding/json reads %q as %+v, %v: the table is wrong", tc.in, std, err)
		}
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{"op":}`, `{"op":"start"`, `{"op":"start"} x`, `{"op":1}`, `{"width":70000}`,
		`{"width":-1}`, `{"signal":1.5}`, `{"stdin":"yes"}`, `{"op":"a` + "\n" + `"}`, `{"op":"\q"}`,
		`{"op":"\u12"}`, `{"op" "x"}`, `{"process":{"args":[1,]}}`, `{"x":tru}`,
	} {
		_, err := decodeRequest([]byte(in))
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("decodeRequest(%q) = %v, want ErrInvalidArgument", in, err)
		}
		var std Request
		if json.Unmarshal([]byte(in), &std) == nil {
			t.Errorf("encoding/json accepts %q: the table is wrong", in)
		}
	}
}

// The shim writes the bytes encoding/json would.
func TestResponseAndReadyMatchEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 1, 2, 3, 450000000, time.UTC)
	for _, r := range []Response{
		{},
		{Pid: 42, Status: StatusRunning},
		{Error: "bad <thing> & \"quote\"\n\x7f\x00\xff é \u2029", Kind: errdefs.ErrConflict.Error()},
		{Pid: 7, Status: StatusStopped, Exit: &Exit{Code: 137, ExitedAt: at, OOM: true}},
		{Status: StatusStopped, Exit: &Exit{}},
		{Exit: &Exit{Code: -1, ExitedAt: at.In(time.FixedZone("x", 3600))}},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.appendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("appendJSON = %s, want %s", got, want)
		}
	}
	type plainReady Ready // without the MarshalJSON method
	for _, r := range []Ready{{}, {Pid: 3}, {Error: "no <config.json>"}, {Pid: 1, Error: "x"}} {
		want, _ := json.Marshal(plainReady(r))
		if got, _ := r.MarshalJSON(); !bytes.Equal(got, want) {
			t.Errorf("Ready.MarshalJSON = %s, want %s", got, want)
		}
	}
}
