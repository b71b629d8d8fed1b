package docker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

// ImageBackend is what the image routes (/images/...) need from the engine.
//
// References the server composes from separate repo and tag parameters
// (pull, push, tag, import) arrive normalized: "docker.io/library/busybox:latest".
// Names taken from the path (inspect, history, remove, save) arrive as the
// client wrote them and may be a reference, a full or short image ID, or
// "name@digest"; resolving them is the engine's job, and an unknown one is
// ErrNotFound ("No such image: busybox:latest").
//
// Long operations report through a backend.ProgressWriter in the wording
// the docker CLI prints (see backend.Progress). An error returned before the
// first progress update becomes an HTTP error status; after it, an error
// line at the end of the stream, as dockerd does.
type ImageBackend interface {
	// Pull fetches ref and records it as a local image. A ref with neither
	// tag nor digest asks for every tag of the repository (docker pull
	// --all-tags). Progress follows dockerd: {"status":"Pulling from
	// library/busybox","id":"latest"}, per layer "Pulling fs layer",
	// "Downloading" with byte counts, "Verifying Checksum", "Download
	// complete", "Extracting", "Pull complete" (or "Already exists"), then
	// "Digest: sha256:..." and "Status: Downloaded newer image for
	// busybox:latest" or "Status: Image is up to date for busybox:latest".
	// An unknown repository or tag is ErrNotFound, refused credentials
	// ErrUnauthorized.
	Pull(ctx context.Context, ref string, opts backend.PullOptions, progress backend.ProgressWriter) error

	// Import creates an image of one layer from src, a tar archive of a
	// root filesystem (possibly compressed), with opts.Changes applied to
	// its config and opts.Message as its history comment, names it
	// opts.Ref when set, and returns its ID ("sha256:...").
	Import(ctx context.Context, src io.Reader, opts backend.ImportOptions, progress backend.ProgressWriter) (id string, err error)

	// Push uploads ref (every tag of the repository when ref has no tag).
	// Progress: "The push refers to repository [docker.io/library/x]", per
	// layer "Preparing", "Pushing" with byte counts, "Pushed" (or "Layer
	// already exists"), then "<tag>: digest: sha256:... size: N" and an
	// Aux {"Tag","Digest","Size"} message.
	Push(ctx context.Context, ref string, opts backend.PushOptions, progress backend.ProgressWriter) error

	// List returns the images for docker images, newest first.
	List(ctx context.Context, opts backend.ImageListOptions) ([]image.Summary, error)

	// Inspect describes one image (docker image inspect).
	Inspect(ctx context.Context, name string) (image.InspectResponse, error)

	// History lists the image's history entries newest first, the top
	// one carrying the image ID and tags and older ones "<missing>" as ID
	// when they have no image of their own (docker history).
	History(ctx context.Context, name string) ([]image.HistoryResponseItem, error)

	// Tag gives the image source the additional name target; an existing
	// target name moves to the new image.
	Tag(ctx context.Context, source, target string) error

	// Remove untags name, and deletes the image when no other name
	// refers to it, reporting each untag and deletion in order. An image
	// used by a container, or with several names when name is an ID, is
	// ErrConflict unless opts.Force.
	Remove(ctx context.Context, name string, opts backend.RemoveOptions) ([]image.DeleteResponse, error)

	// Save writes the named images, with their layers, as one tar archive
	// to w in the docker save layout (manifest.json, repositories, and the
	// OCI image layout). Nothing must be written to w before every name is
	// resolved, so an unknown name is still an HTTP error.
	Save(ctx context.Context, names []string, w io.Writer) error

	// Load reads an archive written by docker save (or an OCI image layout
	// tar) from r, records its images and returns what it loaded: a
	// reference for each named image and the ID ("sha256:...") of each
	// unnamed one. Progress, when not discarded, is "Loading layer" with
	// byte counts per layer.
	Load(ctx context.Context, r io.Reader, progress backend.ProgressWriter) (loaded []string, err error)

	// Prune deletes the images the filters select (dangling ones when
	// Filters.Dangling is unset or true; every unused one when false),
	// never an image a container uses.
	Prune(ctx context.Context, filters backend.ImageFilters) (image.PruneReport, error)
}

func (s *Server) imageRoutes() []*route {
	img := s.withImages
	return []*route{
		{method: http.MethodGet, pattern: "/images/json", handler: img(s.listImages)},
		{method: http.MethodPost, pattern: "/images/create", handler: img(s.createImage)},
		{method: http.MethodGet, pattern: "/images/search", handler: searchImages},
		{method: http.MethodPost, pattern: "/images/load", handler: img(s.loadImages)},
		{method: http.MethodGet, pattern: "/images/get", handler: img(s.saveImages)},
		{method: http.MethodPost, pattern: "/images/prune", handler: img(s.pruneImages)},
		{method: http.MethodGet, pattern: "/images/{name}/json", handler: img(s.inspectImage)},
		{method: http.MethodGet, pattern: "/images/{name}/history", handler: img(s.imageHistory)},
		{method: http.MethodGet, pattern: "/images/{name}/get", handler: img(s.saveImages)},
		{method: http.MethodPost, pattern: "/images/{name}/tag", handler: img(s.tagImage)},
		{method: http.MethodPost, pattern: "/images/{name}/push", handler: img(s.pushImage)},
		{method: http.MethodDelete, pattern: "/images/{name}", handler: img(s.removeImage)},
	}
}

// withImages answers 501 when the server has no image backend.
func (s *Server) withImages(h handlerFunc) handlerFunc {
	return requireBackend(s.b.Images != nil, "berth: the image API is not available", h)
}

// searchImages is not offered: berth does not talk to Docker Hub's search
// index.
func searchImages(http.ResponseWriter, *http.Request) error {
	return newError(errdefs.ErrNotImplemented, "image search is not implemented by berth")
}

// boolParam reads a boolean query parameter as dockerd does: absent, "",
// "0", "no", "false" and "none" are false, anything else true.
func boolParam(r *http.Request, name string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(name))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// registryAuth decodes the X-Registry-Auth header (base64url JSON).
func registryAuth(r *http.Request) (registry.AuthConfig, error) {
	auth, err := authconfig.Decode(r.Header.Get(registry.AuthHeader))
	if err != nil {
		return registry.AuthConfig{}, newError(errdefs.ErrInvalidArgument, "%w", err)
	}
	return *auth, nil
}

// parseName normalizes a repository name the client sent ("busybox" ->
// "docker.io/library/busybox").
func parseName(s string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, newError(errdefs.ErrInvalidArgument, "invalid reference format %q: %w", s, err)
	}
	return ref, nil
}

// withTagOrDigest applies a separate "tag" parameter to name; the
// parameter may also hold a digest. An empty tag leaves name as it is.
func withTagOrDigest(name reference.Named, tag string) (reference.Named, error) {
	if tag == "" {
		return name, nil
	}
	if d, err := digest.Parse(tag); err == nil {
		return reference.WithDigest(reference.TrimNamed(name), d)
	}
	ref, err := reference.WithTag(reference.TrimNamed(name), tag)
	if err != nil {
		return nil, newError(errdefs.ErrInvalidArgument, "invalid tag %q: %w", tag, err)
	}
	return ref, nil
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	f, err := imageFilters(r.URL.Query().Get("filters"), s.now(), imageListFilters)
	if err != nil {
		return err
	}
	list, err := s.b.Images.List(r.Context(), backend.ImageListOptions{
		All:        boolParam(r, "all"),
		Filters:    f,
		SharedSize: boolParam(r, "shared-size"),
		Manifests:  boolParam(r, "manifests"),
	})
	if err != nil {
		return err
	}
	if list == nil {
		list = []image.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// createImage is POST /images/create: a pull when fromImage is set, an
// import of the request body when fromSrc is "-".
func (s *Server) createImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	switch {
	case q.Get("fromImage") != "":
		return s.pullImage(w, r)
	case q.Get("fromSrc") == "-":
		return s.importImage(w, r)
	case q.Get("fromSrc") != "":
		return newError(errdefs.ErrNotImplemented, "importing from a URL is not implemented by berth; pipe the archive instead (docker import - < rootfs.tar)")
	default:
		return newError(errdefs.ErrInvalidArgument, "fromImage or fromSrc is required")
	}
}

func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name, err := parseName(q.Get("fromImage"))
	if err != nil {
		return err
	}
	ref, err := withTagOrDigest(name, q.Get("tag"))
	if err != nil {
		return err
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	stream := newJSONStream(w)
	err = s.b.Images.Pull(r.Context(), ref.String(), backend.PullOptions{Platform: q.Get("platform"), Auth: auth}, stream)
	return stream.finish(err)
}

func (s *Server) importImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := backend.ImportOptions{Message: q.Get("message"), Changes: q["changes"], Platform: q.Get("platform")}
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
			return newError(errdefs.ErrInvalidArgument, "cannot import as %s: a digest is not a name", ref)
		}
		opts.Ref = reference.TagNameOnly(ref).String()
	}
	stream := newJSONStream(w)
	id, err := s.b.Images.Import(r.Context(), r.Body, opts, stream)
	if err == nil {
		err = stream.WriteProgress(backend.Progress{Status: id})
	}
	return stream.finish(err)
}

func (s *Server) pushImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name, err := parseName(r.PathValue("name"))
	if err != nil {
		return err
	}
	ref, err := withTagOrDigest(name, q.Get("tag"))
	if err != nil {
		return err
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	opts := backend.PushOptions{Auth: auth}
	if p := q.Get("platform"); p != "" {
		var platform ocispec.Platform
		if err := json.Unmarshal([]byte(p), &platform); err != nil {
			return newError(errdefs.ErrInvalidArgument, "invalid platform %q: %w", p, err)
		}
		opts.Platform = &platform
	}
	stream := newJSONStream(w)
	err = s.b.Images.Push(r.Context(), ref.String(), opts, stream)
	return stream.finish(err)
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request) error {
	img, err := s.b.Images.Inspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, img)
	return nil
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request) error {
	h, err := s.b.Images.History(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if h == nil {
		h = []image.HistoryResponseItem{}
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// tagImage is POST /images/{name}/tag?repo=&tag=; it answers 201 with no
// body, like dockerd.
func (s *Server) tagImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	repo := q.Get("repo")
	if repo == "" {
		return newError(errdefs.ErrInvalidArgument, "repo is required")
	}
	name, err := parseName(repo)
	if err != nil {
		return err
	}
	if _, ok := name.(reference.Digested); ok {
		return newError(errdefs.ErrInvalidArgument, "refusing to create a tag with a digest reference")
	}
	target := name
	if tag := q.Get("tag"); tag != "" {
		if target, err = reference.WithTag(reference.TrimNamed(name), tag); err != nil {
			return newError(errdefs.ErrInvalidArgument, "invalid tag %q: %w", tag, err)
		}
	}
	if err := s.b.Images.Tag(r.Context(), r.PathValue("name"), reference.TagNameOnly(target).String()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	resp, err := s.b.Images.Remove(r.Context(), r.PathValue("name"), backend.RemoveOptions{
		Force:   boolParam(r, "force"),
		NoPrune: boolParam(r, "noprune"),
	})
	if err != nil {
		return err
	}
	if resp == nil {
		resp = []image.DeleteResponse{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// saveImages is GET /images/{name}/get and GET /images/get?names=a&names=b
// (docker save): a tar archive.
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if name := r.PathValue("name"); name != "" {
		names = []string{name}
	}
	if len(names) == 0 {
		return newError(errdefs.ErrInvalidArgument, "no image names given to save")
	}
	out := &lazyWriter{w: w, contentType: "application/x-tar"}
	if err := s.b.Images.Save(r.Context(), names, out); err != nil {
		if !out.started {
			return err
		}
		// The archive is cut short; the client sees a truncated tar and a
		// closed connection, as with dockerd.
		s.log.Warn("docker API: image save failed mid-stream", "images", names, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !out.started {
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

// loadImages is POST /images/load (docker load): the body is the archive,
// the answer a JSON stream ending with one "Loaded image: ..." line per
// image. quiet=1 drops the per-layer progress.
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) error {
	stream := newJSONStream(w)
	var progress backend.ProgressWriter = stream
	if boolParam(r, "quiet") {
		progress = backend.DiscardProgress{}
	}
	loaded, err := s.b.Images.Load(r.Context(), r.Body, progress)
	for _, ref := range loaded {
		line := "Loaded image: " + ref + "\n"
		if strings.HasPrefix(ref, "sha256:") {
			line = "Loaded image ID: " + ref + "\n"
		}
		if werr := stream.WriteProgress(backend.Progress{Stream: line}); werr != nil {
			break
		}
	}
	return stream.finish(err)
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) error {
	f, err := imageFilters(r.URL.Query().Get("filters"), s.now(), imagePruneFilters)
	if err != nil {
		return err
	}
	report, err := s.b.Images.Prune(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
