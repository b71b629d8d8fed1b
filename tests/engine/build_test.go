package engine_test

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
			must(0, os.MkdirAll(p, 0o755))
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
	// txt is made by the COPY --chown: as docker's classic builder (which
	// makes a COPY's missing parents with the --chown owner), it gets
	// 1000:1001.
	want := `shell.txt 0:0 644 regular file
exec.txt 0:0 644 regular file
txt 1000:1001 755 directory
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

// A multi-stage build with --target runs only the stages the target
// needs: a failing stage before it that it does not use, and one after
// it, never run. COPY --from takes a stage's files and an image's.
func TestBuildMultiStageTarget(t *testing.T) {
	d := startDaemon(t)
	dir := writeContext(t, t.TempDir(), map[string]string{"Dockerfile": `FROM busybox AS unused
RUN echo unused stage ran; exit 9
FROM busybox AS one
RUN echo one > /one
FROM one AS two
RUN echo two > /two
FROM busybox AS final
COPY --from=two /one /two /got/
COPY --from=busybox /bin/busybox /got/bb/
RUN ls /got /got/bb > /listing
FROM final AS after
RUN echo after stage ran; exit 8
`})
	for _, c := range []cli{{"berth", d.Berth}, classicDocker(t, d)} {
		t.Run(c.name, func(t *testing.T) {
			tag := "multi:" + c.name
			out := c.must(t, "build", "--network", "none", "--target", "final", "-t", tag, dir)
			for _, never := range []string{"unused stage ran", "after stage ran", "exit 9", "exit 8"} {
				if strings.Contains(out, never) {
					t.Errorf("a stage the target does not need ran (%q in the output):\n%s", never, out)
				}
			}
			got := d.MustBerth("run", "--rm", "--network", "none", tag, "sh", "-c", "cat /got/one /got/two /listing")
			if want := "one\ntwo\n/got:\nbb\none\ntwo\n\n/got/bb:\nbusybox\n"; got != want {
				t.Errorf("files of the final stage: %q, want %q", got, want)
			}
		})
	}
	// A target that is not a stage.
	_, errOut, code := d.Berth("build", "--target", "nosuch", dir)
	if code != 1 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("--target nosuch: exit %d: %s", code, errOut)
	}
}

// snapshotDirs counts the snapshot directories under the daemon's root.
func snapshotDirs(t *testing.T, d *enginetest.Daemon) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(d.Root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && e.IsDir() {
			n++
		}
	}
	return n
}

// A failing RUN stops the build with docker's message and the command's
// exit code (docker's CLI and dockerd 20.10 give it too), and leaves no
// container, mount, snapshot of the failed step, shim or build context.
func TestBuildFailingRun(t *testing.T) {
	d := startDaemon(t)
	dir := writeContext(t, t.TempDir(), map[string]string{"Dockerfile": "FROM busybox\nRUN echo before > /b\n"})
	id := strings.TrimSpace(d.MustBerth("build", "-q", dir))
	// The containers over a layer share an init layer, which stays with
	// the layer: a container made and removed over the built image makes
	// the one the failing step's container gets.
	d.MustBerth("rm", strings.TrimSpace(d.MustBerth("create", "--network", "none", id)))
	snaps := snapshotDirs(t, d)
	writeContext(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo before > /b\nRUN echo failing; exit 3\nRUN echo never ran\n"})
	for _, c := range []cli{{"berth", d.Berth}, classicDocker(t, d)} {
		out, errOut, code := c.run("build", "-t", "failed:1", dir)
		if code != 3 {
			t.Errorf("%s build: exit %d, want 3 (the RUN's code, as docker gives it)", c.name, code)
		}
		if !strings.Contains(errOut, "The command '/bin/sh -c echo failing; exit 3' returned a non-zero code: 3") {
			t.Errorf("%s build's error: %q", c.name, errOut)
		}
		if !strings.Contains(out, "Step 3/4 : RUN echo failing; exit 3\n") || !strings.Contains(out, "failing\n") || strings.Contains(out, "never ran") || strings.Contains(out, "Successfully") {
			t.Errorf("%s build's output:\n%s", c.name, out)
		}
		if ps := d.MustBerth("ps", "-aq"); ps != "" {
			t.Errorf("containers left: %s", ps)
		}
		if m := d.Mounts(); len(m) > 0 {
			t.Errorf("mounts left: %v", m)
		}
		if n := snapshotDirs(t, d); n != snaps {
			t.Errorf("%d snapshot directories after the failed build, %d before", n, snaps)
		}
		for _, pid := range d.ShimPids() {
			if syscall.Kill(pid, 0) == nil {
				t.Errorf("shim %d left running", pid)
			}
		}
		if e, _ := os.ReadDir(filepath.Join(d.Root, "tmp")); len(e) > 0 {
			t.Errorf("left in the daemon's tmp: %v", e)
		}
		if _, _, code := d.Berth("image", "inspect", "failed:1"); code == 0 {
			t.Errorf("the failed build tagged failed:1")
		}
	}
}

// The cache: a second build takes every RUN and COPY from the cache and
// gives the same image; a changed file rebuilds from the step that copies
// it on; --no-cache rebuilds every step and still gives the same image.
func TestBuildCache(t *testing.T) {
	d := startDaemon(t)
	dir := writeContext(t, t.TempDir(), map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b.copy\nCMD [\"cat\", \"/a.copy\", \"/b.copy\"]\n",
		"a.txt":      "a\n", "b.txt": "b\n",
	})
	steps := []string{"COPY a.txt /a.txt", "RUN cat /a.txt > /a.copy", "COPY b.txt /b.txt", "RUN cat /b.txt > /b.copy"}
	check := func(what, out string, wantCached ...bool) {
		t.Helper()
		got := cachedSteps(out)
		for i, s := range steps {
			if got[s] != wantCached[i] {
				t.Errorf("%s: step %q from the cache: %v, want %v\n%s", what, s, got[s], wantCached[i], out)
			}
		}
	}
	c := cli{"berth", d.Berth}
	out, id := buildID(t, c, dir)
	check("first build", out, false, false, false, false)
	out, id2 := buildID(t, c, dir)
	check("second build", out, true, true, true, true)
	if id2 != id {
		t.Errorf("cached rebuild gave %s, first %s", id2, id)
	}
	out, _ = buildID(t, classicDocker(t, d), dir)
	check("docker build", out, true, true, true, true)

	// A new mtime alone changes nothing; new content does.
	future := time.Now().Add(time.Hour)
	must(0, os.Chtimes(filepath.Join(dir, "b.txt"), future, future))
	out, id3 := buildID(t, c, dir)
	check("b.txt touched", out, true, true, true, true)
	if id3 != id {
		t.Errorf("touching a file changed the image: %s, was %s", id3, id)
	}
	writeContext(t, dir, map[string]string{"b.txt": "B\n"})
	out, id4 := buildID(t, c, dir)
	check("b.txt changed", out, true, true, false, false)
	if id4 == id {
		t.Errorf("a changed file gave the same image")
	}
	if got := d.MustBerth("run", "--rm", "--network", "none", id4); got != "a\nB\n" {
		t.Errorf("the rebuilt image's files: %q", got)
	}
	out, id5 := buildID(t, c, "--no-cache", dir)
	check("--no-cache", out, false, false, false, false)
	if strings.Contains(out, "Using cache") {
		t.Errorf("--no-cache used the cache:\n%s", out)
	}
	if id5 != id4 {
		t.Errorf("--no-cache gave %s, the cached build %s", id5, id4)
	}
}

// Reproducible: two builds without the cache give the same image; the
// times are the base image's, or SOURCE_DATE_EPOCH's when it is given:
// the config's, the history's and the files' a RUN wrote.
func TestBuildReproducible(t *testing.T) {
	d := startDaemon(t)
	dir := writeContext(t, t.TempDir(), map[string]string{
		// The RUN's output must not depend on the time (`date` would
		// differ from one second to the next): the times of its files do.
		"Dockerfile": "FROM busybox\nCOPY f.txt /f.txt\nRUN echo ran > /now && mkdir /made\n",
		"f.txt":      "f\n",
	})
	c := cli{"berth", d.Berth}
	_, id1 := buildID(t, c, "--no-cache", dir)
	_, id2 := buildID(t, c, "--no-cache", dir)
	if id1 != id2 {
		t.Errorf("two builds without the cache: %s and %s", id1, id2)
	}
	base := inspect(d, "{{.Created}}", "busybox")
	if got := inspect(d, "{{.Created}}", id1); got != base {
		t.Errorf("Created %s, want the base image's %s", got, base)
	}

	_, id3 := buildID(t, c, "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-t", "sde", dir)
	_, id4 := buildID(t, c, "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", dir)
	if id3 != id4 || id3 == id1 {
		t.Errorf("with SOURCE_DATE_EPOCH: %s and %s (without: %s)", id3, id4, id1)
	}
	const when = "2023-11-14T22:13:20Z"
	if got := inspect(d, "{{.Created}}", "sde"); got != when {
		t.Errorf("Created with SOURCE_DATE_EPOCH=1700000000: %s, want %s", got, when)
	}
	created := strings.Fields(d.MustBerth("history", "--no-trunc", "--format", "{{.CreatedAt}}", "sde"))
	for _, at := range created[:2] {
		if !strings.HasPrefix(at, "2023-11-14T22:13:20") {
			t.Errorf("history's times: %v, want the first two at %s", created, when)
			break
		}
	}
	if got := d.MustBerth("run", "--rm", "--network", "none", "sde", "stat", "-c", "%n %Y", "/now", "/made", "/f.txt"); got != "/now 1700000000\n/made 1700000000\n/f.txt 1700000000\n" {
		t.Errorf("file times in the image:\n%s", got)
	}
}

// berthdPid finds the daemon's process: the berthd whose command line
// names its root.
func berthdPid(t *testing.T, d *enginetest.Daemon) int {
	t.Helper()
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && args[0] == d.Bin.Berthd && slices.Contains(args, d.Root) {
			return pid
		}
	}
	t.Fatal("berthd's process not found")
	return 0
}

// memKB reads a field of /proc/<pid>/status in kB (VmRSS, VmHWM).
func memKB(t *testing.T, pid int, field string) int {
	t.Helper()
	data := must(os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)))
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return must(strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")))
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// Hostile contexts: a symlink to a host file is copied as a link (or
// refused) and never as the host's file; a source through a symlink to a
// host directory, or above the context, is refused; a 200 MB file is
// streamed, not held in the daemon's memory.
func TestBuildHostileContext(t *testing.T) {
	d := startDaemon(t)
	secret := filepath.Join(t.TempDir(), "secret")
	must(0, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	dir := writeContext(t, t.TempDir(), map[string]string{
		"leak":    "->" + secret,
		"hostdir": "->" + filepath.Dir(secret),
	})
	c := cli{"berth", d.Berth}

	writeContext(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY leak /x\n"})
	out, errOut, code := d.Berth("build", "-t", "leak", dir)
	if code == 0 {
		if got := d.MustBerth("run", "--rm", "--network", "none", "leak", "sh", "-c", "readlink /x; cat /x 2>&1; true"); strings.Contains(got, "host secret") || !strings.HasPrefix(got, secret+"\n") {
			t.Errorf("COPY of a symlink to a host file: the image has %q", got)
		}
	} else if !strings.Contains(errOut, "leak") || strings.Contains(out+errOut, "host secret") {
		t.Errorf("COPY of a symlink to a host file refused without naming it: %s", errOut)
	}
	t.Logf("COPY leak: exit %d %s", code, errOut)

	for _, df := range []struct{ dockerfile, want string }{
		{"FROM busybox\nCOPY hostdir/secret /x\n", "hostdir/secret"},
		{"FROM busybox\nCOPY ../x /x\n", "forbidden path outside the build context: ../x"},
		{"FROM busybox\nADD ../x /x\n", "forbidden path outside the build context: ../x"},
	} {
		writeContext(t, dir, map[string]string{"Dockerfile": df.dockerfile})
		out, errOut, code := c.run("build", dir)
		if code != 1 || !strings.Contains(errOut, df.want) || strings.Contains(out, "host secret") {
			t.Errorf("%q: exit %d, %q; want exit 1 and %q", df.dockerfile, code, errOut, df.want)
		}
	}

	// A 200 MB sparse file: berthd's peak memory grows by far less.
	big := filepath.Join(dir, "big")
	f := must(os.Create(big))
	must(0, f.Truncate(200<<20))
	f.Close()
	os.Remove(filepath.Join(dir, "leak"))
	os.Remove(filepath.Join(dir, "hostdir"))
	writeContext(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY big /big\n"})
	pid := berthdPid(t, d)
	before := memKB(t, pid, "VmRSS")
	d.MustBerth("build", "-t", "big", dir)
	peak := memKB(t, pid, "VmHWM")
	t.Logf("berthd's RSS before: %d kB, peak after: %d kB", before, peak)
	if peak-before > 100<<10 {
		t.Errorf("berthd's peak RSS %d kB while building a 200 MB context, %d kB before", peak, before)
	}
	if got := d.MustBerth("run", "--rm", "--network", "none", "big", "stat", "-c", "%s", "/big"); got != "209715200\n" {
		t.Errorf("size of /big in the image: %s", got)
	}
}

// tarDir writes dir as a tar to path (with tar(1), as a user would).
func tarDir(t *testing.T, dir, path string) {
	t.Helper()
	if out, err := exec.Command("tar", "-C", dir, "-cf", path, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
}

// The context's forms and the build's flags: a directory with
// .dockerignore and -f elsewhere, a tarball by path and on stdin, a lone
// Dockerfile on stdin; --iidfile, -q, --label, --build-arg; with both CLIs
// where docker takes the form.
func TestBuildContextsAndFlags(t *testing.T) {
	d := startDaemon(t)
	dir := writeContext(t, t.TempDir(), map[string]string{
		"Dockerfile":    "FROM busybox\nARG WHO=nobody\nCOPY . /ctx/\nRUN echo \"built for $WHO\" > /who\n",
		".dockerignore": "secret*\n**/*.log\n!keep.log\n",
		"app.txt":       "app\n", "secret.key": "s\n", "sub/debug.log": "l\n", "sub/keep.txt": "k\n", "keep.log": "kept\n",
	})
	// ls of /ctx: the Dockerfile and .dockerignore are sent, as docker
	// sends them.
	const wantCtx = ".dockerignore\nDockerfile\napp.txt\nkeep.log\nsub\nsub/keep.txt\n"
	listCtx := func(ref string) string {
		return d.MustBerth("run", "--rm", "--network", "none", ref, "sh", "-c", "cd /ctx && find . -mindepth 1 | sed 's|^./||' | sort; cat /who")
	}
	for _, c := range []cli{{"berth", d.Berth}, classicDocker(t, d)} {
		t.Run(c.name, func(t *testing.T) {
			// Directory, .dockerignore, --build-arg, --label, --iidfile, -q.
			iid := filepath.Join(t.TempDir(), "iid")
			tag := "ctx:" + c.name
			out := c.must(t, "build", "-q", "--iidfile", iid, "--build-arg", "WHO=tests", "--label", "team=berth", "--label", "tier=e2e", "-t", tag, dir)
			// docker's CLI writes -q's line, newline and all.
			id := strings.TrimSpace(string(must(os.ReadFile(iid))))
			if !strings.HasPrefix(id, "sha256:") || strings.TrimSpace(out) != id {
				t.Errorf("-q printed %q, --iidfile holds %q", out, id)
			}
			if got := listCtx(tag); got != wantCtx+"built for tests\n" {
				t.Errorf("context with .dockerignore and --build-arg:\n%s", got)
			}
			if got := configOf(t, d, tag).Labels; fmt.Sprint(got) != "map[team:berth tier:e2e]" {
				t.Errorf("--label: %v", got)
			}
			// dockerd 20.10 gives each --label a LABEL step of its own,
			// after the Dockerfile's.
			h := history(t, c, tag)
			if want := []string{"/bin/sh -c #(nop)  LABEL tier=e2e|0B", "/bin/sh -c #(nop)  LABEL team=berth|0B"}; len(h) < 3 || !slices.Equal(h[:2], want) ||
				!strings.HasPrefix(h[2], "|1 WHO=tests /bin/sh -c echo \"built for $WHO\" > /who|") {
				t.Errorf("history with --label and a build arg: %q", h)
			}

			// -f pointing out of the context.
			other := writeContext(t, t.TempDir(), map[string]string{"Other.dockerfile": "FROM busybox\nCOPY app.txt /from-f\n"})
			out = c.must(t, "build", "-f", filepath.Join(other, "Other.dockerfile"), "-t", tag+"-f", dir)
			if got := d.MustBerth("run", "--rm", "--network", "none", tag+"-f", "cat", "/from-f"); got != "app\n" {
				t.Errorf("-f elsewhere: /from-f = %q\n%s", got, out)
			}

			// A tarball on stdin.
			ctxTar := filepath.Join(t.TempDir(), "ctx.tar")
			tarDir(t, dir, ctxTar)
			stdinBuild := func(input string, args ...string) {
				t.Helper()
				var run *exec.Cmd
				if c.name == "berth" {
					run = d.BerthCommand(args...)
				} else {
					run = exec.Command("docker", args...)
					run.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.Socket, "DOCKER_CONFIG="+t.TempDir())
				}
				run.Stdin = must(os.Open(input))
				defer run.Stdin.(*os.File).Close()
				if out, err := run.CombinedOutput(); err != nil {
					t.Fatalf("%s %v < %s: %v\n%s", c.name, args, input, err, out)
				}
			}
			stdinBuild(ctxTar, "build", "--build-arg", "WHO=stdin", "-t", tag+"-stdin", "-")
			// berthd applies the context's .dockerignore to a tar too (as
			// BuildKit does; dockerd 20.10's classic builder copies
			// secret.key and sub/debug.log from a tar on stdin): what a
			// user lists there never reaches an image.
			wantTar := ".dockerignore\nDockerfile\napp.txt\nkeep.log\nsub\nsub/keep.txt\nbuilt for stdin\n"
			if got := listCtx(tag + "-stdin"); got != wantTar {
				t.Errorf("context from a tar on stdin:\n%s\nwant:\n%s", got, wantTar)
			}

			// A lone Dockerfile on stdin: no context.
			lone := filepath.Join(t.TempDir(), "Dockerfile")
			must(0, os.WriteFile(lone, []byte("FROM busybox\nRUN echo lone > /lone\n"), 0o644))
			stdinBuild(lone, "build", "-t", tag+"-lone", "-")
			if got := d.MustBerth("run", "--rm", "--network", "none", tag+"-lone", "cat", "/lone"); got != "lone\n" {
				t.Errorf("Dockerfile on stdin: /lone = %q", got)
			}
		})
	}
	// berth also takes a tarball by its path (docker only by URL).
	ctxTar := filepath.Join(t.TempDir(), "ctx.tar")
	tarDir(t, dir, ctxTar)
	d.MustBerth("build", "--build-arg", "WHO=tarball", "-t", "ctx:tarball", ctxTar)
	if got := listCtx("ctx:tarball"); !strings.HasSuffix(got, "built for tarball\n") {
		t.Errorf("context from a tarball:\n%s", got)
	}
}

// ADD of a URL: berthd fetches it (so a server on the host's 127.0.0.1
// serves it, though RUN steps could not reach it); the file is mode 0600
// and root's; a URL that cannot be fetched fails the build with an error
// naming it.
func TestBuildAddURL(t *testing.T) {
	d := startDaemon(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/hello.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", "Wed, 01 Jan 2020 00:00:00 GMT")
		io.WriteString(w, "hello from the test's server\n")
	}))
	defer srv.Close()
	dir := t.TempDir()
	for _, c := range []cli{{"berth", d.Berth}, classicDocker(t, d)} {
		t.Run(c.name, func(t *testing.T) {
			tag := "url:" + c.name
			writeContext(t, dir, map[string]string{"Dockerfile": "FROM busybox\nADD " + srv.URL + "/files/hello.txt /dl/\n"})
			c.must(t, "build", "-t", tag, dir)
			if got := d.MustBerth("run", "--rm", "--network", "none", tag, "sh", "-c", "stat -c '%n %u:%g %a' /dl/hello.txt && cat /dl/hello.txt"); got != "/dl/hello.txt 0:0 600\nhello from the test's server\n" {
				t.Errorf("ADD of a URL: %q", got)
			}
			closed := "http://127.0.0.1:" + freePort(t) + "/x.txt"
			for _, url := range []string{srv.URL + "/missing.txt", closed} {
				writeContext(t, dir, map[string]string{"Dockerfile": "FROM busybox\nADD " + url + " /x\n"})
				_, errOut, code := c.run("build", dir)
				if code != 1 || !strings.Contains(errOut, url) {
					t.Errorf("ADD %s: exit %d, %q; want exit 1 and an error naming the URL", url, code, errOut)
				}
			}
		})
	}
}

// A Dockerfile that is wrong, or names what is not there, fails the build
// with exit 1 and an error that says where.
func TestBuildDockerfileErrors(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	for _, c := range []struct {
		dockerfile string
		want       *regexp.Regexp
	}{
		{"FROM busybox\nRUN true\nFOO bar\n", regexp.MustCompile(`(Dockerfile:3|line 3): unknown instruction: FOO`)},
		{"FROM busybox\nCOPY nosuch /x\n", regexp.MustCompile(`Dockerfile:2: COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch`)},
		{"FROM busybox\nWORKDIR /w\nRUN [\"/no/such/command\"]\n", regexp.MustCompile(`Dockerfile:3: .*/no/such/command`)},
		{"RUN true\n", regexp.MustCompile(`Dockerfile:1: no build stage in current context`)},
	} {
		writeContext(t, dir, map[string]string{"Dockerfile": c.dockerfile})
		out, errOut, code := d.Berth("build", dir)
		if code == 0 || !c.want.MatchString(errOut) {
			t.Errorf("%q: exit %d, %q; want an error matching %q\n%s", c.dockerfile, code, errOut, c.want, out)
		}
		t.Logf("%q: exit %d: %s", c.dockerfile, code, errOut)
	}
	if ps := d.MustBerth("ps", "-aq"); ps != "" {
		t.Errorf("containers left: %s", ps)
	}
}
