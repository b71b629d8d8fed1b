package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fill sets every field reachable from v to a value that differs by
// position (seed counts up), so a field decoded into its neighbour's place
// shows. Interfaces stay nil; maps and slices get two entries.
func fill(v reflect.Value, seed *int, depth int) {
	*seed++
	n := *seed
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(n%2 == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := int64(n)
		if n%3 == 0 {
			x = -x
		}
		v.SetInt(x % 100)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(uint64(n % 200))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n) / 4)
	case reflect.String:
		v.SetString(strings.Repeat("x", n%5) + "s" + string(rune('a'+n%26)))
	case reflect.Pointer:
		if depth > 8 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), seed, depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed, depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), seed, depth+1)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, seed, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, seed, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), seed, depth+1)
		}
	}
}

// filledSpec is a spec with every field set (fill), but the Windows
// section, whose credentialSpec is an interface.
func filledSpec() specs.Spec {
	var s specs.Spec
	seed := 0
	fill(reflect.ValueOf(&s).Elem(), &seed, 0)
	s.Windows = nil
	return s
}

func TestRoundTripFullSpec(t *testing.T) {
	var s specs.Spec
	seed := 0
	fill(reflect.ValueOf(&s).Elem(), &seed, 0)
	s.Windows.CredentialSpec = nil // the rest of Windows goes through
	b, err := Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	var got specs.Spec
	if err := Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, &s) {
		want, _ := json.Marshal(&s)
		have, _ := json.Marshal(&got)
		t.Fatalf("round trip differs:\n got %s\nwant %s", have, want)
	}
}

// Nil and empty slices and maps, and nil pointers, come back as they were:
// for a spec "no capabilities object" and "no capabilities" differ.
func TestNilAndEmpty(t *testing.T) {
	type inner struct{ A []string }
	type T struct {
		NilSlice   []string
		EmptySlice []string
		NilMap     map[string]int
		EmptyMap   map[string]int
		NilPtr     *inner
		Ptr        *inner
		Bytes      []byte
		NilBytes   []byte
		Iface      any
	}
	in := T{EmptySlice: []string{}, EmptyMap: map[string]int{}, Ptr: &inner{A: []string{}}, Bytes: []byte{0, 1, 255}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	out.NilSlice = []string{"stale"} // decoding replaces what was there
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %#v, want %#v", out, in)
	}
}

func TestUnsupported(t *testing.T) {
	if _, err := Marshal(struct{ C chan int }{}); err == nil {
		t.Error("channel field encoded")
	}
	if _, err := Marshal(struct{ I any }{I: 1}); err == nil {
		t.Error("non-nil interface encoded")
	}
	if _, err := Marshal(struct{ x int }{}); err == nil {
		t.Error("unexported field encoded")
	}
}

// Every truncation of a valid encoding fails cleanly (no panic), and so do
// counts that claim more than the data holds, overflowing numbers, and
// trailing bytes.
func TestMalformed(t *testing.T) {
	s := filledSpec()
	b, err := Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) {
		var got specs.Spec
		if err := Unmarshal(b[:i], &got); err == nil {
			t.Fatalf("truncated at %d of %d: decoded", i, len(b))
		}
	}
	var got specs.Spec
	if err := Unmarshal(append(b, 0), &got); err == nil || !strings.Contains(err.Error(), "left over") {
		t.Errorf("trailing byte: %v", err)
	}
	var strs []string
	if err := Unmarshal([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, &strs); !errors.Is(err, errShort) {
		t.Errorf("huge count: %v", err)
	}
	var small struct{ X uint8 }
	if err := Unmarshal([]byte{0x80, 0x02}, &small); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("256 into a uint8: %v", err)
	}
	var flag struct{ B bool }
	if err := Unmarshal([]byte{2}, &flag); err == nil {
		t.Error("boolean 2 decoded")
	}
	if err := Unmarshal([]byte{0}, flag); err == nil {
		t.Error("decoded into a non-pointer")
	}
}

func TestFrames(t *testing.T) {
	type msg struct {
		Type  string
		Error string
	}
	var buf bytes.Buffer
	for _, m := range []msg{{Type: "ready"}, {Type: "error", Error: "boom"}} {
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []msg{{Type: "ready"}, {Type: "error", Error: "boom"}} {
		var got msg
		if err := ReadFrame(&buf, &got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	var m msg
	if err := ReadFrame(&buf, &m); err != io.EOF {
		t.Errorf("end of stream: %v, want EOF", err)
	}
	// A frame cut short is an unexpected EOF; a header claiming more than
	// MaxFrame is refused before anything is allocated.
	if err := ReadFrame(bytes.NewReader([]byte{10, 0, 0, 0, 1}), &m); err != io.ErrUnexpectedEOF {
		t.Errorf("short frame: %v", err)
	}
	if err := ReadFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), &m); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("huge frame: %v", err)
	}
}

// BenchmarkUnmarshalSpec compares with encoding/json on the same spec.
func BenchmarkUnmarshalSpec(b *testing.B) {
	s := filledSpec()
	data, _ := Marshal(&s)
	jdata, _ := json.Marshal(&s)
	b.Run("wire", func(b *testing.B) {
		for b.Loop() {
			var got specs.Spec
			if err := Unmarshal(data, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			var got specs.Spec
			if err := json.Unmarshal(jdata, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
