package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"berth.dev/internal/errdefs"
)

// layerFiles builds dockerfile in a context of files and returns the
// top layer's files as "path mode uid:gid" or "path -> link".
func layerFiles(t *testing.T, x fakeFS, dir string) []string {
	t.Helper()
	s, _, _ := mustBuild(t, x, dir, Options{})
	var out []string
	for p, f := range x.topLayer(t, s) {
		switch f.Typ {
		case tar.TypeSymlink:
			out = append(out, p+" -> "+f.Link)
		case tar.TypeDir:
			out = append(out, p+"/ "+modeString(f))
		default:
			out = append(out, p+" "+modeString(f)+" "+f.Data)
		}
	}
	sort.Strings(out)
	return out
}

func modeString(f fakeFile) string {
	return strconv.FormatInt(f.Mode, 8) + " " + strconv.Itoa(f.UID) + ":" + strconv.Itoa(f.GID)
}

func TestCopyCases(t *testing.T) {
	ctx := map[string]string{
		"a.txt":           "a",
		"b.txt":           "b",
		"c.md":            "c",
		"dir/x":           "x",
		"dir/sub/y":       "y",
		"other/dir2/z":    "z",
		"secret/key":      "k",
		"logs/keep.log":   "keep",
		"logs/drop.log":   "drop",
		".dockerignore":   "secret\nlogs/*.log\n!logs/keep.log\n*.tmp\n",
		"junk.tmp":        "junk",
		"sub/inner.tmp":   "inner",
		"sub/visible.txt": "v",
	}
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"file to file", "COPY a.txt /f", []string{"f 644 0:0 a"}},
		{"file into dir", "COPY a.txt /d/", []string{"d/ 755 0:0", "d/a.txt 644 0:0 a"}},
		{"file into existing dir", "COPY a.txt /usr/bin", []string{"usr/bin/a.txt 644 0:0 a"}},
		{"relative dest uses workdir", "WORKDIR /bin\nCOPY a.txt .", []string{"bin/a.txt 644 0:0 a"}},
		{"dir copies its contents", "COPY dir /app", []string{"app/ 755 0:0", "app/sub/ 755 0:0", "app/sub/y 644 0:0 y", "app/x 644 0:0 x"}},
		{"wildcard files", "COPY *.txt /w/", []string{"w/ 755 0:0", "w/a.txt 644 0:0 a", "w/b.txt 644 0:0 b"}},
		{"wildcard dirs", "COPY other/* /o/", []string{"o/ 755 0:0", "o/z 644 0:0 z"}},
		{"wildcard one match to file", "COPY c.* /one", []string{"one 644 0:0 c"}},
		{"several sources", "COPY a.txt c.md /m/", []string{"m/ 755 0:0", "m/a.txt 644 0:0 a", "m/c.md 644 0:0 c"}},
		{"chown by name", "COPY --chown=app a.txt /f", []string{"f 644 1000:1001 a"}},
		{"chown user and group", "COPY --chown=app:staff a.txt /f", []string{"f 644 1000:50 a"}},
		{"chown numeric", "COPY --chown=7:8 a.txt /f", []string{"f 644 7:8 a"}},
		{"chown owns the directories it makes", "COPY --chown=app a.txt /new/sub/", []string{"new/ 755 1000:1001", "new/sub/ 755 1000:1001", "new/sub/a.txt 644 1000:1001 a"}},
		{"chown of a directory's contents", "COPY --chown=7 dir /usr/app", []string{"usr/app/ 755 7:7", "usr/app/sub/ 755 7:7", "usr/app/sub/y 644 7:7 y", "usr/app/x 644 7:7 x"}},
		{"chmod", "COPY --chmod=0750 dir/x /f", []string{"f 750 0:0 x"}},
		{"dockerignore with exception", "COPY logs /l/", []string{"l/ 755 0:0", "l/keep.log 644 0:0 keep"}},
		{"dockerignore whole context", "COPY . /c/", nil},
		{"link accepted", "COPY --link a.txt /f", []string{"f 644 0:0 a"}},
		{"heredoc", "COPY <<EOF /h.txt\nhello\nEOF", []string{"h.txt 644 0:0 hello\n"}},
		{"heredoc expanded", "ENV W=world\nCOPY <<EOF /h.txt\nhello \"$W\"\nEOF", []string{"h.txt 644 0:0 hello \"world\"\n"}},
		{"heredoc quoted", "ENV W=world\nCOPY <<'EOF' /h.txt\nhello $W\nEOF", []string{"h.txt 644 0:0 hello $W\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"Dockerfile": "FROM busybox\n" + tt.line + "\n"}
			for k, v := range ctx {
				files[k] = v
			}
			dir := writeContext(t, files)
			got := layerFiles(t, fakeFS{newFake(t)}, dir)
			if tt.name == "dockerignore whole context" {
				for _, g := range got {
					name, _, _ := strings.Cut(g, " ")
					if strings.Contains(name, "secret") || strings.Contains(name, "drop.log") || name == "c/junk.tmp" {
						t.Errorf("ignored file copied: %s", g)
					}
				}
				// Patterns are anchored at the context's root, as in docker:
				// "*.tmp" leaves sub/inner.tmp in.
				if !contains(got, "c/logs/keep.log 644 0:0 keep") || !contains(got, "c/sub/visible.txt 644 0:0 v") ||
					!contains(got, "c/sub/inner.tmp 644 0:0 inner") {
					t.Errorf("copied %v", got)
				}
				return
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("layer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func TestCopyTimesClampedAndOwnership(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY old new /t/\n", "old": "o", "new": "n"})
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "old"), old, old); err != nil {
		t.Fatal(err)
	}
	x := fakeFS{newFake(t)}
	s, _, _ := mustBuild(t, x, dir, Options{})
	l := x.topLayer(t, s)
	if l["t/old"].MTime != old.Unix() || l["t/new"].MTime != baseCreated.Unix() {
		t.Errorf("times: old %v new %v", time.Unix(l["t/old"].MTime, 0), time.Unix(l["t/new"].MTime, 0))
	}
	for _, e := range x.epochs {
		if !e.Equal(baseCreated) {
			t.Errorf("epoch %v given to the executor, want the base's %v", e, baseCreated)
		}
	}
}

func TestHostileContext(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	newCtx := func(t *testing.T, line string) string {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" + line + "\n", "ok": "ok"})
		if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "abs")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../"+filepath.Base(outside), filepath.Join(dir, "rel")); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(dir, "d", "out")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("symlinks copied as symlinks", func(t *testing.T) {
		dir := newCtx(t, "COPY abs rel d /c/")
		got := layerFiles(t, fakeFS{newFake(t)}, dir)
		want := []string{"c/ 755 0:0", "c/abs -> " + filepath.Join(outside, "secret"), "c/out -> " + outside, "c/rel -> ../../" + filepath.Base(outside)}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("layer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("no path through a symlink out", func(t *testing.T) {
		dir := newCtx(t, "COPY d/out/secret /s")
		_, _, _, err := runBuild(t, fakeFS{newFake(t)}, dir, Options{})
		if err == nil {
			t.Fatal("copied a file through a symlink out of the context")
		}
	})
	for _, line := range []string{"COPY ../x /x", "COPY ./../../etc/passwd /x", "ADD .. /x"} {
		t.Run(line, func(t *testing.T) {
			dir := newCtx(t, line)
			_, _, _, err := runBuild(t, fakeFS{newFake(t)}, dir, Options{})
			if !errors.Is(err, errdefs.ErrForbidden) || !strings.Contains(err.Error(), "forbidden path outside the build context") {
				t.Errorf("error %v", err)
			}
		})
	}
	t.Run("fifo refused", func(t *testing.T) {
		dir := newCtx(t, "COPY . /c/")
		if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := runBuild(t, fakeFS{newFake(t)}, dir, Options{})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "not a regular file, directory or symlink") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("big file streams", func(t *testing.T) {
		dir := newCtx(t, "COPY big /big")
		f, err := os.Create(filepath.Join(dir, "big"))
		if err != nil {
			t.Fatal(err)
		}
		// Sparse: 512 MiB of holes cost no disk; the copy must stream it
		// (hashed, then written) without holding it in memory.
		const size = 512 << 20
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		counter := &countingExec{fakeExec: newFake(t)}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, _, err = runBuild(t, counter, dir, Options{})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if counter.size != size {
			t.Errorf("streamed %d bytes", counter.size)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
			t.Errorf("the build allocated %d MiB for a %d MiB file", alloc>>20, size>>20)
		}
	})
}

// countingExec counts the bytes of the files Apply gets, without keeping
// them.
type countingExec struct {
	*fakeExec
	size int64
}

func (c *countingExec) Apply(ctx context.Context, s State, r io.Reader, epoch time.Time) (Layer, error) {
	tr := tar.NewReader(r)
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return c.storeLayer(map[string]fakeFile{"big": {Typ: tar.TypeReg}}), nil
		}
		if err != nil {
			return Layer{}, err
		}
		n, err := io.Copy(io.Discard, tr)
		if err != nil {
			return Layer{}, err
		}
		c.size += n
	}
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o640, Size: int64(len(files[n])), Typeflag: tar.TypeReg, Uid: 33, Gid: 44, ModTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		if strings.HasSuffix(n, "/") {
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o750
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[n])
	}
	tw.Close()
	return buf.Bytes()
}

func TestAddArchives(t *testing.T) {
	plain := tarOf(t, map[string]string{"pkg/": "", "pkg/a": "A", "../../escape": "E"})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	var zst bytes.Buffer
	enc, _ := zstd.NewWriter(&zst)
	enc.Write(plain)
	enc.Close()
	var notTar bytes.Buffer
	zw = gzip.NewWriter(&notTar)
	zw.Write([]byte("just text"))
	zw.Close()

	want := []string{"opt/ 755 0:0", "opt/escape 640 33:44 E", "opt/pkg/ 750 33:44", "opt/pkg/a 640 33:44 A"}
	tests := []struct {
		name, file string
		data       []byte
		line       string
		want       []string
	}{
		{"plain tar", "a.tar", plain, "ADD a.tar /opt", want},
		{"gzip", "a.tgz", gz.Bytes(), "ADD a.tgz /opt/", want},
		{"zstd", "a.tar.zst", zst.Bytes(), "ADD a.tar.zst /opt", want},
		{"gzip of no tar copied as is", "t.gz", notTar.Bytes(), "ADD t.gz /opt/", []string{"opt/ 755 0:0", "opt/t.gz 644 0:0 " + notTar.String()}},
		{"COPY never extracts", "a.tar", plain, "COPY a.tar /opt/", []string{"opt/ 755 0:0", "opt/a.tar 644 0:0 " + string(plain)}},
	}
	// bzip2 and xz archives made by Python's tarfile (Go has no writers).
	for _, name := range []string{"pkg.tar.bz2", "pkg.tar.xz"} {
		data, err := os.ReadFile(filepath.Join("testdata", "archives", name))
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name, file string
			data       []byte
			line       string
			want       []string
		}{name, name, data, "ADD " + name + " /opt/", []string{"opt/ 755 0:0", "opt/pkg/ 750 33:44", "opt/pkg/a 640 33:44 A"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" + tt.line + "\n", tt.file: string(tt.data)})
			got := layerFiles(t, fakeFS{newFake(t)}, dir)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("layer:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

func TestAddURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", "Wed, 01 Jan 2020 00:00:00 GMT")
		io.WriteString(w, "remote "+r.URL.Path)
	}))
	defer srv.Close()

	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + srv.URL + "/files/tool.sh /usr/bin/\nADD " + srv.URL + "/x /named\n"})
	x := fakeFS{newFake(t)}
	s, _, _ := mustBuild(t, x, dir, Options{})
	files := x.files(s)
	tool, named := files["usr/bin/tool.sh"], files["named"]
	if tool.Data != "remote /files/tool.sh" || tool.Mode != 0o600 || tool.MTime != time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("tool.sh %+v", tool)
	}
	if named.Data != "remote /x" {
		t.Errorf("named %+v", named)
	}

	// Failures: a 404, and a server that is gone.
	closed := httptest.NewServer(http.NotFoundHandler())
	gone := closed.URL + "/f"
	closed.Close()
	for _, u := range []string{srv.URL + "/missing", gone} {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + u + " /f\n"})
		_, _, _, err := runBuild(t, fakeFS{newFake(t)}, dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "failed to fetch "+u+": ") || !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("ADD %s: %v", u, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "Dockerfile:2: ") {
			t.Errorf("error does not name the line: %v", err)
		}
	}
}

func TestCache(t *testing.T) {
	x := fakeFS{newFake(t)}
	ctx := map[string]string{
		"Dockerfile": "FROM busybox\nENV A=1\nCOPY app.txt /app/\nRUN build\n",
		"app.txt":    "v1",
	}
	dir := writeContext(t, ctx)
	_, id1, out := mustBuild(t, x, dir, Options{})
	if strings.Contains(out, "Using cache") || len(x.runs) != 1 {
		t.Fatalf("first build used the cache:\n%s", out)
	}
	// Same context: every layer from the cache, same image.
	_, id2, out := mustBuild(t, x, dir, Options{})
	if strings.Count(out, " ---> Using cache\n") != 2 || len(x.runs) != 1 || id2 != id1 {
		t.Errorf("second build (runs %d, ids %s %s):\n%s", len(x.runs), id1, id2, out)
	}
	// A comment and blank lines elsewhere change nothing.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("# a comment\nFROM busybox\n\nENV A=1\n# another\nCOPY app.txt /app/\nRUN build\n"), 0o644)
	_, id3, out := mustBuild(t, x, dir, Options{})
	if strings.Count(out, "Using cache") != 2 || id3 != id1 {
		t.Errorf("after a comment change:\n%s", out)
	}
	// --no-cache runs everything again (and gives the same image).
	_, id4, out := mustBuild(t, x, dir, Options{NoCache: true})
	if strings.Contains(out, "Using cache") || len(x.runs) != 2 || id4 != id1 {
		t.Errorf("--no-cache:\n%s", out)
	}
	// A copied file's content changes: COPY and what follows miss.
	os.WriteFile(filepath.Join(dir, "app.txt"), []byte("v2"), 0o644)
	_, id5, out := mustBuild(t, x, dir, Options{})
	if strings.Contains(out, "Using cache") || len(x.runs) != 3 || id5 == id1 {
		t.Errorf("after a content change:\n%s", out)
	}
	// Its mode too.
	os.Chmod(filepath.Join(dir, "app.txt"), 0o755)
	_, _, out = mustBuild(t, x, dir, Options{})
	if strings.Contains(out, "Using cache") {
		t.Errorf("after a mode change:\n%s", out)
	}
	// A build arg the RUN sees misses; one it does not see hits.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nENV A=1\nCOPY app.txt /app/\nARG V\nRUN build\n"), 0o644)
	mustBuild(t, x, dir, Options{BuildArgs: map[string]*string{"V": ptr("1")}})
	runs := len(x.runs)
	_, _, out = mustBuild(t, x, dir, Options{BuildArgs: map[string]*string{"V": ptr("2")}})
	if len(x.runs) != runs+1 || strings.Count(out, "Using cache") != 1 {
		t.Errorf("changed build arg:\n%s", out)
	}
}

func TestReproducible(t *testing.T) {
	ctx := map[string]string{
		"Dockerfile": "FROM busybox\nCOPY . /src/\nRUN make\nWORKDIR /out\nCMD [\"x\"]\n",
		"a":          "a",
		"d/b":        "b",
	}
	made := func(RunSpec, map[string]fakeFile) (map[string]fakeFile, error) {
		return map[string]fakeFile{"made": {Typ: tar.TypeReg, Mode: 0o644, Data: "m"}}, nil
	}
	x1 := fakeFS{newFake(t)}
	x1.run = made
	_, id1, _ := mustBuild(t, x1, writeContext(t, ctx), Options{})
	// The second context's files are newer, its directories too.
	dir2 := writeContext(t, ctx)
	later := time.Now().Add(time.Hour)
	filepath.Walk(dir2, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Chtimes(p, later, later)
		}
		return err
	})
	x2 := fakeFS{newFake(t)}
	x2.run = made
	s2, id2, _ := mustBuild(t, x2, dir2, Options{})
	if id1 != id2 {
		t.Errorf("two builds: %s and %s", id1, id2)
	}
	for _, h := range s2.Config.History[1:] {
		if !h.Created.Equal(baseCreated) {
			t.Errorf("history time %v, want the base's %v", h.Created, baseCreated)
		}
	}

	// SOURCE_DATE_EPOCH fixes every time, also the layers' files.
	epoch := int64(1700000000)
	x3 := fakeFS{newFake(t)}
	x3.run = made
	s3, id3, _ := mustBuild(t, x3, writeContext(t, ctx), Options{BuildArgs: map[string]*string{"SOURCE_DATE_EPOCH": ptr("1700000000")}})
	if id3 == id1 || s3.Config.Created.Unix() != epoch {
		t.Errorf("SOURCE_DATE_EPOCH: id %s, created %v", id3, s3.Config.Created)
	}
	for _, h := range s3.Config.History[1:] {
		if h.Created.Unix() != epoch {
			t.Errorf("history time %v", h.Created)
		}
	}
	for _, e := range x3.epochs {
		if e.Unix() != epoch {
			t.Errorf("executor epoch %v", e)
		}
	}
	for p, f := range x3.layers[s3.Config.RootFS.DiffIDs[1]] {
		if f.MTime != epoch || f.UID != 0 || f.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d", p, f.MTime, f.UID, f.GID)
		}
	}
	// The daemon's SOURCE_DATE_EPOCH, when no build arg gives one.
	var out bytes.Buffer
	x4 := fakeFS{newFake(t)}
	x4.run = made
	id4, err := New(x4, WithSourceDateEpoch(time.Unix(epoch, 0))).Build(context.Background(), writeContext(t, ctx), Options{Output: &out})
	if err != nil || id4 != id3 {
		t.Errorf("WithSourceDateEpoch: %s, %v (want %s)", id4, err, id3)
	}
}

func TestRunForms(t *testing.T) {
	tests := []struct {
		name, line string
		args       string
		network    string
		opts       Options
	}{
		{"heredoc script", "RUN <<EOF\necho one\necho two\nEOF", "/bin/sh|-c|echo one\necho two\n", "", Options{}},
		{"network flag", "RUN --network=none wget x", "/bin/sh|-c|wget x", "none", Options{Network: "host"}},
		{"network option", "RUN wget x", "/bin/sh|-c|wget x", "host", Options{Network: "host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" + tt.line + "\n"})
			x := newFake(t)
			mustBuild(t, x, dir, tt.opts)
			if len(x.runs) != 1 {
				t.Fatalf("%d runs", len(x.runs))
			}
			r := x.runs[0]
			if got := strings.Join(r.Args, "|"); got != tt.args || r.Network != tt.network {
				t.Errorf("args %q network %q, want %q %q", got, r.Network, tt.args, tt.network)
			}
		})
	}
}

func TestIgnoredSourceIsNotFound(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY secret/key /k\n", "secret/key": "k", ".dockerignore": "secret\n"})
	_, _, _, err := runBuild(t, fakeFS{newFake(t)}, dir, Options{})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "excluded by .dockerignore") {
		t.Errorf("error %v", err)
	}
}

func TestAddURLCache(t *testing.T) {
	body := "v1"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer srv.Close()
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD " + srv.URL + "/f /f\n"})
	x := fakeFS{newFake(t)}
	mustBuild(t, x, dir, Options{})
	if _, _, out := mustBuild(t, x, dir, Options{}); !strings.Contains(out, "Using cache") {
		t.Errorf("same download missed the cache:\n%s", out)
	}
	body = "v2"
	s, _, out := mustBuild(t, x, dir, Options{})
	if strings.Contains(out, "Using cache") || x.files(s)["f"].Data != "v2" {
		t.Errorf("changed download hit the cache:\n%s", out)
	}
}

func TestSymlinkSourcesFollowedInside(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY inlink /x\nCOPY indir /y/\n", "real/f": "content"})
	if err := os.Symlink("real/f", filepath.Join(dir, "inlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "indir")); err != nil {
		t.Fatal(err)
	}
	x := fakeFS{newFake(t)}
	s, _, _ := mustBuild(t, x, dir, Options{})
	files := x.files(s)
	if f := files["x"]; f.Typ != tar.TypeReg || f.Data != "content" {
		t.Errorf("x: %+v", f)
	}
	if f := files["y/f"]; f.Data != "content" {
		t.Errorf("y/f: %+v", f)
	}

	// COPY --from follows a source symlink inside the stage's root.
	dir = writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS b\nRUN link\nFROM scratch\nCOPY --from=b /usr/bin/sh /sh\nCOPY --from=b /lib /l/\n"})
	x = fakeFS{newFake(t)}
	x.run = func(RunSpec, map[string]fakeFile) (map[string]fakeFile, error) {
		return map[string]fakeFile{
			"usr/bin/sh": {Typ: tar.TypeSymlink, Link: "../../bin/sh"},
			"lib":        {Typ: tar.TypeSymlink, Link: "/etc"},
		}, nil
	}
	s, _, _ = mustBuild(t, x, dir, Options{})
	files = x.files(s)
	if f := files["sh"]; f.Typ != tar.TypeReg || f.Data != "#!busybox" {
		t.Errorf("sh: %+v", f)
	}
	if f := files["l/passwd"]; f.Typ != tar.TypeReg || !strings.HasPrefix(f.Data, "root:") {
		t.Errorf("l/passwd: %+v (files %v)", f, files)
	}
}
