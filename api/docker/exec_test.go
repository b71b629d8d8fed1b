package docker

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// TestExecSDK runs execs with moby's client as docker exec does: create,
// start hijacked with stdin (multiplexed, and raw with a terminal),
// detached start, inspect and resize.
func TestExecSDK(t *testing.T) {
	cs := newContainerServer(t)
	c := mobyClient(t, cs)
	ctx := context.Background()
	if _, err := c.ContainerStart(ctx, "c1", client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("attached with stdin", func(t *testing.T) {
		ex, err := c.ExecCreate(ctx, "c1", client.ExecCreateOptions{Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true, AttachStderr: true})
		if err != nil || ex.ID == "" {
			t.Fatalf("exec create %+v %v", ex, err)
		}
		res, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		if _, err := io.WriteString(res.Conn, "piped in"); err != nil {
			t.Fatal(err)
		}
		if err := res.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if _, err := stdcopy.StdCopy(&out, &errOut, res.Reader); err != nil {
			t.Fatal(err)
		}
		if out.String() != "out:PIPED IN" || errOut.String() != "err:PIPED IN" {
			t.Errorf("exec stdout %q stderr %q", out.String(), errOut.String())
		}
		insp, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil || insp.ExitCode != 0 || insp.ContainerID != fakeContainerID {
			t.Errorf("exec inspect %+v %v", insp, err)
		}
	})

	t.Run("terminal", func(t *testing.T) {
		ex, err := c.ExecCreate(ctx, "c1", client.ExecCreateOptions{Cmd: []string{"sh"}, TTY: true, AttachStdin: true, AttachStdout: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: true, ConsoleSize: client.ConsoleSize{Height: 24, Width: 80}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		if mt, _ := res.MediaType(); mt != mediaTypeRawStream {
			t.Errorf("media type %q", mt)
		}
		io.WriteString(res.Conn, "tty")
		res.CloseWrite()
		b, err := io.ReadAll(res.Reader)
		if err != nil || string(b) != "out:TTY" {
			t.Errorf("tty exec output %q %v", b, err)
		}
		// ExecStart saw the console size, stdin and stdout, no stderr.
		var start call
		for _, cl := range cs.c.Calls() {
			if cl.Method == "ExecStart" && cl.Args[0] == ex.ID {
				start = cl
			}
		}
		if want := call2("ExecStart", ex.ID, false, &[2]uint{24, 80}, true, true, false); !reflect.DeepEqual(start, want) {
			t.Errorf("exec start call %+v, want %+v", start, want)
		}
		if _, err := c.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Height: 30, Width: 100}); err != nil {
			t.Errorf("exec resize: %v", err)
		}
		if got := cs.c.last(t); !reflect.DeepEqual(got, call2("ExecResize", ex.ID, uint(30), uint(100))) {
			t.Errorf("exec resize call %+v", got)
		}
	})

	t.Run("detached", func(t *testing.T) {
		ex, err := c.ExecCreate(ctx, "c1", client.ExecCreateOptions{Cmd: []string{"touch", "/x"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
			t.Fatalf("detached start: %v", err)
		}
		if got := cs.c.last(t); !reflect.DeepEqual(got, call2("ExecStart", ex.ID, true, (*[2]uint)(nil), false, false, false)) {
			t.Errorf("exec start call %+v", got)
		}
		_, err = c.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
		if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "has already run") {
			t.Errorf("second start: %v, want conflict", err)
		}
		// An attached second start is refused before the hijack too.
		if _, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{}); err == nil || !strings.Contains(err.Error(), "409") {
			t.Errorf("attached second start: %v, want a 409", err)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		if _, err := c.ExecInspect(ctx, "nosuch", client.ExecInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("inspect of an unknown exec: %v", err)
		}
		if _, err := c.ExecCreate(ctx, "t1", client.ExecCreateOptions{Cmd: []string{"ls"}}); !cerrdefs.IsConflict(err) {
			t.Errorf("exec in a stopped container: %v, want conflict", err)
		}
	})
}

// TestExecStartRaw checks exec start over a raw connection: stdin sent with
// the request body in one write reaches the process.
func TestExecStartRaw(t *testing.T) {
	cs := newContainerServer(t)
	ctx := context.Background()
	cs.c.Start(ctx, "c1")
	id, err := cs.c.ExecCreate(ctx, "c1", execReq(true))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"Detach":false,"Tty":false}`
	resp, rest := rawHijackBody(t, cs.URL, "/v1.51/exec/"+id+"/start", body, "typed")
	if resp.StatusCode != 101 || resp.Header.Get("Content-Type") != mediaTypeMultiplexedStream {
		t.Fatalf("answer %s %v", resp.Status, resp.Header)
	}
	if out, errOut := demux(t, rest); out != "out:TYPED" || errOut != "err:TYPED" {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
}

// execReq is an exec of cat with its streams attached or not.
func execReq(attach bool) container.ExecCreateRequest {
	return container.ExecCreateRequest{Cmd: []string{"cat"}, AttachStdin: attach, AttachStdout: attach, AttachStderr: attach}
}
