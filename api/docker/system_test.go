package docker

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"

	"berth.dev/api/docker/backend"
)

func TestVersion(t *testing.T) {
	srv, _, _ := newTestServer(t)
	resp, body := do(t, http.MethodGet, srv.URL+"/v1.41/version", nil)
	var v system.VersionResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &v) != nil {
		t.Fatalf("version: %d %s", resp.StatusCode, body)
	}
	if v.APIVersion != MaxAPIVersion || v.MinAPIVersion != MinAPIVersion || v.Version != "0.1.0-test" ||
		v.Os != runtime.GOOS || v.Arch != runtime.GOARCH || v.GoVersion != runtime.Version() || v.Platform.Name != "Berth Test Engine" {
		t.Errorf("version %+v", v)
	}
	if len(v.Components) != 1 || v.Components[0].Name != "Engine" || v.Components[0].Details["ApiVersion"] != MaxAPIVersion ||
		v.Components[0].Details["GitCommit"] != "abc1234" {
		t.Errorf("components %+v", v.Components)
	}
}

func TestInfo(t *testing.T) {
	srv, _, _ := newTestServer(t)
	resp, body := do(t, http.MethodGet, srv.URL+"/info", nil)
	var info system.Info
	if resp.StatusCode != 200 || json.Unmarshal(body, &info) != nil {
		t.Fatalf("info: %d %s", resp.StatusCode, body)
	}
	if info.ID != "berth-test-id" || info.Driver != "overlay" || info.NCPU != 2 || info.CgroupVersion != "2" {
		t.Errorf("info %+v", info)
	}
}

func TestDiskUsage(t *testing.T) {
	srv, sys, _ := newTestServer(t)
	resp, body := do(t, http.MethodGet, srv.URL+"/system/df", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("df: %d %s", resp.StatusCode, body)
	}
	var du legacyDiskUsage
	if err := json.Unmarshal(body, &du); err != nil || du.LayersSize != 12345 || len(du.Images) != 1 {
		t.Errorf("df %s (%v)", body, err)
	}
	// Kinds asked for are lists even when empty, as the docker CLI ranges
	// over them.
	for _, kind := range []string{`"Containers":[]`, `"Volumes":[]`, `"BuildCache":[]`} {
		if !strings.Contains(string(body), kind) {
			t.Errorf("df body lacks %s: %s", kind, body)
		}
	}
	all := backend.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true}
	if got := sys.last(t).Args[0]; got != all {
		t.Errorf("options %+v", got)
	}

	resp, body = do(t, http.MethodGet, srv.URL+"/system/df?type=image&type=volume", nil)
	if got := sys.last(t).Args[0]; resp.StatusCode != 200 || got != (backend.DiskUsageOptions{Images: true, Volumes: true}) {
		t.Errorf("typed df: %d %s %+v", resp.StatusCode, body, got)
	}
	if !strings.Contains(string(body), `"Containers":null`) {
		t.Errorf("a kind not asked for should be null: %s", body)
	}
	if resp, _ := do(t, http.MethodGet, srv.URL+"/system/df?type=bogus", nil); resp.StatusCode != 400 {
		t.Errorf("bad type: %d", resp.StatusCode)
	}
}

func TestAuth(t *testing.T) {
	srv, sys, _ := newTestServer(t)
	good := registry.AuthConfig{Username: "berth-test", Password: "good", ServerAddress: "127.0.0.1:5000"}
	b, _ := json.Marshal(good)
	resp, body := do(t, http.MethodPost, srv.URL+"/auth", strings.NewReader(string(b)), "Content-Type", "application/json")
	var ar registry.AuthResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &ar) != nil || ar.Status != "Login Succeeded" || ar.IdentityToken != "token-123" {
		t.Errorf("login: %d %s", resp.StatusCode, body)
	}
	if got := sys.last(t).Args[0]; got != good {
		t.Errorf("backend got %+v", got)
	}
	bad := good
	bad.Password = "bad"
	b, _ = json.Marshal(bad)
	if resp, body := do(t, http.MethodPost, srv.URL+"/auth", strings.NewReader(string(b))); resp.StatusCode != 401 {
		t.Errorf("bad login: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodPost, srv.URL+"/auth", strings.NewReader("{")); resp.StatusCode != 400 {
		t.Errorf("bad body: %d", resp.StatusCode)
	}
}

func imageEvent(action events.Action, id, name string, at int64) events.Message {
	return events.Message{Type: events.ImageEventType, Action: action, Scope: "local",
		Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name}}, Time: at, TimeNano: at * 1e9}
}

func containerEvent(action events.Action, id, name, image string, at int64) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: action, Scope: "local",
		Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name, "image": image, "com.example.team": "a"}}, Time: at, TimeNano: at * 1e9}
}

var recordedEvents = []events.Message{
	imageEvent(events.ActionPull, "busybox:latest", "busybox", 100),
	containerEvent(events.ActionCreate, "c0ffee1234", "web", "busybox:latest", 101),
	containerEvent(events.ActionStart, "c0ffee1234", "web", "busybox:latest", 102),
	containerEvent(events.ActionHealthStatusHealthy, "c0ffee1234", "web", "busybox:latest", 103),
	imageEvent(events.ActionTag, fakeImageID, "myrepo:v2", 104),
	{Type: events.NetworkEventType, Action: events.ActionConnect, Actor: events.Actor{ID: "net1", Attributes: map[string]string{"name": "bridge", "container": "c0ffee1234"}}, Time: 105, TimeNano: 105e9},
}

// readEvents reads an event stream to its end.
func readEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var got []string
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		var m eventMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		got = append(got, string(m.Type)+" "+string(m.Action)+" "+m.Actor.ID)
	}
	return got
}

func TestEventsFilters(t *testing.T) {
	tests := []struct {
		filters string
		want    []int // indexes into recordedEvents
	}{
		{``, []int{0, 1, 2, 3, 4, 5}},
		{`{"type":["container"]}`, []int{1, 2, 3}},
		{`{"type":{"image":true,"network":true}}`, []int{0, 4, 5}},
		{`{"event":["start","tag"]}`, []int{2, 4}},
		{`{"event":["health_status"]}`, []int{3}},
		{`{"container":["web"]}`, []int{1, 2, 3}},
		{`{"container":["c0ff"]}`, []int{1, 2, 3}},
		{`{"image":["busybox"]}`, []int{0, 1, 2, 3}},
		{`{"image":["myrepo:v2"]}`, []int{4}},
		{`{"image":["myrepo"],"event":["tag"]}`, []int{4}},
		{`{"label":["com.example.team=a"]}`, []int{1, 2, 3}},
		{`{"label":["com.example.team=b"]}`, nil},
		{`{"network":["bridge"]}`, []int{5}},
		{`{"scope":["local"]}`, []int{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.filters, func(t *testing.T) {
			srv, sys, _ := newTestServer(t)
			sys.recorded = recordedEvents
			q := url.Values{"since": {"50"}, "until": {"1000"}}
			if tt.filters != "" {
				q.Set("filters", tt.filters)
			}
			resp, body := do(t, http.MethodGet, srv.URL+"/events?"+q.Encode(), nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("events: %d %s", resp.StatusCode, body)
			}
			var want []string
			for _, i := range tt.want {
				m := recordedEvents[i]
				want = append(want, string(m.Type)+" "+string(m.Action)+" "+m.Actor.ID)
			}
			if got := readEvents(t, body); !reflect.DeepEqual(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}
			if got := sys.last(t).Args[0].(time.Time); !got.Equal(time.Unix(50, 0)) {
				t.Errorf("since %v", got)
			}
		})
	}
}

func TestEventsLegacyFields(t *testing.T) {
	srv, sys, _ := newTestServer(t)
	sys.recorded = recordedEvents[1:2]
	_, body := do(t, http.MethodGet, srv.URL+"/events?until=1000", nil)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m["status"] != "create" || m["id"] != "c0ffee1234" || m["from"] != "busybox:latest" || m["Type"] != "container" || m["timeNano"] != float64(101e9) {
		t.Errorf("event %s", body)
	}
}

func TestEventsUntilAndLive(t *testing.T) {
	srv, sys, _ := newTestServer(t)
	live := make(chan events.Message, 3)
	sys.live = live
	sys.recorded = recordedEvents[:1]
	now := time.Now()
	at := now.Unix()
	live <- imageEvent(events.ActionPull, "alpine:latest", "alpine", at)
	live <- imageEvent(events.ActionTag, "late", "late", at+3600)
	until := strconv.FormatInt(at+60, 10)
	resp, body := do(t, http.MethodGet, srv.URL+"/events?until="+until, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	// The stream ends at the first event past "until", without waiting
	// for the clock to reach it.
	want := []string{"image pull busybox:latest", "image pull alpine:latest"}
	if got := readEvents(t, body); !reflect.DeepEqual(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}

	// An "until" in the past ends after the recorded events without
	// reading live ones.
	live <- imageEvent(events.ActionPull, "never", "never", at)
	_, body = do(t, http.MethodGet, srv.URL+"/events?since=1&until=101", nil)
	if got := readEvents(t, body); !reflect.DeepEqual(got, []string{"image pull busybox:latest"}) {
		t.Errorf("past until: %q", got)
	}
	if len(live) != 1 {
		t.Errorf("a live event was consumed")
	}

	// A closed live channel ends the stream.
	close(live)
	_, body = do(t, http.MethodGet, srv.URL+"/events", nil)
	if got := readEvents(t, body); len(got) != 2 {
		t.Errorf("closed channel: %q", got)
	}
}

func TestEventsBadRequests(t *testing.T) {
	srv, sys, _ := newTestServer(t)
	for _, q := range []string{"since=yesterday", "until=x", "filters=" + url.QueryEscape(`{"foo":["x"]}`)} {
		if resp, body := do(t, http.MethodGet, srv.URL+"/events?"+q, nil); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
	if len(sys.Calls()) != 0 {
		t.Errorf("backend subscribed for a bad request")
	}
}
