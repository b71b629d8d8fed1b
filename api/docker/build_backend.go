package docker

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/build"

	"berth.dev/api/docker/backend"
)

// BuildBackend builds images from a Dockerfile: POST /build.
//
// Build reads the build context, a tar stream (plain or compressed, as
// docker's CLI sends it), builds the image opts name, and returns its ID
// ("sha256:..."). The progress text goes to out as it comes (the server
// sends each write as a {"stream": ...} message); a failure is returned as
// the error, whose message names the Dockerfile line ("Dockerfile:3 ...")
// or, for a RUN that failed, says "The command '/bin/sh -c false' returned
// a non-zero code: 1" as docker's classic builder does.
//
// PruneCache removes the build cache (POST /build/prune): every cached
// step, and the layers and blobs no image holds any more; a build in
// progress keeps what it uses.
type BuildBackend interface {
	Build(ctx context.Context, opts backend.BuildOptions, buildContext io.Reader, out io.Writer) (imageID string, err error)
	PruneCache(ctx context.Context, opts backend.BuildCachePruneOptions) (build.CachePruneReport, error)
}
