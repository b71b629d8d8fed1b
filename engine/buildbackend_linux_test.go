package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"berth.dev/api/docker/backend"
	"berth.dev/build"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
)

// contextTar is a build context: files by name, content as given.
func contextTar(t *testing.T, files map[string]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	tw.Close()
	return &buf
}

const e2eDockerfile = `FROM busybox
ENV A=b
WORKDIR /app
COPY hello.txt .
RUN echo ran > /app/ran && cat hello.txt
CMD ["cat", "/app/hello.txt"]
`

// A Dockerfile built through the BuildBackend gives the image it
// describes, with docker's progress text; a rebuild takes every step from
// the cache and gives the same image; so does a rebuild without the cache
// (reproducible); a failing RUN stops the build with its exit code and
// leaves nothing behind.
func TestBuildBackendEndToEnd(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	files := map[string]string{"Dockerfile": e2eDockerfile, "hello.txt": "hello\n"}
	opts := backend.BuildOptions{Tags: []string{"app:1"}, Network: "none"}
	var out bytes.Buffer
	start := time.Now()
	id, err := e.b.Build(ctx, opts, contextTar(t, files), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("build: %v\n%s", time.Since(start), out.String())
	for _, want := range []string{"Step 1/6 : FROM busybox\n", "Step 5/6 : RUN echo ran > /app/ran && cat hello.txt\n", "hello\n", "Successfully built " + id[7:19] + "\n", "Successfully tagged app:1\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	info, err := e.imgs.Inspect(ctx, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != id || info.Config.WorkingDir != "/app" || strings.Join(info.Config.Cmd, " ") != "cat /app/hello.txt" || !strings.Contains(strings.Join(info.Config.Env, " "), "A=b") {
		t.Errorf("image %s: %+v", info.ID, info.Config)
	}
	hist, err := e.imgs.History(ctx, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) < 5 || !strings.Contains(hist[0].CreatedBy, "CMD [\"cat\" \"/app/hello.txt\"]") || !strings.Contains(hist[1].CreatedBy, "echo ran > /app/ran") {
		t.Errorf("history: %+v", hist)
	}
	e.checkNothingLeft(t)

	// Cached: every step, the same image.
	out.Reset()
	start = time.Now()
	id2, err := e.b.Build(ctx, opts, contextTar(t, files), &out)
	if err != nil || id2 != id {
		t.Fatalf("cached rebuild: %s, %v; want %s\n%s", id2, err, id, out.String())
	}
	t.Logf("cached build: %v", time.Since(start))
	if n := strings.Count(out.String(), " ---> Using cache"); n < 2 {
		t.Errorf("%d steps from the cache:\n%s", n, out.String())
	}
	// Without the cache, another time: still the same image.
	out.Reset()
	nc := opts
	nc.NoCache = true
	id3, err := e.b.Build(ctx, nc, contextTar(t, files), &out)
	if err != nil || id3 != id {
		t.Errorf("rebuild without the cache: %s, %v; want %s (not reproducible)\n%s", id3, err, id, out.String())
	}
	if strings.Contains(out.String(), "Using cache") {
		t.Errorf("--no-cache used the cache:\n%s", out.String())
	}

	// A failing RUN.
	files["Dockerfile"] = "FROM busybox\nRUN echo failing && exit 3\n"
	out.Reset()
	_, err = e.b.Build(ctx, backend.BuildOptions{Network: "none"}, contextTar(t, files), &out)
	var exit *build.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 || !strings.Contains(err.Error(), "returned a non-zero code: 3") {
		t.Errorf("failing RUN: %v\n%s", err, out.String())
	}
	e.checkNothingLeft(t)
	if entries, _ := os.ReadDir(e.b.contextTmp()); len(entries) > 0 {
		t.Errorf("build contexts left: %v", entries)
	}
}

// A multi-stage build copies from an earlier stage and from an image
// into a stage FROM scratch.
func TestBuildBackendMultiStage(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	files := map[string]string{"Dockerfile": `FROM busybox AS b
RUN mkdir -p /out && echo built > /out/x
FROM scratch
COPY --from=b /out/x /x
COPY --from=busybox /bin/busybox /bin/
WORKDIR /made/by/workdir
`}
	var out bytes.Buffer
	id, err := e.b.Build(ctx, backend.BuildOptions{Tags: []string{"multi"}, Network: "none"}, contextTar(t, files), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s, err := e.x.Image(ctx, id, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := e.x.ReadFile(ctx, s, "/x"); err != nil || string(data) != "built\n" {
		t.Errorf("/x: %q, %v", data, err)
	}
	if fi, err := e.x.Stat(ctx, s, "/bin/busybox"); err != nil || fi.Size() < 100000 {
		t.Errorf("/bin/busybox: %v, %v", fi, err)
	}
	if fi, err := e.x.Stat(ctx, s, "/made/by/workdir"); err != nil || !fi.IsDir() {
		t.Errorf("WORKDIR's directory: %v, %v", fi, err)
	}
	if _, err := e.x.Stat(ctx, s, "/out"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the final stage holds the first one's files: %v", err)
	}
	e.checkNothingLeft(t)
}

// PruneCache removes every cached step and the layers no image holds (the
// first stage's RUN layer here), keeps the built image whole, and the next
// build runs every step again.
func TestBuildPruneCache(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	files := map[string]string{"Dockerfile": `FROM busybox AS b
RUN mkdir -p /out && echo built > /out/x
FROM busybox
COPY --from=b /out/x /x
`}
	build := func() (string, string) {
		var out bytes.Buffer
		id, err := e.b.Build(ctx, backend.BuildOptions{Tags: []string{"pruned"}, Network: "none"}, contextTar(t, files), &out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return id, out.String()
	}
	id, _ := build()
	entries := e.cacheEntries(t)
	if len(entries) != 2 {
		t.Fatalf("cache entries: %v, want the RUN's and the COPY's", entries)
	}
	for _, d := range entries {
		if _, err := e.b.images.content.Info(ctx, d.Digest); err != nil {
			t.Fatalf("cached layer %s not stored: %v", d.Digest, err)
		}
	}
	// Filters: entries carry no labels, and these are younger than an hour.
	for _, opts := range []backend.BuildCachePruneOptions{
		{Labels: []string{"a=b"}},
		{Until: time.Now().Add(-time.Hour)},
	} {
		if rep, err := e.b.PruneCache(ctx, opts); err != nil || len(rep.CachesDeleted) != 0 || len(e.cacheEntries(t)) != 2 {
			t.Errorf("prune with %+v: %+v, %v; %d entries left, want 2", opts, rep, err, len(e.cacheEntries(t)))
		}
	}
	rep, err := e.b.PruneCache(ctx, backend.BuildCachePruneOptions{LabelsAbsent: []string{"a=b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.CachesDeleted) != 2 || rep.SpaceReclaimed == 0 {
		t.Errorf("report: %+v, want 2 entries and the RUN layer's bytes", rep)
	}
	if n := len(e.cacheEntries(t)); n != 0 {
		t.Errorf("%d cache entries left", n)
	}
	// The image is whole: its layers stay.
	s, err := e.x.Image(ctx, id, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := e.x.ReadFile(ctx, s, "/x"); err != nil || string(data) != "built\n" {
		t.Errorf("/x after the prune: %q, %v", data, err)
	}
	id2, out := build()
	if strings.Contains(out, "Using cache") || id2 != id {
		t.Errorf("build after the prune: %s (first %s), output:\n%s", id2, id, out)
	}
	e.checkNothingLeft(t)
}

// cacheEntries lists the blobs of the build cache's entries.
func (e *buildEnv) cacheEntries(t *testing.T) []ocispec.Descriptor {
	t.Helper()
	var out []ocispec.Descriptor
	err := e.b.db.View(context.Background(), func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketBuildCache).ForEach(func(_, v []byte) error {
			var c cacheEntry
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			out = append(out, c.Blob)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
