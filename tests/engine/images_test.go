package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"berth.dev/image"
	"berth.dev/registry"
	"berth.dev/registry/registrytest"
	"berth.dev/tests/enginetest"
	"berth.dev/tests/fixtures/images"
)

// layered is the fixtures' 3-layer image (a whiteout, an opaque dir, a
// hard link) with a label to find in inspect.
func layered(t *testing.T) *images.Image {
	return images.Layered(t, images.WithConfig(func(c *image.Config) {
		c.Config.Labels = map[string]string{"berth.test": "yes"}
	}))
}

// pushImage pushes a fixture image's blobs and manifest as ref
// (host/repo:tag) and returns the manifest's digest and the image ID.
func pushImage(t *testing.T, ref string, img *images.Image) (manifest, id digest.Digest) {
	t.Helper()
	ctx := context.Background()
	named, err := image.ParseNormalized(ref)
	if err != nil {
		t.Fatal(err)
	}
	c := registry.New()
	for _, desc := range append([]ocispec.Descriptor{img.Config}, layerDescs(img)...) {
		if err := c.PushBlob(ctx, named, desc, bytes.NewReader(img.Blobs[desc.Digest])); err != nil {
			t.Fatal(err)
		}
	}
	desc, err := c.PushManifest(ctx, named, img.Manifest.MediaType, img.Blobs[img.Manifest.Digest])
	if err != nil {
		t.Fatal(err)
	}
	return desc.Digest, img.ID()
}

func layerDescs(img *images.Image) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, l := range img.Layers {
		out = append(out, l.Descriptor)
	}
	return out
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
	manifest, id := pushImage(t, ref, layered(t))
	d := enginetest.Start(t, bin, "")

	out := mustDocker(t, d, "pull", ref)
	for _, want := range []string{"1: Pulling from berth-test/busybox", "Pull complete", "Digest: " + manifest.String(), "Status: Downloaded newer image for " + ref} {
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
	if want := id.String() + " sh 3 yes linux"; strings.TrimSpace(out) != want {
		t.Errorf("inspect = %q, want %q", out, want)
	}
	out = mustDocker(t, d, "history", "--format", "{{.ID}} {{.CreatedBy}}", "--no-trunc", ref)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[0], id.String()+" ") || !strings.Contains(rows[0], "CMD") || !strings.HasPrefix(rows[3], "<missing> ") {
		t.Errorf("history (newest first, the image's ID on top):\n%s", out)
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

// checkUnpacked looks into the layer snapshots: busybox in the bottom
// one, and in the top one gone.txt as an overlay whiteout (a 0/0 char
// device) and data/ made opaque, as overlayfs records them when the layer
// is applied through the mount.
func checkUnpacked(t *testing.T, d *enginetest.Daemon) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "*", "fs"))
	if len(dirs) != 3 {
		t.Fatalf("%d layer snapshots, want 3: %v", len(dirs), dirs)
	}
	var sawBusybox, sawWhiteout, sawOpaque bool
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err == nil {
			sawBusybox = true
		}
		if st, err := os.Lstat(filepath.Join(dir, "gone.txt")); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			sawWhiteout = true
		}
		buf := make([]byte, 8)
		if n, err := unix.Getxattr(filepath.Join(dir, "data"), "trusted.overlay.opaque", buf); err == nil && string(buf[:n]) == "y" {
			sawOpaque = true
		}
	}
	if !sawBusybox || !sawWhiteout || !sawOpaque {
		t.Errorf("layers: busybox %v, whiteout for gone.txt %v, opaque data/ %v", sawBusybox, sawWhiteout, sawOpaque)
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
	_, id := pushImage(t, ref, layered(t))
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
	manifest, id := pushImage(t, src, layered(t))
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

func TestSystemDf(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Ref("berth-test/df:1")
	pushImage(t, ref, layered(t))
	d := enginetest.Start(t, bin, "")
	mustDocker(t, d, "pull", ref)
	mustDocker(t, d, "tag", ref, "berth-test/df:2")
	out := mustDocker(t, d, "system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Size}}")
	var imagesRow string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Images ") {
			imagesRow = line
		}
	}
	f := strings.Fields(imagesRow)
	if len(f) != 3 || f[1] != "1" || f[2] == "0B" {
		t.Errorf("system df images row %q in:\n%s", imagesRow, out)
	}

	// busybox and the many-layer image share their bottom layer.
	many := reg.Ref("berth-test/df-many:1")
	pushImage(t, many, images.Many(t, 3))
	bb := reg.Ref("berth-test/df-bb:1")
	pushImage(t, bb, images.Busybox(t))
	mustDocker(t, d, "pull", many)
	mustDocker(t, d, "pull", bb)
	resp, err := d.HTTPClient().Get("http://berth/system/df")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var df struct {
		Images []struct {
			RepoTags   []string
			Size       int64
			SharedSize int64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&df); err != nil {
		t.Fatal(err)
	}
	for _, img := range df.Images {
		shares := len(img.RepoTags) > 0 && (img.RepoTags[0] == many || img.RepoTags[0] == bb)
		if shares && (img.SharedSize <= 0 || img.SharedSize > img.Size) {
			t.Errorf("%v: shared size %d of %d", img.RepoTags, img.SharedSize, img.Size)
		}
		if !shares && img.SharedSize != 0 {
			t.Errorf("%v shares nothing but reports %d", img.RepoTags, img.SharedSize)
		}
	}
}

func TestPullAllTags(t *testing.T) {
	reg := registrytest.Start(t)
	img := layered(t)
	for _, tag := range []string{"a", "b"} {
		pushImage(t, reg.Ref("berth-test/all:"+tag), img)
	}
	d := enginetest.Start(t, bin, "")
	mustDocker(t, d, "pull", "--all-tags", reg.Ref("berth-test/all"))
	out := mustDocker(t, d, "images", "--format", "{{.Tag}}")
	if tags := strings.Fields(out); len(tags) != 2 || tags[0] != "a" && tags[1] != "a" {
		t.Errorf("tags after pull --all-tags: %q", out)
	}
}

// A tag that moves to a newer image leaves the old one as <none>:<none>,
// still there by ID, until image prune removes it.
func TestDanglingImages(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Ref("berth-test/moving:latest")
	old := layered(t)
	pushImage(t, ref, old)
	d := enginetest.Start(t, bin, "")
	mustDocker(t, d, "pull", ref)
	newer := images.Busybox(t)
	pushImage(t, ref, newer)
	mustDocker(t, d, "pull", ref)

	out := mustDocker(t, d, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if !strings.Contains(out, "<none>:<none> "+old.ID().Encoded()[:12]) || !strings.Contains(out, ref+" "+newer.ID().Encoded()[:12]) {
		t.Errorf("images after the tag moved:\n%s", out)
	}
	if out := mustDocker(t, d, "images", "-q", "--filter", "dangling=true"); strings.TrimSpace(out) != old.ID().Encoded()[:12] {
		t.Errorf("dangling images: %q", out)
	}
	if got := strings.TrimSpace(mustDocker(t, d, "image", "inspect", "-f", "{{.Id}}", old.ID().Encoded()[:12])); got != old.ID().String() {
		t.Errorf("inspect of the dangling image by short ID: %q", got)
	}
	out = mustDocker(t, d, "image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+old.ID().String()) {
		t.Errorf("prune:\n%s", out)
	}
	if out := mustDocker(t, d, "images", "-q", "--no-trunc"); strings.TrimSpace(out) != newer.ID().String() {
		t.Errorf("images after prune: %q", out)
	}
	// The old image's layers went with it; busybox's stayed.
	if dirs, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "[0-9]*")); len(dirs) != 1 {
		t.Errorf("layer snapshots after prune: %v, want busybox's one", dirs)
	}
}

// The berth CLI's registry and archive commands against berthd: login to a
// registry with a password, push, save, load, logout.
func TestBerthCLIRegistryAndArchives(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithHtpasswd("berth", "s3cret"))
	d := enginetest.Start(t, bin, "")
	img := images.Busybox(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "busybox.tar")
	f, _ := os.Create(archive)
	if err := img.WriteDockerArchive(f, "berth-test/cli:1"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out := mustBerth(t, d, "load", "-i", archive); !strings.Contains(out, "Loaded image: berth-test/cli:1") {
		t.Fatalf("berth load: %s", out)
	}
	ref := reg.Ref("berth-test/cli:1")
	mustBerth(t, d, "tag", "berth-test/cli:1", ref)
	if _, errOut, code := d.Berth("push", ref); code == 0 || !strings.Contains(strings.ToLower(errOut), "auth") {
		t.Errorf("push without login: %d %s", code, errOut)
	}
	_, errOut, code := d.Berth("login", "-u", "berth", "--password-stdin", reg.Host())
	if code == 0 {
		t.Errorf("login without a password on stdin succeeded: %s", errOut)
	}
	cmd := exec.Command(bin.Berth, "login", "-u", "berth", "--password-stdin", reg.Host())
	cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+d.Socket, "DOCKER_CONFIG="+filepath.Join(filepath.Dir(d.Config), "docker-config"))
	cmd.Stdin = strings.NewReader("s3cret\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Login Succeeded") {
		t.Fatalf("berth login: %v\n%s", err, out)
	}
	if out := mustBerth(t, d, "push", ref); !strings.Contains(out, "1: digest: "+img.Manifest.Digest.String()) {
		t.Errorf("berth push:\n%s", out)
	}
	saved := filepath.Join(dir, "saved.tar")
	mustBerth(t, d, "save", "-o", saved, ref)
	mustBerth(t, d, "rmi", ref, "berth-test/cli:1")
	if out := mustBerth(t, d, "load", "-i", saved); !strings.Contains(out, "Loaded image: "+ref) {
		t.Errorf("load of berth's save: %s", out)
	}
	mustBerth(t, d, "logout", reg.Host())
	mustBerth(t, d, "rmi", ref)
	if _, errOut, code := d.Berth("pull", ref); code == 0 {
		t.Errorf("pull after logout succeeded: %s", errOut)
	}
}

// With a credential helper in config.json ("credsStore"), as docker login
// sets up with pass or secretservice, berth login stores the password in
// the helper (config.json keeps an empty entry), pull and push get it from
// there, and logout erases it.
func TestBerthCLICredentialHelper(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithHtpasswd("berth", "s3cret"))
	d := enginetest.Start(t, bin, "")
	// A helper that keeps what it is given in a file, logging each call.
	helperDir := t.TempDir()
	store := filepath.Join(helperDir, "creds.json")
	script := `#!/bin/sh
echo "$1" >>` + filepath.Join(helperDir, "calls") + `
case "$1" in
store) cat >` + store + ` ;;
get) cat >/dev/null; if [ -f ` + store + ` ]; then cat ` + store + `; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) cat >/dev/null; rm -f ` + store + ` ;;
esac
`
	if err := os.WriteFile(filepath.Join(helperDir, "docker-credential-berthtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	configDir := filepath.Join(filepath.Dir(d.Config), "docker-config")
	if err := os.MkdirAll(configDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(configDir, "config.json"), []byte(`{"credsStore":"berthtest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	berth := func(stdin string, args ...string) (string, string, int) {
		cmd := d.BerthCommand(args...)
		cmd.Env = append(cmd.Env, "PATH="+helperDir+":"+os.Getenv("PATH"))
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}

	img := images.Busybox(t)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	f, _ := os.Create(archive)
	if err := img.WriteDockerArchive(f, "berth-test/helper:1"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mustBerth(t, d, "load", "-i", archive)
	ref := reg.Ref("berth-test/helper:1")
	mustBerth(t, d, "tag", "berth-test/helper:1", ref)

	if out, errOut, code := berth("s3cret\n", "login", "-u", "berth", "--password-stdin", reg.Host()); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("berth login: %d %s %s", code, out, errOut)
	}
	saved, err := os.ReadFile(store)
	if err != nil || !strings.Contains(string(saved), `"Secret":"s3cret"`) || !strings.Contains(string(saved), reg.Host()) {
		t.Fatalf("the helper holds %q (%v), want the login", saved, err)
	}
	cfg, _ := os.ReadFile(filepath.Join(configDir, "config.json"))
	if strings.Contains(string(cfg), "s3cret") || strings.Contains(string(cfg), `"auth"`) || !strings.Contains(string(cfg), `"credsStore": "berthtest"`) {
		t.Errorf("config.json after login through a helper:\n%s", cfg)
	}
	if out, errOut, code := berth("", "push", ref); code != 0 || !strings.Contains(out, "digest: "+img.Manifest.Digest.String()) {
		t.Fatalf("push with the helper's login: %d %s %s", code, out, errOut)
	}
	mustBerth(t, d, "rmi", ref)
	if _, errOut, code := berth("", "pull", ref); code != 0 {
		t.Fatalf("pull with the helper's login: %d %s", code, errOut)
	}
	if _, errOut, code := berth("", "logout", reg.Host()); code != 0 {
		t.Fatalf("logout: %d %s", code, errOut)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("logout left the helper's credentials: %v", err)
	}
	mustBerth(t, d, "rmi", ref)
	if _, _, code := berth("", "pull", ref); code == 0 {
		t.Error("pull after logout succeeded")
	}
	calls, _ := os.ReadFile(filepath.Join(helperDir, "calls"))
	for _, want := range []string{"store", "get", "erase"} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("the helper was never asked to %s (calls: %q)", want, calls)
		}
	}
}
