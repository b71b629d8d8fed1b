package builtin

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"path"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

// requireBusybox skips a test of the busybox image on a host without
// Debian's busybox-static.
func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := readStaticBusybox(DefaultBusyboxPath); err != nil {
		t.Skipf("no static busybox (apt-get install busybox-static): %v", err)
	}
}

// archiveOf builds the named image's archive in memory.
func archiveOf(t *testing.T, name string, opts ...Option) []byte {
	t.Helper()
	if name == Busybox {
		requireBusybox(t)
	}
	var buf bytes.Buffer
	if err := Archive(context.Background(), name, &buf, opts...); err != nil {
		t.Fatalf("Archive(%s): %v", name, err)
	}
	return buf.Bytes()
}

// member is one member of a tar.
type member struct {
	hdr  *tar.Header
	data []byte
}

// readTar reads every member of a tar, in order.
func readTar(t *testing.T, data []byte) []member {
	t.Helper()
	var ms []member
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ms
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read tar member %s: %v", h.Name, err)
		}
		ms = append(ms, member{hdr: h, data: b})
	}
}

// loaded is an archive as a loader sees it, every blob checked.
type loaded struct {
	index     ocispec.Index
	manifest  ocispec.Manifest
	config    image.Config
	layerTar  []byte // the uncompressed layer
	dockerMan []dockerManifestEntry
	members   []member
}

// loadArchive reads an archive the way docker load and berth load do and
// checks what they check: every blob matches its digest, the layer's tar
// matches its diff ID, manifest.json points at the blobs of index.json.
func loadArchive(t *testing.T, data []byte) loaded {
	t.Helper()
	var l loaded
	l.members = readTar(t, data)
	files := map[string][]byte{}
	for _, m := range l.members {
		if m.hdr.Typeflag == tar.TypeReg {
			files[m.hdr.Name] = m.data
		}
	}
	blob := func(d ocispec.Descriptor) []byte {
		t.Helper()
		b, ok := files[blobPath(d.Digest)]
		if !ok {
			t.Fatalf("blob %s missing", d.Digest)
		}
		if digest.FromBytes(b) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s: content does not match its descriptor", d.Digest)
		}
		return b
	}
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", got)
	}
	if err := json.Unmarshal(files["index.json"], &l.index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(l.index.Manifests) != 1 || l.index.MediaType != ocispec.MediaTypeImageIndex || l.index.SchemaVersion != 2 {
		t.Fatalf("index.json = %s", files["index.json"])
	}
	mdesc := l.index.Manifests[0]
	if _, err := image.Decode(mdesc, blob(mdesc)); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if err := json.Unmarshal(blob(mdesc), &l.manifest); err != nil {
		t.Fatal(err)
	}
	var err error
	if l.config, err = image.DecodeConfig(l.manifest.Config, blob(l.manifest.Config)); err != nil {
		t.Fatalf("config: %v", err)
	}
	if len(l.manifest.Layers) != 1 || len(l.config.RootFS.DiffIDs) != 1 {
		t.Fatalf("want one layer, manifest has %d, config %d", len(l.manifest.Layers), len(l.config.RootFS.DiffIDs))
	}
	if l.manifest.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("layer media type %s", l.manifest.Layers[0].MediaType)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(l.manifest.Layers[0])))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	if l.layerTar, err = io.ReadAll(zr); err != nil {
		t.Fatalf("layer: %v", err)
	}
	if got, want := digest.FromBytes(l.layerTar), l.config.RootFS.DiffIDs[0]; got != want {
		t.Errorf("layer diff ID %s, config says %s", got, want)
	}
	if err := json.Unmarshal(files["manifest.json"], &l.dockerMan); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(l.dockerMan) != 1 ||
		l.dockerMan[0].Config != blobPath(l.manifest.Config.Digest) ||
		!slices.Equal(l.dockerMan[0].Layers, []string{blobPath(l.manifest.Layers[0].Digest)}) {
		t.Errorf("manifest.json %s does not match the OCI manifest", files["manifest.json"])
	}
	return l
}

func TestNames(t *testing.T) {
	want := []string{"docker.io/library/busybox:latest", "docker.io/library/hello-world:latest"}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
}

func TestArchiveNotBuiltIn(t *testing.T) {
	for _, name := range []string{
		"alpine",
		"busybox:1.36",
		"docker.io/library/hello-world@sha256:" + digest.FromString("x").Encoded(),
		"quay.io/library/busybox:latest",
		"",
		"Not A Reference",
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Archive(context.Background(), name, &buf)
			if !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("Archive(%q) = %v, want ErrNotFound", name, err)
			}
			if errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Archive(%q) = %v: also ErrInvalidArgument", name, err)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes", buf.Len())
			}
		})
	}
}

func TestArchive(t *testing.T) {
	for _, tc := range []struct {
		name, alias string
		cmd, env    []string
		repoTag     string
	}{
		{name: HelloWorld, alias: "hello-world", cmd: []string{"/hello"}, repoTag: "hello-world:latest"},
		{
			name: Busybox, alias: "busybox:latest", cmd: []string{"sh"}, repoTag: "busybox:latest",
			env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
	} {
		t.Run(tc.alias, func(t *testing.T) {
			l := loadArchive(t, archiveOf(t, tc.name))
			want := image.DefaultPlatform()
			if got := l.index.Manifests[0].Platform; got == nil || got.OS != want.OS || got.Architecture != want.Architecture {
				t.Errorf("index platform %v, want %v", got, want)
			}
			if got, want := l.index.Manifests[0].Annotations, map[string]string{
				"io.containerd.image.name": tc.name,
				ocispec.AnnotationRefName:  "latest",
			}; !maps.Equal(got, want) {
				t.Errorf("index annotations %v, want %v", got, want)
			}
			if !slices.Equal(l.dockerMan[0].RepoTags, []string{tc.repoTag}) {
				t.Errorf("manifest.json RepoTags %q, want %q", l.dockerMan[0].RepoTags, tc.repoTag)
			}
			c := l.config
			if c.OS != "linux" || c.Architecture != runtime.GOARCH {
				t.Errorf("config platform %s/%s", c.OS, c.Architecture)
			}
			if !slices.Equal(c.Config.Cmd, tc.cmd) || !slices.Equal(c.Config.Env, tc.env) {
				t.Errorf("config Cmd %q Env %q, want %q %q", c.Config.Cmd, c.Config.Env, tc.cmd, tc.env)
			}
			if c.Created == nil || !c.Created.Equal(time.Unix(0, 0)) {
				t.Errorf("config created %v, want the epoch", c.Created)
			}
			if len(c.History) != 2 || c.History[0].EmptyLayer || !c.History[1].EmptyLayer || c.History[0].CreatedBy == "" {
				t.Errorf("history %+v: want a layer entry and an empty CMD entry", c.History)
			}
			if _, err := image.History(c, l.manifest.Config.Digest, []int64{int64(len(l.layerTar))}); err != nil {
				t.Errorf("history rows: %v", err)
			}
		})
	}
}

func TestArchiveIsDeterministic(t *testing.T) {
	for _, name := range Names() {
		t.Run(path.Base(name), func(t *testing.T) {
			a, b := archiveOf(t, name), archiveOf(t, name)
			if !bytes.Equal(a, b) {
				t.Fatal("two archives of the same image differ")
			}
			var names []string
			for _, m := range readTar(t, a) {
				names = append(names, m.hdr.Name)
				if !m.hdr.ModTime.Equal(time.Unix(0, 0)) || m.hdr.Uid != 0 || m.hdr.Gid != 0 {
					t.Errorf("%s: mtime %v owner %d:%d", m.hdr.Name, m.hdr.ModTime, m.hdr.Uid, m.hdr.Gid)
				}
			}
			if !slices.IsSorted(names) {
				t.Errorf("archive members not sorted: %q", names)
			}
		})
	}
}

func TestArchiveSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	want := time.Unix(1700000000, 0)
	data := archiveOf(t, HelloWorld)
	if !bytes.Equal(data, archiveOf(t, HelloWorld)) {
		t.Fatal("two archives with the same SOURCE_DATE_EPOCH differ")
	}
	l := loadArchive(t, data)
	if l.config.Created == nil || !l.config.Created.Equal(want) || !l.config.History[0].Created.Equal(want) {
		t.Errorf("created %v, history %v, want %v", l.config.Created, l.config.History[0].Created, want)
	}
	for _, m := range append(readTar(t, l.layerTar), l.members...) {
		if !m.hdr.ModTime.Equal(want) {
			t.Errorf("%s: mtime %v, want %v", m.hdr.Name, m.hdr.ModTime, want)
		}
	}

	// WithCreated wins over the environment.
	l = loadArchive(t, archiveOf(t, HelloWorld, WithCreated(time.Unix(0, 0))))
	if !l.config.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("WithCreated(epoch): created %v", l.config.Created)
	}
}

func TestArchiveSourceDateEpochInvalid(t *testing.T) {
	for _, v := range []string{"yesterday", "-1", "1.5"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", v)
			err := Archive(context.Background(), HelloWorld, io.Discard)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("SOURCE_DATE_EPOCH=%s: %v, want ErrInvalidArgument", v, err)
			}
		})
	}
}

func TestArchiveCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	if err := Archive(ctx, HelloWorld, &buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("Archive with a canceled context = %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes", buf.Len())
	}
}

// layerFile returns the regular file name of a layer tar.
func layerFile(t *testing.T, layerTar []byte, name string) member {
	t.Helper()
	for _, m := range readTar(t, layerTar) {
		if m.hdr.Name == name {
			return m
		}
	}
	t.Fatalf("layer has no %s", name)
	return member{}
}
