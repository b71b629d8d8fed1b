package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

// cfgT is the image config, named short for the tests' edits.
type cfgT = image.Config

// fakeFile is a file of the fake executor's in-memory filesystems.
type fakeFile struct {
	Typ   byte
	Mode  int64
	UID   int
	GID   int
	Data  string
	Link  string
	MTime int64
}

// fakeExec is an Executor whose layers are in-memory file maps: Apply
// reads the tar into a map, Run runs nothing but records its RunSpec and
// asks the test's hook for the files it changes.
type fakeExec struct {
	mu      sync.Mutex
	images  map[string]State
	layers  map[digest.Digest]map[string]fakeFile
	runs    []RunSpec
	applied int
	imageQ  []string
	// run, when set, returns the files a RUN changes (or an error).
	run       func(r RunSpec, files map[string]fakeFile) (map[string]fakeFile, error)
	cache     map[digest.Digest]Layer
	committed map[string]State
	tags      map[string]string
	epochs    []time.Time
}

func newFake(t *testing.T) *fakeExec {
	f := &fakeExec{
		images:    map[string]State{},
		layers:    map[digest.Digest]map[string]fakeFile{},
		cache:     map[digest.Digest]Layer{},
		committed: map[string]State{},
		tags:      map[string]string{},
	}
	f.addImage("busybox", busyboxFiles(), func(c *image.Config) {
		c.Config.Cmd = []string{"sh"}
	})
	return f
}

var baseCreated = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func busyboxFiles() map[string]fakeFile {
	return map[string]fakeFile{
		"bin":        {Typ: tar.TypeDir, Mode: 0o755},
		"bin/sh":     {Typ: tar.TypeReg, Mode: 0o755, Data: "#!busybox"},
		"etc":        {Typ: tar.TypeDir, Mode: 0o755},
		"etc/passwd": {Typ: tar.TypeReg, Mode: 0o644, Data: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"},
		"etc/group":  {Typ: tar.TypeReg, Mode: 0o644, Data: "root:x:0:\nstaff:x:50:\napp:x:1001:\n"},
		"usr":        {Typ: tar.TypeDir, Mode: 0o755},
		"usr/bin":    {Typ: tar.TypeDir, Mode: 0o755},
		"tmp":        {Typ: tar.TypeDir, Mode: 0o1777},
	}
}

// addImage stores an image of one layer holding files.
func (f *fakeExec) addImage(ref string, files map[string]fakeFile, edit func(*image.Config)) State {
	l := f.storeLayer(files)
	created := baseCreated
	cfg := image.Config{Image: ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}},
		History:  []ocispec.History{{Created: &created, CreatedBy: "/bin/sh -c #(nop) ADD file:base in / "}},
	}}
	cfg.Config.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if edit != nil {
		edit(&cfg)
	}
	s := State{Layers: []ocispec.Descriptor{l.Blob}, Config: cfg}
	f.images[ref] = s
	return s
}

func (f *fakeExec) storeLayer(files map[string]fakeFile) Layer {
	if len(files) == 0 {
		return Layer{DiffID: emptyLayerDiffID, Blob: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: emptyLayerDiffID}}
	}
	data, _ := json.Marshal(files) // map keys marshal sorted
	d := digest.FromBytes(data)
	f.layers[d] = files
	return Layer{DiffID: d, Blob: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(data))}}
}

// files merges the layers of s.
func (f *fakeExec) files(s State) map[string]fakeFile {
	out := map[string]fakeFile{}
	for _, d := range s.Config.RootFS.DiffIDs {
		l, ok := f.layers[d]
		if !ok {
			panic(fmt.Sprintf("fake: unknown layer %s", d))
		}
		for p, file := range l {
			out[p] = file
		}
	}
	return out
}

func (f *fakeExec) Image(ctx context.Context, ref string, pull bool, out io.Writer) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imageQ = append(f.imageQ, ref)
	s, ok := f.images[ref]
	if !ok {
		return State{}, fmt.Errorf("%w: image %s", errdefs.ErrNotFound, ref)
	}
	return cloneState(s), nil
}

func (f *fakeExec) Run(ctx context.Context, s State, r RunSpec, epoch time.Time, out io.Writer) (Layer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, r)
	f.epochs = append(f.epochs, epoch)
	fmt.Fprintf(out, "ran %s\n", strings.Join(r.Args, " "))
	var changes map[string]fakeFile
	if f.run != nil {
		var err error
		changes, err = f.run(r, f.files(s))
		if err != nil {
			return Layer{}, err
		}
	}
	return f.storeLayer(changes), nil
}

func (f *fakeExec) Apply(ctx context.Context, s State, r io.Reader, epoch time.Time) (Layer, error) {
	// The stream may read from the fake (COPY --from): take it whole
	// before locking.
	data, err := io.ReadAll(r)
	if err != nil {
		return Layer{}, err
	}
	r = bytes.NewReader(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	f.epochs = append(f.epochs, epoch)
	have := f.files(s)
	changes := map[string]fakeFile{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Layer{}, err
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name != hdr.Name && name+"/" != hdr.Name {
			return Layer{}, fmt.Errorf("fake: unclean tar name %q", hdr.Name)
		}
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := have[dir]; !ok {
				if _, ok := changes[dir]; !ok {
					changes[dir] = fakeFile{Typ: tar.TypeDir, Mode: 0o755, MTime: epoch.Unix()}
				}
			}
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return Layer{}, err
		}
		changes[name] = fakeFile{Typ: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid, Data: string(data), Link: hdr.Linkname, MTime: hdr.ModTime.Unix()}
	}
	return f.storeLayer(changes), nil
}

func (f *fakeExec) ReadFile(ctx context.Context, s State, p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files(s)[strings.TrimPrefix(path.Clean(p), "/")]
	if !ok || file.Typ != tar.TypeReg {
		return nil, fmt.Errorf("%w: %s", errdefs.ErrNotFound, p)
	}
	return []byte(file.Data), nil
}

func (f *fakeExec) Commit(ctx context.Context, s State, tags []string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := json.Marshal(s.Config)
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(data).String()
	f.committed[id] = s
	for _, t := range tags {
		f.tags[t] = id
	}
	return id, nil
}

func (f *fakeExec) CacheGet(ctx context.Context, key digest.Digest) (Layer, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.cache[key]
	return l, ok, nil
}

func (f *fakeExec) CachePut(ctx context.Context, key digest.Digest, l Layer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cache[key] = l
	return nil
}

// fakeFS adds the FileSource methods to the fake.
type fakeFS struct{ *fakeExec }

type fakeInfo struct {
	name string
	file fakeFile
}

func (i fakeInfo) Name() string { return path.Base(i.name) }
func (i fakeInfo) Size() int64  { return int64(len(i.file.Data)) }
func (i fakeInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.file.Mode & 0o777)
	switch i.file.Typ {
	case tar.TypeDir:
		m |= fs.ModeDir
	case tar.TypeSymlink:
		m |= fs.ModeSymlink
	}
	return m
}
func (i fakeInfo) ModTime() time.Time { return time.Unix(i.file.MTime, 0) }
func (i fakeInfo) IsDir() bool        { return i.file.Typ == tar.TypeDir }
func (i fakeInfo) Sys() any           { return nil }

func (f fakeFS) Stat(ctx context.Context, s State, p string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rel := strings.TrimPrefix(path.Clean(p), "/")
	if rel == "" {
		return fakeInfo{name: "/", file: fakeFile{Typ: tar.TypeDir, Mode: 0o755}}, nil
	}
	file, ok := f.files(s)[rel]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errdefs.ErrNotFound, p)
	}
	return fakeInfo{name: rel, file: file}, nil
}

func (f fakeFS) Export(ctx context.Context, s State, p string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rel := strings.TrimPrefix(path.Clean(p), "/")
	files := f.files(s)
	if _, ok := files[rel]; !ok && rel != "" {
		return nil, fmt.Errorf("%w: %s", errdefs.ErrNotFound, p)
	}
	var names []string
	for n := range files {
		if rel == "" || n == rel || strings.HasPrefix(n, rel+"/") {
			names = append(names, n)
		}
	}
	// Depth-first order: children right after their parent.
	sort.Slice(names, func(i, j int) bool {
		return strings.ReplaceAll(names[i], "/", "\x00") < strings.ReplaceAll(names[j], "/", "\x00")
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		file := files[n]
		hdr := &tar.Header{Typeflag: file.Typ, Name: n, Mode: file.Mode, Uid: file.UID, Gid: file.GID, Linkname: file.Link, ModTime: time.Unix(file.MTime, 0)}
		if file.Typ == tar.TypeReg {
			hdr.Size = int64(len(file.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, file.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return io.NopCloser(&buf), nil
}

// layerOf returns the files of the image's top layer.
func (f *fakeExec) topLayer(t *testing.T, s State) map[string]fakeFile {
	t.Helper()
	ids := s.Config.RootFS.DiffIDs
	if len(ids) == 0 {
		t.Fatal("image has no layer")
	}
	return f.layers[ids[len(ids)-1]]
}
