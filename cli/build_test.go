package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// fakeBuiltID is the image every fake build makes.
const fakeBuiltID = "sha256:2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c"

// serveBuild answers POST /build like dockerd's classic builder for a
// two-step Dockerfile: a Dockerfile with "FOO" does not parse (400), one
// with "COPY nosuch" fails in its second step, in the stream.
func (f *fakeAPI) serveBuild(w http.ResponseWriter, r *http.Request, body []byte) {
	q := r.URL.Query()
	files, err := tarFiles(bytes.NewReader(body))
	if err != nil {
		writeFakeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	name := q.Get("dockerfile")
	if name == "" {
		name = "Dockerfile"
	}
	df, ok := files[name]
	switch {
	case !ok:
		writeFakeJSON(w, http.StatusInternalServerError, map[string]string{"message": "Cannot locate specified Dockerfile: " + name})
		return
	case strings.Contains(df.content, "FOO"):
		writeFakeJSON(w, http.StatusBadRequest, map[string]string{"message": "dockerfile parse error line 2: unknown instruction: FOO"})
		return
	}
	var lines []string
	say := func(s string) { lines = append(lines, fmt.Sprintf(`{"stream":%q}`, s)) }
	say("Step 1/2 : FROM busybox")
	say("\n")
	say(" ---> 1a2b3c4d5e6f\n")
	say("Step 2/2 : RUN echo hi")
	say("\n")
	if strings.Contains(df.content, "COPY nosuch") {
		msg := "COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist"
		lines = append(lines, `{"errorDetail":{"message":"`+msg+`"},"error":"`+msg+`"}`)
	} else {
		say(" ---> Running in 0123456789ab\n")
		say("hi\n")
		say(" ---> " + fakeBuiltID[7:19] + "\n")
		say("Successfully built " + fakeBuiltID[7:19] + "\n")
		for _, t := range q["t"] {
			ref, _ := reference.ParseNormalizedNamed(t)
			say("Successfully tagged " + reference.FamiliarString(reference.TagNameOnly(ref)) + "\n")
		}
		lines = append(lines, `{"aux":{"ID":"`+fakeBuiltID+`"}}`)
	}
	if q.Get("q") == "1" && !strings.Contains(df.content, "COPY nosuch") {
		lines = []string{`{"stream":"` + fakeBuiltID + `\n"}`}
	}
	writeFakeStream(w, lines)
}

// tarFile is one entry of a context tar.
type tarFile struct {
	content  string
	mode     int64
	uid, gid int
	link     string
}

// tarFiles reads a tar, gzipped or not, into its entries by name
// (directories end in "/").
func tarFiles(r io.Reader) (map[string]tarFile, error) {
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
	files := map[string]tarFile{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read context tar: %w", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[strings.TrimPrefix(h.Name, "./")] = tarFile{content: string(b), mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, link: h.Linkname}
	}
}

// writeTree makes files (dirs end in "/"; "->x" content makes a symlink
// to x) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// lastBuild returns the last POST /build the fake saw and its context.
func (e *testEnv) lastBuild() (fakeRequest, map[string]tarFile) {
	e.t.Helper()
	reqs := e.api.recorded(http.MethodPost, "/build")
	if len(reqs) == 0 {
		e.t.Fatal("no build request")
	}
	req := reqs[len(reqs)-1]
	files, err := tarFiles(strings.NewReader(req.Body))
	if err != nil {
		e.t.Fatal(err)
	}
	return req, files
}

func names(files map[string]tarFile) []string {
	var out []string
	for n := range files {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

const helloDockerfile = "FROM busybox\nRUN echo hi\n"

// sendingLine matches the upload line and its size, which depends on
// the tar's layout.
var sendingLine = regexp.MustCompile(`^Sending build context to Docker daemon +[0-9.]+k?B\r\r\n`)

func TestBuildContext(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	ctx := filepath.Join(dir, "ctx")
	writeTree(t, ctx, map[string]string{
		"Dockerfile":      helloDockerfile,
		".dockerignore":   "# comment\nskip\n!skip/keep/k.txt\n*.log\n**/*.tmp\nDockerfile\n.dockerignore\ndocs\n",
		"skip/a":          "a",
		"skip/keep/k.txt": "k",
		"skip/keep/other": "o",
		"sub/deep/x.tmp":  "x",
		"sub/deep/y":      "y",
		"a.log":           "l",
		"logs/b.log":      "l",
		"top.txt":         "top",
		"link":            "->top.txt",
		"docs/Dockerfile": "FROM busybox\n",
		"empty/":          "",
	})
	outside := filepath.Join(dir, "Dockerfile.outside")
	writeTree(t, dir, map[string]string{"Dockerfile.outside": "FROM outside\n", "lower/dockerfile": "FROM lower\n", "lower/f": "f"})
	added := ".dockerfile." + hexPrefix("FROM outside\n")
	// "*.log" excludes a.log at the top only.
	dirEntries := []string{".dockerignore", "Dockerfile", "empty/", "link", "logs/", "logs/b.log", "skip/keep/k.txt", "sub/", "sub/deep/", "sub/deep/y", "top.txt"}
	// With another Dockerfile named, the one .dockerignore excludes stays
	// out.
	otherEntries := func(more string) []string {
		return append(slices.DeleteFunc(slices.Clone(dirEntries), func(s string) bool { return s == "Dockerfile" }), more)
	}

	tests := []struct {
		name       string
		stdin      string
		args       []string
		dockerfile string
		entries    []string
		check      func(t *testing.T, files map[string]tarFile)
	}{
		{"dir", "", []string{ctx}, "Dockerfile", dirEntries, func(t *testing.T, files map[string]tarFile) {
			if f := files["top.txt"]; f.content != "top" || f.mode != 0o644 || f.uid != 0 || f.gid != 0 {
				t.Errorf("top.txt %+v", f)
			}
			if f := files["link"]; f.link != "top.txt" {
				t.Errorf("link %+v", f)
			}
		}},
		{"file in excluded dir", "", []string{"-f", filepath.Join(ctx, "docs/Dockerfile"), ctx}, "docs/Dockerfile",
			otherEntries("docs/Dockerfile"), nil},
		{"outside", "", []string{"-f", outside, ctx}, added, otherEntries(added), func(t *testing.T, files map[string]tarFile) {
			if files[added].content != "FROM outside\n" {
				t.Errorf("added Dockerfile %q", files[added].content)
			}
			if want := "# comment\nskip\n!skip/keep/k.txt\n*.log\n**/*.tmp\nDockerfile\n.dockerignore\ndocs\n\n" + added + "\n"; files[".dockerignore"].content != want {
				t.Errorf(".dockerignore %q, want %q", files[".dockerignore"].content, want)
			}
		}},
		{"stdin dockerfile", "FROM outside\n", []string{"-f", "-", ctx}, added, otherEntries(added), nil},
		{"lowercase dockerfile", "", []string{filepath.Join(dir, "lower")}, "dockerfile", []string{"dockerfile", "f"}, nil},
		{"outside without dockerignore", "", []string{"-f", outside, filepath.Join(dir, "lower")}, added,
			[]string{".dockerignore", added, "dockerfile", "f"}, func(t *testing.T, files map[string]tarFile) {
				if want := ".dockerignore\n" + added + "\n"; files[".dockerignore"].content != want {
					t.Errorf(".dockerignore %q, want %q", files[".dockerignore"].content, want)
				}
			}},
		{"stdin lone dockerfile", helloDockerfile, []string{"-"}, "Dockerfile", []string{"Dockerfile"}, nil},
		{"compress", "", []string{"--compress", ctx}, "Dockerfile", dirEntries, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.berth(tt.stdin, append([]string{"build"}, tt.args...)...)
			if res.code != 0 {
				t.Fatalf("status %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			req, files := e.lastBuild()
			if got := req.Query.Get("dockerfile"); got != tt.dockerfile {
				t.Errorf("dockerfile=%q, want %q", got, tt.dockerfile)
			}
			slices.Sort(tt.entries)
			if got := names(files); !reflect.DeepEqual(got, tt.entries) {
				t.Errorf("context\n %q\nwant\n %q", got, tt.entries)
			}
			if tt.check != nil {
				tt.check(t, files)
			}
			if gz := strings.HasPrefix(req.Body, "\x1f\x8b"); gz != slices.Contains(tt.args, "--compress") {
				t.Errorf("gzipped %v", gz)
			}
		})
	}
}

// TestBuildArchiveContext sends tar archives as they are: from stdin
// (plain or gzipped) and from a file.
func TestBuildArchiveContext(t *testing.T) {
	e := newTestEnv(t)
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	for name, content := range map[string]string{"Dockerfile.alt": helloDockerfile, "app/x": "x"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: int64(len(content)), Typeflag: tar.TypeReg, Uid: 1000})
		io.WriteString(tw, content)
	}
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	file := filepath.Join(t.TempDir(), "ctx.tar")
	if err := os.WriteFile(file, plain.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, stdin, path string
		want              []byte
	}{
		{"stdin tar", plain.String(), "-", plain.Bytes()},
		{"stdin gzip", gz.String(), "-", gz.Bytes()},
		{"tarball", "", file, plain.Bytes()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.berth(tt.stdin, "build", "-f", "Dockerfile.alt", tt.path)
			if res.code != 0 {
				t.Fatalf("status %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			req, _ := e.lastBuild()
			if req.Body != string(tt.want) || req.Query.Get("dockerfile") != "Dockerfile.alt" {
				t.Errorf("sent %d bytes with dockerfile=%q; want the archive as it is", len(req.Body), req.Query.Get("dockerfile"))
			}
		})
	}
}

func TestBuildQuery(t *testing.T) {
	e := newTestEnv(t)
	e.env["FROM_ENV"] = "e"
	ctx := t.TempDir()
	writeTree(t, ctx, map[string]string{"Dockerfile": helloDockerfile})
	tests := []struct {
		args []string
		want map[string]string // parameters to find; "" means absent
	}{
		{nil, map[string]string{"version": "1", "rm": "", "t": "", "buildargs": "", "networkmode": "", "dockerfile": "Dockerfile"}},
		{[]string{"-t", "app", "--tag", "localhost:5000/team/app:1", "--target", "test", "--no-cache", "--pull", "--network", "host", "--platform", "linux/amd64"},
			map[string]string{"t": "app,localhost:5000/team/app:1", "target": "test", "nocache": "1", "pull": "1", "networkmode": "host", "platform": "linux/amd64"}},
		{[]string{"--build-arg", "A=1", "--build-arg", "FROM_ENV", "--build-arg", "UNSET", "--label", "team=x", "--label", "flag"},
			map[string]string{"buildargs": `{"A":"1","FROM_ENV":"e","UNSET":null}`, "labels": `{"flag":"","team":"x"}`}},
		{[]string{"--rm=false"}, map[string]string{"rm": "0"}},
		{[]string{"--force-rm", "-q"}, map[string]string{"rm": "", "forcerm": "1", "q": "1"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := e.berth("", append(append([]string{"build"}, tt.args...), ctx)...)
			if res.code != 0 {
				t.Fatalf("status %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			req, _ := e.lastBuild()
			for k, want := range tt.want {
				if got := strings.Join(req.Query[k], ","); got != want {
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestBuildOutput(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"ok/Dockerfile":   helloDockerfile,
		"bad/Dockerfile":  "FROM busybox\nFOO bar\n",
		"fail/Dockerfile": "FROM busybox\nCOPY nosuch /x\n",
	})
	iid := filepath.Join(dir, "iid")
	steps := "Step 1/2 : FROM busybox\n ---> 1a2b3c4d5e6f\nStep 2/2 : RUN echo hi\n"
	copyFailed := "COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist\n"

	tests := []struct {
		name           string
		args           []string
		stdout, stderr string // after the "Sending build context" line, when sending
		sending        bool
		code           int
		iid            string
	}{
		{"built", []string{"-t", "app", "--iidfile", iid, filepath.Join(dir, "ok")},
			steps + " ---> Running in 0123456789ab\nhi\n ---> 2b3c4d5e6f7a\nSuccessfully built 2b3c4d5e6f7a\nSuccessfully tagged app:latest\n", "", true, 0, fakeBuiltID},
		{"quiet", []string{"-q", "--iidfile", iid, filepath.Join(dir, "ok")}, fakeBuiltID + "\n", "", false, 0, fakeBuiltID},
		{"parse error", []string{"--iidfile", iid, filepath.Join(dir, "bad")}, "",
			"Error response from daemon: dockerfile parse error line 2: unknown instruction: FOO\n", true, 1, ""},
		{"failed step", []string{"--iidfile", iid, filepath.Join(dir, "fail")}, steps, copyFailed, true, 1, ""},
		{"failed step quiet", []string{"-q", "--iidfile", iid, filepath.Join(dir, "fail")}, "", "\x00" + steps + copyFailed, false, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(iid, []byte("stale"), 0o644); err != nil {
				t.Fatal(err)
			}
			res := e.berth("", append([]string{"build"}, tt.args...)...)
			stdout, stderr := res.stdout, res.stderr
			if tt.sending {
				if !sendingLine.MatchString(stdout) {
					t.Errorf("stdout does not begin with the sending line: %q", stdout)
				}
				stdout = sendingLine.ReplaceAllString(stdout, "")
			}
			if rest, ok := strings.CutPrefix(tt.stderr, "\x00"); ok {
				// Quiet, a failure shows what was kept back, on stderr.
				if !sendingLine.MatchString(stderr) {
					t.Errorf("stderr does not begin with the sending line: %q", stderr)
				}
				stderr, tt.stderr = sendingLine.ReplaceAllString(stderr, ""), rest
			}
			if res.code != tt.code || stdout != tt.stdout || stderr != tt.stderr {
				t.Errorf("status %d, stdout:\n%q\nstderr:\n%q\nwant %d\n%q\n%q", res.code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
			got, err := os.ReadFile(iid)
			if tt.iid == "" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("iidfile left: %q %v", got, err)
			} else if tt.iid != "" && string(got) != tt.iid {
				t.Errorf("iidfile %q %v, want %q", got, err, tt.iid)
			}
		})
	}
}

// TestBuildRefused covers what fails before anything is sent.
func TestBuildRefused(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": helloDockerfile})
	tests := []struct {
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"", []string{"https://github.com/x/y.git"}, 1, "unable to prepare context: berth does not build from a URL (https://github.com/x/y.git)"},
		{"", []string{filepath.Join(dir, "nosuch")}, 1, fmt.Sprintf("unable to prepare context: path %q not found", filepath.Join(dir, "nosuch"))},
		{"", []string{"-f", "-", "-"}, 1, "invalid argument: can't use stdin for both build context and dockerfile"},
		{"FROM x\n", []string{"-f", "Dockerfile", "-"}, 1, "unable to prepare context: ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles"},
		{"", []string{"-f", filepath.Join(dir, "nosuch"), dir}, 1, "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat " + filepath.Join(dir, "nosuch") + ": no such file or directory"},
		{"", []string{filepath.Join(dir, "Dockerfile")}, 1, "is neither a directory nor a tar archive"},
		{"", []string{"-t", "UPPER", dir}, 125, `invalid argument "UPPER" for "-t, --tag" flag: invalid reference format: repository name (library/UPPER) must be lowercase`},
		{"", []string{"--build-arg", "=x", dir}, 1, "invalid environment variable: =x"},
		{"", []string{"--platform", "linux//", dir}, 1, "invalid platform"},
		{"", []string{dir, dir}, 1, "'berth build' requires 1 argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := e.berth(tt.stdin, append([]string{"build"}, tt.args...)...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.msg) || res.stdout != "" {
				t.Errorf("status %d\nstdout %q\nstderr %q\nwant %d and %q", res.code, res.stdout, res.stderr, tt.code, tt.msg)
			}
		})
	}
	if reqs := e.api.recorded(http.MethodPost, "/build"); len(reqs) != 0 {
		t.Errorf("%d builds reached the daemon", len(reqs))
	}
}

// TestBuildSameAsDocker runs `docker build` (docker 28 without buildx:
// its classic builder) and berth build against the same fake with the
// same arguments, and expects the same output, status and context.
func TestBuildSameAsDocker(t *testing.T) {
	bin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed")
	}
	e := newTestEnv(t)
	dir := t.TempDir()
	ctx := filepath.Join(dir, "ctx")
	writeTree(t, ctx, map[string]string{
		"Dockerfile":       helloDockerfile,
		".dockerignore":    "skip\n!skip/keep/k.txt\n*.log\n**/*.tmp\nDockerfile\n",
		"skip/a":           "a",
		"skip/keep/k.txt":  "k",
		"sub/deep/x.tmp":   "x",
		"sub/deep/y":       "y",
		"a.log":            "l",
		"top.txt":          "top",
		"link":             "->top.txt",
		"bad.Dockerfile":   "FROM busybox\nFOO bar\n",
		"fail.Dockerfile":  "FROM busybox\nCOPY nosuch /x\n",
		"sub/Dockerfile.x": helloDockerfile,
	})
	writeTree(t, dir, map[string]string{"outside.Dockerfile": helloDockerfile})
	docker := func(stdin string, args ...string) result {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = []string{"DOCKER_HOST=unix://" + e.socket, "HOME=" + e.home, "DOCKER_CONFIG=" + filepath.Join(e.home, ".docker-real"), "PATH=/usr/bin:/bin"}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return result{out.String(), errOut.String(), ee.ExitCode()}
		} else if err != nil {
			t.Fatal(err)
		}
		return result{out.String(), errOut.String(), 0}
	}
	// Docker warns that its classic builder is deprecated; berth has no
	// other.
	deprecated := regexp.MustCompile(`(?s)^DEPRECATED: The legacy builder.*?\n\n`)
	generated := regexp.MustCompile(`\.dockerfile\.[0-9a-f]{20}`)

	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"-t", "app", "-t", "app:2", "ctx"}},
		{"", []string{"-q", "ctx"}},
		{"", []string{"-f", "ctx/sub/Dockerfile.x", "--build-arg", "A=1", "--label", "l=v", "--target", "t", "--no-cache", "ctx"}},
		{"", []string{"-f", "outside.Dockerfile", "ctx"}},
		{helloDockerfile, []string{"-f", "-", "ctx"}},
		{helloDockerfile, []string{"-"}},
		{"", []string{"-f", "ctx/bad.Dockerfile", "ctx"}},
		{"", []string{"-f", "ctx/fail.Dockerfile", "ctx"}},
		{"", []string{"-q", "-f", "ctx/fail.Dockerfile", "ctx"}},
		{"", []string{"nosuch"}},
		{"", []string{"-t", "UPPER", "ctx"}},
		{"", []string{"-f", "-", "-"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			before := len(e.api.recorded(http.MethodPost, "/build"))
			want := docker(tc.stdin, append([]string{"build"}, tc.args...)...)
			nDocker := len(e.api.recorded(http.MethodPost, "/build"))
			var wantReq fakeRequest
			var wantFiles map[string]tarFile
			if nDocker > before {
				wantReq, wantFiles = e.lastBuild()
			}
			// berth runs in this process: its relative paths are the
			// test's, so make them absolute as docker's were.
			args := slices.Clone(tc.args)
			for i, a := range args {
				if _, err := os.Stat(filepath.Join(dir, a)); err == nil || a == "nosuch" {
					args[i] = filepath.Join(dir, a)
				}
			}
			got := e.berth(tc.stdin, append([]string{"build"}, args...)...)
			if got.code != want.code {
				t.Errorf("status %d, docker's %d", got.code, want.code)
			}
			norm := func(s string) string {
				s = sendingLine.ReplaceAllString(s, "Sending build context to Docker daemon  N\r\r\n")
				return strings.ReplaceAll(s, dir+"/", "")
			}
			if norm(got.stdout) != norm(want.stdout) {
				t.Errorf("stdout:\n%q\ndocker's:\n%q", got.stdout, want.stdout)
			}
			wantErr := strings.ReplaceAll(deprecated.ReplaceAllString(want.stderr, ""), "docker build", "berth build")
			if norm(got.stderr) != norm(wantErr) {
				t.Errorf("stderr:\n%q\ndocker's (renamed):\n%q", got.stderr, wantErr)
			}
			sent := len(e.api.recorded(http.MethodPost, "/build")) - nDocker
			if sent != nDocker-before {
				t.Fatalf("berth sent %d builds, docker %d", sent, nDocker-before)
			}
			if sent == 0 {
				return
			}
			gotReq, gotFiles := e.lastBuild()
			for _, q := range []string{"t", "dockerfile", "buildargs", "labels", "target", "nocache", "q", "rm", "version"} {
				g, w := generated.ReplaceAllString(strings.Join(gotReq.Query[q], ","), "G"), generated.ReplaceAllString(strings.Join(wantReq.Query[q], ","), "G")
				if g != w {
					t.Errorf("%s=%q, docker's %q", q, g, w)
				}
			}
			if g, w := contextSummary(gotFiles, generated), contextSummary(wantFiles, generated); g != w {
				t.Errorf("context:\n%s\ndocker's:\n%s", g, w)
			}
		})
	}
}

// contextSummary lists a context's entries with mode, owner and content,
// the generated Dockerfile name replaced by G.
func contextSummary(files map[string]tarFile, generated *regexp.Regexp) string {
	var b strings.Builder
	for _, n := range names(files) {
		f := files[n]
		fmt.Fprintf(&b, "%s %o %d:%d %q %q\n", generated.ReplaceAllString(n, "G"), f.mode, f.uid, f.gid, f.link, generated.ReplaceAllString(f.content, "G"))
	}
	return b.String()
}

// hexPrefix is the name berth gives an added Dockerfile: the first 20 hex
// digits of its SHA-256.
func hexPrefix(content string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(content)))[:20]
}
