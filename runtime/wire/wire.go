// Package wire encodes Go values for the runtime's talk with the container
// init it starts. Both ends are the same binary, so a struct goes by field
// position, not by name, and no type tables are needed: encoding/json
// builds an encoder for every type reachable from specs.Spec the first time
// it decodes one, about half a millisecond of a freshly started init, for a
// config that then decodes in tens of microseconds.
//
// The format: booleans one byte; signed integers zig-zag varints, unsigned
// ones varints; floats their IEEE bits; strings a length and the bytes;
// pointers a presence byte and the value; slices and maps a count plus one
// (zero for nil) and the elements (map entries key then value); arrays
// and structs their elements or fields in order; interfaces only nil (one
// zero byte). Channels and functions are not supported. A frame on a stream is the encoding's length
// as a 4-byte little-endian number, then the encoding.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
)

// MaxFrame bounds a frame's length.
const MaxFrame = 16 << 20

// Marshal returns the encoding of v; a pointer is encoded as the value it
// points to, as Unmarshal decodes into one.
func Marshal(v any) ([]byte, error) {
	return appendValue(nil, top(v))
}

func top(v any) reflect.Value {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return rv.Elem()
	}
	return rv
}

// Unmarshal decodes data into the value ptr points to. All of data must be
// used.
func Unmarshal(data []byte, ptr any) error {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return errors.New("wire: Unmarshal needs a non-nil pointer")
	}
	d := &decoder{data: data}
	if err := d.value(v.Elem()); err != nil {
		return err
	}
	if d.off != len(d.data) {
		return fmt.Errorf("wire: %d bytes left over", len(d.data)-d.off)
	}
	return nil
}

// WriteFrame writes v (as Marshal encodes it) as one frame, in one write.
func WriteFrame(w io.Writer, v any) error {
	b, err := appendValue(make([]byte, 4, 512), top(v))
	if err != nil {
		return err
	}
	if len(b)-4 > MaxFrame {
		return fmt.Errorf("wire: frame of %d bytes exceeds %d", len(b)-4, MaxFrame)
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)-4))
	_, err = w.Write(b)
	return err
}

// ReadFrame reads one frame and decodes it into ptr. A stream that ends
// before the frame starts gives io.EOF.
func ReadFrame(r io.Reader, ptr any) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(h[:])
	if n > MaxFrame {
		return fmt.Errorf("wire: frame of %d bytes exceeds %d", n, MaxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return Unmarshal(b, ptr)
}

func appendValue(b []byte, v reflect.Value) ([]byte, error) {
	var err error
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(b, v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint(b, v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float())), nil
	case reflect.String:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		return append(b, v.String()...), nil
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, 0), nil
		}
		return appendValue(append(b, 1), v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			return append(b, 0), nil
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return append(b, v.Bytes()...), nil
		}
		return appendElems(b, v)
	case reflect.Array:
		return appendElems(b, v)
	case reflect.Map:
		if v.IsNil() {
			return append(b, 0), nil
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		it := v.MapRange()
		for it.Next() {
			if b, err = appendValue(b, it.Key()); err != nil {
				return nil, err
			}
			if b, err = appendValue(b, it.Value()); err != nil {
				return nil, err
			}
		}
		return b, nil
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if !t.Field(i).IsExported() {
				return nil, fmt.Errorf("wire: unexported field %s.%s", t, t.Field(i).Name)
			}
			if b, err = appendValue(b, v.Field(i)); err != nil {
				return nil, err
			}
		}
		return b, nil
	case reflect.Interface:
		// Only a nil one: what it holds would need its type named.
		if v.IsNil() {
			return append(b, 0), nil
		}
	}
	return nil, fmt.Errorf("wire: unsupported type %s", v.Type())
}

func appendElems(b []byte, v reflect.Value) ([]byte, error) {
	var err error
	for i := range v.Len() {
		if b, err = appendValue(b, v.Index(i)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

type decoder struct {
	data []byte
	off  int
}

var errShort = errors.New("wire: data ends early")

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.data) {
		return 0, errShort
	}
	c := d.data[d.off]
	d.off++
	return c, nil
}

func (d *decoder) uvarint() (uint64, error) {
	x, n := binary.Uvarint(d.data[d.off:])
	if n <= 0 {
		return 0, errShort
	}
	d.off += n
	return x, nil
}

// varint reads a zig-zag varint (binary.AppendVarint's encoding).
func (d *decoder) varint() (int64, error) {
	u, err := d.uvarint()
	return int64(u>>1) ^ -int64(u&1), err
}

// count reads a slice or map count (plus one, zero for nil). Each element
// takes at least one byte, so a count beyond what is left is refused
// before anything is allocated for it.
func (d *decoder) count() (n int, isNil bool, err error) {
	c, err := d.uvarint()
	if err != nil {
		return 0, false, err
	}
	if c == 0 {
		return 0, true, nil
	}
	if c-1 > uint64(len(d.data)-d.off) {
		return 0, false, errShort
	}
	return int(c - 1), false, nil
}

func (d *decoder) bytes(n int) ([]byte, error) {
	if n > len(d.data)-d.off {
		return nil, errShort
	}
	b := d.data[d.off : d.off+n]
	d.off += n
	return b, nil
}

func (d *decoder) value(v reflect.Value) error {
	switch v.Kind() {
	case reflect.Bool:
		c, err := d.byte()
		if err != nil {
			return err
		}
		if c > 1 {
			return fmt.Errorf("wire: bad boolean %d", c)
		}
		v.SetBool(c == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, err := d.varint()
		if err != nil {
			return err
		}
		if v.OverflowInt(x) {
			return fmt.Errorf("wire: %d overflows %s", x, v.Type())
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x, err := d.uvarint()
		if err != nil {
			return err
		}
		if v.OverflowUint(x) {
			return fmt.Errorf("wire: %d overflows %s", x, v.Type())
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		b, err := d.bytes(8)
		if err != nil {
			return err
		}
		v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case reflect.String:
		n, err := d.uvarint()
		if err != nil {
			return err
		}
		if n > uint64(len(d.data)-d.off) {
			return errShort
		}
		b, _ := d.bytes(int(n))
		v.SetString(string(b))
	case reflect.Pointer:
		c, err := d.byte()
		if err != nil {
			return err
		}
		switch c {
		case 0:
			v.SetZero()
			return nil
		case 1:
		default:
			return fmt.Errorf("wire: bad pointer flag %d", c)
		}
		p := reflect.New(v.Type().Elem())
		if err := d.value(p.Elem()); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Slice:
		n, isNil, err := d.count()
		if err != nil {
			return err
		}
		if isNil {
			v.SetZero()
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b, _ := d.bytes(n)
			s := reflect.MakeSlice(v.Type(), n, n)
			reflect.Copy(s, reflect.ValueOf(b))
			v.Set(s)
			return nil
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			if err := d.value(s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			if err := d.value(v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		n, isNil, err := d.count()
		if err != nil {
			return err
		}
		if isNil {
			v.SetZero()
			return nil
		}
		t := v.Type()
		m := reflect.MakeMapWithSize(t, n)
		for range n {
			k := reflect.New(t.Key()).Elem()
			if err := d.value(k); err != nil {
				return err
			}
			e := reflect.New(t.Elem()).Elem()
			if err := d.value(e); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if !t.Field(i).IsExported() {
				return fmt.Errorf("wire: unexported field %s.%s", t, t.Field(i).Name)
			}
			if err := d.value(v.Field(i)); err != nil {
				return err
			}
		}
	case reflect.Interface:
		c, err := d.byte()
		if err != nil {
			return err
		}
		if c != 0 {
			return fmt.Errorf("wire: unsupported non-nil %s", v.Type())
		}
		v.SetZero()
	default:
		return fmt.Errorf("wire: unsupported type %s", v.Type())
	}
	return nil
}
