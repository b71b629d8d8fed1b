package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
)

// fakeAPI is a Docker Engine API server with canned answers and a record
// of the requests it saw, for driving the CLI (and the real docker CLI)
// without a daemon.
type fakeAPI struct {
	mu       sync.Mutex
	requests []fakeRequest

	images  []image.Summary
	history map[string][]image.HistoryResponseItem
	// pullStream and pushStream are the JSON messages answered to pull
	// and push, one per line.
	pullStream []string
	pushStream []string
}

// fakeRequest is one request the fake answered.
type fakeRequest struct {
	Method, Path string
	Query        url.Values
	Auth         string
	Body         string
}

const fakeAPIVersion = "1.50"

// fakeImageID is the ID of the fake's busybox image.
const fakeImageID = "sha256:6d3e4188a38af91b0c1577b9e88c53368926b2fe0e1fb985d6e8a70040520c4d"

// newFakeAPI returns a fake holding two images: busybox (tagged twice,
// pulled from a registry so it has a digest) and a dangling one.
func newFakeAPI() *fakeAPI {
	now := time.Now()
	return &fakeAPI{
		images: []image.Summary{
			{
				ID:          fakeImageID,
				RepoTags:    []string{"busybox:latest", "localhost:5000/team/busybox:1.36"},
				RepoDigests: []string{"busybox@sha256:37f7b378a29ceb4c551b1b5582e27747b855bbfaa73fa11914fe0df028dc581f"},
				Created:     now.Add(-15 * 24 * time.Hour).Unix(),
				Size:        4261234,
				SharedSize:  -1,
				Containers:  -1,
			},
			{
				ID:         "sha256:a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824",
				Created:    now.Add(-3 * time.Hour).Unix(),
				Size:       120,
				SharedSize: -1,
				Containers: -1,
			},
		},
		history: map[string][]image.HistoryResponseItem{
			"busybox": {
				{ID: fakeImageID, Created: now.Add(-15 * 24 * time.Hour).Unix(), CreatedBy: "CMD [\"sh\"]", Comment: "buildkit.dockerfile.v0", Tags: []string{"busybox:latest"}},
				{ID: "<missing>", Created: now.Add(-16 * 24 * time.Hour).Unix(), CreatedBy: "ADD busybox.tar.xz / # buildkit\twith a long tail of words", Size: 4261234},
			},
		},
		pullStream: []string{
			`{"status":"Pulling from library/busybox","id":"latest"}`,
			`{"status":"Pulling fs layer","progressDetail":{},"id":"90b9666d4aed"}`,
			`{"status":"Downloading","progressDetail":{"current":1024,"total":2048},"progress":"[=>  ]","id":"90b9666d4aed"}`,
			`{"status":"Download complete","progressDetail":{},"id":"90b9666d4aed"}`,
			`{"status":"Pull complete","progressDetail":{},"id":"90b9666d4aed"}`,
			`{"status":"Digest: sha256:37f7b378a29ceb4c551b1b5582e27747b855bbfaa73fa11914fe0df028dc581f"}`,
			`{"status":"Status: Downloaded newer image for busybox:latest"}`,
		},
		pushStream: []string{
			`{"status":"The push refers to repository [localhost:5000/team/busybox]"}`,
			`{"status":"Preparing","progressDetail":{},"id":"65014c70e84b"}`,
			`{"status":"Pushing","progressDetail":{"current":512,"total":2048},"progress":"[=>  ]","id":"65014c70e84b"}`,
			`{"status":"Pushed","progressDetail":{},"id":"65014c70e84b"}`,
			`{"status":"1.36: digest: sha256:37f7b378a29ceb4c551b1b5582e27747b855bbfaa73fa11914fe0df028dc581f size: 527"}`,
			`{"progressDetail":{},"aux":{"Tag":"1.36","Digest":"sha256:37f7b378a29ceb4c551b1b5582e27747b855bbfaa73fa11914fe0df028dc581f","Size":527}}`,
		},
	}
}

// serve starts the fake on a unix socket and stops it when the test ends.
func (f *fakeAPI) serve(t testing.TB, socket string) {
	t.Helper()
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// recorded returns the requests seen so far for method and path.
func (f *fakeAPI) recorded(method, path string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.requests {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

var fakeVersionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := fakeVersionPrefix.ReplaceAllString(r.URL.Path, "")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{
		Method: r.Method, Path: path, Query: r.URL.Query(),
		Auth: r.Header.Get(registry.AuthHeader), Body: string(body),
	})
	f.mu.Unlock()

	w.Header().Set("Api-Version", fakeAPIVersion)
	w.Header().Set("Ostype", "linux")
	switch {
	case path == "/_ping":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "OK")
	case path == "/version":
		writeFakeJSON(w, http.StatusOK, system.VersionResponse{
			Platform: system.PlatformInfo{Name: "berth"}, Version: "0.1.0", APIVersion: fakeAPIVersion,
			MinAPIVersion: "1.24", Os: "linux", Arch: "amd64", GoVersion: "go1.26",
			Components: []system.ComponentVersion{{Name: "Engine", Version: "0.1.0", Details: map[string]string{"GitCommit": "abc1234", "GoVersion": "go1.26"}}},
		})
	case path == "/info":
		writeFakeJSON(w, http.StatusOK, system.Info{
			ID: "fake-id", Images: 2, Driver: "overlay2", ServerVersion: "0.1.0", OSType: "linux", NCPU: 2,
			MemTotal: 1 << 30, Name: "fakehost", DockerRootDir: "/var/lib/berth",
			SecurityOptions: []string{"name=seccomp,profile=builtin", "name=cgroupns"},
			Warnings:        []string{"WARNING: this is a fake"},
		})
	case path == "/system/df":
		// The df answer counts containers and shared sizes, which the
		// image list leaves out.
		images := make([]image.Summary, len(f.images))
		for i, img := range f.images {
			img.Containers, img.SharedSize = 0, 0
			images[i] = img
		}
		writeFakeJSON(w, http.StatusOK, map[string]any{"LayersSize": 4261354, "Images": images})
	case path == "/images/json":
		writeFakeJSON(w, http.StatusOK, f.images)
	case path == "/images/create" && r.URL.Query().Get("fromImage") != "":
		if strings.Contains(r.URL.Query().Get("fromImage"), "nosuch") {
			writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "pull access denied for nosuch, repository does not exist or may require authorization"})
			return
		}
		if strings.Contains(r.URL.Query().Get("fromImage"), "broken") {
			writeFakeStream(w, f.pullStream[:2], `{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}`)
			return
		}
		writeFakeStream(w, f.pullStream)
	case path == "/images/create":
		writeFakeStream(w, []string{`{"status":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}`})
	case path == "/build":
		f.serveBuild(w, r, body)
	case path == "/images/load":
		writeFakeStream(w, []string{`{"stream":"Loaded image: busybox:latest\n"}`})
	case path == "/images/get":
		w.Header().Set("Content-Type", "application/x-tar")
		fmt.Fprintf(w, "tar of %s", strings.Join(r.URL.Query()["names"], ","))
	case path == "/images/prune":
		writeFakeJSON(w, http.StatusOK, image.PruneReport{
			ImagesDeleted:  []image.DeleteResponse{{Deleted: "sha256:a416a98b71e224a31ee99cff8e16063554498227d2b696152a9c3e0aa65e5824"}},
			SpaceReclaimed: 120,
		})
	case path == "/auth":
		var a registry.AuthConfig
		json.Unmarshal(body, &a)
		if a.Username != "user" || a.Password != "secret" {
			writeFakeJSON(w, http.StatusUnauthorized, map[string]string{"message": "login attempt to https://" + a.ServerAddress + "/v2/ failed with status: 401 Unauthorized"})
			return
		}
		writeFakeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded"})
	case strings.HasPrefix(path, "/images/"):
		f.serveImage(w, r, strings.TrimPrefix(path, "/images/"))
	default:
		writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
	}
}

// serveImage answers the routes under /images/{name}.
func (f *fakeAPI) serveImage(w http.ResponseWriter, r *http.Request, rest string) {
	var name, verb string
	for _, v := range []string{"/json", "/history", "/tag", "/push"} {
		if n, ok := strings.CutSuffix(rest, v); ok {
			name, verb = n, v
			break
		}
	}
	if verb == "" {
		name = rest
	}
	img, ok := f.lookup(name)
	if verb == "/push" {
		img, ok = f.lookup(name + ":" + r.URL.Query().Get("tag"))
	}
	if !ok {
		writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "No such image: " + withLatest(name)})
		return
	}
	switch {
	case verb == "/json" && r.Method == http.MethodGet:
		writeFakeJSON(w, http.StatusOK, image.InspectResponse{
			ID: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests, Size: img.Size,
			Created: time.Unix(img.Created, 0).UTC().Format(time.RFC3339Nano), Os: "linux", Architecture: "amd64",
		})
	case verb == "/history":
		writeFakeJSON(w, http.StatusOK, f.history["busybox"])
	case verb == "/tag":
		w.WriteHeader(http.StatusCreated)
	case verb == "/push":
		writeFakeStream(w, f.pushStream)
	case verb == "" && r.Method == http.MethodDelete:
		writeFakeJSON(w, http.StatusOK, []image.DeleteResponse{{Untagged: withLatest(name)}, {Deleted: img.ID}})
	default:
		writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
	}
}

// lookup finds an image by a tag, a repository (":latest" implied) or an
// ID prefix.
func (f *fakeAPI) lookup(name string) (image.Summary, bool) {
	for _, img := range f.images {
		if strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), strings.TrimPrefix(name, "sha256:")) && len(name) >= 4 {
			return img, true
		}
		for _, t := range img.RepoTags {
			if t == name || t == withLatest(name) {
				return img, true
			}
		}
	}
	return image.Summary{}, false
}

func withLatest(name string) string {
	if strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
		return name
	}
	return name + ":latest"
}

func writeFakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeFakeStream(w http.ResponseWriter, lines []string, more ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	for _, l := range append(append([]string{}, lines...), more...) {
		io.WriteString(w, l+"\r\n")
	}
}

// fakeDaemonEnv, set in the environment of the test binary, makes it act
// as berthd: serve the fake API on the socket given by --host.
const fakeDaemonEnv = "BERTH_TEST_FAKE_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(fakeDaemonEnv) != "" {
		os.Exit(runFakeDaemon(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runFakeDaemon serves the fake API until SIGTERM. It writes its pid to
// fake-berthd.pid next to the socket so that the test can stop it, and
// gives up after a minute in case the test could not.
func runFakeDaemon(args []string) int {
	var host string
	for i, a := range args {
		if a == "--host" && i+1 < len(args) {
			host = args[i+1]
		}
	}
	socket, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		fmt.Fprintln(os.Stderr, "fake berthd: --host unix://PATH required")
		return 2
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(socket), "fake-berthd.pid"), fmt.Appendf(nil, "%d", os.Getpid()), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "fake berthd listening on", socket)
	srv := &http.Server{Handler: newFakeAPI()}
	go srv.Serve(l)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
	}
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return 1
	}
	return 0
}
