package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/internal/errdefs"
)

func TestPing(t *testing.T) {
	srv, _, _ := newTestServer(t, WithEngineVersion("1.2.3"))
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, path := range []string{"/_ping", "/v1.41/_ping"} {
			t.Run(method+path, func(t *testing.T) {
				resp, body := do(t, method, srv.URL+path, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				want := map[string]string{
					"Api-Version":         MaxAPIVersion,
					"Ostype":              "linux",
					"Docker-Experimental": "false",
					"Server":              "Berth/1.2.3 (linux)",
					"Cache-Control":       "no-cache, no-store, must-revalidate",
					"Pragma":              "no-cache",
					"Content-Type":        "text/plain; charset=utf-8",
				}
				for k, v := range want {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				wantBody := "OK"
				if method == http.MethodHead {
					wantBody = ""
				}
				if string(body) != wantBody {
					t.Errorf("body %q, want %q", body, wantBody)
				}
			})
		}
	}
}

func TestExperimentalHeader(t *testing.T) {
	srv, _, _ := newTestServer(t, WithExperimental(true))
	resp, _ := do(t, http.MethodGet, srv.URL+"/_ping", nil)
	if got := resp.Header.Get("Docker-Experimental"); got != "true" {
		t.Errorf("Docker-Experimental = %q", got)
	}
}

func TestVersionPrefixes(t *testing.T) {
	srv, _, _ := newTestServer(t)
	tests := []struct {
		path    string
		status  int
		message string
	}{
		{"/version", 200, ""},
		{"/v1.24/version", 200, ""},
		{"/v1.41/images/json", 200, ""},
		{"/v" + MaxAPIVersion + "/info", 200, ""},
		{"/v1.23/version", 400, "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is " + MaxAPIVersion},
		{"/v2.0/version", 400, "client version 2.0 is too new. Maximum supported API version is " + MaxAPIVersion},
		{"/nope", 404, "page not found"},
		{"/v1.41/nope", 404, "page not found"},
		{"/v1.41/images", 404, "page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, srv.URL+tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if tt.message == "" {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body %q: %v", body, err)
			}
			if e.Message != tt.message {
				t.Errorf("message %q, want %q", e.Message, tt.message)
			}
		})
	}
}

func TestWrongMethodIsNotFound(t *testing.T) {
	srv, sys, _ := newTestServer(t)
	for _, method := range []string{http.MethodDelete, http.MethodPost} {
		resp, body := do(t, method, srv.URL+"/version", nil)
		if resp.StatusCode != http.StatusNotFound || string(body) != "{\"message\":\"page not found\"}\n" {
			t.Errorf("%s /version: %d %s", method, resp.StatusCode, body)
		}
	}
	// dockerd answers HEAD only on /_ping.
	if resp, _ := do(t, http.MethodHead, srv.URL+"/version", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD /version: %d", resp.StatusCode)
	}
	if len(sys.Calls()) != 0 {
		t.Errorf("backend called: %v", sys.Calls())
	}
}

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		err    error
		status int
	}{
		{errdefs.ErrNotFound, 404},
		{errdefs.ErrInvalidArgument, 400},
		{errdefs.ErrAlreadyExists, 409},
		{errdefs.ErrConflict, 409},
		{errdefs.ErrFailedPrecondition, 409},
		{errdefs.ErrUnauthorized, 401},
		{errdefs.ErrForbidden, 403},
		{errdefs.ErrNotImplemented, 501},
		{errdefs.ErrUnavailable, 503},
		{errors.New("disk on fire"), 500},
		{context.Canceled, 500},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			sys := &fakeSystem{err: fmt.Errorf("info of berth-test: %w", tt.err)}
			srv := newServerWith(t, Backends{System: sys})
			resp, body := do(t, http.MethodGet, srv+"/info", nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			// The category's name is not part of the message, as in
			// dockerd's (its status says it).
			want := sys.err.Error()
			if tt.status != 500 {
				want = "info of berth-test"
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Message != want {
				t.Errorf("body %q (%v), want message %q", body, err, want)
			}
			if resp.Header.Get("Api-Version") != MaxAPIVersion {
				t.Errorf("error answer lacks Api-Version")
			}
		})
	}
}

// newServerWith serves b and returns the base URL.
func newServerWith(t *testing.T, b Backends) string {
	t.Helper()
	srv := httptestServer(t, NewServer(b).Handler())
	return srv
}

func TestMissingBackendsAreNotImplemented(t *testing.T) {
	srv := newServerWith(t, Backends{})
	for _, tt := range []struct{ method, path string }{
		{"GET", "/info"}, {"GET", "/version"}, {"GET", "/events"}, {"GET", "/system/df"}, {"POST", "/auth"},
		{"GET", "/images/json"}, {"POST", "/images/create?fromImage=busybox"}, {"GET", "/images/busybox/json"},
		{"DELETE", "/images/busybox"}, {"POST", "/images/load"},
	} {
		resp, body := do(t, tt.method, srv+tt.path, nil)
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, resp.StatusCode, body)
		}
	}
	// _ping needs no backend.
	if resp, _ := do(t, "GET", srv+"/_ping", nil); resp.StatusCode != 200 {
		t.Errorf("_ping without backends: %d", resp.StatusCode)
	}
}

// TestServeShutsDownOnContext serves on a unix socket like berthd, holds
// an event stream open, and checks that cancelling the context ends Serve
// and the stream.
func TestServeShutsDownOnContext(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	sys := &fakeSystem{}
	s := NewServer(Backends{System: sys})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()

	client := unixClient(sock)
	resp, err := client.Get("http://berth/events")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The stream ended cleanly: reading reaches EOF instead of blocking.
	buf := make([]byte, 1)
	if n, err := resp.Body.Read(buf); n != 0 || err == nil {
		t.Errorf("event stream still open after shutdown: %d %v", n, err)
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Error("socket still accepts after shutdown")
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func TestInternalErrorsAreLogged(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for _, tt := range []struct {
		err    error
		logged bool
	}{
		{errors.New("disk on fire"), true},
		{fmt.Errorf("no such thing: %w", errdefs.ErrNotFound), false},
	} {
		buf.Reset()
		url := httptestServer(t, NewServer(Backends{System: &fakeSystem{err: tt.err}}, WithLogger(log)).Handler())
		do(t, http.MethodGet, url+"/info", nil)
		if got := strings.Contains(buf.String(), tt.err.Error()); got != tt.logged {
			t.Errorf("%v: logged %v, want %v (%q)", tt.err, got, tt.logged, buf.String())
		}
	}
}

func TestClientMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: No such container: x", errdefs.ErrNotFound), "No such container: x"},
		{fmt.Errorf("create x: exec: \"y\": not found in $PATH: %w", errdefs.ErrFailedPrecondition), "create x: exec: \"y\": not found in $PATH"},
		{fmt.Errorf("%w: unable to delete 1234 (must be forced)", errdefs.ErrConflict), "conflict: unable to delete 1234 (must be forced)"},
		{fmt.Errorf("%w: Container abc is not running", errdefs.ErrConflict), "Container abc is not running"},
		{fmt.Errorf("%w: %w: deep", errdefs.ErrInvalidArgument, errdefs.ErrUnavailable), "deep"},
		{fmt.Errorf("%w: authentication required", errdefs.ErrUnauthorized), "unauthorized: authentication required"},
		{errors.New("disk on fire"), "disk on fire"},
	} {
		if got := clientMessage(tc.err); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.err, got, tc.want)
		}
	}
}
