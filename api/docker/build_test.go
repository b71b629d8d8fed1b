package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
)

const builtImageID = "sha256:2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c"

// fakeBuild is a BuildBackend that reads the context tar (plain or
// gzipped), records it with the options, and writes the classic
// builder's text for a two-step Dockerfile. A Dockerfile holding "FOO"
// fails before any output, as a parse error does; one holding "COPY
// nosuch" fails after its first step.
type fakeBuild struct {
	recorder
}

func (f *fakeBuild) PruneCache(ctx context.Context, opts backend.BuildCachePruneOptions) (build.CachePruneReport, error) {
	f.record("PruneCache", opts)
	return build.CachePruneReport{CachesDeleted: []string{"0123456789ab"}, SpaceReclaimed: 4096}, nil
}

func (f *fakeBuild) Build(ctx context.Context, opts backend.BuildOptions, buildContext io.Reader, out io.Writer) (string, error) {
	files, err := readContext(buildContext)
	if err != nil {
		return "", fmt.Errorf("read build context: %w", err)
	}
	f.record("Build", opts, files)
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	dockerfile, ok := files[name]
	if !ok {
		return "", fmt.Errorf("Cannot locate specified Dockerfile: %s: %w", name, errdefs.ErrInvalidArgument)
	}
	if strings.Contains(dockerfile, "FOO") {
		return "", fmt.Errorf("dockerfile parse error line 2: unknown instruction: FOO: %w", errdefs.ErrInvalidArgument)
	}
	say := func(s string) {
		if !opts.Quiet {
			io.WriteString(out, s)
		}
	}
	say("Step 1/2 : FROM busybox")
	say("\n")
	say(" ---> 1a2b3c4d5e6f\n")
	say("Step 2/2 : RUN echo hi")
	say("\n")
	if strings.Contains(dockerfile, "COPY nosuch") {
		return "", errors.New("COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist")
	}
	say(" ---> Running in 0123456789ab\n")
	say("hi\n")
	say(" ---> " + builtImageID[7:19] + "\n")
	say("Successfully built " + builtImageID[7:19] + "\n")
	for _, t := range opts.Tags {
		say("Successfully tagged " + t + "\n")
	}
	if opts.Quiet {
		io.WriteString(out, builtImageID+"\n")
	}
	return builtImageID, nil
}

// readContext returns the regular files of a tar stream, gzipped or not,
// by name.
func readContext(r io.Reader) (map[string]string, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		r = zr
	} else {
		r = br
	}
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			files[strings.TrimPrefix(h.Name, "./")] = string(b)
		}
	}
}

// contextTar is a tar of the given files.
func contextTar(t *testing.T, files map[string]string) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

func newBuildServer(t *testing.T) (string, *fakeBuild) {
	t.Helper()
	b := &fakeBuild{}
	return httptestServer(t, NewServer(Backends{System: &fakeSystem{}, Images: &fakeImages{}, Build: b}).Handler()), b
}

const helloDockerfile = "FROM busybox\nRUN echo hi\n"

func TestBuildOptions(t *testing.T) {
	arg := "v"
	tests := []struct {
		query string
		want  backend.BuildOptions
	}{
		{"", backend.BuildOptions{Remove: true}},
		{"t=app&t=localhost:5000/team/app:1&t=app:latest&t=docker.io/library/app", backend.BuildOptions{
			Tags: []string{"app:latest", "localhost:5000/team/app:1"}, Remove: true}},
		{"dockerfile=sub/Dockerfile.dev&target=test&nocache=1&pull=true&q=1&rm=0&forcerm=1&networkmode=host&platform=linux/" + runtime.GOARCH, backend.BuildOptions{
			Dockerfile: "sub/Dockerfile.dev", Target: "test", NoCache: true, Pull: true, Quiet: true,
			ForceRemove: true, Network: "host", Platform: "linux/" + runtime.GOARCH}},
		{`buildargs={"A":"v","B":null}&labels={"l":"x"}`, backend.BuildOptions{
			BuildArgs: map[string]*string{"A": &arg, "B": nil}, Labels: map[string]string{"l": "x"}, Remove: true}},
		// What docker CLI 20.10 sends for the flags it was not given, and
		// parameters berth accepts and ignores.
		{"version=1&cachefrom=[]&ulimits=null&extrahosts=&shmsize=0&memory=1073741824&cpushares=512&cgroupparent=&isolation=&session=abc&buildid=x", backend.BuildOptions{Remove: true}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := buildOptions(q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("options\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestBuildRefused(t *testing.T) {
	base, b := newBuildServer(t)
	tests := []struct {
		query  string
		status int
		msg    string
	}{
		{"version=2", http.StatusNotImplemented, "set DOCKER_BUILDKIT=0"},
		{"version=3", http.StatusBadRequest, "unsupported builder version 3"},
		{"remote=https://github.com/x/y.git", http.StatusNotImplemented, "remote context"},
		{"squash=1", http.StatusNotImplemented, "squash"},
		{`outputs=[{"Type":"local"}]`, http.StatusNotImplemented, "BuildKit"},
		{"isolation=hyperv", http.StatusBadRequest, "isolation"},
		{"extrahosts=db:10.0.0.2", http.StatusNotImplemented, "--add-host"},
		{"securityopt=seccomp=unconfined", http.StatusNotImplemented, "--security-opt"},
		{`ulimits=[{"Name":"nofile","Soft":1,"Hard":2}]`, http.StatusNotImplemented, "--ulimit"},
		{"t=UPPER", http.StatusBadRequest, "invalid reference format"},
		{"t=app@sha256:" + strings.Repeat("a", 64), http.StatusBadRequest, "build tag cannot contain a digest"},
		{"buildargs={", http.StatusBadRequest, "unable to parse build args"},
		{"labels=[1]", http.StatusBadRequest, "error reading labels"},
		{"platform=windows/amd64", http.StatusBadRequest, "invalid platform"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, base+"/v1.51/build?"+tt.query, contextTar(t, map[string]string{"Dockerfile": helloDockerfile}))
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if resp.StatusCode != tt.status || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("%d %q, want %d and %q", resp.StatusCode, e.Message, tt.status, tt.msg)
			}
		})
	}
	if calls := b.Calls(); len(calls) != 0 {
		t.Errorf("refused requests reached the backend: %v", calls)
	}
}

func TestBuildNoBackend(t *testing.T) {
	base := httptestServer(t, NewServer(Backends{}).Handler())
	resp, body := do(t, http.MethodPost, base+"/build", contextTar(t, map[string]string{"Dockerfile": helloDockerfile}))
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("%d %s, want 501", resp.StatusCode, body)
	}
}

// TestBuildStream checks the body line by line: every write of the
// backend as a stream message, then the image ID as aux; with q=1 only
// what the backend wrote (dockerd sends no aux then either).
func TestBuildStream(t *testing.T) {
	base, b := newBuildServer(t)
	ctx := map[string]string{"Dockerfile": helloDockerfile, "app/main.go": "package main\n"}
	tests := []struct {
		query string
		want  []string
	}{
		{"t=app", []string{
			`{"stream":"Step 1/2 : FROM busybox"}`, `{"stream":"\n"}`, `{"stream":" ---\u003e 1a2b3c4d5e6f\n"}`,
			`{"stream":"Step 2/2 : RUN echo hi"}`, `{"stream":"\n"}`, `{"stream":" ---\u003e Running in 0123456789ab\n"}`,
			`{"stream":"hi\n"}`, `{"stream":" ---\u003e 2b3c4d5e6f7a\n"}`, `{"stream":"Successfully built 2b3c4d5e6f7a\n"}`,
			`{"stream":"Successfully tagged app:latest\n"}`, `{"aux":{"ID":"` + builtImageID + `"}}`,
		}},
		{"q=1", []string{`{"stream":"` + builtImageID + `\n"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, base+"/v1.41/build?"+tt.query, contextTar(t, ctx), "Content-Type", "application/x-tar")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			got := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("body:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			files := b.last(t).Args[1].(map[string]string)
			if !reflect.DeepEqual(files, ctx) {
				t.Errorf("backend read the context %v, want %v", files, ctx)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	base, _ := newBuildServer(t)
	// A failure before any output is an HTTP error, as dockerd answers a
	// Dockerfile that does not parse.
	resp, body := do(t, http.MethodPost, base+"/build", contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nFOO bar\n"}))
	if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(body)) != `{"message":"dockerfile parse error line 2: unknown instruction: FOO"}` {
		t.Errorf("parse error: %d %s", resp.StatusCode, body)
	}
	// After output, the error is the stream's last line.
	resp, body = do(t, http.MethodPost, base+"/build", contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY nosuch /x\n"}))
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	msg := "COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist"
	want := `{"errorDetail":{"message":"` + msg + `"},"error":"` + msg + `"}`
	if resp.StatusCode != http.StatusOK || len(lines) != 6 || lines[5] != want {
		t.Errorf("failed step: %d\n%s", resp.StatusCode, body)
	}
	// A context that is not a tar reaches the backend, whose error it is.
	resp, body = do(t, http.MethodPost, base+"/build", strings.NewReader("not a tar"))
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "read build context") {
		t.Errorf("bad context: %d %s", resp.StatusCode, body)
	}
}

// TestBuildMobyClient builds with the Go SDK's ImageBuild, a gzipped
// context, and reads the stream as its users do.
func TestBuildMobyClient(t *testing.T) {
	base, b := newBuildServer(t)
	u, _ := url.Parse(base)
	c, err := client.New(client.WithHost("tcp://"+u.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.Copy(zw, contextTar(t, map[string]string{"Dockerfile.dev": helloDockerfile}))
	zw.Close()

	arg := "1.2"
	res, err := c.ImageBuild(context.Background(), &gz, client.ImageBuildOptions{
		Tags: []string{"app:v1"}, Dockerfile: "Dockerfile.dev", BuildArgs: map[string]*string{"VERSION": &arg},
		Labels: map[string]string{"team": "x"}, Remove: true, NoCache: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var text strings.Builder
	var id string
	dec := json.NewDecoder(res.Body)
	for {
		var m jsonMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		text.WriteString(m.Stream)
		if aux, ok := m.Aux.(map[string]any); ok {
			id, _ = aux["ID"].(string)
		}
	}
	if id != builtImageID || !strings.HasSuffix(text.String(), "Successfully tagged app:v1\n") {
		t.Errorf("id %q, text:\n%s", id, text.String())
	}
	opts := b.last(t).Args[0].(backend.BuildOptions)
	want := backend.BuildOptions{Tags: []string{"app:v1"}, Dockerfile: "Dockerfile.dev", BuildArgs: map[string]*string{"VERSION": &arg},
		Labels: map[string]string{"team": "x"}, NoCache: true, Remove: true}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("options %+v, want %+v", opts, want)
	}

	_, err = c.ImageBuild(context.Background(), contextTar(t, map[string]string{"Dockerfile": "FOO"}), client.ImageBuildOptions{})
	if err == nil || !strings.Contains(err.Error(), "unknown instruction: FOO") {
		t.Errorf("parse error: %v", err)
	}
}

// TestBuildDockerCLI runs the real docker CLI's classic build against the
// server, with DOCKER_BUILDKIT=0 and without it (no buildx installed: the
// CLI falls back to the classic builder), and expects the output dockerd
// 20.10 gives for the same steps (see fakeBuild).
func TestBuildDockerCLI(t *testing.T) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBuild{}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- NewServer(Backends{System: &fakeSystem{}, Images: &fakeImages{}, Build: b}).Serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	src := filepath.Join(dir, "src")
	for name, content := range map[string]string{"Dockerfile": helloDockerfile, "a.txt": "a\n", "bad/Dockerfile": "FROM busybox\nCOPY nosuch /x\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	docker := func(buildkitEnv string, args ...string) (stdout, stderr string, code int) {
		cmd := exec.Command(dockerBin, args...)
		cmd.Dir = src
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "DOCKER_HOST=unix://" + sock,
			"DOCKER_CONFIG=" + filepath.Join(dir, "config"), "DOCKER_CLI_HINTS=false"}
		if buildkitEnv != "" {
			cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT="+buildkitEnv)
		}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errOut.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), 0
	}

	wantOut := "Step 1/2 : FROM busybox\n ---> 1a2b3c4d5e6f\nStep 2/2 : RUN echo hi\n ---> Running in 0123456789ab\nhi\n ---> 2b3c4d5e6f7a\n" +
		"Successfully built 2b3c4d5e6f7a\nSuccessfully tagged x:latest\n"
	for _, env := range []string{"0", ""} {
		stdout, stderr, code := docker(env, "build", "-t", "x", "--iidfile", filepath.Join(dir, "iid"), ".")
		// "Sending build context to Docker daemon  2.56kB": the size
		// depends on the tar's padding.
		first, rest, _ := strings.Cut(stdout, "\n")
		if code != 0 || !strings.HasPrefix(first, "Sending build context to Docker daemon  ") || rest != wantOut {
			t.Errorf("DOCKER_BUILDKIT=%s: status %d\nstdout:\n%s\nstderr:\n%s", env, code, stdout, stderr)
		}
		if iid, err := os.ReadFile(filepath.Join(dir, "iid")); err != nil || string(iid) != builtImageID {
			t.Errorf("iidfile %q %v", iid, err)
		}
		files := b.last(t).Args[1].(map[string]string)
		if files["a.txt"] != "a\n" || files["Dockerfile"] != helloDockerfile {
			t.Errorf("context %v", files)
		}
	}

	stdout, stderr, code := docker("0", "build", "-q", ".")
	if code != 0 || stdout != builtImageID+"\n" {
		t.Errorf("-q: status %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = docker("0", "build", "-f", "bad/Dockerfile", ".")
	if code != 1 || !strings.Contains(stdout, "Step 2/2 : RUN echo hi\n") ||
		!strings.HasSuffix(stderr, "COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist\n") {
		t.Errorf("failed step: status %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got := b.last(t).Args[0].(backend.BuildOptions).Dockerfile; got != "bad/Dockerfile" {
		t.Errorf("dockerfile %q", got)
	}
}

// POST /build/prune answers the backend's report; filters and size targets
// berth cannot honour are refused, not ignored. docker builder prune and
// docker system prune (its last step) work through it.
func TestBuildCachePrune(t *testing.T) {
	b := &fakeBuild{}
	base := httptestServer(t, NewServer(Backends{Build: b}).Handler())
	for _, tc := range []struct {
		query string
		code  int
		body  string
	}{
		{"", 200, `{"CachesDeleted":["0123456789ab"],"SpaceReclaimed":4096}`},
		{"?all=1", 200, `{"CachesDeleted":["0123456789ab"],"SpaceReclaimed":4096}`},
		{"?filters=" + url.QueryEscape(`{"until":{"24h":true},"label":{"a=b":true}}`), 200, `"SpaceReclaimed":4096`},
		{"?filters=" + url.QueryEscape(`{"type":{"regular":true}}`), 501, "has no type filter"},
		{"?keep-storage=1000", 501, "has no keep-storage"},
		{"?filters=" + url.QueryEscape(`{"bogus":{"x":true}}`), 400, "invalid filter"},
	} {
		resp, err := http.Post(base+"/build/prune"+tc.query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s: %d %s, want %d with %q", tc.query, resp.StatusCode, body, tc.code, tc.body)
		}
	}
	var alls []bool
	for _, c := range b.Calls() {
		if c.Method == "PruneCache" {
			alls = append(alls, c.Args[0].(backend.BuildCachePruneOptions).All)
		}
	}
	if fmt.Sprint(alls) != "[false true false]" {
		t.Errorf("backend calls with all = %v, want [false true false] (refused requests reach nothing)", alls)
	}
	last := b.last(t).Args[0].(backend.BuildCachePruneOptions)
	if last.Until.IsZero() || time.Since(last.Until) < 23*time.Hour || fmt.Sprint(last.Labels) != "[a=b]" {
		t.Errorf("filters reached the backend as %+v", last)
	}
}
