package docker

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/distribution/reference"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

func (s *Server) buildRoutes() []*route {
	return []*route{
		{method: http.MethodPost, pattern: "/build", handler: s.withBuilds(s.build)},
		{method: http.MethodPost, pattern: "/build/prune", handler: s.withBuilds(s.pruneBuildCache)},
	}
}

// withBuilds answers 501 when the server has no build backend.
func (s *Server) withBuilds(h handlerFunc) handlerFunc {
	return requireBackend(s.b.Build != nil, "berth: the build API is not available", h)
}

// build is POST /build as dockerd's classic builder answers it (what
// `DOCKER_BUILDKIT=0 docker build` and the SDKs' ImageBuild call): the
// body is the context tar, the answer a JSON stream carrying each write of
// the build's text as {"stream": ...}, then {"aux":{"ID":"sha256:..."}}.
// The "Successfully built/tagged" lines, and with q=1 the ID alone, are
// the backend's own text; with q=1 there is no aux message, as with dockerd. A build that fails before writing anything is
// an HTTP error; after that, the stream's last line is the error.
func (s *Server) build(w http.ResponseWriter, r *http.Request) error {
	opts, err := buildOptions(r.URL.Query())
	if err != nil {
		return err
	}
	stream := newJSONStream(w)
	id, err := s.b.Build.Build(r.Context(), opts, r.Body, buildOutput{stream})
	if err == nil && !opts.Quiet {
		// Quiet, dockerd sends only the ID line, which the backend wrote.
		err = stream.send(jsonMessage{Aux: buildResult{ID: id}})
	}
	return stream.finish(err)
}

// buildResult is the aux payload that ends a successful build; the docker
// CLI writes its ID to --iidfile.
type buildResult struct {
	ID string `json:"ID"`
}

// buildOutput sends every write of the build's text as one
// {"stream": ...} message.
type buildOutput struct{ s *jsonStream }

func (o buildOutput) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := o.s.send(jsonMessage{Stream: string(p)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// buildOptions reads the query of POST /build. Parameters that change
// only the resources of the RUN containers (memory, memswap, cpushares,
// cpusetcpus, cpusetmems, cpuquota, cpuperiod, cgroupparent, shmsize),
// the cache hints cachefrom and the credentials header are accepted and
// ignored; ones whose effect berth cannot give (a remote context, squash,
// extra hosts, security options, ulimits, isolation, BuildKit's outputs)
// are refused rather than silently dropped.
func buildOptions(q url.Values) (backend.BuildOptions, error) {
	switch v := q.Get("version"); v {
	case "", "1":
	case "2":
		return backend.BuildOptions{}, newError(errdefs.ErrNotImplemented,
			"berth builds with the classic builder only, not BuildKit: set DOCKER_BUILDKIT=0 (the daemon's /_ping says Builder-Version 1)")
	default:
		return backend.BuildOptions{}, newError(errdefs.ErrInvalidArgument, "unsupported builder version %s", v)
	}
	if err := refuseBuildParams(q); err != nil {
		return backend.BuildOptions{}, err
	}
	opts := backend.BuildOptions{
		Dockerfile:  q.Get("dockerfile"),
		Target:      q.Get("target"),
		NoCache:     boolValue(q.Get("nocache")),
		Pull:        boolValue(q.Get("pull")),
		Quiet:       boolValue(q.Get("q")),
		Network:     q.Get("networkmode"),
		Platform:    q.Get("platform"),
		Remove:      q.Get("rm") == "" || boolValue(q.Get("rm")),
		ForceRemove: boolValue(q.Get("forcerm")),
	}
	var err error
	if opts.Tags, err = buildTags(q["t"]); err != nil {
		return backend.BuildOptions{}, err
	}
	if p := q.Get("buildargs"); p != "" {
		if err := json.Unmarshal([]byte(p), &opts.BuildArgs); err != nil {
			return backend.BuildOptions{}, newError(errdefs.ErrInvalidArgument, "unable to parse build args: %w", err)
		}
	}
	if p := q.Get("labels"); p != "" {
		if err := json.Unmarshal([]byte(p), &opts.Labels); err != nil {
			return backend.BuildOptions{}, newError(errdefs.ErrInvalidArgument, "error reading labels: %w", err)
		}
	}
	if err := checkPlatform(opts.Platform); err != nil {
		return backend.BuildOptions{}, err
	}
	return opts, nil
}

// refuseBuildParams answers the parameters berth does not carry out. Old
// clients send some of them empty ("cachefrom=[]", "ulimits=null"), which
// is the same as absent.
func refuseBuildParams(q url.Values) error {
	if remote := q.Get("remote"); remote != "" {
		return newError(errdefs.ErrNotImplemented, "berth does not build from a remote context (%s): send the context as the request body", remote)
	}
	if boolValue(q.Get("squash")) {
		return newError(errdefs.ErrNotImplemented, "berth does not squash built images (--squash)")
	}
	if q.Get("outputs") != "" {
		return newError(errdefs.ErrNotImplemented, "build outputs need BuildKit, which berth does not have")
	}
	if iso := q.Get("isolation"); iso != "" && iso != "default" {
		return newError(errdefs.ErrInvalidArgument, "isolation %q is not supported on Linux", iso)
	}
	for _, p := range []struct{ name, flag string }{
		{"extrahosts", "--add-host"}, {"securityopt", "--security-opt"}, {"ulimits", "--ulimit"},
	} {
		for _, v := range q[p.name] {
			switch strings.TrimSpace(v) {
			case "", "null", "[]", "{}":
			default:
				return newError(errdefs.ErrNotImplemented, "berth's builder does not support %s (%s)", p.flag, p.name)
			}
		}
	}
	return nil
}

// buildTags checks the t parameters as dockerd does: each a name without
// digest, ":latest" added when it has no tag, duplicates dropped. They go
// to the backend in their familiar form ("app:latest",
// "localhost:5000/team/app:1"), which is also how "Successfully tagged"
// names them.
func buildTags(tags []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, t := range tags {
		if t == "" {
			continue
		}
		ref, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return nil, newError(errdefs.ErrInvalidArgument, "invalid reference format %q: %w", t, err)
		}
		if _, ok := ref.(reference.Digested); ok {
			return nil, newError(errdefs.ErrInvalidArgument, "build tag cannot contain a digest")
		}
		name := reference.FamiliarString(reference.TagNameOnly(ref))
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out, nil
}

// boolValue reads a boolean parameter as boolParam does.
func boolValue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// pruneBuildCache is POST /build/prune (docker builder prune, and docker
// system prune's last step), with the until and label filters that
// system prune passes on; other filters and size targets berth cannot
// honour are refused rather than answered with more deleted than asked.
func (s *Server) pruneBuildCache(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"), "until", "label", "label!", "id", "parent", "type", "description", "inuse", "shared", "private")
	if err != nil {
		return err
	}
	opts := backend.BuildCachePruneOptions{All: boolParam(r, "all"), Labels: f["label"], LabelsAbsent: f["label!"]}
	for k := range f {
		switch k {
		case "label", "label!":
		case "until":
			if opts.Until, err = f.timeValue("until", s.now()); err != nil {
				return err
			}
		default:
			return newError(errdefs.ErrNotImplemented, "berth's build cache prune has no %s filter", k)
		}
	}
	for _, k := range []string{"keep-storage", "reserved-space", "max-used-space", "min-free-space"} {
		if v := r.URL.Query().Get(k); v != "" && v != "0" {
			return newError(errdefs.ErrNotImplemented, "berth's build cache prune has no %s", k)
		}
	}
	report, err := s.b.Build.PruneCache(r.Context(), opts)
	if err != nil {
		return err
	}
	if report.CachesDeleted == nil {
		report.CachesDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
