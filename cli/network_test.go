package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// TestNetworkCommandsSameAsDocker runs docker's CLI and berth against
// fresh fakes and expects the same output, exit status and requests.
func TestNetworkCommandsSameAsDocker(t *testing.T) {
	for _, args := range [][]string{
		{"network", "ls"},
		{"network", "list", "--no-trunc"},
		{"network", "ls", "-q"},
		{"network", "ls", "-f", "driver=bridge", "--filter", "label=app"},
		{"network", "ls", "--format", "json"},
		{"network", "ls", "--format", "table {{.Name}}\t{{.IPv4}}\t{{.IPv6}}\t{{.Internal}}\t{{.CreatedAt}}"},
		{"network", "ls", "--format", "{{.Name}} {{.Label \"tier\"}}"},
		{"network", "ls", "--format", "{{"},
		{"network", "ls", "a"},
		{"network", "inspect", "front"},
		{"network", "inspect", "-f", "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "front", "nosuch", "bridge"},
		{"network", "inspect", "-v", "-f", "{{json .Containers}}", "front"},
		{"network", "inspect"},
		{"inspect", "--type", "network", "host"},
		{"network", "create", "n1"},
		{"network", "create", "front"},
		{"network", "create", "-d", "bridge", "--subnet", "10.7.0.0/16", "--gateway", "10.7.0.1", "--ip-range", "10.7.1.0/24",
			"--internal", "--ipv6", "-o", "com.docker.network.bridge.name=br7", "--label", "a=b", "--label", "c", "--attachable", "n7"},
		{"network", "create", "--ipv4=false", "--subnet", "fd00:7::/64", "n6"},
		{"network", "create", "--gateway", "10.7.0.1", "n8"},
		{"network", "create", "--subnet", "10.7.0.0/16", "--gateway", "10.8.0.1", "n8"},
		{"network", "create", "--subnet", "10.7.0.0/16", "--subnet", "10.7.1.0/24", "n8"},
		{"network", "create"},
		{"network", "create", "a", "b"},
		{"network", "rm", "backend", "nosuch", "bridge", "front", "net2"},
		{"network", "rm", "-f", "nosuch", "net2"},
		{"network", "rm"},
		{"network", "prune", "-f"},
		{"network", "prune", "-f", "--filter", "until=24h", "--filter", "label=a"},
		{"network", "connect", "front", "old_job"},
		{"network", "connect", "--ip", "10.89.0.9", "--alias", "db", "--alias", "sql", "front", "old_job"},
		{"network", "connect", "front", "nosuch"},
		{"network", "connect", "nosuch", "web"},
		{"network", "connect", "front"},
		{"network", "disconnect", "front", "web"},
		{"network", "disconnect", "-f", "front", "web"},
		{"network", "disconnect", "front", "nosuch"},
		{"network", "bogus"},
		{"system", "prune", "-f"},
		{"port", "web", "81"},
		{"port", "web", "443"},
		{"port", "nosuch"},
		{"create", "--network", "front", "--ip", "10.89.0.7", "--network-alias", "a", "--network-alias", "b", "busybox"},
		{"create", "--network", "front", "busybox"},
		{"create", "busybox"},
		{"create", "--network", "host", "busybox"},
		{"create", "--network-alias", "a", "busybox"},
		{"create", "--network", "bridge", "--network-alias", "a", "busybox"},
		{"create", "--mac-address", "02:42:ac:11:00:09", "busybox"},
		{"create", "--mac-address", "zz", "busybox"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			de, dfe := newContainerTestEnv(t)
			be, bfe := newContainerTestEnv(t)
			want := de.docker(args...)
			got := be.berth("", args...)
			if got.code != want.code {
				t.Errorf("exit status %d, docker's %d", got.code, want.code)
			}
			if got.stdout != want.stdout {
				t.Errorf("stdout:\n%s\ndocker's:\n%s", got.stdout, want.stdout)
			}
			if wantErr := dockerToBerth(want.stderr); got.stderr != wantErr {
				t.Errorf("stderr:\n%q\ndocker's (renamed):\n%q", got.stderr, wantErr)
			}
			compareNetworkRequests(t, dfe, bfe)
		})
	}
}

// compareNetworkRequests checks that berth sent the daemon what docker
// sent: the same network requests, with equal JSON bodies and filters,
// and the same networking part of a container create.
func compareNetworkRequests(t *testing.T, docker, berth *fakeEngine) {
	t.Helper()
	pick := func(f *fakeEngine) []fakeRequest {
		f.fakeAPI.mu.Lock()
		defer f.fakeAPI.mu.Unlock()
		var out []fakeRequest
		for _, r := range f.fakeAPI.requests {
			if strings.HasPrefix(r.Path, "/networks") && (r.Method != "GET" || r.Query.Get("filters") != "") || r.Path == "/containers/create" {
				out = append(out, r)
			}
		}
		return out
	}
	dr, br := pick(docker), pick(berth)
	if len(dr) != len(br) {
		t.Fatalf("requests %v, docker's %v", br, dr)
	}
	for i := range dr {
		if dr[i].Method != br[i].Method || dr[i].Path != br[i].Path {
			t.Errorf("request %s %s, docker's %s %s", br[i].Method, br[i].Path, dr[i].Method, dr[i].Path)
			continue
		}
		if !reflect.DeepEqual(filtersOf(t, dr[i].Query.Get("filters")), filtersOf(t, br[i].Query.Get("filters"))) {
			t.Errorf("%s filters %s, docker's %s", br[i].Path, br[i].Query.Get("filters"), dr[i].Query.Get("filters"))
		}
		db, bb := networkPart(t, dr[i]), networkPart(t, br[i])
		if !reflect.DeepEqual(db, bb) {
			t.Errorf("%s body %v\ndocker's %v", br[i].Path, bb, db)
		}
	}
}

func filtersOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	if raw == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("filters %q: %v", raw, err)
	}
	return m
}

// networkPart decodes a request body; for a container create, only its
// NetworkingConfig and network mode.
func networkPart(t *testing.T, r fakeRequest) any {
	t.Helper()
	if r.Body == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("body of %s: %v", r.Path, err)
	}
	if r.Path == "/containers/create" {
		hc, _ := m["HostConfig"].(map[string]any)
		return []any{m["NetworkingConfig"], m["MacAddress"], hc["NetworkMode"]}
	}
	return m
}

// TestNetworkingFlags checks the endpoint settings run and create send.
func TestNetworkingFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    map[string]*network.EndpointSettings
		wantErr string
	}{
		{args: nil, want: map[string]*network.EndpointSettings{"default": {}}},
		{args: []string{"--network", "front"}, want: map[string]*network.EndpointSettings{}},
		{args: []string{"--network", "host"}, want: map[string]*network.EndpointSettings{}},
		{args: []string{"--network", "front", "--ip", "10.89.0.7", "--network-alias", "a", "--network-alias", "b"},
			want: map[string]*network.EndpointSettings{"front": {Aliases: []string{"a", "b"},
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.89.0.7")}}}},
		{args: []string{"--net", "front", "--ip6", "fd00::7"},
			want: map[string]*network.EndpointSettings{"front": {IPAMConfig: &network.EndpointIPAMConfig{IPv6Address: netip.MustParseAddr("fd00::7")}}}},
		{args: []string{"--mac-address", "02:42:ac:11:00:09"},
			want: map[string]*network.EndpointSettings{"default": {MacAddress: network.HardwareAddr{2, 0x42, 0xac, 0x11, 0, 9}}}},
		{args: []string{"--ip", "172.17.0.9"}, wantErr: "user specified IP address is supported on user defined networks only"},
		{args: []string{"--network", "host", "--ip", "172.17.0.9"}, wantErr: "user specified IP address is supported on user defined networks only"},
		{args: []string{"--network-alias", "a"}, wantErr: "network-scoped aliases are only supported for user-defined networks"},
		{args: []string{"--network", "container:web", "--network-alias", "a"}, wantErr: "network-scoped aliases are only supported for user-defined networks"},
		{args: []string{"--network", "front", "--ip", "10.89.0"}, wantErr: "invalid IPv4 address: 10.89.0"},
		{args: []string{"--mac-address", "zz"}, wantErr: "zz is not a valid mac address"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			req, err := parseRunFlags(t, tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := req.Networking.EndpointsConfig
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("endpoints %s, want %s", jsonString(got), jsonString(tt.want))
			}
			if want := container.NetworkMode(flagValue(tt.args, "--network", "--net", "default")); req.HostConfig.NetworkMode != want {
				t.Errorf("network mode %q, want %q", req.HostConfig.NetworkMode, want)
			}
		})
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// flagValue is the value after the last of the names in args, or def.
func flagValue(args []string, name, alias, def string) string {
	v := def
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name || args[i] == alias {
			v = args[i+1]
		}
	}
	return v
}

// parseRunFlags parses create's flags and builds the request for busybox.
func parseRunFlags(t *testing.T, args []string) (*createRequest, error) {
	t.Helper()
	var o runOptions
	fs := pflag.NewFlagSet("create", pflag.ContinueOnError)
	addRunFlags(fs, &o, false)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o.containerConfig("busybox", nil, func(string) string { return "" })
}

// TestNetworkPruneAsksAsDocker answers network prune's question both ways,
// to docker's CLI and to berth.
func TestNetworkPruneAsksAsDocker(t *testing.T) {
	bin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed")
	}
	for _, answer := range []string{"y\n", "n\n", ""} {
		t.Run(strings.TrimSpace(answer), func(t *testing.T) {
			de, dfe := newContainerTestEnv(t)
			be, bfe := newContainerTestEnv(t)
			cmd := exec.Command(bin, "network", "prune")
			cmd.Env = []string{"DOCKER_HOST=unix://" + de.socket, "HOME=" + de.home, "DOCKER_CONFIG=" + filepath.Join(de.home, ".docker-real"), "PATH=/usr/bin:/bin"}
			cmd.Stdin = strings.NewReader(answer)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			code := 0
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatal(err)
				}
				code = ee.ExitCode()
			}
			got := be.berth(answer, "network", "prune")
			if got.code != code || got.stdout != out.String() || got.stderr != dockerToBerth(errOut.String()) {
				t.Errorf("berth: %d %q %q\ndocker: %d %q %q", got.code, got.stdout, got.stderr, code, out.String(), errOut.String())
			}
			if d, b := len(dfe.recorded("POST", "/networks/prune")), len(bfe.recorded("POST", "/networks/prune")); d != b {
				t.Errorf("berth pruned %d times, docker %d", b, d)
			}
		})
	}
}
