package docker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/api/docker/backend"
)

// streamLine is one line of a JSON message stream as a client decodes it:
// moby's message plus the fields it does not model.
type streamLine struct {
	jsonstream.Message
	ProgressText string          `json:"progress"`
	ErrorText    string          `json:"error"`
	AuxRaw       json.RawMessage `json:"aux"`
}

// decodeStream decodes a JSON message stream line by line.
func decodeStream(t *testing.T, body []byte) []streamLine {
	t.Helper()
	var lines []streamLine
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var l streamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func encodeAuth(t *testing.T, a registry.AuthConfig) string {
	t.Helper()
	s, err := authconfig.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPullProgressStream(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	auth := registry.AuthConfig{Username: "berth-test", Password: "pw", ServerAddress: "docker.io"}
	resp, body := do(t, http.MethodPost, srv.URL+"/v1.50/images/create?fromImage=busybox&tag=latest&platform=linux%2Famd64", nil,
		registry.AuthHeader, encodeAuth(t, auth))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	got := imgs.last(t)
	want := call{"Pull", []any{"docker.io/library/busybox:latest", backend.PullOptions{Platform: "linux/amd64", Auth: auth}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backend call %+v, want %+v", got, want)
	}

	lines := decodeStream(t, body)
	wantLines := []struct{ id, status, progress string }{
		{"latest", "Pulling from library/busybox", ""},
		{"3c7febba1a08", "Pulling fs layer", ""},
		{"3c7febba1a08", "Downloading", "[=>                                                 ]  36.45kB/1.064MB"},
		{"3c7febba1a08", "Downloading", "[==================================================>]  1.064MB/1.064MB"},
		{"3c7febba1a08", "Download complete", ""},
		{"3c7febba1a08", "Pull complete", ""},
		{"", "Digest: " + fakeDigest, ""},
		{"", "Status: Downloaded newer image for busybox:latest", ""},
	}
	if len(lines) != len(wantLines) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(wantLines), body)
	}
	for i, w := range wantLines {
		l := lines[i]
		if l.ID != w.id || l.Status != w.status || l.ProgressText != w.progress {
			t.Errorf("line %d = {id %q status %q progress %q}, want %+v", i, l.ID, l.Status, l.ProgressText, w)
		}
		if w.id != "" && l.Progress == nil {
			t.Errorf("line %d lacks progressDetail", i)
		}
	}
	if d := lines[2].Progress; d == nil || d.Current != 36445 || d.Total != 1064365 {
		t.Errorf("progressDetail %+v", d)
	}
}

func TestPullReferences(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	tests := []struct {
		query string
		ref   string
	}{
		{"fromImage=busybox&tag=latest", "docker.io/library/busybox:latest"},
		{"fromImage=busybox&tag=1.36", "docker.io/library/busybox:1.36"},
		{"fromImage=busybox:1.36", "docker.io/library/busybox:1.36"},
		{"fromImage=busybox", "docker.io/library/busybox"},
		{"fromImage=127.0.0.1:5000/team/busybox&tag=v1", "127.0.0.1:5000/team/busybox:v1"},
		{"fromImage=busybox&tag=" + fakeDigest, "docker.io/library/busybox@" + fakeDigest},
	}
	for _, tt := range tests {
		resp, body := do(t, http.MethodPost, srv.URL+"/images/create?"+tt.query, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", tt.query, resp.StatusCode, body)
			continue
		}
		if got := imgs.last(t).Args[0]; got != tt.ref {
			t.Errorf("%s: backend got ref %q, want %q", tt.query, got, tt.ref)
		}
	}
}

func TestPullErrors(t *testing.T) {
	t.Run("before any progress is an HTTP error", func(t *testing.T) {
		srv, _, _ := newTestServer(t)
		resp, body := do(t, http.MethodPost, srv.URL+"/images/create?fromImage=nosuch&tag=latest", nil)
		if resp.StatusCode != 404 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		var e errorBody
		if err := json.Unmarshal(body, &e); err != nil || !strings.HasPrefix(e.Message, "pull access denied for docker.io/library/nosuch:latest") {
			t.Errorf("body %s", body)
		}
	})
	t.Run("after progress is the last line of the stream", func(t *testing.T) {
		srv, _, imgs := newTestServer(t)
		imgs.pullErrAfter = errorString("connection reset by registry")
		resp, body := do(t, http.MethodPost, srv.URL+"/images/create?fromImage=busybox&tag=latest", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		lines := decodeStream(t, body)
		last := lines[len(lines)-1]
		if len(lines) != 2 || last.Error == nil || last.Error.Message != "connection reset by registry" || last.ErrorText != "connection reset by registry" {
			t.Errorf("stream %s", body)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		srv, _, imgs := newTestServer(t)
		for _, q := range []string{"fromImage=UPPER", "fromImage=busybox&tag=bad:tag", "", "fromSrc=http://example.invalid/x.tar"} {
			resp, body := do(t, http.MethodPost, srv.URL+"/images/create?"+q, nil)
			want := 400
			if strings.HasPrefix(q, "fromSrc") {
				want = 501
			}
			if resp.StatusCode != want {
				t.Errorf("%q: %d %s, want %d", q, resp.StatusCode, body, want)
			}
		}
		resp, body := do(t, http.MethodPost, srv.URL+"/images/create?fromImage=busybox", nil, registry.AuthHeader, "%%%not-base64")
		if resp.StatusCode != 400 || !strings.Contains(string(body), "X-Registry-Auth") {
			t.Errorf("bad auth header: %d %s", resp.StatusCode, body)
		}
		if n := len(imgs.Calls()); n != 0 {
			t.Errorf("backend called %d times for bad requests", n)
		}
	})
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestImportImage(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	q := url.Values{"fromSrc": {"-"}, "repo": {"myimp"}, "tag": {"v1"}, "message": {"hello"}, "changes": {"ENV A=1", "CMD [\"sh\"]"}}
	resp, body := do(t, http.MethodPost, srv.URL+"/v1.51/images/create?"+q.Encode(), strings.NewReader("rootfs-tar-bytes"), "Content-Type", "application/x-tar")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	lines := decodeStream(t, body)
	if len(lines) != 1 || lines[0].Status != fakeImageID {
		t.Errorf("stream %s", body)
	}
	want := call{"Import", []any{"rootfs-tar-bytes", backend.ImportOptions{Ref: "docker.io/library/myimp:v1", Message: "hello", Changes: []string{"ENV A=1", "CMD [\"sh\"]"}}}}
	if got := imgs.last(t); !reflect.DeepEqual(got, want) {
		t.Errorf("call %+v, want %+v", got, want)
	}
	// Without a tag the name gets "latest"; without a repo, no name.
	do(t, http.MethodPost, srv.URL+"/images/create?fromSrc=-&repo=myimp", strings.NewReader("x"))
	if got := imgs.last(t).Args[1].(backend.ImportOptions).Ref; got != "docker.io/library/myimp:latest" {
		t.Errorf("ref %q", got)
	}
	do(t, http.MethodPost, srv.URL+"/images/create?fromSrc=-", strings.NewReader("x"))
	if got := imgs.last(t).Args[1].(backend.ImportOptions).Ref; got != "" {
		t.Errorf("ref %q", got)
	}
}

func TestListImages(t *testing.T) {
	srv, _, imgs := newTestServer(t, withClock(func() time.Time { return time.Unix(1700000000, 0) }))
	filters := `{"dangling":{"false":true},"reference":{"busybox":true,"alpine:*":true},"label":["a=b"],"before":["x"],"since":["y"],"until":["10m"]}`
	resp, body := do(t, http.MethodGet, srv.URL+"/v1.41/images/json?all=1&shared-size=true&filters="+url.QueryEscape(filters), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var list []image.Summary
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != fakeImageID || list[0].RepoTags[0] != "busybox:latest" || list[0].Labels["a"] != "b" {
		t.Errorf("list %+v", list)
	}
	no := false
	want := backend.ImageListOptions{All: true, SharedSize: true, Filters: backend.ImageFilters{
		Dangling: &no, Reference: []string{"alpine:*", "busybox"}, Label: []string{"a=b"},
		Before: []string{"x"}, Since: []string{"y"}, Until: time.Unix(1700000000-600, 0),
	}}
	if got := imgs.last(t).Args[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("options %+v, want %+v", got, want)
	}

	for _, bad := range []string{`{"foo":["x"]}`, `{"dangling":["maybe"]}`, `not json`, `{"label!":["x"]}`} {
		resp, body := do(t, http.MethodGet, srv.URL+"/images/json?filters="+url.QueryEscape(bad), nil)
		if resp.StatusCode != 400 {
			t.Errorf("filters %s: %d %s", bad, resp.StatusCode, body)
		}
	}
	resp, body = do(t, http.MethodGet, srv.URL+"/images/json?filters="+url.QueryEscape(`{"foo":["x"]}`), nil)
	if string(body) != "{\"message\":\"invalid filter 'foo'\"}\n" {
		t.Errorf("invalid filter body %s", body)
	}
}

func TestInspectAndHistory(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	resp, body := do(t, http.MethodGet, srv.URL+"/v1.51/images/busybox:latest/json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("inspect: %d %s", resp.StatusCode, body)
	}
	var img image.InspectResponse
	if err := json.Unmarshal(body, &img); err != nil || img.ID != fakeImageID || img.Os != "linux" || len(img.RootFS.Layers) != 1 {
		t.Errorf("inspect %s (%v)", body, err)
	}

	// Names with slashes and ports reach the backend whole.
	do(t, http.MethodGet, srv.URL+"/images/127.0.0.1:5000/team/app:v1/json", nil)
	if got := imgs.last(t); got.Method != "Inspect" || got.Args[0] != "127.0.0.1:5000/team/app:v1" {
		t.Errorf("call %+v", got)
	}
	// An image called "json" is still an image.
	do(t, http.MethodGet, srv.URL+"/images/json/json", nil)
	if got := imgs.last(t); got.Method != "Inspect" || got.Args[0] != "json" {
		t.Errorf("call %+v", got)
	}

	resp, body = do(t, http.MethodGet, srv.URL+"/images/nosuch/json", nil)
	if resp.StatusCode != 404 || string(body) != "{\"message\":\"No such image: nosuch\"}\n" {
		t.Errorf("inspect unknown: %d %s", resp.StatusCode, body)
	}

	resp, body = do(t, http.MethodGet, srv.URL+"/images/busybox/history", nil)
	var hist []image.HistoryResponseItem
	if resp.StatusCode != 200 || json.Unmarshal(body, &hist) != nil || len(hist) != 2 || hist[1].ID != "<missing>" {
		t.Errorf("history: %d %s", resp.StatusCode, body)
	}
}

func TestTagImage(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	tests := []struct {
		query  string
		status int
		target string
	}{
		{"repo=myrepo&tag=v2", 201, "docker.io/library/myrepo:v2"},
		{"repo=myrepo", 201, "docker.io/library/myrepo:latest"},
		{"repo=127.0.0.1:5000/x/y:v3", 201, "127.0.0.1:5000/x/y:v3"},
		{"repo=BAD", 400, ""},
		{"tag=v1", 400, ""},
		{"repo=myrepo&tag=bad:tag", 400, ""},
		{"repo=myrepo@" + fakeDigest, 400, ""},
	}
	for _, tt := range tests {
		before := len(imgs.Calls())
		resp, body := do(t, http.MethodPost, srv.URL+"/images/busybox/tag?"+tt.query, nil)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.query, resp.StatusCode, body, tt.status)
			continue
		}
		if tt.status != 201 {
			if len(imgs.Calls()) != before {
				t.Errorf("%s: backend called", tt.query)
			}
			continue
		}
		if len(body) != 0 {
			t.Errorf("%s: body %q", tt.query, body)
		}
		if got, want := imgs.last(t), (call{"Tag", []any{"busybox", tt.target}}); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: call %+v, want %+v", tt.query, got, want)
		}
	}
	resp, _ := do(t, http.MethodPost, srv.URL+"/images/nosuch/tag?repo=x", nil)
	if resp.StatusCode != 404 {
		t.Errorf("tag unknown: %d", resp.StatusCode)
	}
}

func TestPushImage(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	auth := registry.AuthConfig{Username: "u", Password: "p", ServerAddress: "127.0.0.1:5000"}
	platform := `{"architecture":"arm64","os":"linux"}`
	resp, body := do(t, http.MethodPost, srv.URL+"/images/127.0.0.1:5000/team/app/push?tag=v1&platform="+url.QueryEscape(platform), nil,
		registry.AuthHeader, encodeAuth(t, auth))
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	want := call{"Push", []any{"127.0.0.1:5000/team/app:v1", backend.PushOptions{Auth: auth, Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}}}}
	if got := imgs.last(t); !reflect.DeepEqual(got, want) {
		t.Errorf("call %+v, want %+v", got, want)
	}
	lines := decodeStream(t, body)
	last := lines[len(lines)-1]
	var aux struct {
		Tag, Digest string
		Size        int
	}
	if err := json.Unmarshal(last.AuxRaw, &aux); err != nil || aux.Digest != fakeDigest || aux.Size != 527 || aux.Tag != "latest" {
		t.Errorf("aux line %s (%v)", last.AuxRaw, err)
	}
	if lines[1].Status != "Pushed" || lines[1].ID != "167d66da158a" {
		t.Errorf("line 1 %+v", lines[1])
	}

	resp, body = do(t, http.MethodPost, srv.URL+"/images/busybox/push", nil)
	if resp.StatusCode != 401 {
		t.Errorf("push without credentials: %d %s", resp.StatusCode, body)
	}
}

func TestRemoveImage(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	resp, body := do(t, http.MethodDelete, srv.URL+"/v1.45/images/busybox?force=1&noprune=true", nil)
	var del []image.DeleteResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &del) != nil || len(del) != 2 || del[0].Untagged != "busybox:latest" || del[1].Deleted != fakeImageID {
		t.Errorf("remove: %d %s", resp.StatusCode, body)
	}
	if got, want := imgs.last(t), (call{"Remove", []any{"busybox", backend.RemoveOptions{Force: true, NoPrune: true}}}); !reflect.DeepEqual(got, want) {
		t.Errorf("call %+v", got)
	}
	do(t, http.MethodDelete, srv.URL+"/images/busybox?force=0", nil)
	if got := imgs.last(t).Args[1]; got != (backend.RemoveOptions{}) {
		t.Errorf("force=0 gave %+v", got)
	}
	if resp, _ := do(t, http.MethodDelete, srv.URL+"/images/nosuch", nil); resp.StatusCode != 404 {
		t.Errorf("remove unknown: %d", resp.StatusCode)
	}
}

func TestSaveImages(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	resp, body := do(t, http.MethodGet, srv.URL+"/images/get?names=busybox&names="+url.QueryEscape(fakeImageID), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-tar" || string(body) != "fake-tar:busybox,"+fakeImageID {
		t.Errorf("save: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = do(t, http.MethodGet, srv.URL+"/images/busybox/get", nil)
	if resp.StatusCode != 200 || string(body) != "fake-tar:busybox" {
		t.Errorf("save one: %d %s", resp.StatusCode, body)
	}
	if got := imgs.last(t); !reflect.DeepEqual(got, call{"Save", []any{[]string{"busybox"}}}) {
		t.Errorf("call %+v", got)
	}
	resp, body = do(t, http.MethodGet, srv.URL+"/images/get?names=busybox&names=nosuch", nil)
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("save unknown: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodGet, srv.URL+"/images/get", nil); resp.StatusCode != 400 {
		t.Errorf("save nothing: %d", resp.StatusCode)
	}
}

func TestLoadImages(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		loaded []string
		want   []string // status or stream of each line
	}{
		{"progress", "", []string{"busybox:latest"}, []string{"Loading layer", "Loaded image: busybox:latest\n"}},
		{"quiet", "?quiet=1", []string{"busybox:latest", fakeImageID}, []string{"Loaded image: busybox:latest\n", "Loaded image ID: " + fakeImageID + "\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, imgs := newTestServer(t)
			imgs.loaded = tt.loaded
			resp, body := do(t, http.MethodPost, srv.URL+"/images/load"+tt.query, strings.NewReader("archive"), "Content-Type", "application/x-tar")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("load: %d %s", resp.StatusCode, body)
			}
			var got []string
			for _, l := range decodeStream(t, body) {
				got = append(got, l.Status+l.Stream)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
			if c := imgs.last(t); c.Args[0] != "archive" {
				t.Errorf("backend read %q", c.Args[0])
			}
		})
	}
	srv, _, _ := newTestServer(t)
	if resp, body := do(t, http.MethodPost, srv.URL+"/images/load", strings.NewReader("")); resp.StatusCode != 400 {
		t.Errorf("empty load: %d %s", resp.StatusCode, body)
	}
}

func TestPruneImages(t *testing.T) {
	srv, _, imgs := newTestServer(t)
	resp, body := do(t, http.MethodPost, srv.URL+"/images/prune?filters="+url.QueryEscape(`{"dangling":["false"],"label!":["keep"]}`), nil)
	var report image.PruneReport
	if resp.StatusCode != 200 || json.Unmarshal(body, &report) != nil || report.SpaceReclaimed != 4096 || len(report.ImagesDeleted) != 1 {
		t.Errorf("prune: %d %s", resp.StatusCode, body)
	}
	no := false
	if got := imgs.last(t).Args[0]; !reflect.DeepEqual(got, backend.ImageFilters{Dangling: &no, LabelNot: []string{"keep"}}) {
		t.Errorf("filters %+v", got)
	}
	if resp, _ := do(t, http.MethodPost, srv.URL+"/images/prune?filters="+url.QueryEscape(`{"reference":["x"]}`), nil); resp.StatusCode != 400 {
		t.Errorf("prune with a list-only filter: %d", resp.StatusCode)
	}
}

func TestSearchIsNotImplemented(t *testing.T) {
	srv, _, _ := newTestServer(t)
	resp, body := do(t, http.MethodGet, srv.URL+"/images/search?term=busybox", nil)
	if resp.StatusCode != 501 || string(body) != "{\"message\":\"image search is not implemented by berth\"}\n" {
		t.Errorf("search: %d %s", resp.StatusCode, body)
	}
}
