package build

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

// emptyLayerDiffID is the digest of an empty tar (1024 zero bytes): a
// step whose layer is this made no change and, as in docker, adds no
// layer but an empty_layer history entry.
const emptyLayerDiffID = digest.Digest("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")

// stage is a stage while it is built.
type stage struct {
	state  State
	args   stageArgs
	author string
	// cmdSet tells whether this Dockerfile set CMD (ENTRYPOINT then keeps it).
	cmdSet bool
}

func (st *stage) shell() []string {
	if s := st.state.Config.Config.Shell; len(s) > 0 {
		return append([]string(nil), s...)
	}
	return append([]string(nil), defaultShell...)
}

func (bd *build) buildStage(i int) (*stage, error) {
	s := &bd.stages[i]
	bd.printStep(s.SourceCode)
	st, err := bd.from(s, i)
	if err != nil {
		return nil, bd.stageErr(s, err)
	}
	bd.printID(st)
	for _, c := range s.Commands {
		if err := bd.ctx.Err(); err != nil {
			return nil, err
		}
		bd.printStep(fmt.Sprint(c))
		if err := bd.dispatch(st, c); err != nil {
			return nil, bd.lineErr(c, err)
		}
		bd.printID(st)
	}
	return st, nil
}

// printID prints the short digest of the stage's config, docker's
// " ---> 1a2b3c4d5e6f" (an empty one for a scratch stage with no step).
func (bd *build) printID(st *stage) {
	if len(st.state.Config.History) == 0 && len(st.state.Layers) == 0 {
		fmt.Fprintln(bd.out, " ---> ")
		return
	}
	fmt.Fprintf(bd.out, " ---> %s\n", shortID(configDigest(st.state.Config).String()))
}

// from starts stage s (at index i) from scratch, an earlier stage or an
// image, and runs the image's ONBUILD triggers.
func (bd *build) from(s *instructions.Stage, i int) (*stage, error) {
	if s.Platform != "" {
		p, err := bd.args.expandMeta(s.Platform, bd.escape)
		if err != nil {
			return nil, err
		}
		if err := checkPlatform(p); err != nil {
			return nil, err
		}
	}
	base, err := bd.args.expandMeta(s.BaseName, bd.escape)
	if err != nil {
		return nil, err
	}
	if base == "" {
		return nil, invalid(errors.New("base name (" + s.BaseName + ") should not be blank"))
	}
	st := &stage{}
	var triggers []string
	switch j, ok := bd.stageRef(base, i); {
	case ok:
		st.state = cloneState(bd.results[j].state)
		st.author = bd.results[j].author
	case strings.EqualFold(base, "scratch"):
		st.state = State{Config: image.Config{Image: ocispec.Image{
			Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
		}}}
	default:
		img, err := bd.image(base)
		if err != nil {
			return nil, err
		}
		st.state = cloneState(img)
	}
	// A stage's own ONBUILD triggers run too when another stage starts
	// from it, as with an image.
	triggers = st.state.Config.Config.OnBuild
	st.state.Config.Config.OnBuild = nil
	if st.state.Config.RootFS.Type == "" {
		st.state.Config.RootFS.Type = "layers"
	}
	setDefaultPath(&st.state.Config)
	if len(triggers) > 0 {
		plural := ""
		if len(triggers) > 1 {
			plural = "s"
		}
		fmt.Fprintf(bd.out, "# Executing %d build trigger%s\n", len(triggers), plural)
		for _, t := range triggers {
			if err := bd.trigger(st, t); err != nil {
				return nil, fmt.Errorf("ONBUILD trigger %q: %w", t, err)
			}
		}
	}
	return st, nil
}

// trigger parses an ONBUILD trigger as a Dockerfile line and runs it.
func (bd *build) trigger(st *stage, text string) error {
	res, err := parser.Parse(strings.NewReader(text))
	if err != nil {
		return invalid(err)
	}
	for _, n := range res.AST.Children {
		c, err := instructions.ParseCommand(n)
		if err != nil {
			return invalid(err)
		}
		if err := bd.dispatch(st, c); err != nil {
			return err
		}
	}
	return nil
}

func setDefaultPath(cfg *image.Config) {
	for _, e := range cfg.Config.Env {
		if strings.HasPrefix(e, "PATH=") {
			return
		}
	}
	cfg.Config.Env = append(cfg.Config.Env, "PATH="+defaultPath)
}

// dispatch carries out one instruction on st.
func (bd *build) dispatch(st *stage, c instructions.Command) error {
	lex := shell.NewLex(bd.escape)
	expand := func(word string) (string, error) {
		r, err := lex.ProcessWordWithMatches(word, st.args.expandEnv(st.state.Config.Config.Env))
		return r.Result, err
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(expand); err != nil {
			return invalid(err)
		}
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Here-documents of COPY and ADD expand variables but keep quotes.
		raw := shell.NewLex(bd.escape)
		raw.SkipProcessQuotes = true
		if err := e.ExpandRaw(func(word string) (string, error) {
			r, err := raw.ProcessWordWithMatches(word, st.args.expandEnv(st.state.Config.Config.Env))
			return r.Result, err
		}); err != nil {
			return invalid(err)
		}
	}
	cfg := &st.state.Config.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		msg := "ENV"
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
			msg += " " + kv.Key + "=" + kv.Value
		}
		return bd.nop(st, msg)
	case *instructions.MaintainerCommand:
		st.author = c.Maintainer
		return bd.nop(st, "MAINTAINER "+c.Maintainer)
	case *instructions.LabelCommand:
		msg := "LABEL"
		for _, kv := range c.Labels {
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			cfg.Labels[kv.Key] = kv.Value
			msg += " " + kv.Key + "=" + kv.Value
		}
		return bd.nop(st, msg)
	case *instructions.ArgCommand:
		var parts []string
		for _, kv := range c.Args {
			st.args.declare(bd.args, kv.Key, kv.Value)
			p := kv.Key
			if kv.Value != nil {
				p += "=" + *kv.Value
			}
			parts = append(parts, p)
		}
		return bd.nop(st, "ARG "+strings.Join(parts, " "))
	case *instructions.CmdCommand:
		cfg.Cmd = st.commandLine(c.ShellDependantCmdLine)
		st.cmdSet = true
		return bd.nop(st, fmt.Sprintf("CMD %q", cfg.Cmd))
	case *instructions.EntrypointCommand:
		switch {
		case c.PrependShell && len(c.CmdLine) > 0:
			cfg.Entrypoint = st.commandLine(c.ShellDependantCmdLine)
		case len(c.CmdLine) == 0:
			cfg.Entrypoint = nil
		default:
			cfg.Entrypoint = append([]string(nil), c.CmdLine...)
		}
		if !st.cmdSet {
			cfg.Cmd = nil
		}
		return bd.nop(st, fmt.Sprintf("ENTRYPOINT %q", cfg.Entrypoint))
	case *instructions.HealthCheckCommand:
		h := *c.Health
		h.Test = append([]string(nil), c.Health.Test...)
		cfg.Healthcheck = &h
		return bd.nop(st, "HEALTHCHECK "+classicHealth(h.Test, h.Interval, h.Timeout, h.StartPeriod, h.Retries))
	case *instructions.ExposeCommand:
		ports, words, err := exposedPorts(c.Ports, expand)
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			cfg.ExposedPorts[p] = struct{}{}
		}
		// History shows the words as written, sorted ("EXPOSE 53/udp 8080").
		return bd.nop(st, "EXPOSE "+strings.Join(words, " "))
	case *instructions.UserCommand:
		cfg.User = c.User
		return bd.nop(st, "USER "+c.User)
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return invalid(errors.New("VOLUME specified can not be an empty string"))
			}
			cfg.Volumes[v] = struct{}{}
		}
		return bd.nop(st, fmt.Sprintf("VOLUME %v", c.Volumes))
	case *instructions.StopSignalCommand:
		if err := checkSignal(c.Signal); err != nil {
			return err
		}
		cfg.StopSignal = c.Signal
		return bd.nop(st, "STOPSIGNAL "+c.Signal)
	case *instructions.ShellCommand:
		cfg.Shell = append([]string(nil), c.Shell...)
		return bd.nop(st, fmt.Sprintf("SHELL %v", c.Shell))
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		return bd.nop(st, "ONBUILD "+c.Expression)
	case *instructions.WorkdirCommand:
		return bd.workdir(st, c)
	case *instructions.RunCommand:
		return bd.runStep(st, c)
	case *instructions.CopyCommand:
		return bd.copyStep(st, copyRequest{
			name: "COPY", srcs: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			from: c.From, chown: c.Chown, chmod: c.Chmod, parents: c.Parents, excludes: c.ExcludePatterns,
		})
	case *instructions.AddCommand:
		if c.Checksum != "" || c.KeepGitDir != nil {
			return fmt.Errorf("%w: ADD --checksum and --keep-git-dir are not supported", errdefs.ErrNotImplemented)
		}
		unpack := c.Unpack == nil || *c.Unpack
		return bd.copyStep(st, copyRequest{
			name: "ADD", srcs: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			chown: c.Chown, chmod: c.Chmod, add: true, unpack: unpack, excludes: c.ExcludePatterns,
		})
	}
	return fmt.Errorf("%w: instruction %s", errdefs.ErrNotImplemented, strings.ToUpper(c.Name()))
}

// classicHealth formats a healthcheck as docker 20.10's history shows
// it: its HealthConfig printed with %q ("&{["CMD-SHELL" "x"] "0s" "0s"
// "0s" '\x00'}"; the retries, an int, print as a quoted rune).
func classicHealth(test []string, interval, timeout, start time.Duration, retries int) string {
	return fmt.Sprintf("&{%s %s %s %s %s}", fmt.Sprintf("%q", test), strconv.Quote(interval.String()),
		strconv.Quote(timeout.String()), strconv.Quote(start.String()), strconv.QuoteRune(rune(retries)))
}

// commandLine is CMD's, ENTRYPOINT's or RUN's argv: a shell form in the
// stage's SHELL.
func (st *stage) commandLine(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(st.shell(), strings.Join(c.CmdLine, " "))
	}
	return append([]string(nil), c.CmdLine...)
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out := append([]string(nil), env...)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(append([]string(nil), env...), k+"="+v)
}

// exposedPorts expands and normalises EXPOSE's words ("80" → "80/tcp",
// "8000-8001/udp" → both ports), sorted; words are the expanded words,
// sorted.
func exposedPorts(in []string, expand func(string) (string, error)) (ports, words []string, err error) {
	set := map[string]bool{}
	for _, w := range in {
		w, err := expand(w)
		if err != nil {
			return nil, nil, invalid(err)
		}
		for _, f := range strings.Fields(w) {
			words = append(words, f)
			port, proto, _ := strings.Cut(f, "/")
			if proto == "" {
				proto = "tcp"
			}
			proto = strings.ToLower(proto)
			if proto != "tcp" && proto != "udp" && proto != "sctp" {
				return nil, nil, invalid(fmt.Errorf("invalid proto: %s", proto))
			}
			lo, hi, isRange := strings.Cut(port, "-")
			start, err1 := strconv.ParseUint(lo, 10, 16)
			end := start
			var err2 error
			if isRange {
				end, err2 = strconv.ParseUint(hi, 10, 16)
			}
			if err1 != nil || err2 != nil || end < start {
				return nil, nil, invalid(fmt.Errorf("invalid containerPort: %s", port))
			}
			for p := start; p <= end; p++ {
				set[strconv.FormatUint(p, 10)+"/"+proto] = true
			}
		}
	}
	for p := range set {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	sort.Strings(words)
	return ports, words, nil
}

// checkSignal accepts a signal number or a name, with or without SIG.
func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n > 0 && n < 65 {
			return nil
		}
	} else if sigName.MatchString(strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "SIG"))) {
		return nil
	}
	return invalid(fmt.Errorf("Invalid signal: %s", s))
}

// nop records a step that changed only the config, with classic docker's
// created_by: "<shell> #(nop)  <msg>".
func (bd *build) nop(st *stage, msg string) error {
	bd.addHistory(st, strings.Join(st.shell(), " ")+" #(nop)  "+msg, true)
	return nil
}

func (bd *build) addHistory(st *stage, createdBy string, empty bool) {
	t := bd.epoch
	st.state.Config.Created = &t
	st.state.Config.Author = st.author
	st.state.Config.History = append(st.state.Config.History, ocispec.History{
		Created: &t, CreatedBy: createdBy, Author: st.author, EmptyLayer: empty,
	})
}

// addLayer records a RUN, COPY, ADD or WORKDIR step's layer: a layer
// that changes nothing is left out, as docker does.
func (bd *build) addLayer(st *stage, l Layer, createdBy string) {
	if l.DiffID == "" || l.DiffID == emptyLayerDiffID {
		bd.addHistory(st, createdBy, true)
		return
	}
	st.state.Layers = append(st.state.Layers, l.Blob)
	st.state.Config.RootFS.DiffIDs = append(st.state.Config.RootFS.DiffIDs, l.DiffID)
	bd.addHistory(st, createdBy, false)
}

// layerStep returns the cached layer of key (printing " ---> Using
// cache") or makes it and caches it.
func (bd *build) layerStep(key digest.Digest, makeLayer func() (Layer, error)) (Layer, error) {
	if !bd.opts.NoCache {
		l, ok, err := bd.b.x.CacheGet(bd.ctx, key)
		if err != nil {
			return Layer{}, fmt.Errorf("build cache: %w", err)
		}
		if ok {
			fmt.Fprintln(bd.out, " ---> Using cache")
			return l, nil
		}
	}
	l, err := makeLayer()
	if err != nil {
		return Layer{}, err
	}
	if err := bd.b.x.CachePut(bd.ctx, key, l); err != nil {
		return Layer{}, fmt.Errorf("build cache: %w", err)
	}
	return l, nil
}

// cacheKey is the cache key of a step on parent: the parent's config
// (which holds its layers' diff IDs and history), its layer blobs, the
// build's time and parts naming the step (its expanded instruction, the
// build args it sees, a digest of the files it reads).
func (bd *build) cacheKey(parent State, parts ...string) digest.Digest {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("berth build cache v1")
	field(configDigest(parent.Config).String())
	for _, l := range parent.Layers {
		field(l.Digest.String())
	}
	field(strconv.FormatInt(bd.epoch.Unix(), 10))
	for _, p := range parts {
		field(p)
	}
	return digest.NewDigest(digest.SHA256, h)
}

// configDigest is the digest of cfg's JSON.
func configDigest(cfg image.Config) digest.Digest {
	data, err := json.Marshal(cfg)
	if err != nil {
		// A config made of JSON-decoded values always marshals.
		panic(fmt.Sprintf("marshal image config: %v", err))
	}
	return digest.FromBytes(data)
}

// cloneState is a deep copy of s (through JSON, as configs are JSON).
func cloneState(s State) State {
	data, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("marshal build state: %v", err))
	}
	var c State
	if err := json.Unmarshal(data, &c); err != nil {
		panic(fmt.Sprintf("unmarshal build state: %v", err))
	}
	return c
}

// workdir sets the working directory; as docker 20.10 does, it creates
// the directory in a layer of its own when the image lacks it and adds
// an empty_layer entry when it is there.
func (bd *build) workdir(st *stage, c *instructions.WorkdirCommand) error {
	cfg := &st.state.Config.Config
	wd := c.Path
	if !path.IsAbs(wd) {
		cur := cfg.WorkingDir
		if cur == "" {
			cur = "/"
		}
		wd = path.Join(cur, wd)
	}
	wd = path.Clean(wd)
	cfg.WorkingDir = wd
	createdBy := strings.Join(st.shell(), " ") + " #(nop) WORKDIR " + wd
	fs, ok := bd.b.x.(FileSource)
	if !ok || wd == "/" {
		bd.addHistory(st, createdBy, true)
		return nil
	}
	_, err := fs.Stat(bd.ctx, st.state, wd)
	if err == nil {
		bd.addHistory(st, createdBy, true)
		return nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("WORKDIR %s: %w", wd, err)
	}
	key := bd.cacheKey(st.state, "WORKDIR", wd)
	l, err := bd.layerStep(key, func() (Layer, error) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeDir, Name: strings.TrimPrefix(wd, "/") + "/", Mode: 0o755, ModTime: bd.epoch, Format: tar.FormatPAX,
		}); err != nil {
			return Layer{}, err
		}
		if err := tw.Close(); err != nil {
			return Layer{}, err
		}
		return bd.b.x.Apply(bd.ctx, st.state, &buf, bd.epoch)
	})
	if err != nil {
		return err
	}
	bd.addLayer(st, l, createdBy)
	return nil
}
