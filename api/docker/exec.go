package docker

import (
	"net/http"

	"github.com/moby/moby/api/types/container"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

func (s *Server) execRoutes() []*route {
	c := s.withContainers
	return []*route{
		{method: http.MethodPost, pattern: "/exec/{name}/start", handler: c(s.startExec)},
		{method: http.MethodPost, pattern: "/exec/{name}/resize", handler: c(s.resizeExec)},
		{method: http.MethodGet, pattern: "/exec/{name}/json", handler: c(s.inspectExec)},
	}
}

// createExec is POST /containers/{name}/exec: 201 {"Id": ...}.
func (s *Server) createExec(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if _, err := readJSON(r, &req, false); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return newError(errdefs.ErrInvalidArgument, "No exec command specified")
	}
	id, err := s.b.Containers.ExecCreate(r.Context(), r.PathValue("name"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
	return nil
}

// startExec is POST /exec/{id}/start. Detached, it answers 200 with no body
// once the process started. Otherwise the connection is hijacked like an
// attach, framed by the exec's own Tty, and closed when the process exits;
// a failure after that point is written on the stream, as dockerd does.
func (s *Server) startExec(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if _, err := readJSON(r, &req, true); err != nil {
		return err
	}
	id := r.PathValue("name")
	ex, err := s.b.Containers.ExecInspect(r.Context(), id)
	if err != nil {
		return err
	}
	// Refused here rather than by the backend once hijacked, so that the
	// client gets a plain 409.
	switch {
	case ex.Running:
		return newError(errdefs.ErrConflict, "Error: Exec command %s is already running", id)
	case ex.ExitCode != nil:
		return newError(errdefs.ErrConflict, "Error: Exec command %s has already run", id)
	}
	opts := backend.ExecStartOptions{Detach: req.Detach, ConsoleSize: req.ConsoleSize}
	if req.Detach {
		if err := s.b.Containers.ExecStart(r.Context(), id, opts); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, err := hijack(w, r, ex.ProcessConfig != nil && ex.ProcessConfig.Tty)
	if err != nil {
		return err
	}
	defer conn.close()
	if ex.OpenStdin {
		opts.Stdin = conn.stdin
	}
	if ex.OpenStdout {
		opts.Stdout = conn.stdout
	}
	if ex.OpenStderr {
		opts.Stderr = conn.stderr
	}
	if err := s.b.Containers.ExecStart(conn.ctx, id, opts); err != nil && conn.ctx.Err() == nil {
		streamError(conn.stdout, "", err)
		s.log.Warn("docker API: exec failed", "exec", id, "err", err)
	}
	return nil
}

func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) error {
	h, wd, err := sizeParams(r)
	if err != nil {
		return err
	}
	if err := s.b.Containers.ExecResize(r.Context(), r.PathValue("name"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request) error {
	ex, err := s.b.Containers.ExecInspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ex)
	return nil
}
