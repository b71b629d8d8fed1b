package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

// SystemBackend is what the system routes (/info, /version, /events,
// /system/df, /auth) need from the engine. /_ping needs nothing.
//
// As in every backend, an error's category (berth.dev/internal/errdefs)
// picks the HTTP status and its text is what the user reads after "Error
// response from daemon: ", so it should name the object concerned.
type SystemBackend interface {
	// Info describes the engine and its host for GET /info (docker info):
	// counts of containers and images, storage driver, cgroup driver and
	// version, runtimes, kernel, OS, CPUs, memory, root directory, registry
	// configuration. The server sends it as is.
	Info(ctx context.Context) (system.Info, error)

	// Version describes the engine's build for GET /version: Version,
	// GitCommit, GoVersion, KernelVersion, BuildTime, Platform.Name and the
	// Components (engine, runtime, shim). The server sets ApiVersion and
	// MinAPIVersion itself, fills Os, Arch and GoVersion when empty, and
	// adds an "Engine" component when Components has none.
	Version(ctx context.Context) (system.VersionResponse, error)

	// DiskUsage measures what GET /system/df (docker system df) reports, for
	// the object kinds opts selects (all when none is selected). Kinds not
	// selected may be left nil.
	DiskUsage(ctx context.Context, opts backend.DiskUsageOptions) (backend.DiskUsage, error)

	// SubscribeEvents is the source of GET /events. It returns the events
	// the engine has kept with a time at or after since (none when since is
	// zero), oldest first, and a channel of every event that happens after
	// those: no event is lost or repeated between the two. The channel is
	// closed when ctx is done; the backend must not block for long on a
	// slow reader (dropping a subscriber that falls far behind, by closing
	// its channel, is allowed). The server applies the client's filters and
	// "until" itself.
	SubscribeEvents(ctx context.Context, since time.Time) (recorded []events.Message, live <-chan events.Message, err error)

	// AuthLogin checks credentials against auth.ServerAddress (Docker Hub
	// when empty) for POST /auth (docker login). It returns the identity
	// token the registry issued, if any, which the client stores instead of
	// the password. Bad credentials are ErrUnauthorized.
	AuthLogin(ctx context.Context, auth registry.AuthConfig) (identityToken string, err error)
}

func (s *Server) systemRoutes() []*route {
	return []*route{
		{method: http.MethodGet, pattern: "/_ping", handler: s.ping},
		{method: http.MethodHead, pattern: "/_ping", handler: s.ping},
		{method: http.MethodGet, pattern: "/version", handler: s.withSystem(s.getVersion)},
		{method: http.MethodGet, pattern: "/info", handler: s.withSystem(s.getInfo)},
		{method: http.MethodGet, pattern: "/events", handler: s.withSystem(s.getEvents)},
		{method: http.MethodGet, pattern: "/system/df", handler: s.withSystem(s.getDiskUsage)},
		{method: http.MethodPost, pattern: "/auth", handler: s.withSystem(s.postAuth)},
	}
}

// withSystem answers 501 when the server has no system backend.
func (s *Server) withSystem(h handlerFunc) handlerFunc {
	return requireBackend(s.b.System != nil, "berth: the system API is not available", h)
}

// ping answers GET and HEAD /_ping like dockerd: "OK", uncached, with the
// headers clients negotiate with (Api-Version, Ostype, Docker-Experimental
// from the router; Builder-Version 1 because berth has no BuildKit session
// endpoint; Swarm inactive).
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK"))
	return nil
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.System.Version(r.Context())
	if err != nil {
		return err
	}
	v.APIVersion = MaxAPIVersion
	v.MinAPIVersion = MinAPIVersion
	if v.Os == "" {
		v.Os = runtime.GOOS
	}
	if v.Arch == "" {
		v.Arch = runtime.GOARCH
	}
	if v.GoVersion == "" {
		v.GoVersion = runtime.Version()
	}
	if !slices.ContainsFunc(v.Components, func(c system.ComponentVersion) bool { return c.Name == "Engine" }) {
		engine := system.ComponentVersion{Name: "Engine", Version: v.Version, Details: map[string]string{
			"ApiVersion":    v.APIVersion,
			"MinAPIVersion": v.MinAPIVersion,
			"Os":            v.Os,
			"Arch":          v.Arch,
			"GoVersion":     v.GoVersion,
			"GitCommit":     v.GitCommit,
			"KernelVersion": v.KernelVersion,
			"BuildTime":     v.BuildTime,
			"Experimental":  fmt.Sprint(v.Experimental),
		}}
		v.Components = append([]system.ComponentVersion{engine}, v.Components...)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) error {
	info, err := s.b.System.Info(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// legacyDiskUsage is the body of GET /system/df up to API 1.51: one list
// per object kind. (API 1.52 replaced it with per-kind usage summaries.)
type legacyDiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

func (s *Server) getDiskUsage(w http.ResponseWriter, r *http.Request) error {
	var opts backend.DiskUsageOptions
	for _, t := range r.URL.Query()["type"] {
		switch system.DiskUsageObject(t) {
		case system.ContainerObject:
			opts.Containers = true
		case system.ImageObject:
			opts.Images = true
		case system.VolumeObject:
			opts.Volumes = true
		case system.BuildCacheObject:
			opts.BuildCache = true
		default:
			return newError(errdefs.ErrInvalidArgument, "unknown object type: %s", t)
		}
	}
	if opts == (backend.DiskUsageOptions{}) {
		opts = backend.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true}
	}
	du, err := s.b.System.DiskUsage(r.Context(), opts)
	if err != nil {
		return err
	}
	// A kind that was asked for is a list, never null.
	out := legacyDiskUsage{LayersSize: du.LayersSize, Images: du.Images, Containers: du.Containers, Volumes: du.Volumes, BuildCache: du.BuildCache}
	if opts.Images && out.Images == nil {
		out.Images = []image.Summary{}
	}
	if opts.Containers && out.Containers == nil {
		out.Containers = []container.Summary{}
	}
	if opts.Volumes && out.Volumes == nil {
		out.Volumes = []volume.Volume{}
	}
	if opts.BuildCache && out.BuildCache == nil {
		out.BuildCache = []build.CacheRecord{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) postAuth(w http.ResponseWriter, r *http.Request) error {
	var auth registry.AuthConfig
	if err := json.NewDecoder(r.Body).Decode(&auth); err != nil {
		return newError(errdefs.ErrInvalidArgument, "decode auth config: %w", err)
	}
	token, err := s.b.System.AuthLogin(r.Context(), auth)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
	return nil
}
