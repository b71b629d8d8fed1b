package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"berth.dev/api/docker/backend"
	"berth.dev/archive"
	"berth.dev/build"
	"berth.dev/image"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
	"berth.dev/snapshot"
)

// buildEnv is a container environment with the build service on it and
// an executor for one build.
type buildEnv struct {
	*containerEnv
	b *Builds
	x *executor
}

func newBuildEnv(t *testing.T) *buildEnv {
	t.Helper()
	env := newContainerEnv(t)
	b := NewBuilds(BuildsConfig{Config: env.cfg, Images: env.imgs, Containers: env.cs, DB: env.db, CgroupParent: env.parent})
	x := b.newExecutor()
	t.Cleanup(x.close)
	return &buildEnv{containerEnv: env, b: b, x: x}
}

// busybox returns the state of the busybox image.
func (e *buildEnv) busybox(t *testing.T) build.State {
	t.Helper()
	s, err := e.x.Image(context.Background(), "busybox", false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// with returns s with the layer l on top.
func with(s build.State, l build.Layer) build.State {
	out := s
	out.Layers = append(slices.Clone(s.Layers), l.Blob)
	out.Config.RootFS.DiffIDs = append(slices.Clone(s.Config.RootFS.DiffIDs), l.DiffID)
	return out
}

// layerHeaders reads the layer blob of l: its entries' headers by name
// (cleaned) and their content.
func (e *buildEnv) layerHeaders(t *testing.T, l build.Layer) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	ra, err := e.imgs.content.ReaderAt(context.Background(), l.Blob)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rc, _, err := archive.DecompressStream(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		name := filepath.Clean(hdr.Name)
		hdrs[name], data[name] = hdr, string(b)
	}
	return hdrs, data
}

// checkNothingLeft fails when a build step left a container snapshot, a
// container's own init or an extract snapshot, a view, a mount, a container directory or a
// runtime state.
func (e *buildEnv) checkNothingLeft(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	e.snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		// The shared init layers stay with their layers, as for containers.
		if info.Kind != snapshot.Committed || strings.HasPrefix(info.Name, "init-") && !isSharedInit(info.Name) {
			t.Errorf("snapshot left: %s (%v)", info.Name, info.Kind)
		}
		return nil
	})
	// The network service's namespace directory is a mount point of its
	// own; anything else mounted under the run-time root is a leak.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var left []string
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], e.run) && f[4] != filepath.Join(e.run, "netns") {
			left = append(left, f[4])
		}
	}
	if len(left) > 0 {
		t.Errorf("mounts left: %v", left)
	}
	for _, d := range []string{filepath.Join(e.run, "containers"), filepath.Join(e.run, "s"), filepath.Join(e.cfg.Root, "containers"), e.cfg.tmpDir()} {
		if entries, _ := os.ReadDir(d); len(entries) > 0 {
			t.Errorf("left in %s: %v", d, entries)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(e.run, "runtime")); slices.ContainsFunc(entries, func(d os.DirEntry) bool { return !strings.HasPrefix(d.Name(), ".") }) {
		t.Errorf("runtime states left: %v", entries)
	}
}

// A RUN step's layer holds what its command wrote, and nothing else (no
// mount points, no /etc/hosts), with times clamped to the epoch; its
// output, environment, user and working directory are the spec's; the
// same step run again gives the same layer; nothing is left behind.
func TestBuildRun(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	s := e.busybox(t)
	epoch := time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)
	spec := build.RunSpec{
		Args:    []string{"/bin/sh", "-c", "mkdir -p /tmp/out && echo hi > /tmp/out/file && touch -d \"2001-01-01 00:00:00\" /tmp/out/old && echo \"env $GREETING\" && pwd && id -u && echo oops >&2"},
		Env:     []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"},
		User:    "nobody",
		WorkDir: "/tmp",
		Network: "none",
	}
	var out bytes.Buffer
	l, err := e.x.Run(ctx, s, spec, epoch, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"env hello\n", "/tmp\n", "65534\n", "oops\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	hdrs, data := e.layerHeaders(t, l)
	var names []string
	for n := range hdrs {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"tmp", "tmp/out", "tmp/out/file", "tmp/out/old"}; !slices.Equal(names, want) {
		t.Errorf("layer entries %v, want %v", names, want)
	}
	if data["tmp/out/file"] != "hi\n" {
		t.Errorf("tmp/out/file = %q", data["tmp/out/file"])
	}
	for _, n := range []string{"tmp/out", "tmp/out/file"} {
		if h := hdrs[n]; h != nil && (!h.ModTime.Equal(epoch) || h.Uid != 65534) {
			t.Errorf("%s: mtime %v uid %d, want %v and 65534", n, h.ModTime, h.Uid, epoch)
		}
	}
	if h := hdrs["tmp/out/old"]; h != nil && h.ModTime.Year() != 2001 {
		t.Errorf("an mtime before the epoch changed: %v", h.ModTime)
	}
	e.checkNothingLeft(t)

	// Reproducible: the same step on the same state, later, gives the
	// same layer, blob included.
	l2, err := e.x.Run(ctx, s, spec, epoch, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if l2.DiffID != l.DiffID || l2.Blob.Digest != l.Blob.Digest {
		t.Errorf("second run: %+v, first %+v", l2, l)
	}
	// The layer is a snapshot a next step runs on.
	var cat bytes.Buffer
	if _, err := e.x.Run(ctx, with(s, l), build.RunSpec{Args: []string{"cat", "/tmp/out/file"}, Network: "none"}, epoch, &cat); err != nil || cat.String() != "hi\n" {
		t.Errorf("next step: %q, %v", cat.String(), err)
	}
	e.checkNothingLeft(t)
}

// A command that fails is an *build.ExitError with its code, and leaves
// nothing behind; so does one that cannot start.
func TestBuildRunFails(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	s := e.busybox(t)
	var out bytes.Buffer
	_, err := e.x.Run(ctx, s, build.RunSpec{Args: []string{"/bin/sh", "-c", "echo failing; exit 3"}, Network: "none"}, time.Unix(0, 0), &out)
	var exit *build.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Errorf("err = %v, want exit code 3", err)
	}
	if out.String() != "failing\n" {
		t.Errorf("output %q", out.String())
	}
	e.checkNothingLeft(t)
	if _, err := e.x.Run(ctx, s, build.RunSpec{Args: []string{"/no/such/command"}, Network: "none"}, time.Unix(0, 0), io.Discard); err == nil {
		t.Error("a command that does not exist succeeded")
	}
	e.checkNothingLeft(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.x.Run(cctx, s, build.RunSpec{Args: []string{"sleep", "60"}, Network: "none"}, time.Unix(0, 0), io.Discard); err == nil {
		t.Error("a cancelled run succeeded")
	}
	e.checkNothingLeft(t)
	// Cancelled while the command runs (a client that went away): the
	// command is killed, the step fails with the context's error.
	cctx, cancel = context.WithCancel(ctx)
	defer cancel()
	w := cancelOn{word: "started", cancel: cancel}
	if _, err := e.x.Run(cctx, s, build.RunSpec{Args: []string{"/bin/sh", "-c", "echo started; exec sleep 600"}, Network: "none"}, time.Unix(0, 0), &w); !errors.Is(err, context.Canceled) {
		t.Errorf("run cancelled while running: %v", err)
	}
	e.checkNothingLeft(t)
}

// cancelOn calls cancel once word has been written to it.
type cancelOn struct {
	buf    bytes.Buffer
	word   string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.word) {
		c.cancel()
	}
	return len(p), nil
}

func tarOf(t *testing.T, entries ...tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A regular file's content is its name.
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, h.Name)
		}
	}
	tw.Close()
	return &buf
}

// Apply makes a layer of the tar's files with their owners and modes; a
// symlink in the tar (or the image) that points out of the root leads
// into the root instead, never to the host; ReadFile reads the image's
// files and the new layer's, following symlinks inside the root.
func TestBuildApplyAndReadFile(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	s := e.busybox(t)
	host := t.TempDir()
	epoch := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := e.x.Apply(ctx, s, tarOf(t,
		tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "app/hello", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1000, ModTime: time.Now()},
		tar.Header{Name: "app/esc", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../.." + host},
		tar.Header{Name: "app/pw", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	), epoch)
	if err != nil {
		t.Fatal(err)
	}
	hdrs, data := e.layerHeaders(t, l)
	if h := hdrs["app/hello"]; h == nil || h.Uid != 1000 || h.Mode&0o7777 != 0o640 || !h.ModTime.Equal(epoch) || data["app/hello"] != "app/hello" {
		t.Errorf("app/hello: %+v %q", h, data["app/hello"])
	}
	s2 := with(s, l)
	// Through the escaping link: the file lands inside the root, or the
	// apply fails; never in the host's directory.
	_, err = e.x.Apply(ctx, s2, tarOf(t, tar.Header{Name: "app/esc/pwned", Typeflag: tar.TypeReg, Mode: 0o644}), epoch)
	t.Logf("apply through an escaping symlink: %v", err)
	if entries, _ := os.ReadDir(host); len(entries) > 0 {
		t.Errorf("apply wrote to the host: %v", entries)
	}
	for _, c := range []struct {
		state build.State
		path  string
		want  string
		err   error
	}{
		{s, "/etc/passwd", "root:x:0:0:", nil},
		{s2, "app/hello", "app/hello", nil},
		{s2, "/app/pw", "root:x:0:0:", nil},
		{s2, "/app/esc/x", "", errdefs.ErrNotFound},
		{s, "/app/hello", "", errdefs.ErrNotFound},
	} {
		got, err := e.x.ReadFile(ctx, c.state, c.path)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("ReadFile %s: %v, want %v", c.path, err, c.err)
			}
			continue
		}
		if err != nil || !strings.HasPrefix(string(got), c.want) {
			t.Errorf("ReadFile %s = %.40q, %v; want %q...", c.path, got, err, c.want)
		}
	}
	// Stat and Export: the last component is not followed.
	if fi, err := e.x.Stat(ctx, s2, "/app/hello"); err != nil || fi.Mode() != 0o640 || fi.Size() != int64(len("app/hello")) {
		t.Errorf("Stat /app/hello: %v, %v", fi, err)
	}
	if fi, err := e.x.Stat(ctx, s2, "/app/pw"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Stat /app/pw: %v, %v", fi, err)
	}
	if _, err := e.x.Stat(ctx, s2, "/app/nothing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Stat of a missing file: %v", err)
	}
	if _, err := e.x.Export(ctx, s, "/app"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Export of a missing directory: %v", err)
	}
	for path, want := range map[string][]string{
		"/app":    {"app", "app/esc", "app/hello", "app/pw"},
		"app/pw/": {"app/pw"},
	} {
		rc, err := e.x.Export(ctx, s2, path)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, strings.TrimSuffix(hdr.Name, "/"))
		}
		rc.Close()
		if !slices.Equal(names, want) {
			t.Errorf("Export %s: %v, want %v", path, names, want)
		}
	}
	// A stream closed before its end releases its view.
	rc, err := e.x.Export(ctx, s, "/bin")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	e.checkNothingLeft(t)
}

// Commit stores an image whose config and history are the state's, named
// by every tag.
func TestBuildCommit(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	s := e.busybox(t)
	epoch := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	l, err := e.x.Apply(ctx, s, tarOf(t, tar.Header{Name: "file", Typeflag: tar.TypeReg, Mode: 0o644}), epoch)
	if err != nil {
		t.Fatal(err)
	}
	s = with(s, l)
	s.Config.Created = &epoch
	s.Config.Config.Cmd = []string{"cat", "/file"}
	s.Config.Config.WorkingDir = "/app"
	s.Config.History = append(slices.Clone(s.Config.History),
		ocispec.History{Created: &epoch, CreatedBy: "/bin/sh -c #(nop) COPY file:abc in / "},
		ocispec.History{Created: &epoch, CreatedBy: "/bin/sh -c #(nop) WORKDIR /app", EmptyLayer: true})
	id, err := e.x.Commit(ctx, s, []string{"app:1", "app:latest"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"app:1", "app", id} {
		info, err := e.imgs.Inspect(ctx, tag)
		if err != nil {
			t.Fatalf("inspect %s: %v", tag, err)
		}
		if info.ID != id || info.Config.WorkingDir != "/app" || !slices.Equal(info.Config.Cmd, []string{"cat", "/file"}) || info.Created != epoch.Format(time.RFC3339Nano) {
			t.Errorf("inspect %s: id %s config %+v created %s", tag, info.ID, info.Config, info.Created)
		}
	}
	hist, err := e.imgs.History(ctx, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != len(s.Config.History) || hist[0].CreatedBy != "/bin/sh -c #(nop) WORKDIR /app" || hist[0].Size != 0 || hist[1].CreatedBy != "/bin/sh -c #(nop) COPY file:abc in / " {
		t.Errorf("history %+v", hist)
	}
	// The same state committed again is the same image.
	if id2, err := e.x.Commit(ctx, s, nil); err != nil || id2 != id {
		t.Errorf("second commit: %s, %v; want %s", id2, err, id)
	}
}

// CacheGet finds what CachePut stored while the blob is there; once the
// blob is gone it is a miss and the entry is dropped; a layer snapshot
// that went is unpacked again from the blob when a step uses it.
func TestBuildCache(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	s := e.busybox(t)
	if _, ok, err := e.x.CacheGet(ctx, digest.FromString("nothing")); ok || err != nil {
		t.Errorf("empty cache: %v, %v", ok, err)
	}
	l, err := e.x.Apply(ctx, s, tarOf(t, tar.Header{Name: "cached", Typeflag: tar.TypeReg, Mode: 0o644}), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	key := digest.FromString("step")
	if err := e.x.CachePut(ctx, key, l); err != nil {
		t.Fatal(err)
	}
	got, ok, err := e.x.CacheGet(ctx, key)
	if err != nil || !ok || got.DiffID != l.DiffID || got.Blob.Digest != l.Blob.Digest || got.Blob.Size != l.Blob.Size {
		t.Fatalf("CacheGet = %+v, %v, %v; want %+v", got, ok, err, l)
	}
	// The layer's snapshot goes (as garbage collection would take it):
	// a step on the state unpacks it again.
	s2 := with(s, l)
	top := image.ChainID(s2.Config.RootFS.DiffIDs)
	if err := e.snaps.Remove(ctx, top.String()); err != nil {
		t.Fatal(err)
	}
	if data, err := e.x.ReadFile(ctx, s2, "/cached"); err != nil || string(data) != "cached" {
		t.Errorf("ReadFile after the snapshot went: %q, %v", data, err)
	}
	// The blob goes: a miss, and the entry is dropped.
	e.x.close() // the build's protection ends
	if err := e.imgs.content.Delete(ctx, l.Blob.Digest); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.x.CacheGet(ctx, key); ok || err != nil {
		t.Errorf("CacheGet after the blob went: %v, %v", ok, err)
	}
	e.db.View(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(metadata.BucketBuildCache).Get([]byte(key)) != nil {
			t.Error("the stale entry is still there")
		}
		return nil
	})
}

// compressWith pipes data through a compressor of the host ("" for none).
func compressWith(t *testing.T, tool string, data []byte) []byte {
	t.Helper()
	if tool == "" {
		return data
	}
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("no %s: %v", tool, err)
	}
	cmd := exec.Command(tool, "-c")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		// busybox's xz (the cgroup v2 VM's) only decompresses.
		t.Skipf("%s cannot compress here: %v", tool, err)
	}
	return out
}

// A build context comes as a tar, plain or compressed as docker's CLI may
// send it; entries that climb out of the directory and device nodes are
// refused with nothing left; symlinks are kept as written, not followed.
func TestBuildContextExtract(t *testing.T) {
	root := t.TempDir()
	cfg := DefaultConfig()
	cfg.Root, cfg.ExecRoot = root, filepath.Join(root, "run")
	b := NewBuilds(BuildsConfig{Config: cfg})
	ctx := context.Background()
	good := tarOf(t,
		tar.Header{Name: "Dockerfile", Typeflag: tar.TypeReg, Mode: 0o644},
		tar.Header{Name: "src/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "src/app", Typeflag: tar.TypeReg, Mode: 0o755},
		tar.Header{Name: "src/out", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	).Bytes()
	for _, tool := range []string{"", "gzip", "zstd", "bzip2", "xz"} {
		t.Run("format "+tool, func(t *testing.T) {
			dir, err := b.extractContext(ctx, bytes.NewReader(compressWith(t, tool, good)))
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			if data, err := os.ReadFile(filepath.Join(dir, "src/app")); err != nil || string(data) != "src/app" {
				t.Errorf("src/app: %q, %v", data, err)
			}
			if target, err := os.Readlink(filepath.Join(dir, "src/out")); err != nil || target != "/etc/passwd" {
				t.Errorf("src/out: %q, %v", target, err)
			}
		})
	}
	for name, bad := range map[string][]byte{
		"dot-dot":    tarOf(t, tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}).Bytes(),
		"device":     tarOf(t, tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}).Bytes(),
		"truncated":  compressWith(t, "gzip", good)[:40],
		"xz corrupt": append(compressWith(t, "xz", good)[:30], make([]byte, 64)...),
	} {
		t.Run("refused "+name, func(t *testing.T) {
			_, err := b.extractContext(ctx, bytes.NewReader(bad))
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("err = %v, want ErrInvalidArgument", err)
			}
			if entries, _ := os.ReadDir(b.contextTmp()); len(entries) > 0 {
				t.Errorf("left: %v", entries)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "evil")); err == nil {
		t.Error("an entry was written out of the context directory")
	}
	// A context a stopped berthd left is removed by Recover.
	if err := os.MkdirAll(filepath.Join(b.contextTmp(), buildDirPrefix+"1", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(b.contextTmp()); len(entries) > 0 {
		t.Errorf("left after Recover: %v", entries)
	}
}

// A RUN step is on the network it asks for: the default bridge (an
// address, /etc/hosts naming it), none (a loopback only) or the host's;
// its layer holds none of the files berthd mounts (/etc/hosts,
// /etc/resolv.conf, /etc/hostname), and its veth and namespace go with it.
func TestBuildRunNetworks(t *testing.T) {
	env := newNetEnv(t)
	b := NewBuilds(BuildsConfig{Config: env.cfg, Images: env.imgs, Containers: env.cs, DB: env.db, CgroupParent: env.parent})
	x := b.newExecutor()
	defer x.close()
	e := &buildEnv{containerEnv: env.containerEnv, b: b, x: x}
	ctx := context.Background()
	s := e.busybox(t)
	hostname, _ := os.Hostname()
	for _, c := range []struct {
		network string
		want    []string
		not     []string
	}{
		{"", []string{"eth0", "hosts 172."}, nil},
		{"default", []string{"eth0"}, nil},
		{"none", []string{"lo"}, []string{"eth0"}},
		{"host", []string{"hostname " + hostname}, nil},
	} {
		t.Run("network "+c.network, func(t *testing.T) {
			var out bytes.Buffer
			cmd := "cat /proc/net/dev; echo hosts $(grep -v -e '^127' -e '^::' -e '^fe' -e '^ff' /etc/hosts | head -1); echo hostname $(hostname)"
			l, err := e.x.Run(ctx, s, build.RunSpec{Args: []string{"/bin/sh", "-c", cmd}, Network: c.network}, time.Unix(0, 0), &out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.not {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
			if hdrs, _ := e.layerHeaders(t, l); len(hdrs) > 0 {
				t.Errorf("a command that wrote nothing made a layer of %v", hdrs)
			}
		})
	}
	e.checkNothingLeft(t)
	if entries, _ := os.ReadDir(filepath.Join(env.run, "netns")); len(entries) > 0 {
		t.Errorf("network namespaces left: %v", entries)
	}
}

// An image removed while a build runs collects garbage: the build's layers
// that no image holds lose their snapshots but not their blobs (the build
// protects them), and the next step unpacks them again.
func TestBuildSurvivesGarbageCollection(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	s := e.busybox(t)
	l, err := e.x.Apply(ctx, s, tarOf(t, tar.Header{Name: "kept", Typeflag: tar.TypeReg, Mode: 0o644}), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	s2 := with(s, l)
	other := s
	other.Config.Config.Labels = map[string]string{"other": "image"}
	if _, err := e.x.Commit(ctx, other, []string{"gone:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.imgs.Remove(ctx, "gone:1", backend.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.snaps.Stat(ctx, image.ChainID(s2.Config.RootFS.DiffIDs).String()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("the garbage collector left the build's layer snapshot (%v): the test proves nothing", err)
	}
	var out bytes.Buffer
	if _, err := e.x.Run(ctx, s2, build.RunSpec{Args: []string{"ls", "/kept"}, Network: "none"}, time.Unix(0, 0), &out); err != nil || out.String() != "/kept\n" {
		t.Errorf("next step: %q, %v", out.String(), err)
	}
	e.checkNothingLeft(t)
}

// Recover removes a view of a build state that a stopped berthd left, and
// nothing else.
func TestBuildRecoverViews(t *testing.T) {
	e := newBuildEnv(t)
	ctx := context.Background()
	s := e.busybox(t)
	top := image.ChainID(s.Config.RootFS.DiffIDs).String()
	if _, err := e.snaps.View(ctx, viewPrefix+"left", top); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.snaps.Stat(ctx, viewPrefix+"left"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the view is left: %v", err)
	}
	if _, err := e.snaps.Stat(ctx, top); err != nil {
		t.Errorf("the image's layer went: %v", err)
	}
}
