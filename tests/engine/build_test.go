package engine_test

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"berth.dev/tests/enginetest"
)

// The end-to-end tests of image builds: the real berthd driven by `berth
// build` and by docker's classic builder client (DOCKER_BUILDKIT=0 docker
// build), with the image, its history and containers of it checked as a
// user would see them.

// classicDocker is docker's CLI against d with the classic builder
// (DOCKER_BUILDKIT=0, set for the test).
func classicDocker(t *testing.T, d *enginetest.Daemon) cli {
	t.Setenv("DOCKER_BUILDKIT", "0")
	return cli{"docker", d.Docker}
}

// writeContext writes files (name → content) under dir; a name ending in
// "/" is a directory, content "->target" a symlink. Modes: 0o755 for
// *.sh, 0o644 otherwise.
func writeContext(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			err := os.MkdirAll(p, 0o755)
			must(0, err)
		case strings.HasPrefix(content, "->"):
			must(0, os.Symlink(content[2:], p))
		default:
			mode := os.FileMode(0o644)
			if strings.HasSuffix(name, ".sh") {
				mode = 0o755
			}
			must(0, os.WriteFile(p, []byte(content), mode))
			must(0, os.Chmod(p, mode))
		}
	}
	return dir
}

// fixtureContext copies testdata/build/<name> into a temp dir (modes set
// as writeContext sets them, whatever the checkout's umask) and adds
// extra files.
func fixtureContext(t *testing.T, name string, extra map[string]string) string {
	t.Helper()
	src := filepath.Join("testdata", "build", name)
	files := map[string]string{}
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		files[k] = v
	}
	return writeContext(t, t.TempDir(), files)
}

// archiveTar writes a tar for ADD to extract: pkg/ and pkg/readme (mode
// 0600, owner 42:43, an old mtime), pkg/link → readme.
func archiveTar(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, h := range []*tar.Header{
		{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 42, Gid: 43, ModTime: mtime},
		{Name: "pkg/readme", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 42, Gid: 43, ModTime: mtime, Size: 7},
		{Name: "pkg/link", Typeflag: tar.TypeSymlink, Linkname: "readme", ModTime: mtime},
	} {
		must(0, tw.WriteHeader(h))
		if h.Size > 0 {
			io.WriteString(tw, "readme\n")
		}
	}
	must(0, tw.Close())
}

// everyContext is the context of testdata/build/every with its archive.
func everyContext(t *testing.T) string {
	dir := fixtureContext(t, "every", nil)
	archiveTar(t, filepath.Join(dir, "archive.tar"))
	return dir
}

// imageConfig is what inspect shows of an image's config.
type imageConfig struct {
	User         string
	ExposedPorts map[string]struct{}
	Env          []string
	Cmd          []string
	Healthcheck  *struct {
		Test     []string
		Interval time.Duration
		Timeout  time.Duration
		Retries  int
	}
	Volumes     map[string]struct{}
	WorkingDir  string
	Entrypoint  []string
	OnBuild     []string
	Labels      map[string]string
	StopSignal  string
	Shell       []string
	ArgsEscaped bool
}

func configOf(t *testing.T, d *enginetest.Daemon, ref string) imageConfig {
	t.Helper()
	var c imageConfig
	if err := json.Unmarshal([]byte(d.MustBerth("image", "inspect", "-f", "{{json .Config}}", ref)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// history is `history --no-trunc --format '{{.CreatedBy}}|{{.Size}}'` of
// ref, one entry a line, newest first.
func history(t *testing.T, c cli, ref string) []string {
	t.Helper()
	return strings.Split(strings.TrimSpace(c.must(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", ref)), "\n")
}

// hashes are the sources' digests in COPY and ADD history entries, which
// are berth's own (docker's hash its tar headers).
var hashes = regexp.MustCompile(`(file|dir|multi):[0-9a-f]{64}\b`)

// shapeOf replaces the sources' digests by <hash> and, in lines
// "CreatedBy|Size", a size other than 0B by <size> (the base layer's
// depends on the host's busybox).
func shapeOf(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		l = hashes.ReplaceAllString(l, "$1:<hash>")
		if i := strings.LastIndex(l, "|"); i >= 0 && l[i+1:] != "0B" {
			l = l[:i] + "|<size>"
		}
		out[i] = l
	}
	return out
}

// golden reads testdata/build/<name>, without its comment lines.
func golden(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "build", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s differ:\ngot:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
}

// buildID runs a build that must succeed and returns its output and the
// image ID (from --iidfile).
func buildID(t *testing.T, c cli, args ...string) (out, id string) {
	t.Helper()
	iid := filepath.Join(t.TempDir(), "iid")
	out = c.must(t, append([]string{"build", "--iidfile", iid}, args...)...)
	data, err := os.ReadFile(iid)
	if err != nil {
		t.Fatalf("%s build %v: no iidfile: %v\n%s", c.name, args, err, out)
	}
	return out, string(data)
}

// stepLines are the "Step i/n : ..." lines of a build's output.
func stepLines(out string) []string {
	var steps []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Step ") {
			steps = append(steps, l)
		}
	}
	return steps
}

// cachedSteps maps each step's instruction to whether it came from the
// cache (" ---> Using cache" before the next step).
func cachedSteps(out string) map[string]bool {
	m := map[string]bool{}
	step := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Step ") {
			_, step, _ = strings.Cut(l, " : ")
			m[step] = false
		} else if l == " ---> Using cache" && step != "" {
			m[step] = true
		}
	}
	return m
}

// Every instruction through berth build and docker's classic builder: the
// config shows each, a container sees the files with their owners and
// modes, history has the classic builder's entries, an ONBUILD trigger
// runs in a child build.
func TestBuildEveryInstruction(t *testing.T) {
	d := startDaemon(t)
	dir := everyContext(t)
	berth := cli{"berth", d.Berth}
	out, id := buildID(t, berth, "-t", "every:1", dir)
	for _, want := range []string{
		"Step 1/27 : ARG BASE=busybox\n",
		"Step 2/27 : FROM ${BASE} AS base\n",
		"Step 9/27 : RUN echo \"shell form $VERSION\" > shell.txt\n",
		"Step 27/27 : CMD [\"cat /app/shell.txt\"]\n",
		"Successfully built " + strings.TrimPrefix(id, "sha256:")[:12] + "\n",
		"Successfully tagged every:1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("build output:\n%s", out)
	}

	c := configOf(t, d, "every:1")
	checks := []struct {
		what      string
		got, want any
	}{
		{"Env", c.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_HOME=/app", "GREETING=hello world"}},
		{"Labels", c.Labels, map[string]string{"org.example.version": "1.0", "org.example.name": "every instruction"}},
		{"ExposedPorts", c.ExposedPorts, map[string]struct{}{"8080/tcp": {}, "53/udp": {}}},
		{"Volumes", c.Volumes, map[string]struct{}{"/data": {}}},
		{"WorkingDir", c.WorkingDir, "/app"},
		{"User", c.User, "1000:1001"},
		{"StopSignal", c.StopSignal, "SIGUSR1"},
		{"Shell", c.Shell, []string{"/bin/sh", "-ec"}},
		{"OnBuild", c.OnBuild, []string{"RUN echo triggered by onbuild"}},
		{"Entrypoint", c.Entrypoint, []string{"/bin/sh", "-c"}},
		{"Cmd", c.Cmd, []string{"cat /app/shell.txt"}},
	}
	for _, ch := range checks {
		if fmt.Sprint(ch.got) != fmt.Sprint(ch.want) {
			t.Errorf("config %s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}
	if h := c.Healthcheck; h == nil || fmt.Sprint(h.Test) != "[CMD true]" || h.Interval != 30*time.Second || h.Timeout != 5*time.Second || h.Retries != 2 {
		t.Errorf("config Healthcheck = %+v", h)
	}

	// The files as a container sees them.
	const script = `cd /app && stat -c '%n %u:%g %a %F' shell.txt exec.txt txt txt/a.txt txt/b.txt script.sh unpacked/pkg unpacked/pkg/readme unpacked/pkg/link stage.txt /opt/busybox /tmp/ids /data && ` +
		`cat shell.txt exec.txt txt/a.txt txt/b.txt unpacked/pkg/readme unpacked.list stage.txt /tmp/ids && ls txt && ./script.sh && /opt/busybox true`
	got := d.MustBerth("run", "--rm", "--network", "none", "--user", "0", "every:1", script)
	want := `shell.txt 0:0 644 regular file
exec.txt 0:0 644 regular file
txt 0:0 755 directory
txt/a.txt 1000:1001 640 regular file
txt/b.txt 1000:1001 640 regular file
script.sh 0:0 755 regular file
unpacked/pkg 42:43 750 directory
unpacked/pkg/readme 42:43 600 regular file
unpacked/pkg/link 0:0 777 symbolic link
stage.txt 0:0 644 regular file
/opt/busybox 0:0 755 regular file
/tmp/ids 1000:1001 644 regular file
/data 0:0 755 directory
shell form 1.0
exec form
alpha
beta
readme
link
readme
from-stage
1000
1001
a.txt
b.txt
script ran
`
	diffLines(t, "files in a container of the image", strings.Split(got, "\n"), strings.Split(want, "\n"))

	diffLines(t, "history (CreatedBy|Size)", shapeOf(history(t, berth, "every:1")), golden(t, "every.history"))

	// docker's classic builder against berthd: the same steps, all from
	// berth's cache, the same image.
	docker := classicDocker(t, d)
	dout, did := buildID(t, docker, "-t", "every:docker", dir)
	if did != id {
		t.Errorf("docker build gave %s, berth build %s", did, id)
	}
	diffLines(t, "docker build's steps", stepLines(dout), stepLines(out))
	for step, cached := range cachedSteps(dout) {
		if strings.HasPrefix(step, "RUN") || strings.HasPrefix(step, "COPY") || strings.HasPrefix(step, "ADD") {
			if !cached {
				t.Errorf("docker build: %q not from the cache", step)
			}
		}
	}
	diffLines(t, "docker history", shapeOf(history(t, docker, "every:docker")), golden(t, "every.history"))

	// ONBUILD: a child image runs the trigger as its first step.
	child := writeContext(t, t.TempDir(), map[string]string{"Dockerfile": "FROM every:1\nRUN cat /tmp/ids\n"})
	cout := d.MustBerth("build", "--network", "none", child)
	if !strings.Contains(cout, "# Executing 1 build trigger") || !strings.Contains(cout, "triggered by onbuild\n") {
		t.Errorf("child build did not run the ONBUILD trigger:\n%s", cout)
	}
}

// The fixture built by Debian's dockerd 20.10 (the classic builder) and
// by berthd gives the same steps and the same history's CreatedBy column
// (the sources' digests aside). The classic builder refuses COPY --chmod,
// so both build the fixture without it.
func TestBuildHistoryLikeDockerd(t *testing.T) {
	d := startDaemon(t)
	docker := startDockerd(t)
	t.Setenv("DOCKER_BUILDKIT", "0")
	dir := everyContext(t)
	df := filepath.Join(dir, "Dockerfile")
	data := must(os.ReadFile(df))
	must(0, os.WriteFile(df, []byte(strings.Replace(string(data), "--chmod=640 ", "", 1)), 0o644))

	saved := filepath.Join(t.TempDir(), "busybox.tar")
	d.MustBerth("save", "-o", saved, "busybox")
	docker("load", "-i", saved)
	dout := docker("build", "--network", "none", "-t", "every:dockerd", dir)
	bout := d.MustBerth("build", "--network", "none", "-t", "every:berthd", dir)
	diffLines(t, "steps (berthd, then dockerd)", stepLines(bout), stepLines(dout))

	column := func(lines []string) []string {
		for i, l := range lines {
			lines[i] = l[:max(strings.LastIndex(l, "|"), 0)]
		}
		return lines
	}
	dh := strings.Split(strings.TrimSpace(docker("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "every:dockerd")), "\n")
	bh := history(t, cli{"berth", d.Berth}, "every:berthd")
	t.Logf("dockerd's history:\n%s\nberthd's:\n%s", strings.Join(dh, "\n"), strings.Join(bh, "\n"))
	diffLines(t, "history's CreatedBy (berthd, then dockerd)", column(shapeOf(bh)), column(shapeOf(dh)))
	// The sizes of the layers this build made (the base image's aside):
	// docker's are the bytes of the layer's files.
	sizes := func(lines []string) []string {
		var out []string
		for _, l := range lines[:len(lines)-2] {
			out = append(out, l[strings.LastIndex(l, "|")+1:])
		}
		return out
	}
	diffLines(t, "history's Size of the built layers (berthd, then dockerd)", sizes(bh), sizes(dh))
}
