package docker

import (
	"net/http"

	"github.com/moby/moby/api/types/volume"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

func (s *Server) volumeRoutes() []*route {
	v := s.withVolumes
	return []*route{
		{method: http.MethodPost, pattern: "/volumes/create", handler: v(s.createVolume)},
		{method: http.MethodGet, pattern: "/volumes", handler: v(s.listVolumes)},
		{method: http.MethodPost, pattern: "/volumes/prune", handler: v(s.pruneVolumes)},
		{method: http.MethodGet, pattern: "/volumes/{name}", handler: v(s.inspectVolume)},
		{method: http.MethodDelete, pattern: "/volumes/{name}", handler: v(s.removeVolume)},
	}
}

// withVolumes answers 501 when the server has no volume backend.
func (s *Server) withVolumes(h handlerFunc) handlerFunc {
	return requireBackend(s.b.Volumes != nil, "berth: the volume API is not available", h)
}

var (
	volumeListFilters  = []string{"dangling", "driver", "label", "name"}
	volumePruneFilters = []string{"label", "label!", "all"}
)

// volumeFilters parses and checks the filters of the volume routes.
func volumeFilters(raw string, allowed []string) (backend.VolumeFilters, error) {
	f, err := parseFilters(raw, allowed...)
	if err != nil {
		return nil, err
	}
	for _, key := range []string{"dangling", "all"} {
		if _, err := f.boolValue(key); err != nil {
			return nil, err
		}
	}
	return backend.VolumeFilters(f), nil
}

// createVolume is POST /volumes/create: 201 with the volume. An empty body
// is a volume with a generated name.
func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if _, err := readJSON(r, &req, true); err != nil {
		return err
	}
	if req.Driver != "" && req.Driver != "local" {
		return newError(errdefs.ErrNotFound, "error looking up volume plugin %s: plugin %q not found", req.Driver, req.Driver)
	}
	v, err := s.b.Volumes.Create(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := volumeFilters(r.URL.Query().Get("filters"), volumeListFilters)
	if err != nil {
		return err
	}
	list, err := s.b.Volumes.List(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []volume.Volume{}
	}
	writeJSON(w, http.StatusOK, volume.ListResponse{Volumes: list})
	return nil
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.Volumes.Inspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Volumes.Remove(r.Context(), r.PathValue("name"), boolParam(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneVolumes is POST /volumes/prune. Since API 1.42 it removes anonymous
// volumes only unless all=true; older clients expect every unused volume to
// go, so all=true is implied for them.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := volumeFilters(r.URL.Query().Get("filters"), volumePruneFilters)
	if err != nil {
		return err
	}
	if _, ok := f["all"]; !ok && requestVersion(r.Context()).less(apiVersion{1, 42}) {
		f["all"] = []string{"true"}
	}
	report, err := s.b.Volumes.Prune(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
