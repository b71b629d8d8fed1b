package docker

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

func (s *Server) networkRoutes() []*route {
	n := s.withNetworks
	return []*route{
		{method: http.MethodGet, pattern: "/networks", handler: n(s.listNetworks)},
		{method: http.MethodGet, pattern: "/networks/", handler: n(s.listNetworks)},
		{method: http.MethodPost, pattern: "/networks/create", handler: n(s.createNetwork)},
		{method: http.MethodPost, pattern: "/networks/prune", handler: n(s.pruneNetworks)},
		{method: http.MethodPost, pattern: "/networks/{id}/connect", handler: n(s.connectNetwork)},
		{method: http.MethodPost, pattern: "/networks/{id}/disconnect", handler: n(s.disconnectNetwork)},
		{method: http.MethodGet, pattern: "/networks/{id}", handler: n(s.inspectNetwork)},
		{method: http.MethodDelete, pattern: "/networks/{id}", handler: n(s.removeNetwork)},
	}
}

// withNetworks answers 501 when the server has no network backend.
func (s *Server) withNetworks(h handlerFunc) handlerFunc {
	return requireBackend(s.b.Networks != nil, "berth: the network API is not available", h)
}

var (
	networkListFilters  = []string{"dangling", "driver", "id", "label", "name", "scope", "type"}
	networkPruneFilters = []string{"label", "label!", "until"}
)

// networkFilters parses the filters of GET /networks and checks the values
// dockerd checks: dangling is a boolean, type is custom or builtin.
func networkFilters(raw string) (backend.NetworkFilters, error) {
	f, err := parseFilters(raw, networkListFilters...)
	if err != nil {
		return nil, err
	}
	for _, v := range f["dangling"] {
		if _, err := strconv.ParseBool(v); err != nil {
			return nil, newError(errdefs.ErrInvalidArgument, `invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`)
		}
	}
	for _, v := range f["type"] {
		if v != "custom" && v != "builtin" {
			return nil, newError(errdefs.ErrInvalidArgument, "invalid filter: 'type'='%s'", v)
		}
	}
	return backend.NetworkFilters(f), nil
}

// listNetworks is GET /networks: a JSON array, [] when empty.
func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	f, err := networkFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	list, err := s.b.Networks.List(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []network.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// inspectNetwork is GET /networks/{id}?verbose=&scope=.
func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) error {
	var opts backend.NetworkInspectOptions
	if v := r.URL.Query().Get("verbose"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return newError(errdefs.ErrInvalidArgument, "invalid value for verbose: %s: %w", v, err)
		}
		opts.Verbose = b
	}
	opts.Scope = r.URL.Query().Get("scope")
	n, err := s.b.Networks.Inspect(r.Context(), r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

// createNetwork is POST /networks/create: 201 with {"Id","Warning"}.
// EnableIPv4 is a field of API 1.47; older clients' value is dropped, as
// dockerd does.
func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	var req network.CreateRequest
	if _, err := readJSON(r, &req, false); err != nil {
		return err
	}
	if strings.TrimSpace(req.Name) == "" {
		return newError(errdefs.ErrInvalidArgument, "invalid name: %s", req.Name)
	}
	if requestVersion(r.Context()).less(apiVersion{1, 47}) {
		req.EnableIPv4 = nil
	}
	resp, err := s.b.Networks.Create(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// removeNetwork is DELETE /networks/{id}: 204.
func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Networks.Remove(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// connectNetwork is POST /networks/{id}/connect with a ConnectRequest:
// 200 and no body.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) error {
	var req network.ConnectRequest
	if _, err := readJSON(r, &req, false); err != nil {
		return err
	}
	if req.Container == "" {
		return newError(errdefs.ErrInvalidArgument, `invalid name or ID supplied: ""`)
	}
	if err := s.b.Networks.Connect(r.Context(), r.PathValue("id"), req.Container, req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// disconnectNetwork is POST /networks/{id}/disconnect with a
// DisconnectRequest: 200 and no body.
func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if _, err := readJSON(r, &req, false); err != nil {
		return err
	}
	if req.Container == "" {
		return newError(errdefs.ErrInvalidArgument, `invalid name or ID supplied: ""`)
	}
	if err := s.b.Networks.Disconnect(r.Context(), r.PathValue("id"), req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// pruneNetworks is POST /networks/prune. The filters go to the backend as
// given once until is known to be a timestamp.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"), networkPruneFilters...)
	if err != nil {
		return err
	}
	if _, err := f.timeValue("until", s.now()); err != nil {
		return err
	}
	report, err := s.b.Networks.Prune(r.Context(), backend.NetworkFilters(f))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
