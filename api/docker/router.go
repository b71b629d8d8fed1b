package docker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"berth.dev/internal/errdefs"
)

// handlerFunc serves one route. Path variables are read with r.PathValue. A
// handler that returns an error before writing anything has it answered as
// {"message": ...} with the status of its category; once a handler has
// written, it reports failures in its own stream and returns nil.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one endpoint. Patterns are paths without the version prefix;
// "{name}" matches one or more characters including slashes (image names
// such as 127.0.0.1:5000/team/app carry them), so "/images/{name}/json"
// matches the longest name that leaves "/json" at the end.
type route struct {
	method  string
	pattern string
	handler handlerFunc

	re    *regexp.Regexp
	names []string
}

var pathVar = regexp.MustCompile(`\{([a-z]+)\}`)

// compile turns the pattern into an anchored regular expression.
func (rt *route) compile() {
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, loc := range pathVar.FindAllStringSubmatchIndex(rt.pattern, -1) {
		b.WriteString(regexp.QuoteMeta(rt.pattern[last:loc[0]]))
		b.WriteString("(.+)")
		rt.names = append(rt.names, rt.pattern[loc[2]:loc[3]])
		last = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(rt.pattern[last:]))
	b.WriteString("$")
	rt.re = regexp.MustCompile(b.String())
}

// router dispatches requests to routes after stripping and checking the
// optional /v1.xx version prefix, and sets the headers dockerd puts on every
// answer.
type router struct {
	routes []*route
	header http.Header
	min    apiVersion
	max    apiVersion
	log    *slog.Logger
}

func newRouter(routes []*route, header http.Header, min, max apiVersion, log *slog.Logger) *router {
	for _, rt := range routes {
		rt.compile()
	}
	return &router{routes: routes, header: header, min: min, max: max, log: log}
}

// versionPrefix matches "/v1.41/..." and captures the version and the rest.
var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

func (rr *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	version := rr.max
	if m := versionPrefix.FindStringSubmatch(path); m != nil {
		path = m[2]
		v, err := parseAPIVersion(m[1])
		if err != nil {
			writeError(w, err)
			return
		}
		version = v
	}

	rt, vars := rr.match(r.Method, path)
	if rt == nil {
		// dockerd answers an unknown path and a known path with the wrong
		// method alike.
		writeJSON(w, http.StatusNotFound, errorBody{Message: "page not found"})
		return
	}

	for k, vs := range rr.header {
		w.Header()[k] = vs
	}
	switch {
	case version.less(rr.min):
		writeError(w, newError(errdefs.ErrInvalidArgument, "client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, rr.min))
		return
	case rr.max.less(version):
		writeError(w, newError(errdefs.ErrInvalidArgument, "client version %s is too new. Maximum supported API version is %s", version, rr.max))
		return
	}

	for i, name := range rt.names {
		r.SetPathValue(name, vars[i])
	}
	r = r.WithContext(context.WithValue(r.Context(), versionKey{}, version))
	if rr.log.Enabled(r.Context(), slog.LevelDebug) {
		start := time.Now()
		defer func() {
			rr.log.Debug("docker API", "method", r.Method, "path", r.URL.Path, "ms", float64(time.Since(start).Microseconds())/1000)
		}()
	}
	if err := rt.handler(w, r); err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			rr.log.Warn("docker API: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, err)
	}
}

// match finds the route for method and path. Like dockerd, a GET route
// does not answer HEAD; only /_ping registers HEAD.
func (rr *router) match(method, path string) (*route, []string) {
	for _, rt := range rr.routes {
		if rt.method != method {
			continue
		}
		if m := rt.re.FindStringSubmatch(path); m != nil {
			return rt, m[1:]
		}
	}
	return nil, nil
}

// apiVersion is a Docker API version "major.minor".
type apiVersion struct{ major, minor int }

func parseAPIVersion(s string) (apiVersion, error) {
	maj, min, ok := strings.Cut(s, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 0 || b < 0 {
		return apiVersion{}, newError(errdefs.ErrInvalidArgument, "invalid API version %q", s)
	}
	return apiVersion{a, b}, nil
}

func (v apiVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

func (v apiVersion) less(o apiVersion) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}

type versionKey struct{}

// requestVersion is the API version the client asked for (the server's
// maximum when the path has no /v1.xx prefix). Handlers use it where
// dockerd's answer changed between versions.
func requestVersion(ctx context.Context) apiVersion {
	v, _ := ctx.Value(versionKey{}).(apiVersion)
	return v
}
