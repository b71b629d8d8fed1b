package cli

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// fakeEngine extends fakeAPI with containers, execs and volumes. Its
// containers run scripts decided by their command:
//
//   - "nosuchcmd ..." fails to start as a missing executable would,
//     "/etc ..." as one that cannot be executed;
//   - "exit N" exits with status N;
//   - anything else prints "out: CMD" on stdout and "err: CMD" on stderr
//     and exits 0.
//
// A container with a tty prints "ready\r\n", then echoes its input until
// it reads "q" or its input ends.
type fakeEngine struct {
	*fakeAPI

	mu         sync.Mutex
	containers []*fakeContainer
	volumes    []volume.Volume
	nets       *fakeNetworks
	nextID     int
	// pulled lists images the fake pulled, which creates then find.
	pulled []string
	// resized receives "HxW" for each resize request, killed the signal
	// of each kill, and started the ID of each container started.
	resized, killed, started chan string
	// uploads records the tars PUT to containers, by path.
	uploads map[string][]byte
}

type fakeContainer struct {
	summary    container.Summary
	config     *container.Config
	hostConfig *container.HostConfig
	started    chan struct{}
	exited     chan struct{}
	// inspected is signalled on each inspect: an attach to a container
	// that already runs ends the container only after the client's
	// second look at it (docker's attach checks the state again once
	// attached).
	inspected chan struct{}
	exitCode  int
}

func newFakeEngine() *fakeEngine {
	now := time.Now()
	e := &fakeEngine{fakeAPI: newFakeAPI(), resized: make(chan string, 16), killed: make(chan string, 16), started: make(chan string, 16), uploads: map[string][]byte{}}
	add := func(id, name, image, cmd string, state container.ContainerState, status string, age time.Duration, mod func(*container.Summary)) {
		s := container.Summary{
			ID: id, Names: []string{"/" + name}, Image: image, ImageID: fakeImageID, Command: cmd,
			Created: now.Add(-age).Unix(), State: state, Status: status, Labels: map[string]string{},
			NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{"bridge": {}}},
		}
		if mod != nil {
			mod(&s)
		}
		c := &fakeContainer{summary: s, config: &container.Config{Image: image, Cmd: strings.Fields(cmd)},
			hostConfig: &container.HostConfig{}, started: make(chan struct{}), exited: make(chan struct{}), inspected: make(chan struct{}, 1)}
		if state == container.StateRunning {
			close(c.started)
		} else {
			close(c.started)
			close(c.exited)
		}
		e.containers = append(e.containers, c)
	}
	add("4f66ad9a0b2e5d3c4b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a", "web", "busybox", "httpd -f -p 80 -h /www/with/a/long/path",
		container.StateRunning, "Up 2 hours", 3*time.Hour, func(s *container.Summary) {
			s.Ports = []container.PortSummary{
				{IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
				{IP: netip.MustParseAddr("::"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
				{PrivatePort: 443, Type: "tcp"},
				{PrivatePort: 444, Type: "tcp"},
				{PrivatePort: 53, Type: "udp"},
			}
			s.Labels = map[string]string{"tier": "front", "owner": "team"}
			s.SizeRw, s.SizeRootFs = 1234, 4261234
			s.Mounts = []container.MountPoint{{Type: "volume", Name: "webdata0123456789abcdef", Driver: "local", Destination: "/www"}}
		})
	add("9e8d7c6b5a4f66ad9a0b2e5d3c4b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0f", "old_job", "localhost:5000/team/busybox:1.36", "sh -c 'exit 3'",
		container.StateExited, "Exited (3) 2 days ago", 50*time.Hour, nil)
	add("1a09f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4f66ad9a0b2e5d3c4b", "digested", "busybox@sha256:37f7b378a29ceb4c551b1b5582e27747b855bbfaa73fa11914fe0df028dc581f", "sh",
		container.StateCreated, "Created", 10*time.Minute, func(s *container.Summary) { s.Names = append(s.Names, "/web/link") })
	e.nets = newFakeNetworks(e.containers[0].summary.ID)
	e.volumes = []volume.Volume{
		{Name: "webdata0123456789abcdef", Driver: "local", Scope: "local", Mountpoint: "/var/lib/berth/volumes/webdata0123456789abcdef/_data", Labels: map[string]string{}},
		{Name: "cache", Driver: "local", Scope: "local", Mountpoint: "/var/lib/berth/volumes/cache/_data", Labels: map[string]string{"app": "web"}, CreatedAt: "2026-11-20T10:00:00Z"},
	}
	return e
}

// serve starts the fake on a unix socket and stops it when the test ends.
func (e *fakeEngine) serve(t testing.TB, socket string) {
	t.Helper()
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// newContainerTestEnv is newTestEnv with the container fake.
func newContainerTestEnv(t *testing.T) (*testEnv, *fakeEngine) {
	t.Helper()
	dir := t.TempDir()
	fe := newFakeEngine()
	e := &testEnv{t: t, api: fe.fakeAPI, socket: filepath.Join(dir, "berth.sock"), home: filepath.Join(dir, "home")}
	if err := os.Mkdir(e.home, 0o700); err != nil {
		t.Fatal(err)
	}
	fe.serve(t, e.socket)
	e.env = map[string]string{
		"BERTH_HOST":   "unix://" + e.socket,
		"HOME":         e.home,
		"BERTH_DAEMON": filepath.Join(dir, "no-berthd"),
	}
	return e, fe
}

func (e *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := fakeVersionPrefix.ReplaceAllString(r.URL.Path, "")
	mine := strings.HasPrefix(path, "/containers") || strings.HasPrefix(path, "/volumes") || strings.HasPrefix(path, "/exec") ||
		strings.HasPrefix(path, "/networks") || path == "/build/prune" || path == "/commit"
	if !mine {
		if path == "/images/create" && r.URL.Query().Get("fromImage") != "" {
			e.mu.Lock()
			e.pulled = append(e.pulled, r.URL.Query().Get("fromImage"))
			e.mu.Unlock()
		}
		e.fakeAPI.ServeHTTP(w, r)
		return
	}
	var body []byte
	if r.Method != http.MethodPut {
		body, _ = io.ReadAll(r.Body)
	}
	e.fakeAPI.mu.Lock()
	e.fakeAPI.requests = append(e.fakeAPI.requests, fakeRequest{Method: r.Method, Path: path, Query: r.URL.Query(), Body: string(body)})
	e.fakeAPI.mu.Unlock()
	w.Header().Set("Api-Version", fakeAPIVersion)

	switch {
	case path == "/containers/json":
		e.list(w, r)
	case path == "/containers/create":
		e.create(w, r, body)
	case path == "/containers/prune":
		writeFakeJSON(w, http.StatusOK, container.PruneReport{ContainersDeleted: []string{e.containers[1].summary.ID}, SpaceReclaimed: 2048})
	case path == "/commit":
		if e.lookupContainer(r.URL.Query().Get("container")) == nil {
			noSuchContainer(w, r.URL.Query().Get("container"))
			return
		}
		writeFakeJSON(w, http.StatusCreated, map[string]string{"Id": "sha256:5f0e2b9c0d4a4d1c8e6b3f7a9d2c1e0f4b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d"})
	case strings.HasPrefix(path, "/networks"):
		e.network(w, r, path, body)
	case path == "/build/prune":
		writeFakeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": nil, "SpaceReclaimed": 0})
	case path == "/volumes":
		writeFakeJSON(w, http.StatusOK, volume.ListResponse{Volumes: e.volumeList()})
	case path == "/volumes/create":
		var req volume.CreateRequest
		json.Unmarshal(body, &req)
		if req.Name == "" {
			req.Name = "3b5e8f6a9c2d4e7f1a0b3c5d7e9f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"
		}
		writeFakeJSON(w, http.StatusCreated, volume.Volume{Name: req.Name, Driver: req.Driver, Labels: req.Labels, Options: req.DriverOpts, Scope: "local"})
	case path == "/volumes/prune":
		writeFakeJSON(w, http.StatusOK, volume.PruneReport{VolumesDeleted: []string{"cache"}, SpaceReclaimed: 4096})
	case strings.HasPrefix(path, "/volumes/"):
		e.volume(w, r, strings.TrimPrefix(path, "/volumes/"))
	case strings.HasPrefix(path, "/exec/"):
		e.exec(w, r, strings.TrimPrefix(path, "/exec/"), body)
	default:
		rest := strings.TrimPrefix(path, "/containers/")
		name, verb, _ := strings.Cut(rest, "/")
		e.container(w, r, name, verb, body)
	}
}

func (e *fakeEngine) volumeList() []volume.Volume {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]volume.Volume(nil), e.volumes...)
}

func (e *fakeEngine) volume(w http.ResponseWriter, r *http.Request, name string) {
	for _, v := range e.volumeList() {
		if v.Name != name {
			continue
		}
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeFakeJSON(w, http.StatusOK, v)
		return
	}
	writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "get " + name + ": no such volume"})
}

func (e *fakeEngine) list(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	all := r.URL.Query().Get("all") == "1"
	size := r.URL.Query().Get("size") == "1"
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	out := []container.Summary{}
	for _, c := range e.containers {
		// Like dockerd, a limit lists every state.
		if !all && limit <= 0 && c.summary.State != container.StateRunning {
			continue
		}
		s := c.summary
		if !size {
			s.SizeRw, s.SizeRootFs = 0, 0
		}
		out = append(out, s)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	writeFakeJSON(w, http.StatusOK, out)
}

// lookupContainer finds a container by name or ID prefix.
func (e *fakeEngine) lookupContainer(name string) *fakeContainer {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.containers {
		if strings.HasPrefix(c.summary.ID, name) || c.summary.Names[0] == "/"+name {
			return c
		}
	}
	return nil
}

func (e *fakeEngine) create(w http.ResponseWriter, r *http.Request, body []byte) {
	var req container.CreateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeFakeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return
	}
	if _, ok := e.lookup(req.Image); !ok && !e.wasPulled(req.Image) {
		writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "No such image: " + withLatest(req.Image)})
		return
	}
	e.mu.Lock()
	e.nextID++
	id := fmt.Sprintf("%064x", 0xc0ffee0000+e.nextID)
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "fake_" + strconv.Itoa(e.nextID)
	}
	c := &fakeContainer{
		summary: container.Summary{ID: id, Names: []string{"/" + name}, Image: req.Image, Command: strings.Join(req.Cmd, " "),
			Created: time.Now().Unix(), State: container.StateCreated, Status: "Created"},
		config: req.Config, hostConfig: req.HostConfig, started: make(chan struct{}), exited: make(chan struct{}),
		inspected: make(chan struct{}, 1),
	}
	if len(req.Cmd) == 2 && req.Cmd[0] == "exit" {
		c.exitCode, _ = strconv.Atoi(req.Cmd[1])
	}
	e.containers = append(e.containers, c)
	e.mu.Unlock()
	writeFakeJSON(w, http.StatusCreated, container.CreateResponse{ID: id, Warnings: []string{}})
}

func (e *fakeEngine) wasPulled(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.pulled {
		if p == name || withLatest(p) == withLatest(name) || strings.HasSuffix(p, "/"+name) {
			return true
		}
	}
	return false
}

func noSuchContainer(w http.ResponseWriter, name string) {
	writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "No such container: " + name})
}

func (e *fakeEngine) container(w http.ResponseWriter, r *http.Request, name, verb string, body []byte) {
	c := e.lookupContainer(name)
	if c == nil {
		noSuchContainer(w, name)
		return
	}
	switch {
	case verb == "json":
		e.inspect(w, c)
	case verb == "start":
		e.start(w, c)
	case verb == "attach":
		e.attach(w, r, c)
	case verb == "wait":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-c.exited
		json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: int64(c.exitCode)})
	case verb == "resize":
		select {
		case e.resized <- r.URL.Query().Get("h") + "x" + r.URL.Query().Get("w"):
		default:
		}
		w.WriteHeader(http.StatusOK)
	case verb == "logs":
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		w.WriteHeader(http.StatusOK)
		writeFrame(w, 1, "log line one\n")
		writeFrame(w, 2, "log error line\n")
	case verb == "stats":
		writeFakeJSON(w, http.StatusOK, fakeStats(c))
	case verb == "changes":
		writeFakeJSON(w, http.StatusOK, []container.FilesystemChange{
			{Path: "/etc", Kind: container.ChangeModify}, {Path: "/etc/new", Kind: container.ChangeAdd}, {Path: "/tmp/gone", Kind: container.ChangeDelete},
		})
	case verb == "export":
		w.Header().Set("Content-Type", "application/x-tar")
		io.WriteString(w, "export of "+c.summary.Names[0])
	case verb == "top":
		writeFakeJSON(w, http.StatusOK, container.TopResponse{Titles: []string{"UID", "PID", "CMD"}, Processes: [][]string{{"root", "4242", "httpd -f"}}})
	case verb == "exec":
		writeFakeJSON(w, http.StatusCreated, map[string]string{"Id": "e1e1" + c.summary.ID[:8]})
	case verb == "archive":
		e.archive(w, r, c)
	case verb == "" && r.Method == http.MethodDelete:
		if c.summary.State == container.StateRunning && r.URL.Query().Get("force") != "1" {
			writeFakeJSON(w, http.StatusConflict, map[string]string{"message": "cannot remove container \"/" + name + "\": container is running: stop the container before removing or force remove"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case verb == "kill":
		select {
		case e.killed <- r.URL.Query().Get("signal"):
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	case verb == "stop" || verb == "restart" || verb == "pause" || verb == "unpause" || verb == "rename":
		w.WriteHeader(http.StatusNoContent)
	case verb == "update":
		writeFakeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: []string{}})
	default:
		writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
	}
}

func (e *fakeEngine) inspect(w http.ResponseWriter, c *fakeContainer) {
	select {
	case c.inspected <- struct{}{}:
	default:
	}
	e.mu.Lock()
	s := c.summary
	e.mu.Unlock()
	ports := network.PortMap{}
	for _, p := range s.Ports {
		port, _ := network.PortFrom(p.PrivatePort, network.IPProtocol(p.Type))
		b := network.PortBinding{HostIP: p.IP}
		if p.PublicPort != 0 {
			b.HostPort = strconv.Itoa(int(p.PublicPort))
			ports[port] = append(ports[port], b)
		} else if _, ok := ports[port]; !ok {
			ports[port] = nil
		}
	}
	writeFakeJSON(w, http.StatusOK, container.InspectResponse{
		ID: s.ID, Name: s.Names[0], Image: fakeImageID, Created: time.Unix(s.Created, 0).UTC().Format(time.RFC3339Nano),
		State:           &container.State{Status: s.State, Running: s.State == container.StateRunning, ExitCode: c.exitCode},
		Config:          c.config,
		HostConfig:      c.hostConfig,
		NetworkSettings: &container.NetworkSettings{Ports: ports},
	})
}

func (e *fakeEngine) start(w http.ResponseWriter, c *fakeContainer) {
	cmd := c.config.Cmd
	switch {
	case len(cmd) > 0 && cmd[0] == "nosuchcmd":
		writeFakeJSON(w, http.StatusBadRequest, map[string]string{"message": `failed to create task for container: OCI runtime create failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH: unknown`})
		return
	case len(cmd) > 0 && cmd[0] == "/etc":
		writeFakeJSON(w, http.StatusBadRequest, map[string]string{"message": `failed to create task for container: OCI runtime create failed: unable to start container process: exec: "/etc": permission denied: unknown`})
		return
	}
	e.mu.Lock()
	select {
	case <-c.started:
	default:
		close(c.started)
	}
	c.summary.State = container.StateRunning
	attached := c.config.AttachStdout || c.config.AttachStderr || c.config.AttachStdin
	e.mu.Unlock()
	if !attached {
		// Nobody reads its output: it ends at once.
		e.exit(c)
	}
	w.WriteHeader(http.StatusNoContent)
	select {
	case e.started <- c.summary.ID:
	default:
	}
}

func (e *fakeEngine) exit(c *fakeContainer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-c.exited:
	default:
		c.summary.State = container.StateExited
		close(c.exited)
	}
}

// hijack upgrades the request to a raw stream the way dockerd does.
func hijack(w http.ResponseWriter, mediaType string) (net.Conn, error) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(buf, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", mediaType)
	return conn, buf.Flush()
}

func writeFrame(w io.Writer, stream byte, s string) {
	hdr := [8]byte{stream}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
	w.Write(hdr[:])
	io.WriteString(w, s)
}

func (e *fakeEngine) attach(w http.ResponseWriter, r *http.Request, c *fakeContainer) {
	tty := c.config.Tty
	media := "application/vnd.docker.multiplexed-stream"
	if tty {
		media = "application/vnd.docker.raw-stream"
	}
	e.mu.Lock()
	running := c.summary.State == container.StateRunning
	e.mu.Unlock()
	if running {
		select {
		case <-c.inspected:
		default:
		}
	}
	conn, err := hijack(w, media)
	if err != nil {
		return
	}
	defer conn.Close()
	if running {
		<-c.inspected
	}
	<-c.started
	detached := false
	defer func() {
		if !detached {
			e.exit(c)
		}
	}()
	cmd := strings.Join(c.config.Cmd, " ")
	if tty {
		io.WriteString(conn, "ready\r\n")
		var b, prev [1]byte
		for {
			if _, err := conn.Read(b[:]); err != nil || b[0] == 'q' {
				return
			}
			if prev[0] == 16 && b[0] == 17 {
				// Detached, as dockerd does on ctrl-p ctrl-q: the
				// stream ends, the container keeps running.
				detached = true
				return
			}
			prev = b
			conn.Write(b[:])
		}
	}
	if r.URL.Query().Get("stdin") == "1" {
		in, _ := io.ReadAll(conn)
		writeFrame(conn, 1, "in: "+string(in))
	}
	if r.URL.Query().Get("stdout") == "1" {
		writeFrame(conn, 1, "out: "+cmd+"\n")
	}
	if r.URL.Query().Get("stderr") == "1" {
		writeFrame(conn, 2, "err: "+cmd+"\n")
	}
}

func (e *fakeEngine) exec(w http.ResponseWriter, r *http.Request, rest string, body []byte) {
	_, verb, _ := strings.Cut(rest, "/")
	switch verb {
	case "start":
		var req struct{ Detach, Tty bool }
		json.Unmarshal(body, &req)
		if req.Detach {
			w.WriteHeader(http.StatusOK)
			return
		}
		media := "application/vnd.docker.multiplexed-stream"
		if req.Tty {
			media = "application/vnd.docker.raw-stream"
		}
		conn, err := hijack(w, media)
		if err != nil {
			return
		}
		if req.Tty {
			io.WriteString(conn, "exec out\r\n")
		} else {
			writeFrame(conn, 1, "exec out\n")
		}
		conn.Close()
	case "json":
		writeFakeJSON(w, http.StatusOK, map[string]any{"ID": rest, "ExitCode": 7, "Running": false})
	case "resize":
		e.resized <- r.URL.Query().Get("h") + "x" + r.URL.Query().Get("w")
		w.WriteHeader(http.StatusOK)
	default:
		writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
	}
}

// archive serves a container's files: /etc/hostname (a file) and /data (a
// directory holding a/b.txt); uploads are recorded.
func (e *fakeEngine) archive(w http.ResponseWriter, r *http.Request, c *fakeContainer) {
	p := r.URL.Query().Get("path")
	if r.Method == http.MethodPut {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.uploads[p] = b
		e.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	type entry struct {
		name, body string
		dir        bool
	}
	var stat container.PathStat
	var entries []entry
	switch strings.TrimSuffix(strings.TrimSuffix(p, "/."), "/") {
	case "/etc/hostname":
		stat = container.PathStat{Name: "hostname", Size: 9, Mode: 0o644}
		entries = []entry{{name: "hostname", body: "fakehost\n"}}
	case "/data":
		stat = container.PathStat{Name: "data", Mode: os.ModeDir | 0o755}
		entries = []entry{{name: "data", dir: true}, {name: "data/a", dir: true}, {name: "data/a/b.txt", body: "bee\n"}}
	case "/":
		stat = container.PathStat{Name: "/", Mode: os.ModeDir | 0o755}
	default:
		writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "Could not find the file " + p + " in container " + c.summary.Names[0][1:]})
		return
	}
	js, _ := json.Marshal(stat)
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(js))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range entries {
		if en.dir {
			tw.WriteHeader(&tar.Header{Name: en.name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: en.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(en.body))})
		io.WriteString(tw, en.body)
	}
	tw.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Write(buf.Bytes())
}

// fakeStats is one sample with fixed figures: 25% of two CPUs' worth of
// time, 100MiB of 1GiB less 20MiB of inactive cache, some I/O.
func fakeStats(c *fakeContainer) container.StatsResponse {
	return container.StatsResponse{
		ID: c.summary.ID, Name: c.summary.Names[0],
		CPUStats: container.CPUStats{
			CPUUsage: container.CPUUsage{TotalUsage: 3_000_000_000}, SystemUsage: 20_000_000_000, OnlineCPUs: 2,
		},
		PreCPUStats: container.CPUStats{
			CPUUsage: container.CPUUsage{TotalUsage: 2_000_000_000}, SystemUsage: 12_000_000_000, OnlineCPUs: 2,
		},
		MemoryStats: container.MemoryStats{Usage: 100 << 20, Limit: 1 << 30, Stats: map[string]uint64{"inactive_file": 20 << 20}},
		Networks:    map[string]container.NetworkStats{"eth0": {RxBytes: 1500, TxBytes: 2_500_000}, "eth1": {RxBytes: 500}},
		BlkioStats: container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
			{Op: "read", Value: 4 << 20}, {Op: "write", Value: 1 << 10}, {Op: "Read", Value: 1 << 20},
		}},
		PidsStats: container.PidsStats{Current: 3},
	}
}
