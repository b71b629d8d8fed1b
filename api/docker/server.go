// Package docker serves the Docker Engine API, the HTTP protocol the docker
// CLI, compose and the Docker SDKs speak, so that they work against berthd
// unchanged. It owns routing, the /v1.xx version prefix, dockerd's headers,
// JSON shapes and status codes, and the JSON progress streams; the work is
// done by the engine through one narrow backend interface per resource
// (SystemBackend, ImageBackend, ContainerBackend, VolumeBackend,
// NetworkBackend, BuildBackend), each listing only what its routes need.
//
// An endpoint berth does not offer answers 501 with a message saying so,
// never a silent success.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"berth.dev/internal/errdefs"
)

// MaxAPIVersion is the highest API version served: the one dockerd 28.3 to
// 28.5 report. Clients that negotiate (docker CLI, moby/client with
// WithAPIVersionNegotiation) settle on min(theirs, this).
const MaxAPIVersion = "1.51"

// MinAPIVersion is the lowest API version served, as dockerd 28's default.
const MinAPIVersion = "1.24"

// Backends are the engine services behind the routes. A nil backend makes
// its routes answer 501 Not Implemented.
type Backends struct {
	System     SystemBackend
	Images     ImageBackend
	Containers ContainerBackend
	Volumes    VolumeBackend
	Networks   NetworkBackend
	Build      BuildBackend
}

// Server is the Docker Engine API over HTTP. It is safe for concurrent use
// and may serve several listeners at once (the unix socket and a TCP port).
type Server struct {
	b       Backends
	version string
	exp     bool
	log     *slog.Logger
	grace   time.Duration
	now     func() time.Time
	handler http.Handler
}

// Option configures a Server.
type Option func(*Server)

// WithEngineVersion sets the engine version shown in the Server header
// ("Berth/<version> (linux)"). Default "dev".
func WithEngineVersion(v string) Option { return func(s *Server) { s.version = v } }

// WithExperimental sets the Docker-Experimental header. Default false.
func WithExperimental(on bool) Option { return func(s *Server) { s.exp = on } }

// WithLogger sets where the server logs internal errors and failed
// streams. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithShutdownGrace sets how long Serve lets requests in flight finish
// after its context is done before it closes their connections. Default 10s.
func WithShutdownGrace(d time.Duration) Option { return func(s *Server) { s.grace = d } }

// withClock replaces time.Now in tests (relative "until" filters).
func withClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// NewServer returns a server for the given backends.
func NewServer(b Backends, opts ...Option) *Server {
	s := &Server{b: b, version: "dev", log: slog.Default(), grace: 10 * time.Second, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	header := http.Header{}
	header.Set("Api-Version", MaxAPIVersion)
	header.Set("Docker-Experimental", fmt.Sprint(s.exp))
	header.Set("Ostype", runtime.GOOS)
	header.Set("Server", fmt.Sprintf("Berth/%s (%s)", s.version, runtime.GOOS))
	minV, _ := parseAPIVersion(MinAPIVersion)
	maxV, _ := parseAPIVersion(MaxAPIVersion)
	var routes []*route
	routes = append(routes, s.systemRoutes()...)
	routes = append(routes, s.imageRoutes()...)
	routes = append(routes, s.containerRoutes()...)
	routes = append(routes, s.execRoutes()...)
	routes = append(routes, s.volumeRoutes()...)
	routes = append(routes, s.networkRoutes()...)
	routes = append(routes, s.buildRoutes()...)
	s.handler = newRouter(routes, header, minV, maxV, s.log)
	return s
}

// Handler returns the http.Handler of the API, for tests and for callers
// that run their own http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on l until ctx is done, then shuts down
// gracefully: it stops accepting, ends event streams, lets other requests
// finish for the shutdown grace, and closes what is left. It returns nil
// after a shutdown caused by ctx, and the listener's error otherwise. Serve
// closes l.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	// Long-lived streams (events) watch stopping so that a graceful
	// shutdown does not wait the whole grace for them.
	stopping, stop := context.WithCancel(context.Background())
	defer stop()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), stoppingKey{}, stopping)
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(stop)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve docker API on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("docker API: requests still running after the shutdown grace; closing them", "addr", l.Addr().String(), "err", err)
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve docker API on %s: %w", l.Addr(), err)
	}
	return nil
}

type stoppingKey struct{}

// serverStopping is done when the server serving the request begins to
// shut down. Requests served by Handler outside Serve never see it done.
func serverStopping(ctx context.Context) <-chan struct{} {
	if c, ok := ctx.Value(stoppingKey{}).(context.Context); ok {
		return c.Done()
	}
	return nil
}

// requireBackend answers with h when its backend is there (present), else
// 501 with msg: a server may be built with some backends only.
func requireBackend(present bool, msg string, h handlerFunc) handlerFunc {
	if present {
		return h
	}
	return func(http.ResponseWriter, *http.Request) error {
		return newError(errdefs.ErrNotImplemented, "%s", msg)
	}
}
