package volumes

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/volume"

	"berth.dev/internal/errdefs"
)

func TestCreateRefusesBadNamesAndOptions(t *testing.T) {
	s, _ := newStore(t)
	tooShort := "volume name is too short, names should be at least two alphanumeric characters"
	invalid := func(n string) string {
		return `"` + n + `" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`
	}
	cases := []struct {
		req  volume.CreateRequest
		kind error  // nil: created
		text string // the end of the error's text (dockerd's wording)
	}{
		{req: volume.CreateRequest{Name: "ab"}},
		{req: volume.CreateRequest{Name: "a.b_c-D9"}},
		{req: volume.CreateRequest{Name: "0x", Driver: "local"}},
		{req: volume.CreateRequest{Name: "a"}, kind: errdefs.ErrInvalidArgument, text: "create a: " + tooShort},
		{req: volume.CreateRequest{Name: "."}, kind: errdefs.ErrInvalidArgument, text: "create .: " + tooShort},
		{req: volume.CreateRequest{Name: ".."}, kind: errdefs.ErrInvalidArgument, text: "create ..: " + invalid("..")},
		{req: volume.CreateRequest{Name: "-b"}, kind: errdefs.ErrInvalidArgument, text: "create -b: " + invalid("-b")},
		{req: volume.CreateRequest{Name: "b/c"}, kind: errdefs.ErrInvalidArgument, text: "create b/c: " + invalid("b/c")},
		{req: volume.CreateRequest{Name: "ab!"}, kind: errdefs.ErrInvalidArgument, text: "create ab!: " + invalid("ab!")},
		{req: volume.CreateRequest{Name: "/abs"}, kind: errdefs.ErrInvalidArgument, text: "create /abs: " + invalid("/abs")},
		{req: volume.CreateRequest{Name: "pl", Driver: "foo"}, kind: errdefs.ErrNotFound, text: `create pl: error looking up volume plugin foo: plugin "foo" not found`},
		{req: volume.CreateRequest{Name: "o1", DriverOpts: map[string]string{"foo": "bar"}}, kind: errdefs.ErrInvalidArgument, text: `create o1: invalid option: "foo"`},
		{req: volume.CreateRequest{Name: "o2", DriverOpts: map[string]string{"type": "tmpfs"}}, kind: errdefs.ErrInvalidArgument, text: `create o2: missing required option: "device"`},
		{req: volume.CreateRequest{Name: "o3", DriverOpts: map[string]string{"device": "/tmp"}}, kind: errdefs.ErrInvalidArgument, text: `create o3: missing required option: "type"`},
		{req: volume.CreateRequest{Name: "o4", DriverOpts: map[string]string{"o": "size=1m"}}, kind: errdefs.ErrInvalidArgument, text: `create o4: missing required option: "device"`},
		{req: volume.CreateRequest{Name: "o5", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}},
		{req: volume.CreateRequest{Name: "o6", DriverOpts: map[string]string{"o": "size=1m", "type": "tmpfs"}}, kind: errdefs.ErrInvalidArgument, text: `create o6: missing required option: "device"`},
		{req: volume.CreateRequest{Name: "o7", DriverOpts: map[string]string{"o": "bind", "device": "/tmp"}}, kind: errdefs.ErrInvalidArgument, text: `create o7: missing required option: "type"`},
		{req: volume.CreateRequest{Name: "q1", DriverOpts: map[string]string{"size": "10m"}}, kind: errdefs.ErrInvalidArgument, text: "create q1: quota size requested but no quota support"},
		{req: volume.CreateRequest{Name: "q2", DriverOpts: map[string]string{"size": "lots"}}, kind: errdefs.ErrInvalidArgument, text: "create q2: invalid size: 'lots'"},
		{req: volume.CreateRequest{Name: "q3", DriverOpts: map[string]string{"size": "0"}}},
	}
	for _, c := range cases {
		t.Run(c.req.Name, func(t *testing.T) {
			v, err := s.Create(context.Background(), c.req)
			if c.kind == nil {
				if err != nil || v.Name != c.req.Name {
					t.Fatalf("Create = %+v, %v", v, err)
				}
				return
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("Create err = %v, want %v", err, c.kind)
			}
			if !strings.HasSuffix(err.Error(), c.text) {
				t.Errorf("Create err = %q, want it to end with %q", err, c.text)
			}
			if _, err := s.Inspect(context.Background(), c.req.Name); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("refused volume exists: %v", err)
			}
		})
	}
}

func TestNewNameIs64Hex(t *testing.T) {
	a, err := newName()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newName()
	if len(a) != 64 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("newName = %q, %q", a, b)
	}
	if err := validateName(a); err != nil {
		t.Errorf("generated name refused: %v", err)
	}
}
