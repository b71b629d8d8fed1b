package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

// Builder builds images through an Executor. A Builder holds no state
// between builds and may run several at once.
type Builder struct {
	x          Executor
	epoch      *time.Time
	httpClient *http.Client
}

// Option changes a Builder.
type Option func(*Builder)

// WithSourceDateEpoch makes t the time of every build that is not given
// SOURCE_DATE_EPOCH as a build arg (the daemon passes its own
// environment's SOURCE_DATE_EPOCH this way).
func WithSourceDateEpoch(t time.Time) Option {
	return func(b *Builder) { t := t.UTC(); b.epoch = &t }
}

// WithHTTPClient sets the client ADD fetches URLs with (by default one
// with a 10 s timeout).
func WithHTTPClient(c *http.Client) Option {
	return func(b *Builder) { b.httpClient = c }
}

// New returns a Builder that works through x.
func New(x Executor, opts ...Option) *Builder {
	b := &Builder{x: x, httpClient: &http.Client{Timeout: 10 * time.Second}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// defaultShell is the SHELL of an image that sets none.
var defaultShell = []string{"/bin/sh", "-c"}

// defaultPath is the PATH docker gives a stage whose base sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Build builds the Dockerfile opts.Dockerfile of the context in
// contextDir and returns the ID of the image committed ("sha256:...").
// Progress goes to opts.Output as docker's classic builder prints it.
// Errors of the Dockerfile name its line (*LineError); a RUN whose command
// fails is a *CommandError wrapping the *ExitError.
func (b *Builder) Build(ctx context.Context, contextDir string, opts Options) (string, error) {
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	progress := out
	if opts.Quiet {
		progress = io.Discard
	}
	if opts.Platform != "" {
		if err := checkPlatform(opts.Platform); err != nil {
			return "", err
		}
	}
	root, err := os.OpenRoot(contextDir)
	if err != nil {
		return "", fmt.Errorf("open build context: %w", err)
	}
	defer root.Close()

	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	df, err := readDockerfile(root, contextDir, name)
	if err != nil {
		return "", err
	}
	file := path.Base(filepath.ToSlash(name))
	res, err := parser.Parse(strings.NewReader(string(df)))
	if err != nil {
		return "", lineError(file, err)
	}
	res.PrintWarnings(progress)
	stages, metaCmds, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return "", lineError(file, err)
	}
	if len(stages) == 0 {
		return "", fmt.Errorf("%w: the Dockerfile (%s) has no FROM instruction", errdefs.ErrInvalidArgument, name)
	}

	ignore, err := readDockerignore(root)
	if err != nil {
		return "", err
	}
	bd := &build{
		b:       b,
		ctx:     ctx,
		opts:    opts,
		file:    file,
		escape:  res.EscapeToken,
		out:     progress,
		context: &contextTree{root: root, ignore: ignore},
		args:    newBuildArgs(opts.BuildArgs),
		results: make(map[int]*stage),
		images:  make(map[string]State),
	}
	id, err := bd.run(stages, metaCmds)
	if err != nil {
		return "", err
	}
	if opts.Quiet {
		fmt.Fprintln(out, id)
	}
	return id, nil
}

// build is one run of Build.
type build struct {
	b       *Builder
	ctx     context.Context
	opts    Options
	file    string
	escape  rune
	out     io.Writer
	context *contextTree
	args    *buildArgs
	epoch   time.Time
	// stages are the Dockerfile's stages; results the built ones by index.
	stages  []instructions.Stage
	results map[int]*stage
	// images are the images asked for by reference, each once.
	images map[string]State
	step   int
	steps  int
}

func (bd *build) run(stages []instructions.Stage, metaCmds []instructions.ArgCommand) (string, error) {
	bd.stages = stages
	for i := range metaCmds {
		if err := bd.args.addMeta(&metaCmds[i], bd.escape); err != nil {
			return "", bd.lineErr(&metaCmds[i], err)
		}
	}
	target := len(stages) - 1
	if bd.opts.Target != "" {
		ix, ok := instructions.HasStage(stages, strings.ToLower(bd.opts.Target))
		if !ok {
			return "", fmt.Errorf("%w: failed to reach build target %s in Dockerfile", errdefs.ErrNotFound, bd.opts.Target)
		}
		target = ix
	}
	if len(bd.opts.Labels) > 0 {
		keys := make([]string, 0, len(bd.opts.Labels))
		for k := range bd.opts.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			stages[target].AddCommand(instructions.NewLabelCommand(k, bd.opts.Labels[k], true))
		}
	}
	needed, err := bd.plan(target)
	if err != nil {
		return "", err
	}
	bd.steps = len(metaCmds)
	for _, i := range needed {
		bd.steps += 1 + len(stages[i].Commands)
	}
	if err := bd.pickEpoch(target); err != nil {
		return "", err
	}
	for i := range metaCmds {
		bd.printStep(metaCmds[i].String())
	}
	var last *stage
	for _, i := range needed {
		st, err := bd.buildStage(i)
		if err != nil {
			return "", err
		}
		bd.results[i] = st
		last = st
	}
	if unused := bd.args.unused(); len(unused) > 0 {
		fmt.Fprintf(bd.out, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
	tags, err := normaliseTags(bd.opts.Tags)
	if err != nil {
		return "", err
	}
	id, err := bd.b.x.Commit(bd.ctx, last.state, tags)
	if err != nil {
		return "", fmt.Errorf("commit image: %w", err)
	}
	fmt.Fprintf(bd.out, "Successfully built %s\n", shortID(id))
	for _, t := range tags {
		fmt.Fprintf(bd.out, "Successfully tagged %s\n", t)
	}
	return id, nil
}

// plan returns, in Dockerfile order, the indexes of the stages target
// needs: itself, the stage its FROM names and the stages its COPY --from
// name, transitively.
func (bd *build) plan(target int) ([]int, error) {
	need := map[int]bool{}
	var visit func(i int) error
	visit = func(i int) error {
		if need[i] {
			return nil
		}
		need[i] = true
		s := &bd.stages[i]
		base, err := bd.args.expandMeta(s.BaseName, bd.escape)
		if err != nil {
			return bd.stageErr(s, err)
		}
		if j, ok := bd.stageRef(base, i); ok {
			if err := visit(j); err != nil {
				return err
			}
		}
		for _, c := range s.Commands {
			cp, ok := c.(*instructions.CopyCommand)
			if !ok || cp.From == "" {
				continue
			}
			from, err := bd.args.expandMeta(cp.From, bd.escape)
			if err != nil {
				return bd.lineErr(cp, err)
			}
			if j, ok := bd.stageRef(from, i); ok {
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(target); err != nil {
		return nil, err
	}
	var order []int
	for i := range bd.stages {
		if need[i] {
			order = append(order, i)
		}
	}
	return order, nil
}

// stageRef finds the stage that name (a stage name or index) refers to
// from stage at: only stages before at count.
func (bd *build) stageRef(name string, at int) (int, bool) {
	if n, err := strconv.Atoi(name); err == nil {
		if n >= 0 && n < at {
			return n, true
		}
		return 0, false
	}
	lower := strings.ToLower(name)
	for i := 0; i < at; i++ {
		if bd.stages[i].Name != "" && bd.stages[i].Name == lower {
			return i, true
		}
	}
	return 0, false
}

// pickEpoch sets the build's time: SOURCE_DATE_EPOCH (build arg, then
// the daemon's), else the created time of the image the target stage
// starts from, else (FROM scratch) the Unix epoch.
func (bd *build) pickEpoch(target int) error {
	if v, ok := bd.args.fromOptions(sourceDateEpochArg); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: SOURCE_DATE_EPOCH %q: not a number of seconds", errdefs.ErrInvalidArgument, v)
		}
		bd.epoch = time.Unix(n, 0).UTC()
		return nil
	}
	if bd.b.epoch != nil {
		bd.epoch = *bd.b.epoch
		return nil
	}
	i := target
	for {
		s := &bd.stages[i]
		base, err := bd.args.expandMeta(s.BaseName, bd.escape)
		if err != nil {
			return bd.stageErr(s, err)
		}
		if j, ok := bd.stageRef(base, i); ok {
			i = j
			continue
		}
		if strings.EqualFold(base, "scratch") {
			bd.epoch = time.Unix(0, 0).UTC()
			return nil
		}
		st, err := bd.image(base)
		if err != nil {
			return bd.stageErr(s, err)
		}
		bd.epoch = time.Unix(0, 0).UTC()
		if st.Config.Created != nil {
			bd.epoch = st.Config.Created.UTC().Truncate(time.Second)
		}
		return nil
	}
}

// image returns the image ref (from the Executor the first time).
func (bd *build) image(ref string) (State, error) {
	if s, ok := bd.images[ref]; ok {
		return cloneState(s), nil
	}
	s, err := bd.b.x.Image(bd.ctx, ref, bd.opts.Pull, bd.out)
	if err != nil {
		return State{}, err
	}
	bd.images[ref] = cloneState(s)
	return s, nil
}

func (bd *build) printStep(text string) {
	bd.step++
	fmt.Fprintf(bd.out, "Step %d/%d : %s\n", bd.step, bd.steps, text)
}

// lineErr names the Dockerfile line of c in err.
func (bd *build) lineErr(c instructions.Command, err error) error {
	return withLine(bd.file, c.Location(), err)
}

func (bd *build) stageErr(s *instructions.Stage, err error) error {
	return withLine(bd.file, s.Location, err)
}

// checkPlatform accepts only the daemon's own platform.
func checkPlatform(p string) error {
	want := image.DefaultPlatform()
	got, err := image.ParsePlatform(p)
	if err != nil {
		return err
	}
	if got.OS != want.OS || got.Architecture != want.Architecture || (got.Variant != "" && got.Variant != want.Variant) {
		return fmt.Errorf("%w: platform %q: only the daemon's platform %s/%s can be built", errdefs.ErrNotImplemented, p, want.OS, want.Architecture)
	}
	return nil
}

// normaliseTags turns tags into the familiar form docker prints
// ("app" → "app:latest").
func normaliseTags(tags []string) ([]string, error) {
	var out []string
	for _, t := range tags {
		named, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid tag %q: %w", errdefs.ErrInvalidArgument, t, err)
		}
		if _, ok := named.(reference.Digested); ok {
			return nil, fmt.Errorf("%w: invalid tag %q: a tag cannot hold a digest", errdefs.ErrInvalidArgument, t)
		}
		out = append(out, reference.FamiliarString(reference.TagNameOnly(named)))
	}
	return out, nil
}

// shortID is the 12 hex digits docker shows of an ID.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// readDockerfile reads the Dockerfile name inside the context.
func readDockerfile(root *os.Root, dir, name string) ([]byte, error) {
	rel := filepath.Clean(filepath.FromSlash(name))
	if filepath.IsAbs(rel) {
		r, err := filepath.Rel(dir, rel)
		if err != nil {
			return nil, fmt.Errorf("%w: Cannot locate specified Dockerfile: %s", errdefs.ErrNotFound, name)
		}
		rel = r
	}
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%w: the Dockerfile (%s) must be within the build context", errdefs.ErrInvalidArgument, name)
	}
	data, err := root.ReadFile(rel)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: Cannot locate specified Dockerfile: %s", errdefs.ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read Dockerfile %s: %w", name, err)
	}
	return data, nil
}
