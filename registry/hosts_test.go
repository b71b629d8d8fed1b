package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"

	"berth.dev/internal/errdefs"
)

func TestParseHosts(t *testing.T) {
	doc := `
root = "/var/lib/berth"   # the engine's key: ignored here

[[registry.hosts]]
host = "docker.io"
mirrors = ["https://mirror.example.com/hub", "127.0.0.1:5001", "http://plain.example.com"]

[[registry.hosts]]
host = "Registry.LAN:5000"
insecure = true
`
	h, err := ParseHosts([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		pull bool
		want []Endpoint
	}{
		{"docker.io", true, []Endpoint{
			{Host: "mirror.example.com", Path: "/hub", Mirror: true, AuthHost: "mirror.example.com"},
			{Host: "127.0.0.1:5001", Mirror: true, Insecure: true, AuthHost: "127.0.0.1:5001"},
			{Host: "plain.example.com", PlainHTTP: true, Mirror: true, AuthHost: "plain.example.com"},
			{Host: DockerHubAPIHost, AuthHost: DockerHub},
		}},
		{"docker.io", false, []Endpoint{{Host: DockerHubAPIHost, AuthHost: DockerHub}}},
		{"index.docker.io", false, []Endpoint{{Host: DockerHubAPIHost, AuthHost: DockerHub}}},
		{"registry.lan:5000", true, []Endpoint{{Host: "registry.lan:5000", Insecure: true, AuthHost: "registry.lan:5000"}}},
		{"example.com", true, []Endpoint{{Host: "example.com", AuthHost: "example.com"}}},
		{"127.0.0.1:5000", true, []Endpoint{{Host: "127.0.0.1:5000", Insecure: true, AuthHost: "127.0.0.1:5000"}}},
		{"127.9.8.7", true, []Endpoint{{Host: "127.9.8.7", Insecure: true, AuthHost: "127.9.8.7"}}},
		{"localhost:5000", true, []Endpoint{{Host: "localhost:5000", Insecure: true, AuthHost: "localhost:5000"}}},
		{"[::1]:5000", true, []Endpoint{{Host: "[::1]:5000", Insecure: true, AuthHost: "[::1]:5000"}}},
		{"128.0.0.1:5000", true, []Endpoint{{Host: "128.0.0.1:5000", AuthHost: "128.0.0.1:5000"}}},
	} {
		if got := h.Endpoints(tc.host, tc.pull); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Endpoints(%s, pull=%v)\n got %+v\nwant %+v", tc.host, tc.pull, got, tc.want)
		}
	}
	// nil Hosts: the defaults.
	var none *Hosts
	if got := none.Endpoints("127.0.0.1:5000", true); len(got) != 1 || !got[0].Insecure {
		t.Fatalf("nil Hosts: %+v", got)
	}
}

func TestParseHostsErrors(t *testing.T) {
	for _, doc := range []string{
		"[[registry.hosts]]\nhost = \"a.io\"\n[[registry.hosts]]\nhost = \"A.io\"\n",
		"[[registry.hosts]]\nhost = \"https://a.io\"\n",
		"[[registry.hosts]]\nhost = \"a.io\"\nmirrors = [\"ftp://m\"]\n",
		"[[registry.hosts]]\nhost = \"a.io\"\nsecure = false\n",
		"[registry\n",
	} {
		if _, err := ParseHosts([]byte(doc)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseHosts(%q): %v, want invalid argument", doc, err)
		}
	}
}

func TestLoadHosts(t *testing.T) {
	dir := t.TempDir()
	h, err := LoadHosts(filepath.Join(dir, "missing.toml"))
	if err != nil || h.Lookup("example.com").Insecure {
		t.Fatalf("missing file: %+v, %v", h, err)
	}
	path := filepath.Join(dir, "berth.toml")
	os.WriteFile(path, []byte("[[registry.hosts]]\nhost = \"example.com\"\ninsecure = true\n"), 0o644)
	h, err = LoadHosts(path)
	if err != nil || !h.Lookup("example.com").Insecure {
		t.Fatalf("LoadHosts: %+v, %v", h, err)
	}
}

// recordingRegistry serves one manifest for the repositories in has and
// 404 for the others, recording the paths asked.
type recordingRegistry struct {
	has  map[string]bool
	mu   sync.Mutex
	seen []string
	srv  *httptest.Server
}

func newRecordingRegistry(t *testing.T, tls bool, has ...string) *recordingRegistry {
	r := &recordingRegistry{has: map[string]bool{}}
	for _, h := range has {
		r.has[h] = true
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.URL.Path)
		r.mu.Unlock()
		repo, _, ok := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v2/"), "/manifests/")
		if !ok || !r.has[repo] {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		w.Header().Set("Docker-Content-Digest", digest.FromString(testIndex).String())
		w.Write([]byte(testIndex))
	})
	if tls {
		r.srv = httptest.NewTLSServer(handler)
	} else {
		r.srv = httptest.NewServer(handler)
	}
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recordingRegistry) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(r.srv.URL, "https://"), "http://")
}

func (r *recordingRegistry) paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func TestMirrorsTriedFirst(t *testing.T) {
	// docker.io with a mirror that has library/busybox: the mirror
	// answers and Docker Hub (unreachable here) is never needed.
	mirror := newRecordingRegistry(t, false, "library/busybox")
	hosts, err := NewHosts(HostConfig{Host: "docker.io", Mirrors: []string{"http://" + mirror.host()}})
	if err != nil {
		t.Fatal(err)
	}
	c := fastClient(WithHosts(hosts), WithRetries(0))
	ref, _ := reference.ParseNormalizedNamed("busybox")
	desc, err := c.Resolve(context.Background(), ref)
	if err != nil || desc.Digest != digest.FromString(testIndex) {
		t.Fatalf("Resolve through the mirror: %+v, %v", desc, err)
	}
	if p := mirror.paths(); len(p) == 0 || p[0] != "/v2/library/busybox/manifests/latest" {
		t.Fatalf("mirror saw %q", p)
	}

	// A mirror without the image: the registry itself answers.
	upstream := newRecordingRegistry(t, false, "team/app")
	empty := newRecordingRegistry(t, false)
	hosts, err = NewHosts(HostConfig{Host: upstream.host(), Mirrors: []string{"http://" + empty.host()}})
	if err != nil {
		t.Fatal(err)
	}
	c = fastClient(WithHosts(hosts), WithRetries(0))
	ref, _ = reference.ParseNormalizedNamed(upstream.host() + "/team/app:v1")
	if _, err := c.Resolve(context.Background(), ref); err != nil {
		t.Fatalf("Resolve past an empty mirror: %v", err)
	}
	if len(empty.paths()) == 0 || len(upstream.paths()) == 0 {
		t.Fatalf("mirror saw %q, registry saw %q; want both asked", empty.paths(), upstream.paths())
	}
	// Pushes never go to mirrors.
	before := len(empty.paths())
	c.PushManifest(context.Background(), ref, "application/vnd.oci.image.index.v1+json", []byte(testIndex))
	if len(empty.paths()) != before {
		t.Fatal("a push went to the mirror")
	}
}

func TestInsecureHosts(t *testing.T) {
	ctx := context.Background()
	// A loopback registry over plain HTTP: https fails, http works.
	plain := newRecordingRegistry(t, false, "a/b")
	ref, _ := reference.ParseNormalizedNamed(plain.host() + "/a/b:v1")
	c := fastClient(WithRetries(0))
	if _, err := c.Resolve(ctx, ref); err != nil {
		t.Fatalf("loopback over http: %v", err)
	}
	// A loopback registry over TLS with a self-signed certificate:
	// accepted because loopback is insecure.
	tlsReg := newRecordingRegistry(t, true, "a/b")
	ref, _ = reference.ParseNormalizedNamed(tlsReg.host() + "/a/b:v1")
	if _, err := c.Resolve(ctx, ref); err != nil {
		t.Fatalf("loopback over https with a self-signed certificate: %v", err)
	}
	// The same registry under a name that is not loopback (localhost
	// aliases would be insecure): the certificate is checked and refused.
	secure := &Hosts{byHost: map[string]HostConfig{}}
	if secure.Lookup("example.com").Insecure {
		t.Fatal("example.com insecure by default")
	}
	host := strings.Replace(tlsReg.host(), "127.0.0.1", "berth-test.invalid", 1)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, tlsReg.host())
	}
	c = fastClient(WithRetries(0), WithHTTPClient(&http.Client{Transport: tr}))
	ref, _ = reference.ParseNormalizedNamed(host + "/a/b:v1")
	if _, err := c.Resolve(ctx, ref); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("secure host with a self-signed certificate: %v", err)
	}
	// Configured insecure: accepted.
	hosts, _ := NewHosts(HostConfig{Host: host, Insecure: true})
	c = fastClient(WithRetries(0), WithHTTPClient(&http.Client{Transport: tr}), WithHosts(hosts))
	if _, err := c.Resolve(ctx, ref); err != nil {
		t.Fatalf("insecure host: %v", err)
	}
}
