package docker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

// call is one backend method call as the fake saw it.
type call struct {
	Method string
	Args   []any
}

// recorder keeps the calls a fake backend received.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) record(method string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{method, args})
}

func (r *recorder) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// last returns the last call, failing the test when there was none.
func (r *recorder) last(t *testing.T) call {
	t.Helper()
	calls := r.Calls()
	if len(calls) == 0 {
		t.Fatal("the backend was not called")
	}
	return calls[len(calls)-1]
}

const (
	fakeImageID = "sha256:f6fa3fce626d14c87a22a456a32e06fab365231574c28b2d25fb5dac8688bb60"
	fakeDigest  = "sha256:85db5fcfc8687899e0f74f6a1b06952f223763abd3f438e51fd38aa479a7a8f1"
)

// fakeSystem is a SystemBackend with fixed answers.
type fakeSystem struct {
	recorder
	err      error
	recorded []events.Message
	live     chan events.Message
}

func (f *fakeSystem) Info(ctx context.Context) (system.Info, error) {
	f.record("Info")
	if f.err != nil {
		return system.Info{}, f.err
	}
	return system.Info{ID: "berth-test-id", Name: "berth-test-host", Driver: "overlay", Images: 2,
		ServerVersion: "0.1.0-test", OSType: "linux", OperatingSystem: "Berth Test OS", NCPU: 2,
		MemTotal: 1 << 30, DockerRootDir: "/var/lib/berth", CgroupDriver: "cgroupfs", CgroupVersion: "2"}, nil
}

func (f *fakeSystem) Version(ctx context.Context) (system.VersionResponse, error) {
	f.record("Version")
	if f.err != nil {
		return system.VersionResponse{}, f.err
	}
	return system.VersionResponse{Platform: system.PlatformInfo{Name: "Berth Test Engine"}, Version: "0.1.0-test",
		GitCommit: "abc1234", KernelVersion: "6.18.0-test"}, nil
}

func (f *fakeSystem) DiskUsage(ctx context.Context, opts backend.DiskUsageOptions) (backend.DiskUsage, error) {
	f.record("DiskUsage", opts)
	if f.err != nil {
		return backend.DiskUsage{}, f.err
	}
	du := backend.DiskUsage{LayersSize: 12345}
	if opts.Images {
		du.Images = []image.Summary{{ID: fakeImageID, RepoTags: []string{"busybox:latest"}, Size: 4096, Containers: 0}}
	}
	return du, nil
}

func (f *fakeSystem) SubscribeEvents(ctx context.Context, since time.Time) ([]events.Message, <-chan events.Message, error) {
	f.record("SubscribeEvents", since)
	if f.err != nil {
		return nil, nil, f.err
	}
	live := f.live
	if live == nil {
		live = make(chan events.Message)
	}
	return f.recorded, live, nil
}

func (f *fakeSystem) AuthLogin(ctx context.Context, auth registry.AuthConfig) (string, error) {
	f.record("AuthLogin", auth)
	if auth.Password != "good" {
		return "", fmt.Errorf("login to %s: incorrect username or password: %w", auth.ServerAddress, errdefs.ErrUnauthorized)
	}
	return "token-123", nil
}

// fakeImages is an ImageBackend with fixed answers: it knows one image,
// busybox, and fails any other name with ErrNotFound.
type fakeImages struct {
	recorder
	// pullErrAfter, when set, fails Pull after its first progress line.
	pullErrAfter error
	// loaded is what Load reports.
	loaded []string
}

func (f *fakeImages) known(name string) error {
	switch name {
	case "busybox", "busybox:latest", "docker.io/library/busybox:latest", fakeImageID, fakeImageID[7:19]:
		return nil
	}
	return fmt.Errorf("No such image: %s: %w", name, errdefs.ErrNotFound)
}

func (f *fakeImages) Pull(ctx context.Context, ref string, opts backend.PullOptions, p backend.ProgressWriter) error {
	f.record("Pull", ref, opts)
	if !strings.Contains(ref, "busybox") {
		return fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", ref, errdefs.ErrNotFound)
	}
	_ = p.WriteProgress(backend.Progress{ID: "latest", Status: "Pulling from library/busybox"})
	if f.pullErrAfter != nil {
		return f.pullErrAfter
	}
	for _, u := range []backend.Progress{
		{ID: "3c7febba1a08", Status: "Pulling fs layer"},
		{ID: "3c7febba1a08", Status: "Downloading", Current: 36445, Total: 1064365},
		{ID: "3c7febba1a08", Status: "Downloading", Current: 1064365, Total: 1064365},
		{ID: "3c7febba1a08", Status: "Download complete"},
		{ID: "3c7febba1a08", Status: "Pull complete"},
		{Status: "Digest: " + fakeDigest},
		{Status: "Status: Downloaded newer image for busybox:latest"},
	} {
		if err := p.WriteProgress(u); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeImages) Import(ctx context.Context, src io.Reader, opts backend.ImportOptions, p backend.ProgressWriter) (string, error) {
	body, err := io.ReadAll(src)
	if err != nil {
		return "", err
	}
	f.record("Import", string(body), opts)
	return fakeImageID, nil
}

func (f *fakeImages) Push(ctx context.Context, ref string, opts backend.PushOptions, p backend.ProgressWriter) error {
	f.record("Push", ref, opts)
	if opts.Auth.Username == "" {
		return fmt.Errorf("push %s: authentication required: %w", ref, errdefs.ErrUnauthorized)
	}
	_ = p.WriteProgress(backend.Progress{Status: "The push refers to repository [" + ref + "]"})
	_ = p.WriteProgress(backend.Progress{ID: "167d66da158a", Status: "Pushed"})
	_ = p.WriteProgress(backend.Progress{Status: "latest: digest: " + fakeDigest + " size: 527"})
	return p.WriteProgress(backend.Progress{Aux: map[string]any{"Tag": "latest", "Digest": fakeDigest, "Size": 527}})
}

func (f *fakeImages) List(ctx context.Context, opts backend.ImageListOptions) ([]image.Summary, error) {
	f.record("List", opts)
	return []image.Summary{{ID: fakeImageID, RepoTags: []string{"busybox:latest"}, RepoDigests: []string{"busybox@" + fakeDigest},
		Created: 1700000000, Size: 4096, SharedSize: -1, Containers: -1, Labels: map[string]string{"a": "b"}}}, nil
}

func (f *fakeImages) Inspect(ctx context.Context, name string) (image.InspectResponse, error) {
	f.record("Inspect", name)
	if err := f.known(name); err != nil {
		return image.InspectResponse{}, err
	}
	return image.InspectResponse{ID: fakeImageID, RepoTags: []string{"busybox:latest"}, Architecture: "amd64", Os: "linux",
		Size: 4096, RootFS: image.RootFS{Type: "layers", Layers: []string{"sha256:167d66da158a5a541255dcb2f18b8cc9eccc09766e2db61224fa67f0aabb5d6f"}}}, nil
}

func (f *fakeImages) History(ctx context.Context, name string) ([]image.HistoryResponseItem, error) {
	f.record("History", name)
	if err := f.known(name); err != nil {
		return nil, err
	}
	return []image.HistoryResponseItem{
		{ID: fakeImageID, Created: 1700000000, CreatedBy: "/bin/sh -c #(nop) CMD [\"sh\"]", Tags: []string{"busybox:latest"}, Comment: "berth-fake-history"},
		{ID: "<missing>", Created: 1700000000, CreatedBy: "/bin/sh -c #(nop) ADD file:abc in /", Size: 4096},
	}, nil
}

func (f *fakeImages) Tag(ctx context.Context, source, target string) error {
	f.record("Tag", source, target)
	return f.known(source)
}

func (f *fakeImages) Remove(ctx context.Context, name string, opts backend.RemoveOptions) ([]image.DeleteResponse, error) {
	f.record("Remove", name, opts)
	if err := f.known(name); err != nil {
		return nil, err
	}
	return []image.DeleteResponse{{Untagged: "busybox:latest"}, {Deleted: fakeImageID}}, nil
}

func (f *fakeImages) Save(ctx context.Context, names []string, w io.Writer) error {
	f.record("Save", names)
	for _, n := range names {
		if err := f.known(n); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "fake-tar:"+strings.Join(names, ","))
	return err
}

func (f *fakeImages) Load(ctx context.Context, r io.Reader, p backend.ProgressWriter) ([]string, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	f.record("Load", string(body))
	if string(body) == "" {
		return nil, fmt.Errorf("empty archive: %w", errdefs.ErrInvalidArgument)
	}
	_ = p.WriteProgress(backend.Progress{ID: "167d66da158a", Status: "Loading layer", Current: 100, Total: 100})
	return f.loaded, nil
}

func (f *fakeImages) Prune(ctx context.Context, filters backend.ImageFilters) (image.PruneReport, error) {
	f.record("Prune", filters)
	return image.PruneReport{ImagesDeleted: []image.DeleteResponse{{Deleted: fakeImageID}}, SpaceReclaimed: 4096}, nil
}

// newTestServer starts an httptest server over fresh fakes.
func newTestServer(t *testing.T, opts ...Option) (*httptest.Server, *fakeSystem, *fakeImages) {
	t.Helper()
	sys, imgs := &fakeSystem{}, &fakeImages{}
	srv := httptest.NewServer(NewServer(Backends{System: sys, Images: imgs}, opts...).Handler())
	t.Cleanup(srv.Close)
	return srv, sys, imgs
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url string, body io.Reader, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// httptestServer serves h for the test and returns its base URL.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
