package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"berth.dev/internal/errdefs"
)

// writeContext writes files (path → content) into a new context
// directory.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// build runs a build and returns the committed state, the ID and the
// output.
func runBuild(t *testing.T, x Executor, dir string, opts Options) (State, string, string, error) {
	t.Helper()
	var out bytes.Buffer
	opts.Output = &out
	id, err := New(x).Build(context.Background(), dir, opts)
	if err != nil {
		return State{}, "", out.String(), err
	}
	var s State
	switch f := x.(type) {
	case *fakeExec:
		s = f.committed[id]
	case fakeFS:
		s = f.committed[id]
	}
	return s, id, out.String(), nil
}

func mustBuild(t *testing.T, x Executor, dir string, opts Options) (State, string, string) {
	t.Helper()
	s, id, out, err := runBuild(t, x, dir, opts)
	if err != nil {
		t.Fatalf("build: %v\noutput:\n%s", err, out)
	}
	return s, id, out
}

// newHistory returns the created_by of the entries the build added
// (those after the base image's).
func newHistory(s State, base int) []string {
	var out []string
	for _, h := range s.Config.History[base:] {
		e := h.CreatedBy
		if h.EmptyLayer {
			e += " [empty]"
		}
		out = append(out, e)
	}
	return out
}

func TestInstructionsHistoryAndConfig(t *testing.T) {
	dockerfile := `FROM busybox
MAINTAINER Jane <jane@example.com>
LABEL a=b "c d"=e
ENV A=b C=d
ARG V=1
EXPOSE 8080 53/udp
VOLUME /data
USER app
WORKDIR /app
WORKDIR /bin
SHELL ["/bin/ash", "-c"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost || exit 1
ONBUILD RUN echo hi
ENTRYPOINT ["/bin/app"]
CMD ["sh"]
RUN echo $A
RUN ["echo", "hi"]
COPY f.txt /app/
`
	dir := writeContext(t, map[string]string{"Dockerfile": dockerfile, "f.txt": "hello"})
	x := fakeFS{newFake(t)}
	s, _, _ := mustBuild(t, x, dir, Options{})
	got := newHistory(s, 1)
	want := []string{
		"/bin/sh -c #(nop)  MAINTAINER Jane <jane@example.com> [empty]",
		"/bin/sh -c #(nop)  LABEL a=b c d=e [empty]",
		"/bin/sh -c #(nop)  ENV A=b C=d [empty]",
		"/bin/sh -c #(nop)  ARG V=1 [empty]",
		"/bin/sh -c #(nop)  EXPOSE 53/udp 8080 [empty]",
		"/bin/sh -c #(nop)  VOLUME [/data] [empty]",
		"/bin/sh -c #(nop)  USER app [empty]",
		"/bin/sh -c #(nop) WORKDIR /app",
		"/bin/sh -c #(nop) WORKDIR /bin [empty]",
		"/bin/ash -c #(nop)  SHELL [/bin/ash -c] [empty]",
		"/bin/ash -c #(nop)  STOPSIGNAL SIGTERM [empty]",
		`/bin/ash -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "wget -q localhost || exit 1"] "5s" "0s" "0s" '\x03'} [empty]`,
		"/bin/ash -c #(nop)  ONBUILD RUN echo hi [empty]",
		`/bin/ash -c #(nop)  ENTRYPOINT ["/bin/app"] [empty]`,
		`/bin/ash -c #(nop)  CMD ["sh"] [empty]`,
		"|1 V=1 /bin/ash -c echo $A [empty]",
		"|1 V=1 echo hi [empty]",
		"COPY",
	}
	if len(got) != len(want) {
		t.Fatalf("history has %d new entries, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want[:len(want)-1] {
		if got[i] != want[i] {
			t.Errorf("history %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if !regexp.MustCompile(`^/bin/ash -c #\(nop\) COPY file:[0-9a-f]{64} in /app/ $`).MatchString(got[len(got)-1]) {
		t.Errorf("COPY history %q", got[len(got)-1])
	}
	c := s.Config
	cfg := c.Config
	checks := []struct {
		name      string
		got, want any
	}{
		{"author", c.Author, "Jane <jane@example.com>"},
		{"labels", cfg.Labels, map[string]string{"a": "b", "c d": "e"}},
		{"env", strings.Join(cfg.Env, ","), "PATH=/usr/sbin:/usr/bin:/sbin:/bin,A=b,C=d"},
		{"ports", cfg.ExposedPorts, map[string]struct{}{"8080/tcp": {}, "53/udp": {}}},
		{"volumes", cfg.Volumes, map[string]struct{}{"/data": {}}},
		{"user", cfg.User, "app"},
		{"workdir", cfg.WorkingDir, "/bin"},
		{"shell", strings.Join(cfg.Shell, " "), "/bin/ash -c"},
		{"stopsignal", cfg.StopSignal, "SIGTERM"},
		{"healthcheck", strings.Join(cfg.Healthcheck.Test, "|"), "CMD-SHELL|wget -q localhost || exit 1"},
		{"healthcheck interval", cfg.Healthcheck.Interval, 5 * time.Second},
		{"onbuild", strings.Join(cfg.OnBuild, "|"), "RUN echo hi"},
		{"entrypoint", strings.Join(cfg.Entrypoint, " "), "/bin/app"},
		{"cmd", strings.Join(cfg.Cmd, " "), "sh"},
		{"layers", len(c.RootFS.DiffIDs), 3},
		{"layer descriptors", len(s.Layers), 3},
		{"created", c.Created.Equal(baseCreated), true},
	}
	for _, ch := range checks {
		if !equalAny(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	// RUN sees the config's env, the ARG in effect, user and workdir.
	r := x.runs[0]
	if strings.Join(r.Args, "|") != "/bin/ash|-c|echo $A" || r.User != "app" || r.WorkDir != "/bin" ||
		strings.Join(r.Env, ",") != "PATH=/usr/sbin:/usr/bin:/sbin:/bin,A=b,C=d,V=1" {
		t.Errorf("RUN spec %+v", r)
	}
	if strings.Join(x.runs[1].Args, "|") != "echo|hi" {
		t.Errorf("exec-form RUN args %q", x.runs[1].Args)
	}
	// WORKDIR /app made the directory, owned by root.
	if f := x.layers[c.RootFS.DiffIDs[1]]["app"]; f.Typ != tar.TypeDir || f.Mode != 0o755 || f.UID != 0 {
		t.Errorf("WORKDIR layer: %+v", x.layers[c.RootFS.DiffIDs[1]])
	}
	if f := x.topLayer(t, s)["app/f.txt"]; f.Data != "hello" || f.UID != 0 || f.Mode != 0o644 {
		t.Errorf("COPY layer: %+v", x.topLayer(t, s))
	}
}

func equalAny(a, b any) bool {
	switch av := a.(type) {
	case map[string]string:
		bv := b.(map[string]string)
		if len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			if bv[k] != v {
				return false
			}
		}
		return true
	case map[string]struct{}:
		bv := b.(map[string]struct{})
		if len(av) != len(bv) {
			return false
		}
		for k := range av {
			if _, ok := bv[k]; !ok {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestShellFormsAndEntrypoint(t *testing.T) {
	tests := []struct {
		name, dockerfile string
		cmd, entrypoint  string
		history          string
	}{
		{"cmd shell form", "FROM busybox\nCMD echo hi\n", "/bin/sh|-c|echo hi", "", `/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]`},
		{"entrypoint shell form resets inherited cmd", "FROM busybox\nENTRYPOINT exec app\n", "", "/bin/sh|-c|exec app", `/bin/sh -c #(nop)  ENTRYPOINT ["/bin/sh" "-c" "exec app"]`},
		{"entrypoint keeps this file's cmd", "FROM busybox\nCMD [\"x\"]\nENTRYPOINT [\"e\"]\n", "x", "e", `/bin/sh -c #(nop)  ENTRYPOINT ["e"]`},
		{"healthcheck none", "FROM busybox\nHEALTHCHECK NONE\n", "sh", "", `/bin/sh -c #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\x00'}`},
		{"shell changes shell form", "FROM busybox\nSHELL [\"/bin/bash\", \"-xc\"]\nCMD run\n", "/bin/bash|-xc|run", "", `/bin/bash -xc #(nop)  CMD ["/bin/bash" "-xc" "run"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tt.dockerfile})
			s, _, _ := mustBuild(t, newFake(t), dir, Options{})
			cfg := s.Config.Config
			if got := strings.Join(cfg.Cmd, "|"); got != tt.cmd {
				t.Errorf("cmd %q, want %q", got, tt.cmd)
			}
			if got := strings.Join(cfg.Entrypoint, "|"); got != tt.entrypoint {
				t.Errorf("entrypoint %q, want %q", got, tt.entrypoint)
			}
			h := s.Config.History
			if got := h[len(h)-1].CreatedBy; got != tt.history {
				t.Errorf("history %q, want %q", got, tt.history)
			}
		})
	}
}

func TestProgressOutput(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nENV A=b\nRUN echo hi\n"})
	x := newFake(t)
	_, id, out := mustBuild(t, x, dir, Options{Tags: []string{"app", "localhost:5000/x/y:1"}})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		"Step 1/3 : FROM busybox", " ---> *",
		"Step 2/3 : ENV A=b", " ---> *",
		"Step 3/3 : RUN echo hi", "ran /bin/sh -c echo hi", " ---> *",
		"Successfully built " + shortID(id),
		"Successfully tagged app:latest",
		"Successfully tagged localhost:5000/x/y:1",
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out)
	}
	idLine := regexp.MustCompile(`^ ---> [0-9a-f]{12}$`)
	for i, w := range want {
		if w == " ---> *" {
			if !idLine.MatchString(lines[i]) {
				t.Errorf("line %d %q is no ID line", i, lines[i])
			}
		} else if lines[i] != w {
			t.Errorf("line %d %q, want %q", i, lines[i], w)
		}
	}
	if x.tags["app:latest"] != id {
		t.Errorf("tags %v", x.tags)
	}
	// The last step's ID is the committed image's.
	if lines[6] != " ---> "+shortID(id) {
		t.Errorf("last step ID %q, image %s", lines[6], id)
	}

	// Quiet prints only the ID.
	_, id, out = mustBuild(t, newFake(t), dir, Options{Quiet: true})
	if out != id+"\n" || !strings.HasPrefix(id, "sha256:") {
		t.Errorf("quiet output %q (id %s)", out, id)
	}
}

func TestArgs(t *testing.T) {
	dockerfile := `ARG BASE=busy
ARG TAG
FROM ${BASE}box
ARG BASE
ARG V=default
ARG W=${V}-w
ENV E=$V
ARG E=fromarg
RUN echo $V
LABEL v=$V w=$W base=$BASE e=$E
`
	tests := []struct {
		name      string
		args      map[string]*string
		labels    string
		createdBy string
		unused    string
	}{
		{"defaults", nil, "v=default w=default-w base=busy e=default",
			"|3 BASE=busy V=default W=default-w /bin/sh -c echo $V", ""},
		{"build args", map[string]*string{"V": ptr("given"), "BASE": ptr("busy"), "X": ptr("1"), "Y": nil, "HTTP_PROXY": ptr("p")},
			"v=given w=given-w base=busy e=given", "|3 BASE=busy V=given W=given-w /bin/sh -c echo $V",
			"[Warning] One or more build-args [X Y] were not consumed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": dockerfile})
			x := newFake(t)
			s, _, out := mustBuild(t, x, dir, Options{BuildArgs: tt.args})
			l := s.Config.Config.Labels
			if got := "v=" + l["v"] + " w=" + l["w"] + " base=" + l["base"] + " e=" + l["e"]; got != tt.labels {
				t.Errorf("labels %q, want %q", got, tt.labels)
			}
			var run string
			for _, h := range s.Config.History {
				if strings.Contains(h.CreatedBy, "echo $V") {
					run = h.CreatedBy
				}
			}
			if run != tt.createdBy {
				t.Errorf("RUN history %q, want %q", run, tt.createdBy)
			}
			for _, e := range s.Config.Config.Env {
				if strings.HasPrefix(e, "V=") || strings.HasPrefix(e, "W=") {
					t.Errorf("build arg in the image's env: %q", e)
				}
			}
			if tt.unused != "" && !strings.Contains(out, tt.unused+"\n") {
				t.Errorf("no unused warning in:\n%s", out)
			}
			if tt.unused == "" && strings.Contains(out, "[Warning]") {
				t.Errorf("unexpected warning in:\n%s", out)
			}
			env := strings.Join(x.runs[0].Env, ",")
			if strings.Contains(tt.name, "build args") && !strings.Contains(env, "HTTP_PROXY=p") {
				t.Errorf("RUN env %q lacks the proxy", env)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestMultiStageTarget(t *testing.T) {
	dockerfile := `FROM busybox AS base
RUN make base

FROM missing-image AS unused
RUN never

FROM base AS build
RUN make build

FROM scratch AS final
COPY --from=build /out /app/out
COPY --from=0 /etc/passwd /passwd
CMD ["/app/out"]

FROM final AS extra
ENV X=1
`
	makes := func(r RunSpec, files map[string]fakeFile) (map[string]fakeFile, error) {
		if strings.HasSuffix(r.Args[len(r.Args)-1], "make build") {
			return map[string]fakeFile{"out": {Typ: tar.TypeReg, Mode: 0o755, Data: "binary"}}, nil
		}
		return nil, nil
	}
	dir := writeContext(t, map[string]string{"Dockerfile": dockerfile})

	x := fakeFS{newFake(t)}
	x.run = makes
	s, _, out := mustBuild(t, x, dir, Options{Target: "final"})
	for _, q := range x.imageQ {
		if q != "busybox" {
			t.Errorf("asked for image %q", q)
		}
	}
	if len(x.runs) != 2 {
		t.Errorf("%d RUNs, want 2 (unused stage skipped)", len(x.runs))
	}
	if !strings.Contains(out, "Step 1/8 : FROM busybox AS base") || !strings.Contains(out, "Step 8/8 : CMD [\"/app/out\"]") {
		t.Errorf("steps:\n%s", out)
	}
	if strings.Contains(out, "ENV X=1") {
		t.Error("built the stage after the target")
	}
	files := x.files(s)
	if files["app/out"].Data != "binary" || files["app/out"].Mode != 0o755 || files["passwd"].Data == "" {
		t.Errorf("final files %+v", files)
	}
	if _, ok := files["bin/sh"]; ok {
		t.Error("scratch stage holds busybox's files")
	}
	// The target starts from scratch: the build's time is the Unix epoch.
	if len(s.Config.RootFS.DiffIDs) != 2 || s.Config.Created.Unix() != 0 {
		t.Errorf("final config %+v", s.Config)
	}

	_, _, _, err := runBuild(t, x, dir, Options{Target: "nope"})
	if err == nil || !strings.Contains(err.Error(), "failed to reach build target nope in Dockerfile") || !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown target: %v", err)
	}
	// Without --target the last stage is built, which reaches the
	// unused stage's image only if needed: it is not.
	x2 := fakeFS{newFake(t)}
	x2.run = makes
	s, _, _ = mustBuild(t, x2, dir, Options{})
	if !strings.Contains(strings.Join(s.Config.Config.Env, ","), "X=1") {
		t.Errorf("last stage not built: %v", s.Config.Config.Env)
	}
}

func TestCopyFromImageNeedsFileSource(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY --from=busybox /bin/sh /sh\n"})
	_, _, _, err := runBuild(t, newFake(t), dir, Options{})
	if !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("COPY --from without FileSource: %v", err)
	}
	x := fakeFS{newFake(t)}
	s, _, _ := mustBuild(t, x, dir, Options{})
	if x.files(s)["sh"].Data != "#!busybox" {
		t.Errorf("files %+v", x.files(s))
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		opts       Options
		want       string
		is         error
	}{
		{"unknown instruction", "FROM busybox\n# c\nFOO bar\n", Options{}, "Dockerfile:3: unknown instruction: FOO", errdefs.ErrInvalidArgument},
		{"bad flag", "FROM busybox\nCOPY --nope=1 a b\n", Options{}, "Dockerfile:2: ", errdefs.ErrInvalidArgument},
		{"no from", "RUN x\n", Options{}, "", errdefs.ErrInvalidArgument},
		{"missing image", "FROM nothing\n", Options{}, "Dockerfile:1: ", errdefs.ErrNotFound},
		{"platform", "FROM --platform=linux/s390x busybox\n", Options{}, "Dockerfile:1: ", errdefs.ErrNotImplemented},
		{"platform option", "FROM busybox\n", Options{Platform: "windows/amd64"}, "platform", errdefs.ErrNotImplemented},
		{"current platform", "FROM --platform=linux/amd64 busybox\nRUN x\n", Options{Platform: "linux/amd64"}, "", nil},
		{"run failure", "FROM busybox\nRUN false\n", Options{}, "The command '/bin/sh -c false' returned a non-zero code: 1", nil},
		{"copy outside", "FROM busybox\nCOPY ../x /x\n", Options{}, "forbidden path outside the build context: ../x", errdefs.ErrForbidden},
		{"copy missing", "FROM busybox\nCOPY nothere /x\n", Options{}, "file not found in build context", errdefs.ErrNotFound},
		{"wildcard no match", "FROM busybox\nCOPY *.none /x/\n", Options{}, "no source files were specified", errdefs.ErrInvalidArgument},
		{"many sources need dir", "FROM busybox\nCOPY Dockerfile Dockerfile /x\n", Options{}, "must be a directory and end with a /", errdefs.ErrInvalidArgument},
		{"chown unknown user", "FROM busybox\nCOPY --chown=nobody Dockerfile /x\n", Options{}, "can't find uid for user nobody", errdefs.ErrInvalidArgument},
		{"bad stop signal", "FROM busybox\nSTOPSIGNAL 1x\n", Options{}, "Invalid signal: 1x", errdefs.ErrInvalidArgument},
		{"bad epoch", "FROM busybox\n", Options{BuildArgs: map[string]*string{"SOURCE_DATE_EPOCH": ptr("x")}}, "SOURCE_DATE_EPOCH", errdefs.ErrInvalidArgument},
		{"run mount", "FROM busybox\nRUN --mount=type=cache,target=/c x\n", Options{}, "Dockerfile:2: ", errdefs.ErrNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tt.dockerfile})
			x := newFake(t)
			x.run = func(r RunSpec, _ map[string]fakeFile) (map[string]fakeFile, error) {
				if r.Args[len(r.Args)-1] == "false" {
					return nil, &ExitError{Code: 1}
				}
				return nil, nil
			}
			_, _, out, err := runBuild(t, x, dir, tt.opts)
			if tt.want == "" && tt.is == nil {
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("build succeeded:\n%s", out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q in it", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
}

func TestRunFailureKeepsExitError(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN [\"sh\", \"-c\", \"exit 3\"]\n"})
	x := newFake(t)
	x.run = func(RunSpec, map[string]fakeFile) (map[string]fakeFile, error) { return nil, &ExitError{Code: 3} }
	_, _, _, err := runBuild(t, x, dir, Options{})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("error %v: no *ExitError 3", err)
	}
	if err.Error() != "The command 'sh -c exit 3' returned a non-zero code: 3" {
		t.Errorf("error text %q", err)
	}
	if len(x.cache) != 0 || len(x.committed) != 0 {
		t.Error("a failed step was cached or committed")
	}
}

func TestDockerfileLocation(t *testing.T) {
	dir := writeContext(t, map[string]string{"sub/Build.df": "FROM busybox\nENV F=sub\n"})
	s, _, _ := mustBuild(t, newFake(t), dir, Options{Dockerfile: "sub/Build.df"})
	if !strings.Contains(strings.Join(s.Config.Config.Env, ","), "F=sub") {
		t.Errorf("env %v", s.Config.Config.Env)
	}
	for name, want := range map[string]string{
		"":              "Cannot locate specified Dockerfile: Dockerfile",
		"nope":          "Cannot locate specified Dockerfile: nope",
		"../Dockerfile": "must be within the build context",
	} {
		_, _, _, err := runBuild(t, newFake(t), dir, Options{Dockerfile: name})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Dockerfile %q: %v, want %q", name, err, want)
		}
	}
}

func TestOnbuildTriggers(t *testing.T) {
	x := newFake(t)
	x.addImage("parent", busyboxFiles(), func(c *cfgT) {
		c.Config.OnBuild = []string{"ENV FROM_TRIGGER=1", "RUN echo trigger"}
	})
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM parent\nENV AFTER=1\n"})
	s, _, out := mustBuild(t, x, dir, Options{})
	if !strings.Contains(out, "# Executing 2 build triggers\n") {
		t.Errorf("output:\n%s", out)
	}
	if len(x.runs) != 1 || len(s.Config.Config.OnBuild) != 0 {
		t.Errorf("runs %v, onbuild %v", x.runs, s.Config.Config.OnBuild)
	}
	env := strings.Join(s.Config.Config.Env, ",")
	if !strings.Contains(env, "FROM_TRIGGER=1") || !strings.HasSuffix(env, "AFTER=1") {
		t.Errorf("env %s", env)
	}
}

func TestOnbuildOfAStage(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS one\nONBUILD ENV T=1\nFROM one\nENV U=2\n"})
	s, _, out := mustBuild(t, newFake(t), dir, Options{})
	if !strings.Contains(out, "# Executing 1 build trigger\n") || !strings.Contains(strings.Join(s.Config.Config.Env, ","), "T=1,U=2") {
		t.Errorf("env %v, output:\n%s", s.Config.Config.Env, out)
	}
	if len(s.Config.Config.OnBuild) != 0 {
		t.Errorf("triggers kept: %v", s.Config.Config.OnBuild)
	}
}
