package engine_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/image"
	"berth.dev/registry"
	"berth.dev/registry/registrytest"
	"berth.dev/tests/enginetest"
)

// testLayer is one layer of a test image: its gzip blob and diff ID.
type testLayer struct {
	blob   []byte
	desc   ocispec.Descriptor
	diffID digest.Digest
}

type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	data       []byte
}

func makeLayer(t *testing.T, entries []tarEntry) testLayer {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mtime := time.Unix(1700000000, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.data)), ModTime: mtime, Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write(e.data)
		}
	}
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	return testLayer{
		blob:   gz.Bytes(),
		desc:   ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz.Bytes()), Size: int64(gz.Len())},
		diffID: digest.FromBytes(raw.Bytes()),
	}
}

// busyboxLayers is a busybox image in two layers; the second deletes
// /etc/motd, which the first adds (a whiteout).
func busyboxLayers(t *testing.T) []testLayer {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs /bin/busybox (Debian busybox-static)")
	}
	base := []tarEntry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, data: bb},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/motd", typ: tar.TypeReg, mode: 0o644, data: []byte("hello from layer 1\n")},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	}
	for _, l := range []string{"sh", "ls", "cat", "echo", "true"} {
		base = append(base, tarEntry{name: "bin/" + l, typ: tar.TypeSymlink, link: "busybox", mode: 0o777})
	}
	top := []tarEntry{
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/.wh.motd", typ: tar.TypeReg, mode: 0o644},
		{name: "etc/hostname", typ: tar.TypeReg, mode: 0o644, data: []byte("berth\n")},
	}
	return []testLayer{makeLayer(t, base), makeLayer(t, top)}
}

// pushImage pushes layers as ref (host/repo:tag) and returns the
// manifest's digest and the image ID.
func pushImage(t *testing.T, ref string, layers []testLayer) (manifest, id digest.Digest) {
	t.Helper()
	ctx := context.Background()
	named, err := image.ParseNormalized(ref)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Unix(1700000000, 0).UTC()
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config:   ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}, Labels: map[string]string{"berth.test": "yes"}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	c := registry.New()
	var descs []ocispec.Descriptor
	for i, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: "layer " + string(rune('1'+i))})
		if err := c.PushBlob(ctx, named, l.desc, bytes.NewReader(l.blob)); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, l.desc)
	}
	cfgData, _ := json.Marshal(cfg)
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgData), Size: int64(len(cfgData))}
	if err := c.PushBlob(ctx, named, cfgDesc, bytes.NewReader(cfgData)); err != nil {
		t.Fatal(err)
	}
	man := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: descs}
	man.SchemaVersion = 2
	manData, _ := json.Marshal(man)
	desc, err := c.PushManifest(ctx, named, ocispec.MediaTypeImageManifest, manData)
	if err != nil {
		t.Fatal(err)
	}
	return desc.Digest, cfgDesc.Digest
}

func mustDocker(t *testing.T, d *enginetest.Daemon, args ...string) string {
	t.Helper()
	out, errOut, code := d.Docker(args...)
	if code != 0 {
		t.Fatalf("docker %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestPullThroughDockerCLI(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Ref("berth-test/busybox:1")
	manifest, id := pushImage(t, ref, busyboxLayers(t))
	d := enginetest.Start(t, bin, "")

	out := mustDocker(t, d, "pull", ref)
	for _, want := range []string{"Pull complete", "Digest: " + manifest.String(), "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	if out := mustDocker(t, d, "pull", ref); !strings.Contains(out, "Image is up to date for "+ref) {
		t.Errorf("second pull:\n%s", out)
	}

	out = mustDocker(t, d, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if want := ref + " " + id.Encoded()[:12]; strings.TrimSpace(out) != want {
		t.Errorf("docker images = %q, want %q", out, want)
	}
	out = mustDocker(t, d, "image", "inspect", "--format", "{{.Id}} {{index .Config.Cmd 0}} {{len .RootFS.Layers}} {{index .Config.Labels \"berth.test\"}} {{.Os}}", ref)
	if want := id.String() + " sh 2 yes linux"; strings.TrimSpace(out) != want {
		t.Errorf("inspect = %q, want %q", out, want)
	}
	out = mustDocker(t, d, "history", "--format", "{{.CreatedBy}}", ref)
	if strings.Fields(out)[0] != "layer" || !strings.Contains(out, "layer 2") || strings.Index(out, "layer 2") > strings.Index(out, "layer 1") {
		t.Errorf("history (newest first):\n%s", out)
	}

	// The layers are unpacked, the whiteout applied: a container's view
	// of the image (an overlay of the layer snapshots) has no /etc/motd.
	checkUnpacked(t, d)

	mustDocker(t, d, "tag", ref, "berth-test/other:2")
	out = mustDocker(t, d, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if !strings.Contains(out, "berth-test/other:2") {
		t.Errorf("after tag: %s", out)
	}
	out = mustDocker(t, d, "rmi", "berth-test/other:2")
	if !strings.Contains(out, "Untagged: berth-test/other:2") || strings.Contains(out, "Deleted") {
		t.Errorf("rmi of one of two names: %s", out)
	}
	out = mustDocker(t, d, "rmi", ref)
	if !strings.Contains(out, "Deleted: "+id.String()) {
		t.Errorf("rmi of the last name: %s", out)
	}
	if out := mustDocker(t, d, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after rmi: %q", out)
	}
	// Removing the image removed its layers and blobs.
	if entries, _ := os.ReadDir(filepath.Join(d.Root, "content", "blobs", "sha256")); len(entries) != 0 {
		t.Errorf("%d blobs left after rmi", len(entries))
	}
	if out, _ := exec.Command("find", filepath.Join(d.Root, "snapshots"), "-mindepth", "1", "-maxdepth", "1", "-type", "d").Output(); len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("snapshot dirs left after rmi:\n%s", out)
	}
}

// checkUnpacked mounts the top layer's snapshot read-only through the
// snapshot dirs and checks the merged view.
func checkUnpacked(t *testing.T, d *enginetest.Daemon) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "*", "fs"))
	if len(dirs) != 2 {
		t.Fatalf("%d layer snapshots, want 2: %v", len(dirs), dirs)
	}
	var sawBusybox, sawWhiteout, sawHostname bool
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err == nil {
			sawBusybox = true
		}
		if st, err := os.Lstat(filepath.Join(dir, "etc", "motd")); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			sawWhiteout = true
		}
		if _, err := os.Stat(filepath.Join(dir, "etc", "hostname")); err == nil {
			sawHostname = true
		}
	}
	if !sawBusybox || !sawWhiteout || !sawHostname {
		t.Errorf("layers: busybox %v, overlay whiteout for etc/motd %v, etc/hostname %v", sawBusybox, sawWhiteout, sawHostname)
	}
}

func TestPullErrors(t *testing.T) {
	reg := registrytest.Start(t)
	d := enginetest.Start(t, bin, "")
	_, errOut, code := d.Docker("pull", reg.Ref("berth-test/nothing:1"))
	if code == 0 || !strings.Contains(strings.ToLower(errOut), "not found") && !strings.Contains(strings.ToLower(errOut), "unknown") {
		t.Errorf("pull of a missing image: %d %s", code, errOut)
	}
	if out := mustDocker(t, d, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after a failed pull: %q", out)
	}
	_, errOut, code = d.Docker("image", "inspect", "nosuchimage")
	if code == 0 || !strings.Contains(errOut, "No such image") {
		t.Errorf("inspect of a missing image: %d %s", code, errOut)
	}
}

func mustBerth(t *testing.T, d *enginetest.Daemon, args ...string) string {
	t.Helper()
	out, errOut, code := d.Berth(args...)
	if code != 0 {
		t.Fatalf("berth %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestBerthCLI(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Ref("berth-test/busybox:cli")
	_, id := pushImage(t, ref, busyboxLayers(t))
	d := enginetest.Start(t, bin, "")

	if out := mustBerth(t, d, "pull", ref); !strings.Contains(out, "Downloaded newer image for "+ref) {
		t.Errorf("berth pull:\n%s", out)
	}
	out := mustBerth(t, d, "images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "REPOSITORY") || !strings.Contains(lines[1], id.Encoded()[:12]) {
		t.Errorf("berth images:\n%s", out)
	}
	if out := mustBerth(t, d, "image", "inspect", "-f", "{{.Id}}", ref); strings.TrimSpace(out) != id.String() {
		t.Errorf("berth image inspect: %q", out)
	}
	if out := mustBerth(t, d, "history", "-q", ref); !strings.Contains(out, id.Encoded()[:12]) || !strings.Contains(out, "<missing>") {
		t.Errorf("berth history -q:\n%s", out)
	}
	mustBerth(t, d, "tag", ref, "berth-test/tagged:x")
	if out := mustBerth(t, d, "rmi", "berth-test/tagged:x", ref); !strings.Contains(out, "Deleted: "+id.String()) {
		t.Errorf("berth rmi:\n%s", out)
	}
	_, errOut, code := d.Berth("rmi", ref)
	if code != 1 || !strings.Contains(errOut, "No such image") {
		t.Errorf("rmi of a removed image: %d %q", code, errOut)
	}
}

// Pull, push to another repository, pull back into a fresh engine: the
// digests are the same, and the second push of unchanged layers uploads
// nothing.
func TestPushRoundTrip(t *testing.T) {
	reg := registrytest.Start(t)
	src := reg.Ref("berth-test/busybox:src")
	manifest, id := pushImage(t, src, busyboxLayers(t))
	d := enginetest.Start(t, bin, "")
	mustDocker(t, d, "pull", src)
	dst := reg.Ref("berth-test/copy:v1")
	mustDocker(t, d, "tag", src, dst)
	out := mustDocker(t, d, "push", dst)
	if !strings.Contains(out, "v1: digest: "+manifest.String()) {
		t.Errorf("push of an unchanged image gave another digest:\n%s", out)
	}
	if !strings.Contains(out, "Mounted from berth-test/busybox") && !strings.Contains(out, "Layer already exists") {
		t.Errorf("push did not reuse the layers already in the registry:\n%s", out)
	}
	out = mustDocker(t, d, "push", dst)
	if strings.Contains(out, "Pushed") || !strings.Contains(out, "Layer already exists") {
		t.Errorf("second push uploaded again:\n%s", out)
	}

	d2 := enginetest.Start(t, bin, "")
	out = mustDocker(t, d2, "pull", dst)
	if !strings.Contains(out, "Digest: "+manifest.String()) {
		t.Errorf("pull back:\n%s", out)
	}
	if got := strings.TrimSpace(mustDocker(t, d2, "image", "inspect", "-f", "{{.Id}}", dst)); got != id.String() {
		t.Errorf("image ID after the round trip %s, want %s", got, id)
	}
	_, errOut, code := d.Docker("push", reg.Ref("berth-test/never:1"))
	if code == 0 || !strings.Contains(errOut, "does not exist locally") {
		t.Errorf("push of an unknown image: %d %s", code, errOut)
	}
}
