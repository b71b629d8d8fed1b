package docker

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"berth.dev/api/docker/backend"
)

// TestVolumesSDK drives the volume routes with moby's client.
func TestVolumesSDK(t *testing.T) {
	cs := newContainerServer(t)
	c := mobyClient(t, cs)
	ctx := context.Background()

	created, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "data", Labels: map[string]string{"a": "b"}})
	if err != nil || created.Volume.Name != "data" || created.Volume.Labels["a"] != "b" {
		t.Fatalf("create %+v %v", created, err)
	}
	if _, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "x", Driver: "nfs"}); !cerrdefs.IsNotFound(err) {
		t.Errorf("create with an unknown driver: %v", err)
	}
	list, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("dangling", "true").Add("label", "a")})
	if err != nil || len(list.Items) != 2 || list.Items[1].Name != "data" {
		t.Errorf("list %+v %v", list, err)
	}
	if got := cs.v.last(t); !reflect.DeepEqual(got, call2("List", backend.VolumeFilters{"dangling": {"true"}, "label": {"a"}})) {
		t.Errorf("list call %+v", got)
	}
	if _, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("dangling", "maybe")}); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("list with a bad dangling value: %v", err)
	}
	insp, err := c.VolumeInspect(ctx, "data", client.VolumeInspectOptions{})
	if err != nil || insp.Volume.Mountpoint != "/var/lib/berth/volumes/data/_data" {
		t.Errorf("inspect %+v %v", insp, err)
	}
	if _, err := c.VolumeInspect(ctx, "nosuch", client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "get nosuch: no such volume") {
		t.Errorf("inspect of an unknown volume: %v", err)
	}
	if _, err := c.VolumeRemove(ctx, "busy", client.VolumeRemoveOptions{}); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "volume is in use") {
		t.Errorf("remove of a volume in use: %v", err)
	}
	if _, err := c.VolumeRemove(ctx, "busy", client.VolumeRemoveOptions{Force: true}); err != nil {
		t.Errorf("forced remove: %v", err)
	}
	pr, err := c.VolumePrune(ctx, client.VolumePruneOptions{All: true})
	if err != nil || pr.Report.SpaceReclaimed != 1024 || pr.Report.VolumesDeleted[0] != "old" {
		t.Errorf("prune %+v %v", pr, err)
	}
	if got := cs.v.last(t); !reflect.DeepEqual(got, call2("Prune", backend.VolumeFilters{"all": {"true"}})) {
		t.Errorf("prune call %+v", got)
	}
}

// TestVolumeRoutes checks shapes and codes the SDK hides.
func TestVolumeRoutes(t *testing.T) {
	cs := newContainerServer(t)
	q := func(s string) string {
		return strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", "[", "%5B", "]", "%5D").Replace(s)
	}
	tests := []struct {
		method, path, body string
		status             int
		want               string // a substring of the body
		prune              backend.VolumeFilters
	}{
		{"POST", "/volumes/create", ``, 201, `"Name":"5555`, nil},
		{"POST", "/volumes/create", `{"Name":"v1"}`, 201, `"Driver":"local"`, nil},
		{"POST", "/volumes/create", `{`, 400, "invalid JSON", nil},
		{"GET", "/volumes?filters=" + q(`{"nope":["x"]}`), ``, 400, "invalid filter 'nope'", nil},
		{"GET", "/volumes?filters=" + q(`{"name":["v"],"driver":["local"]}`), ``, 200, `"Warnings":null`, nil},
		{"DELETE", "/volumes/v1", ``, 204, ``, nil},
		{"DELETE", "/volumes/v1", ``, 404, `get v1: no such volume`, nil},
		{"POST", "/volumes/prune?filters=" + q(`{"until":["1h"]}`), ``, 400, "invalid filter 'until'", nil},
		{"POST", "/volumes/prune?filters=" + q(`{"all":["x"]}`), ``, 400, "invalid filter 'all=x'", nil},
		// Before API 1.42, prune removed named volumes too.
		{"POST", "/v1.41/volumes/prune", ``, 200, `"VolumesDeleted":["old"]`, backend.VolumeFilters{"all": {"true"}}},
		{"POST", "/v1.42/volumes/prune?filters=" + q(`{"label":["a"]}`), ``, 200, `"SpaceReclaimed":1024`, backend.VolumeFilters{"label": {"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := do(t, tt.method, cs.URL+tt.path, strings.NewReader(tt.body), "Content-Type", "application/json")
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s, want %d and %q", resp.StatusCode, body, tt.status, tt.want)
			}
			if tt.prune != nil {
				if got := cs.v.last(t); !reflect.DeepEqual(got, call2("Prune", tt.prune)) {
					t.Errorf("prune call %+v, want filters %v", got, tt.prune)
				}
			}
		})
	}

	// An empty list is [] as dockerd's, not null.
	empty := &fakeVolumes{volumes: map[string]volume.Volume{}}
	url := httptestServer(t, NewServer(Backends{Volumes: empty}).Handler())
	resp, body := do(t, http.MethodGet, url+"/volumes", nil)
	var lr map[string]json.RawMessage
	if err := json.Unmarshal(body, &lr); resp.StatusCode != 200 || err != nil || string(lr["Volumes"]) != "[]" {
		t.Errorf("empty list %d %s %v", resp.StatusCode, body, err)
	}
}
