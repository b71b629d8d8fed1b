package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

const fakeNetworkID = "ae7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e"

// fakeNetworks is a NetworkBackend over a map of names. "bridge" is
// predefined, "busy" has an endpoint, and the only container is "c1".
type fakeNetworks struct {
	recorder
	mu       sync.Mutex
	networks map[string]network.Inspect
}

func newFakeNetworks() *fakeNetworks {
	return &fakeNetworks{networks: map[string]network.Inspect{
		"bridge": {Network: network.Network{Name: "bridge", ID: strings.Repeat("b", 64), Driver: "bridge", Scope: "local"}},
		"busy": {Network: network.Network{Name: "busy", ID: strings.Repeat("d", 64), Driver: "bridge", Scope: "local"},
			Containers: map[string]network.EndpointResource{fakeContainerID: {Name: "c1"}}},
	}}
}

func (f *fakeNetworks) Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	f.record("Create", req)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case req.Name == "bridge":
		return network.CreateResponse{}, fmt.Errorf("operation is not permitted on predefined bridge network : %w", errdefs.ErrForbidden)
	case f.networks[req.Name].Name != "":
		return network.CreateResponse{}, fmt.Errorf("network with name %s already exists: %w", req.Name, errdefs.ErrConflict)
	case req.Driver != "" && req.Driver != "bridge":
		return network.CreateResponse{}, fmt.Errorf("plugin %q not found: %w", req.Driver, errdefs.ErrInvalidArgument)
	}
	f.networks[req.Name] = network.Inspect{Network: network.Network{Name: req.Name, ID: fakeNetworkID, Driver: "bridge", Scope: "local", Labels: req.Labels}}
	return network.CreateResponse{ID: fakeNetworkID}, nil
}

func (f *fakeNetworks) List(ctx context.Context, filters backend.NetworkFilters) ([]network.Summary, error) {
	f.record("List", filters)
	f.mu.Lock()
	defer f.mu.Unlock()
	var list []network.Summary
	for _, n := range f.networks {
		list = append(list, network.Summary{Network: n.Network})
	}
	slices.SortFunc(list, func(a, b network.Summary) int { return strings.Compare(a.Name, b.Name) })
	return list, nil
}

func (f *fakeNetworks) get(name string) (network.Inspect, error) {
	n, ok := f.networks[name]
	if !ok {
		return network.Inspect{}, fmt.Errorf("network %s not found: %w", name, errdefs.ErrNotFound)
	}
	return n, nil
}

func (f *fakeNetworks) Inspect(ctx context.Context, name string, opts backend.NetworkInspectOptions) (network.Inspect, error) {
	f.record("Inspect", name, opts)
	f.mu.Lock()
	defer f.mu.Unlock()
	if opts.Scope != "" && opts.Scope != "local" {
		return network.Inspect{}, fmt.Errorf("network %s not found: %w", name, errdefs.ErrNotFound)
	}
	return f.get(name)
}

func (f *fakeNetworks) Remove(ctx context.Context, name string) error {
	f.record("Remove", name)
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.get(name)
	switch {
	case err != nil:
		return err
	case name == "bridge":
		return fmt.Errorf("bridge is a pre-defined network and cannot be removed: %w", errdefs.ErrForbidden)
	case len(n.Containers) > 0:
		return fmt.Errorf("error while removing network: network %s has active endpoints: %w", name, errdefs.ErrForbidden)
	}
	delete(f.networks, name)
	return nil
}

func (f *fakeNetworks) Connect(ctx context.Context, name, container string, settings *network.EndpointSettings) error {
	f.record("Connect", name, container, settings)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(name); err != nil {
		return err
	}
	if container != "c1" {
		return fmt.Errorf("No such container: %s: %w", container, errdefs.ErrNotFound)
	}
	return nil
}

func (f *fakeNetworks) Disconnect(ctx context.Context, name, container string, force bool) error {
	f.record("Disconnect", name, container, force)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(name); err != nil {
		return err
	}
	if container != "c1" {
		return fmt.Errorf("No such container: %s: %w", container, errdefs.ErrNotFound)
	}
	return nil
}

func (f *fakeNetworks) Prune(ctx context.Context, filters backend.NetworkFilters) (network.PruneReport, error) {
	f.record("Prune", filters)
	return network.PruneReport{NetworksDeleted: []string{"old"}}, nil
}

// networkServer serves a fakeNetworks over TCP and a unix socket, and
// returns its URL, socket path and fake.
func networkServer(t *testing.T) (string, string, *fakeNetworks) {
	t.Helper()
	fn := newFakeNetworks()
	s := NewServer(Backends{System: &fakeSystem{}, Networks: fn})
	url := httptestServer(t, s.Handler())
	sock := filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return url, sock, fn
}

// TestNetworksSDK drives every network route with moby's client.
func TestNetworksSDK(t *testing.T) {
	_, sock, fn := networkServer(t)
	c, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	ipam := &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.1")}}}
	created, err := c.NetworkCreate(ctx, "n1", client.NetworkCreateOptions{Driver: "bridge", IPAM: ipam, Internal: true, Labels: map[string]string{"a": "b"}})
	if err != nil || created.ID != fakeNetworkID {
		t.Fatalf("create %+v %v", created, err)
	}
	want := network.CreateRequest{Name: "n1", Driver: "bridge", IPAM: ipam, Internal: true, Labels: map[string]string{"a": "b"}}
	if got := fn.last(t); !reflect.DeepEqual(got, call2("Create", want)) {
		t.Errorf("create call %+v, want %+v", got, want)
	}
	if _, err := c.NetworkCreate(ctx, "n1", client.NetworkCreateOptions{}); !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "network with name n1 already exists") {
		t.Errorf("create of a name in use: %v", err)
	}
	if _, err := c.NetworkCreate(ctx, "bridge", client.NetworkCreateOptions{}); !cerrdefs.IsPermissionDenied(err) {
		t.Errorf("create of a predefined name: %v", err)
	}

	list, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("driver", "bridge").Add("type", "custom")})
	if err != nil || len(list.Items) != 3 || list.Items[2].Name != "n1" {
		t.Errorf("list %+v %v", list, err)
	}
	if got := fn.last(t); !reflect.DeepEqual(got, call2("List", backend.NetworkFilters{"driver": {"bridge"}, "type": {"custom"}})) {
		t.Errorf("list call %+v", got)
	}
	if _, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("color", "red")}); !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "invalid filter 'color'") {
		t.Errorf("list with an unknown filter: %v", err)
	}

	insp, err := c.NetworkInspect(ctx, "busy", client.NetworkInspectOptions{Verbose: true, Scope: "local"})
	if err != nil || insp.Network.ID != strings.Repeat("d", 64) || insp.Network.Containers[fakeContainerID].Name != "c1" {
		t.Errorf("inspect %+v %v", insp, err)
	}
	if got := fn.last(t); !reflect.DeepEqual(got, call2("Inspect", "busy", backend.NetworkInspectOptions{Verbose: true, Scope: "local"})) {
		t.Errorf("inspect call %+v", got)
	}
	if _, err := c.NetworkInspect(ctx, "nosuch", client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "network nosuch not found") {
		t.Errorf("inspect of an unknown network: %v", err)
	}

	settings := &network.EndpointSettings{Aliases: []string{"web"}, IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.99.0.9")}}
	if _, err := c.NetworkConnect(ctx, "n1", client.NetworkConnectOptions{Container: "c1", EndpointConfig: settings}); err != nil {
		t.Errorf("connect: %v", err)
	}
	if got := fn.last(t); !reflect.DeepEqual(got, call2("Connect", "n1", "c1", settings)) {
		t.Errorf("connect call %+v", got)
	}
	if _, err := c.NetworkConnect(ctx, "n1", client.NetworkConnectOptions{Container: "nosuch"}); !cerrdefs.IsNotFound(err) {
		t.Errorf("connect of an unknown container: %v", err)
	}
	if _, err := c.NetworkDisconnect(ctx, "n1", client.NetworkDisconnectOptions{Container: "c1", Force: true}); err != nil {
		t.Errorf("disconnect: %v", err)
	}
	if got := fn.last(t); !reflect.DeepEqual(got, call2("Disconnect", "n1", "c1", true)) {
		t.Errorf("disconnect call %+v", got)
	}

	if _, err := c.NetworkRemove(ctx, "busy", client.NetworkRemoveOptions{}); !cerrdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "has active endpoints") {
		t.Errorf("remove of a network in use: %v", err)
	}
	if _, err := c.NetworkRemove(ctx, "n1", client.NetworkRemoveOptions{}); err != nil {
		t.Errorf("remove: %v", err)
	}
	if _, err := c.NetworkRemove(ctx, "n1", client.NetworkRemoveOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("second remove: %v", err)
	}

	pr, err := c.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: make(client.Filters).Add("label", "a=b").Add("until", "1h")})
	if err != nil || !reflect.DeepEqual(pr.Report.NetworksDeleted, []string{"old"}) {
		t.Errorf("prune %+v %v", pr, err)
	}
	if got := fn.last(t); !reflect.DeepEqual(got, call2("Prune", backend.NetworkFilters{"label": {"a=b"}, "until": {"1h"}})) {
		t.Errorf("prune call %+v", got)
	}
}

// TestNetworkRoutes checks shapes, codes and parameter checks the SDK
// hides.
func TestNetworkRoutes(t *testing.T) {
	url, _, fn := networkServer(t)
	q := func(s string) string {
		return strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", "[", "%5B", "]", "%5D").Replace(s)
	}
	tests := []struct {
		method, path, body string
		status             int
		want               string // the body, or a substring of it
		call               *call  // the backend's last call, when checked
	}{
		{"POST", "/networks/create", `{"Name":"n1"}`, 201, `{"Id":"` + fakeNetworkID + `","Warning":""}`, nil},
		{"POST", "/networks/create", ``, 400, "invalid JSON: got EOF while reading request body", nil},
		{"POST", "/networks/create", `{"Name":""}`, 400, "invalid name: ", nil},
		{"POST", "/networks/create", `{"Name":"n2","Driver":"overlay"}`, 400, `plugin \"overlay\" not found`, nil},
		{"POST", "/networks/create", `{"Name":"n1"}`, 409, "network with name n1 already exists", nil},
		{"POST", "/networks/create", `{"Name":"bridge"}`, 403, "operation is not permitted on predefined bridge network", nil},
		// EnableIPv4 came with API 1.47; older clients' value is dropped.
		{"POST", "/v1.46/networks/create", `{"Name":"n3","EnableIPv4":false}`, 201, `"Id"`,
			&call{"Create", []any{network.CreateRequest{Name: "n3"}}}},
		{"GET", "/networks", ``, 200, `"Name":"bridge"`, &call{"List", []any{backend.NetworkFilters{}}}},
		{"GET", "/networks/", ``, 200, `"Name":"busy"`, nil},
		{"GET", "/networks?filters=" + q(`{"nope":["x"]}`), ``, 400, "invalid filter 'nope'", nil},
		{"GET", "/networks?filters=" + q(`{"dangling":["maybe"]}`), ``, 400, "invalid value for filter 'dangling'", nil},
		{"GET", "/networks?filters=" + q(`{"type":["odd"]}`), ``, 400, "invalid filter: 'type'='odd'", nil},
		{"GET", "/networks?filters=" + q(`{"dangling":{"true":true},"name":["n"],"id":["ab"],"label":["a"],"scope":["local"]}`), ``, 200, `"Id"`,
			&call{"List", []any{backend.NetworkFilters{"dangling": {"true"}, "name": {"n"}, "id": {"ab"}, "label": {"a"}, "scope": {"local"}}}}},
		{"GET", "/networks/busy?verbose=x", ``, 400, "invalid value for verbose: x", nil},
		{"GET", "/networks/busy?scope=swarm", ``, 404, "network busy not found", nil},
		{"GET", "/networks/busy", ``, 200, `"Containers":{"` + fakeContainerID + `"`,
			&call{"Inspect", []any{"busy", backend.NetworkInspectOptions{}}}},
		{"POST", "/networks/busy/connect", ``, 400, "invalid JSON", nil},
		{"POST", "/networks/busy/connect", `{}`, 400, `invalid name or ID supplied: \"\"`, nil},
		{"POST", "/networks/busy/connect", `{"Container":"c1"}`, 200, ``,
			&call{"Connect", []any{"busy", "c1", (*network.EndpointSettings)(nil)}}},
		{"POST", "/networks/nosuch/connect", `{"Container":"c1"}`, 404, "network nosuch not found", nil},
		{"POST", "/networks/busy/disconnect", `{"Container":"x"}`, 404, "No such container: x", nil},
		{"POST", "/networks/busy/disconnect", `{"Container":"c1"}`, 200, ``,
			&call{"Disconnect", []any{"busy", "c1", false}}},
		{"DELETE", "/networks/bridge", ``, 403, "bridge is a pre-defined network and cannot be removed", nil},
		{"DELETE", "/networks/n1", ``, 204, ``, &call{"Remove", []any{"n1"}}},
		{"DELETE", "/networks/n1", ``, 404, "network n1 not found", nil},
		{"POST", "/networks/prune?filters=" + q(`{"dangling":["true"]}`), ``, 400, "invalid filter 'dangling'", nil},
		{"POST", "/networks/prune?filters=" + q(`{"until":["yesterday"]}`), ``, 400, `invalid timestamp \"yesterday\"`, nil},
		{"POST", "/networks/prune?filters=" + q(`{"label!":["keep"]}`), ``, 200, `{"NetworksDeleted":["old"]}`,
			&call{"Prune", []any{backend.NetworkFilters{"label!": {"keep"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := do(t, tt.method, url+tt.path, strings.NewReader(tt.body), "Content-Type", "application/json")
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s, want %d and %q", resp.StatusCode, body, tt.status, tt.want)
			}
			if tt.want == "" && len(body) != 0 {
				t.Errorf("body %q, want none", body)
			}
			if tt.call != nil {
				if got := fn.last(t); !reflect.DeepEqual(got, *tt.call) {
					t.Errorf("backend call %+v, want %+v", got, *tt.call)
				}
			}
		})
	}

	// An empty list is [] as dockerd's, not null.
	empty := &fakeNetworks{networks: map[string]network.Inspect{}}
	emptyURL := httptestServer(t, NewServer(Backends{Networks: empty}).Handler())
	resp, body := do(t, http.MethodGet, emptyURL+"/networks", nil)
	var list []json.RawMessage
	if err := json.Unmarshal(body, &list); resp.StatusCode != 200 || err != nil || string(body) != "[]\n" {
		t.Errorf("empty list %d %q %v", resp.StatusCode, body, err)
	}

	// Without a network backend every route answers 501.
	none := httptestServer(t, NewServer(Backends{}).Handler())
	for _, p := range []string{"GET /networks", "GET /networks/x", "POST /networks/create", "DELETE /networks/x", "POST /networks/x/connect", "POST /networks/x/disconnect", "POST /networks/prune"} {
		method, path, _ := strings.Cut(p, " ")
		resp, body := do(t, method, none+path, nil)
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "network API is not available") {
			t.Errorf("%s without a backend: %d %s", p, resp.StatusCode, body)
		}
	}
}

// TestNetworksDockerCLI runs docker's network commands against the routes.
func TestNetworksDockerCLI(t *testing.T) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed")
	}
	_, sock, fn := networkServer(t)
	dir := t.TempDir()
	tests := []struct {
		args []string
		fail bool
		want string // a substring of the output
		call string // the backend method the command must reach
	}{
		{[]string{"network", "create", "--subnet", "10.99.0.0/24", "--label", "a=b", "n1"}, false, fakeNetworkID, "Create"},
		{[]string{"network", "create", "n1"}, true, "network with name n1 already exists", "Create"},
		{[]string{"network", "ls"}, false, "NETWORK ID     NAME      DRIVER    SCOPE\nbbbbbbbbbbbb   bridge    bridge    local", "List"},
		{[]string{"network", "ls", "-f", "name=n", "-q"}, false, fakeNetworkID[:12], "List"},
		{[]string{"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{len .Containers}}", "busy"}, false, "busy bridge 1", "Inspect"},
		{[]string{"network", "inspect", "nosuch"}, true, "network nosuch not found", "Inspect"},
		{[]string{"network", "connect", "--alias", "db", "n1", "c1"}, false, "", "Connect"},
		{[]string{"network", "disconnect", "-f", "n1", "c1"}, false, "", "Disconnect"},
		{[]string{"network", "rm", "busy"}, true, "has active endpoints", "Remove"},
		{[]string{"network", "rm", "n1"}, false, "n1", "Remove"},
		{[]string{"network", "prune", "-f"}, false, "Deleted Networks:\nold", "Prune"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(dockerBin, tt.args...)
			cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+filepath.Join(dir, "config"),
				"DOCKER_CONTEXT=", "DOCKER_API_VERSION=", "DOCKER_CLI_HINTS=false")
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.fail || !strings.Contains(string(out), tt.want) {
				t.Errorf("%v\n%s\nwant failure %v and %q", err, out, tt.fail, tt.want)
			}
			if got := fn.last(t); got.Method != tt.call {
				t.Errorf("backend call %+v, want %s", got, tt.call)
			}
		})
	}
}
