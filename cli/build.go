package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"berth.dev/cli/progress"
)

// buildOptions are the flags of berth build.
type buildOptions struct {
	tags, buildArgs, labels []string
	file, target, iidfile   string
	network, platform       string
	noCache, pull, quiet    bool
	rm, forceRm, compress   bool
}

func (c *CLI) buildCommand() *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | URL | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.build(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.VarP(&tagsValue{values: &o.tags}, "tag", "t", `Name and optionally a tag in the "name:tag" format`)
	listVarP(f, &o.buildArgs, "list", "build-arg", "", "Set build-time variables")
	f.StringVarP(&o.file, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	listVarP(f, &o.labels, "list", "label", "", "Set metadata for an image")
	f.BoolVar(&o.noCache, "no-cache", false, "Do not use cache when building the image")
	f.BoolVar(&o.rm, "rm", true, "Remove intermediate containers after a successful build")
	f.BoolVar(&o.forceRm, "force-rm", false, "Always remove intermediate containers")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.BoolVar(&o.pull, "pull", false, "Always attempt to pull a newer version of the image")
	f.BoolVar(&o.compress, "compress", false, "Compress the build context using gzip")
	f.StringVar(&o.network, "network", "default", "Set the networking mode for the RUN instructions during build")
	f.StringVar(&o.target, "target", "", "Set the target build stage to build.")
	f.StringVar(&o.iidfile, "iidfile", "", "Write the image ID to the file")
	f.StringVar(&o.platform, "platform", c.getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	return cmd
}

// tagsValue is -t: each value must be an image name, checked when the
// flag is parsed as docker does (a bad one is a flag error, status 125).
type tagsValue struct{ values *[]string }

func (t *tagsValue) String() string { return strings.Join(*t.values, ",") }
func (t *tagsValue) Type() string   { return "list" }
func (t *tagsValue) Set(s string) error {
	if _, err := reference.ParseNormalizedNamed(s); err != nil {
		return err
	}
	*t.values = append(*t.values, s)
	return nil
}

// build prepares the context, sends it and shows the daemon's text as it
// comes: docker's classic `docker build`.
func (c *CLI) build(ctx context.Context, path string, o buildOptions) error {
	if o.iidfile != "" {
		// No stale ID is left behind by a failed build.
		if err := os.Remove(o.iidfile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("Removing image ID file: %w", err)
		}
	}
	opts, err := c.imageBuildOptions(o)
	if err != nil {
		return err
	}
	bc, err := contextSource{path: path, dockerfile: o.file, stdin: c.in}.prepare()
	if err != nil {
		return err
	}
	defer bc.close()
	opts.Dockerfile = bc.dockerfile
	body := bc.body
	if o.compress {
		pr, pw := io.Pipe()
		go func(r io.Reader) { pw.CloseWithError(gzipTo(pw, r)) }(body)
		defer pr.Close()
		body = pr
	}

	// Progress ("Sending build context ...") and the build's text go to
	// standard output, or are kept to be shown on failure with -q.
	var progBuf, buildBuf bytes.Buffer
	progOut, buildOut := io.Writer(c.out), io.Writer(c.out)
	if o.quiet {
		progOut, buildOut = &progBuf, &buildBuf
	}
	sent := &sendProgress{r: body, out: progOut}
	if !o.quiet {
		buildOut = afterSend{sent: sent, w: c.out}
	}

	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ImageBuild(ctx, sent, opts)
	if err != nil {
		sent.done()
		if o.quiet {
			fmt.Fprint(c.errOut, progBuf.String())
		}
		return err
	}
	defer res.Body.Close()

	var imageID string
	err = progress.Display(res.Body, buildOut, progress.Options{Aux: func(m json.RawMessage) {
		var r build.Result
		if json.Unmarshal(m, &r) == nil && r.ID != "" {
			imageID = r.ID
		}
	}})
	var se *progress.StreamError
	if errors.As(err, &se) {
		sent.done()
		if o.quiet {
			fmt.Fprint(c.errOut, progBuf.String()+buildBuf.String())
		}
		code := se.Code
		if code == 0 {
			code = 1
		}
		return &StatusError{Status: se.Message, Code: code}
	} else if err != nil {
		return err
	}
	sent.done()
	if o.quiet {
		// The daemon's text is the ID alone.
		fmt.Fprint(c.out, buildBuf.String())
		imageID = strings.TrimSpace(buildBuf.String())
	}
	if o.iidfile != "" {
		if imageID == "" {
			return fmt.Errorf("Server did not provide an image ID. Cannot write %s", o.iidfile)
		}
		if err := os.WriteFile(o.iidfile, []byte(imageID), 0o666); err != nil {
			return err
		}
	}
	return nil
}

// imageBuildOptions turns the flags into the API's query.
func (c *CLI) imageBuildOptions(o buildOptions) (client.ImageBuildOptions, error) {
	opts := client.ImageBuildOptions{
		Tags: o.tags, NoCache: o.noCache, Remove: o.rm || o.forceRm, ForceRemove: o.forceRm,
		PullParent: o.pull, SuppressOutput: o.quiet, NetworkMode: o.network, Target: o.target,
		Version: build.BuilderV1,
	}
	for _, a := range o.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return opts, fmt.Errorf("invalid argument %q for \"--build-arg\" flag: invalid environment variable: %s", a, a)
		}
		if !ok {
			// "--build-arg NAME" takes NAME from the environment, and
			// leaves it to the Dockerfile's default when unset.
			if v = c.getenv(k); v == "" {
				opts.BuildArgs = withBuildArg(opts.BuildArgs, k, nil)
				continue
			}
		}
		opts.BuildArgs = withBuildArg(opts.BuildArgs, k, &v)
	}
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return opts, fmt.Errorf("invalid argument %q for \"--label\" flag: invalid label '%s': empty name", l, l)
		}
		if opts.Labels == nil {
			opts.Labels = map[string]string{}
		}
		opts.Labels[k] = v
	}
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return opts, err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	return opts, nil
}

func withBuildArg(m map[string]*string, k string, v *string) map[string]*string {
	if m == nil {
		m = map[string]*string{}
	}
	m[k] = v
	return m
}

// sendProgress counts the context bytes as they are sent and prints
// docker's "Sending build context to Docker daemon  1.234kB" once: when
// the context has all gone, or, at the latest, before the build's first
// output.
type sendProgress struct {
	r    io.Reader
	out  io.Writer
	n    int64
	mu   sync.Mutex
	once sync.Once
}

func (s *sendProgress) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.mu.Lock()
	s.n += int64(n)
	s.mu.Unlock()
	if errors.Is(err, io.EOF) {
		s.done()
	}
	return n, err
}

// done prints the line (only the first time).
func (s *sendProgress) done() {
	s.once.Do(func() {
		s.mu.Lock()
		n := s.n
		s.mu.Unlock()
		fmt.Fprintf(s.out, "Sending build context to Docker daemon %8v\r\r\n", units.HumanSize(float64(n)))
	})
}

// afterSend is standard output for the build's text, which must come
// after the "Sending build context" line.
type afterSend struct {
	sent *sendProgress
	w    io.Writer
}

func (a afterSend) Write(p []byte) (int, error) {
	a.sent.done()
	return a.w.Write(p)
}
