package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"

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

const (
	fakeContainerID = "c0ffee1234c0ffee1234c0ffee1234c0ffee1234c0ffee1234c0ffee12345678"
	fakeTTYID       = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e"
)

// fakeContainer is one container the fake knows.
type fakeContainer struct {
	id        string
	tty       bool
	openStdin bool
	running   bool
	paused    bool
	// exited is closed when the container stops, with exitCode.
	exited chan struct{}
	// started is closed at its first start: an attach made before waits
	// for it, as the engine's does (no output is lost before start).
	started  chan struct{}
	exitOnce sync.Once
	exitCode int64
}

func (c *fakeContainer) exit(code int64) {
	c.exitOnce.Do(func() {
		c.exitCode = code
		c.running = false
		close(c.exited)
	})
}

// fakeExec is one exec the fake created.
type fakeExec struct {
	container string
	req       container.ExecCreateRequest
	started   bool
	exitCode  *int
}

// fakeContainers is a ContainerBackend over two containers: "c1" (no
// terminal) and "t1" (with one). Attach and exec start echo their stdin, in
// capitals, to stdout as "out:" and to stderr as "err:" lines, and the
// container exits with code 3 when an attached stdin ends. Logs has two
// entries, and with follow also whatever the test sends on followed.
type fakeContainers struct {
	recorder
	mu         sync.Mutex
	containers map[string]*fakeContainer
	execs      map[string]*fakeExec
	followed   chan backend.LogMessage
	// extracted are the names in the archives PUT into containers.
	extracted []string
	// created counts the containers Create made.
	created int
}

// closedChan is a channel already closed: c1 and t1 have been started
// before the tests begin.
func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func newFakeContainers() *fakeContainers {
	return &fakeContainers{
		containers: map[string]*fakeContainer{
			"c1": {id: fakeContainerID, exited: make(chan struct{}), started: closedChan()},
			"t1": {id: fakeTTYID, tty: true, exited: make(chan struct{}), started: closedChan()},
		},
		execs:    map[string]*fakeExec{},
		followed: make(chan backend.LogMessage),
	}
}

var fakeLogTime = time.Date(2025, 1, 2, 3, 4, 5, 600000000, time.UTC)

func (f *fakeContainers) get(name string) (*fakeContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = strings.TrimPrefix(name, "/")
	for n, c := range f.containers {
		if n == name || (len(name) >= 3 && strings.HasPrefix(c.id, name)) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("No such container: %s: %w", name, errdefs.ErrNotFound)
}

func (f *fakeContainers) Create(ctx context.Context, name string, req container.CreateRequest) (container.CreateResponse, error) {
	f.record("Create", name, req)
	if req.Image != "busybox" {
		return container.CreateResponse{}, fmt.Errorf("No such image: %s: %w", req.Image, errdefs.ErrNotFound)
	}
	if name == "taken" {
		return container.CreateResponse{}, fmt.Errorf(`Conflict. The container name "/taken" is already in use: %w`, errdefs.ErrConflict)
	}
	f.mu.Lock()
	// Each container its own ID (the first "abab..."): clients name a
	// container by the ID create answered, and a shared one would pick any.
	f.created++
	id := strings.Repeat("ab", 32)
	if f.created > 1 {
		id = fmt.Sprintf("%s%04x", id[:60], f.created)
	}
	c := &fakeContainer{id: id, tty: req.Tty, openStdin: req.OpenStdin, exited: make(chan struct{}), started: make(chan struct{})}
	if name == "" {
		name = fmt.Sprintf("generated%d", len(f.containers))
	}
	f.containers[strings.TrimPrefix(name, "/")] = c
	f.mu.Unlock()
	return container.CreateResponse{ID: c.id}, nil
}

func (f *fakeContainers) Start(ctx context.Context, name string) (bool, error) {
	f.record("Start", name)
	c, err := f.get(name)
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	already := c.running
	c.running = true
	select {
	case <-c.started:
	default:
		close(c.started)
	}
	return already, nil
}

func (f *fakeContainers) Stop(ctx context.Context, name string, opts backend.StopOptions) (bool, error) {
	f.record("Stop", name, opts)
	c, err := f.get(name)
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !c.running {
		return true, nil
	}
	c.exit(137)
	return false, nil
}

func (f *fakeContainers) Restart(ctx context.Context, name string, opts backend.StopOptions) error {
	f.record("Restart", name, opts)
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c.exit(137)
	c.running, c.exited, c.exitOnce = true, make(chan struct{}), sync.Once{}
	return nil
}

func (f *fakeContainers) Kill(ctx context.Context, name string, signal string) error {
	f.record("Kill", name, signal)
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !c.running {
		return fmt.Errorf("Container %s is not running: %w", c.id, errdefs.ErrConflict)
	}
	c.exit(137)
	return nil
}

func (f *fakeContainers) Wait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	f.record("Wait", name, cond)
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	ch := make(chan container.WaitResponse, 1)
	go func() {
		defer close(ch)
		select {
		case <-c.exited:
			ch <- container.WaitResponse{StatusCode: c.exitCode}
		case <-ctx.Done():
		}
	}()
	return ch, nil
}

func (f *fakeContainers) Remove(ctx context.Context, name string, opts backend.ContainerRemoveOptions) error {
	f.record("Remove", name, opts)
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.running && !opts.Force {
		return fmt.Errorf("cannot remove container %s: container is running: stop the container before removing or force remove: %w", name, errdefs.ErrConflict)
	}
	return nil
}

func (f *fakeContainers) List(ctx context.Context, opts backend.ContainerListOptions) ([]container.Summary, error) {
	f.record("List", opts)
	return []container.Summary{{ID: fakeContainerID, Names: []string{"/c1"}, Image: "busybox", Command: "sh", State: container.StateRunning, Status: "Up 2 minutes"}}, nil
}

func (f *fakeContainers) Inspect(ctx context.Context, name string, size bool) (container.InspectResponse, error) {
	f.record("Inspect", name, size)
	c, err := f.get(name)
	if err != nil {
		return container.InspectResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return container.InspectResponse{ID: c.id, Name: "/" + name, Image: fakeImageID,
		State:  &container.State{Running: c.running, Paused: c.paused, Status: container.StateCreated},
		Config: &container.Config{Image: "busybox", Tty: c.tty, OpenStdin: c.openStdin, Cmd: []string{"sh"}}, HostConfig: &container.HostConfig{}}, nil
}

// echo copies stdin, in capitals, to stdout and stderr until it ends.
func echo(stdin io.Reader, stdout, stderr io.Writer) error {
	data, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	up := strings.ToUpper(string(data))
	if stdout != nil {
		if _, err := io.WriteString(stdout, "out:"+up); err != nil {
			return err
		}
	}
	if stderr != nil {
		if _, err := io.WriteString(stderr, "err:"+up); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeContainers) Attach(ctx context.Context, name string, opts backend.AttachOptions) error {
	f.record("Attach", name, opts.Logs, opts.Stream, opts.DetachKeys, opts.Stdin != nil, opts.Stdout != nil, opts.Stderr != nil)
	c, err := f.get(name)
	if err != nil {
		return err
	}
	if opts.Logs && opts.Stdout != nil {
		if _, err := io.WriteString(opts.Stdout, "logged\n"); err != nil {
			return err
		}
	}
	if !opts.Stream || opts.Stdin == nil {
		return nil
	}
	select {
	case <-c.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	// The container exits when its input ends, or when the stream fails:
	// a waiting client is answered either way.
	defer func() {
		f.mu.Lock()
		c.exit(3)
		f.mu.Unlock()
	}()
	return echo(opts.Stdin, opts.Stdout, opts.Stderr)
}

func (f *fakeContainers) Resize(ctx context.Context, name string, height, width uint) error {
	f.record("Resize", name, height, width)
	c, err := f.get(name)
	if err == nil && !c.tty {
		err = fmt.Errorf("container %s has no terminal: %w", name, errdefs.ErrConflict)
	}
	return err
}

func (f *fakeContainers) Logs(ctx context.Context, name string, opts backend.LogsOptions, fn func(backend.LogMessage) error) error {
	f.record("Logs", name, opts)
	if _, err := f.get(name); err != nil {
		return err
	}
	entries := []backend.LogMessage{
		{Stream: "stdout", Time: fakeLogTime, Line: []byte("hello out\n")},
		{Stream: "stderr", Time: fakeLogTime.Add(time.Second), Line: []byte("hello err\n")},
	}
	for _, m := range entries {
		if (m.Stream == "stdout" && opts.Stdout) || (m.Stream == "stderr" && opts.Stderr) {
			if err := fn(m); err != nil {
				return err
			}
		}
	}
	if !opts.Follow {
		return nil
	}
	for {
		select {
		case m, ok := <-f.followed:
			if !ok {
				return nil
			}
			if err := fn(m); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeContainers) Top(ctx context.Context, name string, psArgs string) (container.TopResponse, error) {
	f.record("Top", name, psArgs)
	if _, err := f.get(name); err != nil {
		return container.TopResponse{}, err
	}
	return container.TopResponse{Titles: []string{"PID", "CMD"}, Processes: [][]string{{"42", "sleep 1000"}}}, nil
}

func (f *fakeContainers) Stats(ctx context.Context, name string, opts backend.StatsOptions, fn func(container.StatsResponse) error) error {
	stream := opts.Stream
	f.record("Stats", name, stream)
	if _, err := f.get(name); err != nil {
		return err
	}
	n := 1
	if stream {
		n = 3
	}
	for i := range n {
		st := container.StatsResponse{ID: fakeContainerID, Name: "/" + name, Read: fakeLogTime.Add(time.Duration(i) * time.Second),
			MemoryStats: container.MemoryStats{Usage: uint64(1000 * (i + 1)), Limit: 1 << 30}}
		if err := fn(st); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeContainers) Pause(ctx context.Context, name string) error {
	f.record("Pause", name)
	return f.setPaused(name, true)
}

func (f *fakeContainers) Unpause(ctx context.Context, name string) error {
	f.record("Unpause", name)
	return f.setPaused(name, false)
}

func (f *fakeContainers) setPaused(name string, paused bool) error {
	c, err := f.get(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	c.paused = paused
	f.mu.Unlock()
	return nil
}

func (f *fakeContainers) Rename(ctx context.Context, name, newName string) error {
	f.record("Rename", name, newName)
	_, err := f.get(name)
	return err
}

func (f *fakeContainers) Update(ctx context.Context, name string, cfg container.UpdateConfig) (container.UpdateResponse, error) {
	f.record("Update", name, cfg)
	_, err := f.get(name)
	return container.UpdateResponse{}, err
}

// fakeEtc is the stat of /etc in the fake's containers.
var fakeEtc = container.PathStat{Name: "etc", Size: 4096, Mode: os.ModeDir | 0o755, Mtime: fakeLogTime}

func (f *fakeContainers) StatPath(ctx context.Context, name, path string) (container.PathStat, error) {
	f.record("StatPath", name, path)
	if _, err := f.get(name); err != nil {
		return container.PathStat{}, err
	}
	if path != "/etc" {
		return container.PathStat{}, fmt.Errorf("Could not find the file %s in container %s: %w", path, name, errdefs.ErrNotFound)
	}
	return fakeEtc, nil
}

// fakeTar is a tar archive holding files name → content.
func fakeTar(files ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		_ = tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(files[i+1]))
	}
	_ = tw.Close()
	return buf.Bytes()
}

func (f *fakeContainers) ArchivePath(ctx context.Context, name, path string) (io.ReadCloser, container.PathStat, error) {
	st, err := f.StatPath(ctx, name, path)
	if err != nil {
		return nil, st, err
	}
	return io.NopCloser(bytes.NewReader(fakeTar("etc/hostname", "berth-test\n"))), st, nil
}

func (f *fakeContainers) ExtractToPath(ctx context.Context, name, path string, r io.Reader, opts backend.ArchiveOptions) error {
	f.record("ExtractToPath", name, path, opts)
	if _, err := f.get(name); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		body, _ := io.ReadAll(tr)
		f.mu.Lock()
		f.extracted = append(f.extracted, h.Name+"="+string(body))
		f.mu.Unlock()
	}
}

func (f *fakeContainers) Changes(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	f.record("Changes", name)
	if _, err := f.get(name); err != nil {
		return nil, err
	}
	return []container.FilesystemChange{{Path: "/tmp", Kind: container.ChangeModify}, {Path: "/tmp/x", Kind: container.ChangeAdd}}, nil
}

func (f *fakeContainers) Export(ctx context.Context, name string) (io.ReadCloser, error) {
	f.record("Export", name)
	if _, err := f.get(name); err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(fakeTar("bin/sh", "#!", "etc/hostname", "c1\n"))), nil
}

func (f *fakeContainers) Commit(ctx context.Context, name string, opts backend.CommitOptions) (string, error) {
	f.record("Commit", name, opts)
	if _, err := f.get(name); err != nil {
		return "", err
	}
	return fakeImageID, nil
}

func (f *fakeContainers) Prune(ctx context.Context, filters backend.ContainerFilters) (container.PruneReport, error) {
	f.record("Prune", filters)
	return container.PruneReport{ContainersDeleted: []string{fakeContainerID}, SpaceReclaimed: 2048}, nil
}

func (f *fakeContainers) ExecCreate(ctx context.Context, name string, req container.ExecCreateRequest) (string, error) {
	f.record("ExecCreate", name, req)
	c, err := f.get(name)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !c.running {
		return "", fmt.Errorf("container %s is not running: %w", c.id, errdefs.ErrConflict)
	}
	id := fmt.Sprintf("e%063d", len(f.execs))
	f.execs[id] = &fakeExec{container: c.id, req: req}
	return id, nil
}

func (f *fakeContainers) exec(id string) (*fakeExec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.execs[id]
	if !ok {
		return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
	}
	return e, nil
}

func (f *fakeContainers) ExecStart(ctx context.Context, id string, opts backend.ExecStartOptions) error {
	f.record("ExecStart", id, opts.Detach, opts.ConsoleSize, opts.Stdin != nil, opts.Stdout != nil, opts.Stderr != nil)
	e, err := f.exec(id)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if e.started {
		f.mu.Unlock()
		return fmt.Errorf("exec %s is already running: %w", id, errdefs.ErrConflict)
	}
	e.started = true
	f.mu.Unlock()
	var runErr error
	if !opts.Detach && opts.Stdin != nil {
		runErr = echo(opts.Stdin, opts.Stdout, opts.Stderr)
	} else if opts.Stdout != nil {
		_, runErr = io.WriteString(opts.Stdout, "ran:"+strings.Join(e.req.Cmd, " ")+"\n")
	}
	code := 0
	f.mu.Lock()
	e.exitCode = &code
	f.mu.Unlock()
	return runErr
}

func (f *fakeContainers) ExecInspect(ctx context.Context, id string) (container.ExecInspectResponse, error) {
	f.record("ExecInspect", id)
	e, err := f.exec(id)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return container.ExecInspectResponse{ID: id, ContainerID: e.container, ExitCode: e.exitCode,
		OpenStdin: e.req.AttachStdin, OpenStdout: e.req.AttachStdout, OpenStderr: e.req.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.req.Tty, Entrypoint: e.req.Cmd[0], Arguments: e.req.Cmd[1:]}}, nil
}

func (f *fakeContainers) ExecResize(ctx context.Context, id string, height, width uint) error {
	f.record("ExecResize", id, height, width)
	_, err := f.exec(id)
	return err
}

// fakeVolumes is a VolumeBackend over a map. The volume "busy" is in use.
type fakeVolumes struct {
	recorder
	mu      sync.Mutex
	volumes map[string]volume.Volume
}

func newFakeVolumes() *fakeVolumes {
	return &fakeVolumes{volumes: map[string]volume.Volume{
		"busy": {Name: "busy", Driver: "local", Scope: "local", Mountpoint: "/var/lib/berth/volumes/busy/_data"},
	}}
}

func (f *fakeVolumes) Create(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	f.record("Create", req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.Name == "" {
		req.Name = strings.Repeat("5", 64)
	}
	v := volume.Volume{Name: req.Name, Driver: "local", Scope: "local", Labels: req.Labels, Options: req.DriverOpts,
		Mountpoint: "/var/lib/berth/volumes/" + req.Name + "/_data", CreatedAt: "2025-01-02T03:04:05Z"}
	f.volumes[req.Name] = v
	return v, nil
}

func (f *fakeVolumes) List(ctx context.Context, filters backend.VolumeFilters) ([]volume.Volume, error) {
	f.record("List", filters)
	f.mu.Lock()
	defer f.mu.Unlock()
	var list []volume.Volume
	for _, v := range f.volumes {
		list = append(list, v)
	}
	slices.SortFunc(list, func(a, b volume.Volume) int { return strings.Compare(a.Name, b.Name) })
	return list, nil
}

func (f *fakeVolumes) Inspect(ctx context.Context, name string) (volume.Volume, error) {
	f.record("Inspect", name)
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[name]
	if !ok {
		return volume.Volume{}, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	return v, nil
}

func (f *fakeVolumes) Remove(ctx context.Context, name string, force bool) error {
	f.record("Remove", name, force)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.volumes[name]; !ok {
		return fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	if name == "busy" && !force {
		return fmt.Errorf("remove busy: volume is in use - [%s]: %w", fakeContainerID, errdefs.ErrConflict)
	}
	delete(f.volumes, name)
	return nil
}

func (f *fakeVolumes) Prune(ctx context.Context, filters backend.VolumeFilters) (volume.PruneReport, error) {
	f.record("Prune", filters)
	return volume.PruneReport{VolumesDeleted: []string{"old"}, SpaceReclaimed: 1024}, nil
}

// containerServer is an httptest server over fake container and volume
// backends (and the system and image fakes).
type containerServer struct {
	URL  string
	sock string
	c    *fakeContainers
	v    *fakeVolumes
}

// newContainerServer serves the fakes on a unix socket (for moby's client
// and the docker CLI) and on TCP (for plain HTTP requests).
func newContainerServer(t *testing.T) *containerServer {
	t.Helper()
	cs := &containerServer{c: newFakeContainers(), v: newFakeVolumes()}
	s := NewServer(Backends{System: &fakeSystem{}, Images: &fakeImages{}, Containers: cs.c, Volumes: cs.v}, WithEngineVersion("0.1.0-test"))
	cs.URL = httptestServer(t, s.Handler())
	cs.sock = filepath.Join(t.TempDir(), "berth.sock")
	l, err := net.Listen("unix", cs.sock)
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
	return cs
}
