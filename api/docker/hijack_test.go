package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// rawHijack sends request line, headers and then stdin in a single write on
// a new connection to the test server, half-closes, and returns the
// response and everything after it. Sending stdin with the request puts it
// in the HTTP server's buffer: the case where a hijack must hand buffered
// bytes on to stdin.
func rawHijack(t *testing.T, serverURL, path string, upgrade bool, stdin string) (*http.Response, []byte) {
	t.Helper()
	hdr := "Content-Type: text/plain\r\n"
	if upgrade {
		hdr += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	return rawRequest(t, serverURL, "POST "+path+" HTTP/1.1\r\nHost: berth\r\n"+hdr+"\r\n"+stdin)
}

// rawHijackBody is rawHijack for a request with a JSON body (exec start),
// stdin following the body in the same write.
func rawHijackBody(t *testing.T, serverURL, path, body, stdin string) (*http.Response, []byte) {
	t.Helper()
	return rawRequest(t, serverURL, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n%s%s", path, len(body), body, stdin))
}

// rawRequest writes req on a new connection, half-closes it and reads the
// answer and the stream after it.
func rawRequest(t *testing.T, serverURL, req string) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("read the stream: %v", err)
	}
	return resp, rest
}

// demux splits a multiplexed stream, failing the test on a bad frame.
func demux(t *testing.T, b []byte) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, bytes.NewReader(b)); err != nil {
		t.Fatalf("demultiplex %q: %v", b, err)
	}
	return o.String(), e.String()
}

func TestAttachHijack(t *testing.T) {
	cs := newContainerServer(t)
	const q = "/attach?stream=1&stdin=1&stdout=1&stderr=1&logs=1&detachKeys=ctrl-x"
	tests := []struct {
		name        string
		path        string
		upgrade     bool
		status      int
		contentType string
		tty         bool
	}{
		{"multiplexed upgrade", "/v1.51/containers/c1" + q, true, 101, mediaTypeMultiplexedStream, false},
		{"multiplexed no upgrade", "/containers/c1" + q, false, 200, mediaTypeMultiplexedStream, false},
		{"old API is told raw-stream", "/v1.41/containers/c1" + q, true, 101, mediaTypeRawStream, false},
		{"tty upgrade", "/v1.51/containers/t1" + q, true, 101, mediaTypeRawStream, true},
		{"tty no upgrade", "/v1.41/containers/t1" + q, false, 200, mediaTypeRawStream, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, rest := rawHijack(t, cs.URL, tt.path, tt.upgrade, "hello")
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("answer %s %q, want %d %q", resp.Status, resp.Header.Get("Content-Type"), tt.status, tt.contentType)
			}
			if tt.upgrade && (resp.Status != "101 UPGRADED" || resp.Header.Get("Connection") != "Upgrade" || resp.Header.Get("Upgrade") != "tcp") {
				t.Errorf("upgrade answer %q %v", resp.Status, resp.Header)
			}
			if !tt.upgrade && resp.Header.Get("Upgrade") != "" {
				t.Errorf("Upgrade header without an upgrade request: %v", resp.Header)
			}
			if tt.tty {
				if string(rest) != "logged\nout:HELLOerr:HELLO" {
					t.Errorf("raw stream %q", rest)
				}
			} else if out, errOut := demux(t, rest); out != "logged\nout:HELLO" || errOut != "err:HELLO" {
				t.Errorf("stdout %q stderr %q", out, errOut)
			}
			name := "c1"
			if tt.tty {
				name = "t1"
			}
			want := call2("Attach", name, true, true, "ctrl-x", true, true, true)
			if got := cs.c.last(t); !reflect.DeepEqual(got, want) {
				t.Errorf("attach call %+v", got)
			}
		})
	}

	t.Run("only the asked streams", func(t *testing.T) {
		resp, rest := rawHijack(t, cs.URL, "/containers/c1/attach?stream=1&stdin=1&stderr=1", true, "abc")
		if resp.StatusCode != 101 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if out, errOut := demux(t, rest); out != "" || errOut != "err:ABC" {
			t.Errorf("stdout %q stderr %q", out, errOut)
		}
	})
}

// TestAttachSDK attaches with moby's client, as docker run and docker
// attach do: stdin goes in, the container's output comes back, and the
// half-close of stdin ends the container's input.
func TestAttachSDK(t *testing.T) {
	cs := newContainerServer(t)
	c := mobyClient(t, cs)
	ctx := context.Background()
	for _, name := range []string{"c1", "t1"} {
		t.Run(name, func(t *testing.T) {
			res, err := c.ContainerAttach(ctx, name, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if _, err := io.WriteString(res.Conn, "round trip"); err != nil {
				t.Fatal(err)
			}
			if err := res.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			mt, _ := res.MediaType()
			if name == "t1" {
				b, err := io.ReadAll(res.Reader)
				if err != nil || string(b) != "out:ROUND TRIPerr:ROUND TRIP" || mt != mediaTypeRawStream {
					t.Errorf("tty attach %q %v %q", b, err, mt)
				}
				return
			}
			var out, errOut bytes.Buffer
			if _, err := stdcopy.StdCopy(&out, &errOut, res.Reader); err != nil {
				t.Fatal(err)
			}
			if out.String() != "out:ROUND TRIP" || errOut.String() != "err:ROUND TRIP" || mt != mediaTypeMultiplexedStream {
				t.Errorf("attach stdout %q stderr %q media type %q", out.String(), errOut.String(), mt)
			}
		})
	}
}

// TestHijackEndsOnShutdown checks that stopping the server ends an attach
// whose client keeps its stdin open: http.Server does not track hijacked
// connections, so the server must close them itself.
func TestHijackEndsOnShutdown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fc := newFakeContainers()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- NewServer(Backends{Containers: fc}).Serve(ctx, l) }()

	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.ContainerAttach(context.Background(), "c1", client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	// The client has the upgraded connection as soon as the status line
	// is out; the handler calls the backend's Attach just after: shut
	// down once it is in it, as the test means to.
	for deadline := time.Now().Add(10 * time.Second); !slices.ContainsFunc(fc.Calls(), func(c call) bool { return c.Method == "Attach" }); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the backend's Attach was not called")
		}
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	// The backend was reading stdin; the closed connection ends it and the
	// client reads the end of the stream.
	if _, err := io.ReadAll(res.Reader); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after shutdown: %v", err)
	}
	if got := fc.last(t); got.Method != "Attach" {
		t.Errorf("last backend call %+v, want the attach", got)
	}
}

// TestStreamErrorAfterHijack checks that a failure after the status line
// went out reaches the client as a line of the stream, without berth's
// category names: an exec whose start fails once hijacked.
func TestStreamErrorAfterHijack(t *testing.T) {
	cs := newContainerServer(t)
	ctx := context.Background()
	cs.c.Start(ctx, "c1")
	id, err := cs.c.ExecCreate(ctx, "c1", execReq(true))
	if err != nil {
		t.Fatal(err)
	}
	// Started behind the server's back: its inspect still says it never
	// ran, so the server hijacks, and the backend's start then fails.
	cs.c.execs[id].started = true
	resp, rest := rawHijackBody(t, cs.URL, "/exec/"+id+"/start", `{}`, "")
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	out, _ := demux(t, rest)
	if want := "exec " + id + " is already running\r\n"; out != want {
		t.Errorf("stream %q, want %q", out, want)
	}
}

// Attaching to a paused container is refused before any hijack, with
// dockerd's 409.
func TestAttachPaused(t *testing.T) {
	cs := newContainerServer(t)
	if err := cs.c.Pause(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	resp, rest := rawHijack(t, cs.URL, "/v1.51/containers/c1/attach?stream=1&stdout=1", true, "")
	if resp.StatusCode != http.StatusConflict || !bytes.Contains(rest, []byte("You cannot attach to a paused container, unpause it first")) {
		t.Errorf("attach to a paused container: %s %q", resp.Status, rest)
	}
}
