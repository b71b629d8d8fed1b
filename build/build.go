// Package build builds images from a Dockerfile. It parses the Dockerfile
// with buildkit's parser and instructions package, plans the stages the
// target needs, and carries out each instruction: RUN, COPY and ADD make a
// layer through an Executor (berth's engine implements it: a container on
// the current filesystem, a snapshot diffed into a layer); every other
// instruction changes the image config and adds an empty_layer history
// entry. Results of RUN, COPY and ADD are cached under a key made of the
// parent state, the instruction, the build args it sees and the content
// of the files it reads. Builds are reproducible: timestamps in configs,
// history and layers are a fixed time (SOURCE_DATE_EPOCH when given).
package build

import (
	"context"
	"io"
	"io/fs"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/image"
)

// Options are one build's parameters, as `docker build` gives them.
type Options struct {
	// Tags name the image built ("app:1", "localhost:5000/app").
	Tags []string
	// Dockerfile is the Dockerfile's path inside the context
	// ("Dockerfile" when empty).
	Dockerfile string
	// BuildArgs are --build-arg values; a nil value takes the variable
	// from the environment of the client (the API passes it resolved).
	BuildArgs map[string]*string
	// Target is the stage to build (the last one when empty).
	Target string
	// NoCache builds every step anew; Pull fetches base images again.
	NoCache, Pull bool
	// Labels are added to the image's config (--label).
	Labels map[string]string
	// Network is the network mode of RUN steps ("", "default", "bridge",
	// "host", "none").
	Network string
	// Platform, when set, must be the daemon's ("linux/amd64").
	Platform string
	// Quiet prints only the image ID at the end.
	Quiet bool
	// Output receives the progress text, as docker's classic builder
	// prints it ("Step 2/7 : RUN make\n", the RUN's output, " ---> 1a2b3c4d5e6f\n",
	// "Successfully built 1a2b3c4d5e6f\n", "Successfully tagged app:1\n").
	Output io.Writer
}

// State is an image while it is built: its layers (blob descriptors, in
// the order of Config.RootFS.DiffIDs) and its config.
type State struct {
	Layers []ocispec.Descriptor
	Config image.Config
}

// Layer is what a RUN, COPY or ADD step made.
type Layer struct {
	// DiffID is the digest of the uncompressed layer tar; Blob describes
	// the stored (compressed) blob.
	DiffID digest.Digest
	Blob   ocispec.Descriptor
}

// RunSpec is the command of a RUN step.
type RunSpec struct {
	// Args is the whole command line (a shell form already has the
	// shell in front).
	Args    []string
	Env     []string
	User    string
	WorkDir string
	// Network is Options.Network.
	Network string
}

// ExitError is a RUN step's command that exited with a non-zero code.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return "exit code " + strconv.Itoa(e.Code) }

// ExitCode is the command's exit code: the API hands it to the client,
// whose build then ends with it, as docker's does.
func (e *ExitError) ExitCode() int { return e.Code }

// An Executor gives the builder images, runs commands and makes layers.
// The engine implements it; tests use a fake.
type Executor interface {
	// Image returns the state of an image by reference (FROM, COPY
	// --from=<image>), pulling it when it is missing or pull is set; pull
	// progress goes to out.
	Image(ctx context.Context, ref string, pull bool, out io.Writer) (State, error)
	// Run runs r in a container on s's filesystem, streams its output to
	// out, and returns the layer of the changes it made, with file times
	// clamped to epoch. A command that exits non-zero is an *ExitError.
	// Nothing is left behind (container, mounts), also on error.
	Run(ctx context.Context, s State, r RunSpec, epoch time.Time, out io.Writer) (Layer, error)
	// Apply applies the layer tar read from tar (paths relative to the
	// image's root, resolved inside it: a symlink in the image never leads
	// out of it) over s's filesystem and returns the layer of the changes,
	// with file times clamped to epoch. COPY and ADD send the files they
	// copy this way.
	Apply(ctx context.Context, s State, tar io.Reader, epoch time.Time) (Layer, error)
	// ReadFile reads a file of s's filesystem (COPY --chown resolves user
	// and group names in the image's /etc/passwd and /etc/group).
	ReadFile(ctx context.Context, s State, path string) ([]byte, error)
	// Commit stores s as an image, tags it with each tag, and returns its
	// ID ("sha256:...").
	Commit(ctx context.Context, s State, tags []string) (string, error)
	// CacheGet returns the layer stored for a cache key, when it is still
	// there (its blob and snapshot); CachePut stores one.
	CacheGet(ctx context.Context, key digest.Digest) (Layer, bool, error)
	CachePut(ctx context.Context, key digest.Digest, l Layer) error
}

// A FileSource is an Executor that also reads the filesystems of states.
// The builder uses it, when the Executor has it, for COPY --from (which
// needs it), for WORKDIR (which then creates a missing directory in a
// layer, as docker does) and for COPY's destination (copied into when it
// is an existing directory, as docker does).
type FileSource interface {
	// Stat describes the file at path (absolute, resolved inside s's
	// root; the last component is not followed). A missing path is an
	// errdefs.ErrNotFound error.
	Stat(ctx context.Context, s State, path string) (fs.FileInfo, error)
	// Export streams path of s's filesystem (a file, or a directory and
	// everything under it, parents before children) as an uncompressed
	// tar. Entry names are relative to the root ("app", "app/bin/x");
	// symlinks are entries, never followed, and the path's parents are
	// resolved inside the root. A missing path is an errdefs.ErrNotFound
	// error. The caller closes the stream, also before its end.
	Export(ctx context.Context, s State, path string) (io.ReadCloser, error)
}
