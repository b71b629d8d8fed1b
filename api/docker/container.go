package docker

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

func (s *Server) containerRoutes() []*route {
	c := s.withContainers
	return []*route{
		{method: http.MethodPost, pattern: "/containers/create", handler: c(s.createContainer)},
		{method: http.MethodGet, pattern: "/containers/json", handler: c(s.listContainers)},
		{method: http.MethodPost, pattern: "/containers/prune", handler: c(s.pruneContainers)},
		{method: http.MethodPost, pattern: "/commit", handler: c(s.commitContainer)},
		{method: http.MethodGet, pattern: "/containers/{name}/json", handler: c(s.inspectContainer)},
		{method: http.MethodGet, pattern: "/containers/{name}/top", handler: c(s.topContainer)},
		{method: http.MethodGet, pattern: "/containers/{name}/logs", handler: c(s.containerLogs)},
		{method: http.MethodGet, pattern: "/containers/{name}/changes", handler: c(s.containerChanges)},
		{method: http.MethodGet, pattern: "/containers/{name}/export", handler: c(s.exportContainer)},
		{method: http.MethodGet, pattern: "/containers/{name}/stats", handler: c(s.containerStats)},
		{method: http.MethodHead, pattern: "/containers/{name}/archive", handler: c(s.statContainerPath)},
		{method: http.MethodGet, pattern: "/containers/{name}/archive", handler: c(s.getContainerArchive)},
		{method: http.MethodPut, pattern: "/containers/{name}/archive", handler: c(s.putContainerArchive)},
		{method: http.MethodPost, pattern: "/containers/{name}/start", handler: c(s.startContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/stop", handler: c(s.stopContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/restart", handler: c(s.restartContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/kill", handler: c(s.killContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/wait", handler: c(s.waitContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/resize", handler: c(s.resizeContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/pause", handler: c(s.pauseContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/unpause", handler: c(s.unpauseContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/rename", handler: c(s.renameContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/update", handler: c(s.updateContainer)},
		{method: http.MethodPost, pattern: "/containers/{name}/attach", handler: c(s.attachContainer)},
		{method: http.MethodGet, pattern: "/containers/{name}/attach/ws", handler: attachWebsocket},
		{method: http.MethodPost, pattern: "/containers/{name}/exec", handler: c(s.createExec)},
		{method: http.MethodDelete, pattern: "/containers/{name}", handler: c(s.removeContainer)},
	}
}

// withContainers answers 501 when the server has no container backend.
func (s *Server) withContainers(h handlerFunc) handlerFunc {
	return requireBackend(s.b.Containers != nil, "berth: the container API is not available", h)
}

// readJSON decodes the request body into out as dockerd does: an empty body
// is refused unless emptyOK, and a malformed one is an invalid argument.
// It reports whether there was a body.
func readJSON(r *http.Request, out any, emptyOK bool) (bool, error) {
	err := json.NewDecoder(r.Body).Decode(out)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, io.EOF):
		if emptyOK {
			return false, nil
		}
		return false, newError(errdefs.ErrInvalidArgument, "invalid JSON: got EOF while reading request body")
	default:
		return false, newError(errdefs.ErrInvalidArgument, "invalid JSON: %w", err)
	}
}

// intParam reads an integer query parameter; absent is def.
func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, newError(errdefs.ErrInvalidArgument, "invalid value for %s: %q is not an integer", name, v)
	}
	return n, nil
}

// boolParamDefault reads a boolean parameter that is def when absent.
func boolParamDefault(r *http.Request, name string, def bool) bool {
	if _, ok := r.URL.Query()[name]; !ok {
		return def
	}
	return boolParam(r, name)
}

// validContainerName is dockerd's rule for container names.
var validContainerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name := q.Get("name")
	if name != "" && !validContainerName.MatchString(name) {
		return newError(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if !requestVersion(r.Context()).less(apiVersion{1, 41}) {
		if err := checkPlatform(q.Get("platform")); err != nil {
			return err
		}
	}
	var req container.CreateRequest
	if _, err := readJSON(r, &req, false); err != nil {
		return err
	}
	if req.Config == nil {
		return newError(errdefs.ErrInvalidArgument, "config cannot be empty in order to create a container")
	}
	resp, err := s.b.Containers.Create(r.Context(), name, req)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// checkPlatform accepts an empty platform or one naming the host's
// ("linux", "linux/amd64", "linux/arm64/v8"): berth runs only native
// containers, so a create for another OS or architecture is refused.
func checkPlatform(p string) error {
	if p == "" {
		return nil
	}
	parts := strings.Split(strings.ToLower(p), "/")
	arch := runtime.GOARCH
	if len(parts) > 1 {
		arch = normalizeArch(parts[1])
	}
	if parts[0] != "linux" || arch != runtime.GOARCH || len(parts) > 3 {
		return newError(errdefs.ErrInvalidArgument, "invalid platform %q: berth runs linux/%s containers only", p, runtime.GOARCH)
	}
	return nil
}

// normalizeArch maps the architecture names uname and OCI use alike.
func normalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "i386", "i686":
		return "386"
	}
	return a
}

// containerListFilters are the keys dockerd accepts on GET /containers/json.
var containerListFilters = []string{"ancestor", "before", "exited", "expose", "health", "id", "isolation",
	"is-task", "label", "name", "network", "publish", "since", "status", "volume"}

// containerPruneFilters are the keys of POST /containers/prune.
var containerPruneFilters = []string{"label", "label!", "until"}

var (
	containerStates = []string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}
	healthStates    = []string{"starting", "healthy", "unhealthy", "none"}
)

// containerFilters parses and checks the filters of the container list,
// with the value checks dockerd makes.
func containerFilters(raw string, allowed []string) (backend.ContainerFilters, error) {
	f, err := parseFilters(raw, allowed...)
	if err != nil {
		return nil, err
	}
	for _, v := range f["status"] {
		if !slices.Contains(containerStates, v) {
			return nil, newError(errdefs.ErrInvalidArgument, "invalid filter 'status=%s'", v)
		}
	}
	for _, v := range f["health"] {
		if !slices.Contains(healthStates, v) {
			return nil, newError(errdefs.ErrInvalidArgument, "Unrecognised filter value for health: %s", v)
		}
	}
	for _, v := range f["exited"] {
		if _, err := strconv.Atoi(v); err != nil {
			return nil, newError(errdefs.ErrInvalidArgument, "invalid filter 'exited=%s'", v)
		}
	}
	if _, err := f.boolValue("is-task"); err != nil {
		return nil, err
	}
	return backend.ContainerFilters(f), nil
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	f, err := containerFilters(r.URL.Query().Get("filters"), containerListFilters)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 0)
	if err != nil {
		return err
	}
	list := []container.Summary{}
	// berth runs no swarm tasks: is-task=true selects nothing, and false
	// everything.
	isTask, _ := filters(f).boolValue("is-task")
	delete(f, "is-task")
	if isTask == nil || !*isTask {
		list, err = s.b.Containers.List(r.Context(), backend.ContainerListOptions{
			All:     boolParam(r, "all"),
			Limit:   max(limit, 0),
			Size:    boolParam(r, "size"),
			Filters: f,
		})
		if err != nil {
			return err
		}
	}
	if list == nil {
		list = []container.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) error {
	f, err := containerFilters(r.URL.Query().Get("filters"), containerPruneFilters)
	if err != nil {
		return err
	}
	if _, err := filters(f).timeValue("until", s.now()); err != nil {
		return err
	}
	report, err := s.b.Containers.Prune(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.b.Containers.Inspect(r.Context(), r.PathValue("name"), boolParam(r, "size"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) topContainer(w http.ResponseWriter, r *http.Request) error {
	top, err := s.b.Containers.Top(r.Context(), r.PathValue("name"), r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, top)
	return nil
}

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) error {
	changes, err := s.b.Containers.Changes(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []container.FilesystemChange{}
	}
	writeJSON(w, http.StatusOK, changes)
	return nil
}

// sendTar answers a tar archive read from rc, closing it. A failure in the
// middle cuts the connection, so the client never takes a truncated archive
// for a whole one.
func (s *Server) sendTar(w http.ResponseWriter, rc io.ReadCloser, what string) error {
	defer rc.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("docker API: archive failed mid-stream", "archive", what, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request) error {
	rc, err := s.b.Containers.Export(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return s.sendTar(w, rc, "export of "+r.PathValue("name"))
}

// containerStats is GET /containers/{name}/stats: one JSON object when
// stream=false, else one per line, each flushed, until the client goes.
// one-shot is accepted; the backend's first reading has no previous one
// either way.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	stream := boolParamDefault(r, "stream", true)
	opts := backend.StatsOptions{Stream: stream, OneShot: boolParamDefault(r, "one-shot", false)}
	started := false
	err := s.b.Containers.Stats(r.Context(), r.PathValue("name"), opts, func(st container.StatsResponse) error {
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if err := json.NewEncoder(w).Encode(st); err != nil {
			return fmt.Errorf("write stats: %w", err)
		}
		if stream {
			return http.NewResponseController(w).Flush()
		}
		return nil
	})
	if err != nil && !started {
		return err
	}
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("docker API: stats stream ended", "container", r.PathValue("name"), "err", err)
	}
	return nil
}

// archivePath reads the required "path" parameter of the archive routes.
func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", newError(errdefs.ErrInvalidArgument, "bad parameter: path cannot be empty")
	}
	return p, nil
}

// setPathStat puts the stat of an archive's path in the header dockerd
// uses: X-Docker-Container-Path-Stat, base64 of its JSON.
func setPathStat(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode path stat: %w", err)
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

func (s *Server) statContainerPath(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.b.Containers.StatPath(r.Context(), r.PathValue("name"), p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getContainerArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	rc, st, err := s.b.Containers.ArchivePath(r.Context(), r.PathValue("name"), p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		rc.Close()
		return err
	}
	return s.sendTar(w, rc, p+" of "+r.PathValue("name"))
}

func (s *Server) putContainerArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	err = s.b.Containers.ExtractToPath(r.Context(), r.PathValue("name"), p, r.Body, backend.ArchiveOptions{
		NoOverwriteDirNonDir: boolParam(r, "noOverwriteDirNonDir"),
		CopyUIDGID:           boolParam(r, "copyUIDGID"),
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// startContainer answers 204, or 304 with no body when it already runs.
// A host config in the body (API < 1.24) is refused as dockerd does; "{}"
// or "null" are tolerated.
func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > 7 || r.ContentLength == -1 {
		return newError(errdefs.ErrInvalidArgument, "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
	}
	already, err := s.b.Containers.Start(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if already {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopOptions reads ?t= and ?signal= (API 1.42 and later) of stop and
// restart.
func stopOptions(r *http.Request) (backend.StopOptions, error) {
	var opts backend.StopOptions
	if !requestVersion(r.Context()).less(apiVersion{1, 42}) {
		opts.Signal = r.URL.Query().Get("signal")
	}
	if r.URL.Query().Get("t") != "" {
		t, err := intParam(r, "t", 0)
		if err != nil {
			return opts, err
		}
		opts.Timeout = &t
	}
	return opts, nil
}

// stopContainer answers 204, or 304 with no body when it was not running.
func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	already, err := s.b.Containers.Stop(r.Context(), r.PathValue("name"), opts)
	if err != nil {
		return err
	}
	if already {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	if err := s.b.Containers.Restart(r.Context(), r.PathValue("name"), opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Containers.Kill(r.Context(), r.PathValue("name"), r.URL.Query().Get("signal")); err != nil {
		return fmt.Errorf("Cannot kill container: %s: %w", r.PathValue("name"), err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// waitResponse is the body of POST /containers/{name}/wait.
type waitResponse struct {
	StatusCode int64
	Error      *container.WaitExitError `json:",omitempty"`
}

// waitContainer is POST /containers/{name}/wait. Like dockerd it sends the
// 200 status line as soon as the wait is registered (a client may start
// the container only then, as docker run does), and the JSON result when
// the condition is met. Clients older than API 1.30 know neither the
// condition nor the early status line.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) error {
	legacy := requestVersion(r.Context()).less(apiVersion{1, 30})
	var cond container.WaitCondition
	if !legacy {
		cond = container.WaitCondition(r.URL.Query().Get("condition"))
	}
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return newError(errdefs.ErrInvalidArgument, "invalid condition: %q", string(cond))
	}
	results, err := s.b.Containers.Wait(r.Context(), r.PathValue("name"), cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	if !legacy {
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
	}
	res, ok := <-results
	if !ok {
		return nil // the client went away
	}
	_ = json.NewEncoder(w).Encode(waitResponse{StatusCode: res.StatusCode, Error: res.Error})
	return nil
}

// sizeParams reads the h and w parameters of a resize.
func sizeParams(r *http.Request) (height, width uint, err error) {
	q := r.URL.Query()
	h, err1 := strconv.ParseUint(q.Get("h"), 10, 32)
	wd, err2 := strconv.ParseUint(q.Get("w"), 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, newError(errdefs.ErrInvalidArgument, "invalid terminal size h=%q w=%q: both must be non-negative integers", q.Get("h"), q.Get("w"))
	}
	return uint(h), uint(wd), nil
}

func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) error {
	h, wd, err := sizeParams(r)
	if err != nil {
		return err
	}
	if err := s.b.Containers.Resize(r.Context(), r.PathValue("name"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Containers.Pause(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Containers.Unpause(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) error {
	newName := r.URL.Query().Get("name")
	if newName == "" {
		return newError(errdefs.ErrInvalidArgument, "Neither old nor new names may be empty")
	}
	if !validContainerName.MatchString(newName) {
		return newError(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	if err := s.b.Containers.Rename(r.Context(), r.PathValue("name"), newName); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) error {
	var cfg container.UpdateConfig
	if _, err := readJSON(r, &cfg, false); err != nil {
		return err
	}
	if cfg.PidsLimit != nil && *cfg.PidsLimit < 0 {
		// 0 and every negative value mean "unlimited" in an update.
		var unlimited int64
		cfg.PidsLimit = &unlimited
	}
	resp, err := s.b.Containers.Update(r.Context(), r.PathValue("name"), cfg)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	if boolParam(r, "link") {
		return newError(errdefs.ErrNotImplemented, "berth does not support container links")
	}
	err := s.b.Containers.Remove(r.Context(), r.PathValue("name"), backend.ContainerRemoveOptions{
		Force:         boolParam(r, "force"),
		RemoveVolumes: boolParam(r, "v"),
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// commitContainer is POST /commit (docker commit): 201 {"Id": ...}. The
// container is paused while it is copied unless pause=0; repo and tag name
// the image, normalized as for docker tag.
func (s *Server) commitContainer(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := backend.CommitOptions{
		Comment: q.Get("comment"),
		Author:  q.Get("author"),
		Pause:   boolParamDefault(r, "pause", true),
		Changes: q["changes"],
	}
	if repo := q.Get("repo"); repo != "" {
		name, err := parseName(repo)
		if err != nil {
			return err
		}
		ref, err := withTagOrDigest(name, q.Get("tag"))
		if err != nil {
			return err
		}
		if _, ok := ref.(reference.Digested); ok {
			return newError(errdefs.ErrInvalidArgument, "cannot commit to %s: a digest is not a name", ref)
		}
		opts.Ref = reference.TagNameOnly(ref).String()
	}
	var cfg container.Config
	hasBody, err := readJSON(r, &cfg, true)
	if err != nil {
		return err
	}
	if hasBody {
		opts.Config = &cfg
	}
	id, err := s.b.Containers.Commit(r.Context(), q.Get("container"), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
	return nil
}

// containerTTY says whether the named container has a terminal, which
// decides how its output streams are framed. It fails as the routes should
// when the container does not exist.
func (s *Server) containerTTY(r *http.Request) (bool, error) {
	c, err := s.b.Containers.Inspect(r.Context(), r.PathValue("name"), false)
	if err != nil {
		return false, err
	}
	return c.Config != nil && c.Config.Tty, nil
}

// containerLogs is GET /containers/{name}/logs. Without a terminal the
// entries are multiplexed frames, with one they are sent raw; timestamps
// prefixes each with its time and a space. Without follow, the answer starts
// with the first entry so that a failure before it is an HTTP error; with
// follow, the headers go out at once (clients wait for them before showing
// anything) and a later failure is a line on stderr.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := backend.LogsOptions{
		Stdout: boolParam(r, "stdout"),
		Stderr: boolParam(r, "stderr"),
		Follow: boolParam(r, "follow"),
		Tail:   -1,
	}
	if !opts.Stdout && !opts.Stderr {
		return newError(errdefs.ErrInvalidArgument, "Bad parameters: you must choose at least one stream")
	}
	var err error
	if opts.Since, err = logTime(q.Get("since"), s.now()); err != nil {
		return err
	}
	if opts.Until, err = logTime(q.Get("until"), s.now()); err != nil {
		return err
	}
	if n, err := strconv.Atoi(q.Get("tail")); err == nil && n >= 0 {
		opts.Tail = n // "all" and anything unreadable mean every line, as dockerd
	}
	timestamps := boolParam(r, "timestamps")
	tty, err := s.containerTTY(r)
	if err != nil {
		return err
	}

	started := false
	start := func() {
		if !started {
			w.Header().Set("Content-Type", streamMediaType(r, tty))
			w.WriteHeader(http.StatusOK)
			started = true
		}
	}
	stdout, stderr := outputStreams(w, tty)
	if opts.Follow {
		start()
		_ = http.NewResponseController(w).Flush()
	}
	err = s.b.Containers.Logs(r.Context(), r.PathValue("name"), opts, func(m backend.LogMessage) error {
		start()
		out := stdout
		if m.Stream == "stderr" {
			out = stderr
		}
		line := m.Line
		if timestamps {
			line = append([]byte(m.Time.UTC().Format(rfc3339NanoFixed)+" "), line...)
		}
		if _, err := out.Write(line); err != nil {
			return fmt.Errorf("write log entry: %w", err)
		}
		if opts.Follow {
			return http.NewResponseController(w).Flush()
		}
		return nil
	})
	if err != nil && !started {
		return err
	}
	start()
	if err != nil && r.Context().Err() == nil {
		streamError(stderr, "Error grabbing logs: ", err)
	}
	return nil
}

// rfc3339NanoFixed is RFC 3339 with nine fractional digits always, the
// timestamp docker logs prints (time.RFC3339Nano drops trailing zeros).
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// logTime reads since/until: empty or "0" is no bound.
func logTime(v string, now time.Time) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	return parseTimestamp(v, now)
}

// attachWebsocket is not offered: the docker CLI, compose and the SDKs
// attach over a hijacked connection.
func attachWebsocket(http.ResponseWriter, *http.Request) error {
	return newError(errdefs.ErrNotImplemented, "attach over a websocket is not implemented by berth; use POST /containers/{id}/attach")
}

// attachContainer is POST /containers/{name}/attach. The connection is
// hijacked (see hijack) once the container is known to exist; the backend
// then runs the streams until the container's output ends or the client
// detaches, and the connection is closed.
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.b.Containers.Inspect(r.Context(), r.PathValue("name"), false)
	if err != nil {
		return err
	}
	if c.State != nil && c.State.Paused {
		return newError(errdefs.ErrConflict, "You cannot attach to a paused container, unpause it first")
	}
	tty := c.Config != nil && c.Config.Tty
	conn, err := hijack(w, r, tty)
	if err != nil {
		return err
	}
	defer conn.close()
	opts := backend.AttachOptions{
		Logs:       boolParam(r, "logs"),
		Stream:     boolParam(r, "stream"),
		DetachKeys: r.URL.Query().Get("detachKeys"),
	}
	if boolParam(r, "stdin") {
		opts.Stdin = conn.stdin
	}
	if boolParam(r, "stdout") {
		opts.Stdout = conn.stdout
	}
	if boolParam(r, "stderr") {
		opts.Stderr = conn.stderr
	}
	if err := s.b.Containers.Attach(conn.ctx, r.PathValue("name"), opts); err != nil && conn.ctx.Err() == nil {
		streamError(conn.stderr, "Error attaching: ", err)
		s.log.Warn("docker API: attach failed", "container", r.PathValue("name"), "err", err)
	}
	return nil
}
