package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/registry/registrytest"
	"berth.dev/tests/enginetest"
	"berth.dev/tests/fixtures/images"
)

// A docker save archive of the layered fixture (whiteout, opaque dir,
// hard link) loads, and what berth saves loads back into another engine
// with the same image ID, and skopeo and podman read it.
func TestSaveLoad(t *testing.T) {
	img := images.Layered(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "layered.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.WriteDockerArchive(f, "berth-test/layered:1"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	d := enginetest.Start(t, bin, "")
	out := mustDocker(t, d, "load", "-i", archive)
	if !strings.Contains(out, "Loaded image: berth-test/layered:1") {
		t.Fatalf("docker load:\n%s", out)
	}
	if got := strings.TrimSpace(mustDocker(t, d, "image", "inspect", "-f", "{{.Id}}", "berth-test/layered:1")); got != img.ID().String() {
		t.Fatalf("loaded image ID %s, want %s", got, img.ID())
	}

	saved := filepath.Join(dir, "saved.tar")
	mustDocker(t, d, "save", "-o", saved, "berth-test/layered:1")
	d2 := enginetest.Start(t, bin, "")
	if out := mustDocker(t, d2, "load", "-i", saved); !strings.Contains(out, "Loaded image: berth-test/layered:1") {
		t.Fatalf("load of berth's save:\n%s", out)
	}
	if got := strings.TrimSpace(mustDocker(t, d2, "image", "inspect", "-f", "{{.Id}} {{index .RepoDigests 0}}", "berth-test/layered:1")); !strings.HasPrefix(got, img.ID().String()) {
		t.Errorf("after save and load: %s, want ID %s", got, img.ID())
	}

	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		for _, transport := range []string{"docker-archive:" + saved, "oci-archive:" + saved} {
			if out, err := exec.Command(skopeo, "inspect", "--raw", transport).CombinedOutput(); err != nil {
				t.Errorf("skopeo inspect %s: %v\n%s", transport, err, out)
			}
		}
	}
	if podman, err := exec.LookPath("podman"); err == nil {
		root := t.TempDir()
		args := []string{"--root", filepath.Join(root, "root"), "--runroot", filepath.Join(root, "run"), "--storage-driver", "vfs"}
		out, err := exec.Command(podman, append(args, "load", "-i", saved)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "berth-test/layered:1") {
			t.Errorf("podman load of berth's save: %v\n%s", err, out)
		}
		exec.Command(podman, append(args, "system", "reset", "-f")...).Run()
	}
}

func TestLoadRefusesHostileArchive(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tar")
	// A manifest.json whose config path climbs out of the archive.
	script := `cd "$1" && mkdir x && printf '[{"Config":"../../../../etc/passwd","RepoTags":["evil:1"],"Layers":[]}]' > x/manifest.json && tar -C x -cf bad.tar manifest.json`
	if out, err := exec.Command("sh", "-c", script, "sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, errOut, code := d.Docker("load", "-i", bad)
	if code == 0 {
		t.Fatalf("load of a hostile archive succeeded")
	}
	if out := mustDocker(t, d, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after a refused load: %q (%s)", out, errOut)
	}
}

// The fixtures' 100-layer image pulls and its layers mount.
func TestPullManyLayers(t *testing.T) {
	reg := registrytest.Start(t)
	img := images.Many(t, 100)
	layout := t.TempDir()
	if err := img.WriteOCILayout(layout, "many"); err != nil {
		t.Fatal(err)
	}
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("needs skopeo to seed the registry")
	}
	ref := reg.Ref("berth-test/many:100")
	if out, err := exec.Command(skopeo, "copy", "-q", "--dest-tls-verify=false", "oci:"+layout+":many", "docker://"+ref).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	d := enginetest.Start(t, bin, "")
	mustDocker(t, d, "pull", ref)
	if got := strings.TrimSpace(mustDocker(t, d, "image", "inspect", "-f", "{{len .RootFS.Layers}}", ref)); got != "100" {
		t.Errorf("layers = %s", got)
	}
}

// docker import: a rootfs tarball becomes a one-layer image with the
// changes and message given, whose layer unpacks.
func TestImport(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "hello.txt"), []byte("imported\n"), 0o644)
	tarball := filepath.Join(dir, "rootfs.tar.gz")
	if out, err := exec.Command("tar", "-C", rootfs, "-czf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out := mustDocker(t, d, "import", "-m", "from a tarball", "-c", "CMD [\"/bin/sh\"]", "-c", "ENV FOO=bar", tarball, "berth-test/imported:1")
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", out)
	}
	got := mustDocker(t, d, "image", "inspect", "-f", "{{.Id}} {{index .Config.Cmd 0}} {{index .Config.Env 0}} {{.Comment}} {{len .RootFS.Layers}}", "berth-test/imported:1")
	if want := id + " /bin/sh FOO=bar from a tarball 1"; strings.TrimSpace(got) != want {
		t.Errorf("inspect = %q, want %q", got, want)
	}
	found, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "*", "fs", "hello.txt"))
	if len(found) != 1 {
		t.Errorf("the imported layer is not unpacked: %v", found)
	}
	_, errOut, code := d.Docker("import", "-c", "RUN make", tarball, "berth-test/bad:1")
	if code == 0 || !strings.Contains(errOut, "RUN make") {
		t.Errorf("import with an unsupported change: %d %s", code, errOut)
	}
	garbage := filepath.Join(dir, "garbage.tar")
	os.WriteFile(garbage, []byte(strings.Repeat("not a tar archive ", 100)), 0o644)
	if _, errOut, code := d.Docker("import", garbage, "berth-test/garbage:1"); code == 0 {
		t.Errorf("import of a file that is not a tar succeeded: %s", errOut)
	}
	if ingests, _ := os.ReadDir(filepath.Join(d.Root, "content", "ingest")); len(ingests) != 0 {
		t.Errorf("a failed import left %d ingests", len(ingests))
	}
	if got := strings.TrimSpace(mustDocker(t, d, "images", "-q")); strings.Count(got, "\n") != 0 {
		t.Errorf("images after a failed import: %q", got)
	}
}

// What podman save writes (docker-archive and oci-archive) berth loads,
// with the image's ID.
func TestLoadPodmanSave(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("needs podman")
	}
	img := images.Busybox(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "busybox.tar")
	f, _ := os.Create(src)
	if err := img.WriteDockerArchive(f, "berth-test/pm:1"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	root := t.TempDir()
	pm := func(args ...string) {
		t.Helper()
		base := []string{"--root", filepath.Join(root, "root"), "--runroot", filepath.Join(root, "run"), "--storage-driver", "vfs"}
		if out, err := exec.Command(podman, append(base, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("podman %v: %v\n%s", args, err, out)
		}
	}
	defer pm("system", "reset", "-f")
	pm("load", "-i", src)
	for _, format := range []string{"docker-archive", "oci-archive"} {
		t.Run(format, func(t *testing.T) {
			saved := filepath.Join(dir, format+".tar")
			pm("save", "--format", format, "-o", saved, "berth-test/pm:1")
			d := enginetest.Start(t, bin, "")
			out := mustDocker(t, d, "load", "-i", saved)
			if !strings.Contains(out, "Loaded image") {
				t.Fatalf("load:\n%s", out)
			}
			ids := mustDocker(t, d, "images", "-q", "--no-trunc")
			if !strings.Contains(ids, img.ID().String()) {
				t.Errorf("loaded images %q, want ID %s", ids, img.ID())
			}
		})
	}
}

// startDockerd runs Debian's dockerd on a temp root for the test (no
// networking set up), or skips.
func startDockerd(t *testing.T) (docker func(args ...string) string) {
	t.Helper()
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("needs dockerd (Debian docker.io)")
	}
	dockerCLI, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("needs the docker CLI")
	}
	dir, err := os.MkdirTemp("/tmp", "berth-test-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	cmd := exec.Command(dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none", "-H", "unix://"+sock,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "pid"),
		"--containerd-namespace", filepath.Base(dir), "--containerd-plugins-namespace", filepath.Base(dir)+"-plugins")
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		exec.Command("sh", "-c", `grep -o " `+dir+`[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`).Run()
		os.RemoveAll(dir)
	})
	docker = func(args ...string) string {
		t.Helper()
		c := exec.Command(dockerCLI, append([]string{"-H", "unix://" + sock}, args...)...)
		c.Env = append(os.Environ(), "DOCKER_CONFIG="+dir)
		out, err := c.CombinedOutput()
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("docker %v: %v\n%s\ndockerd log:\n%s", args, err, out, log)
		}
		return string(out)
	}
	for i := 0; ; i++ {
		c := exec.Command(dockerCLI, "-H", "unix://"+sock, "version")
		if c.Run() == nil {
			break
		}
		if i > 300 {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("dockerd did not start:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return docker
}

// docker's own save loads into berth, and berth's save loads into docker,
// each keeping the image ID.
func TestSaveLoadWithDockerd(t *testing.T) {
	docker := startDockerd(t)
	img := images.Layered(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "layered.tar")
	f, _ := os.Create(src)
	if err := img.WriteDockerArchive(f, "berth-test/dk:1"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	docker("load", "-i", src)
	fromDocker := filepath.Join(dir, "from-docker.tar")
	docker("save", "-o", fromDocker, "berth-test/dk:1")

	d := enginetest.Start(t, bin, "")
	if out := mustDocker(t, d, "load", "-i", fromDocker); !strings.Contains(out, "Loaded image: berth-test/dk:1") {
		t.Fatalf("berth load of docker's save:\n%s", out)
	}
	if got := strings.TrimSpace(mustDocker(t, d, "image", "inspect", "-f", "{{.Id}}", "berth-test/dk:1")); got != img.ID().String() {
		t.Errorf("ID after docker save, berth load: %s, want %s", got, img.ID())
	}
	fromBerth := filepath.Join(dir, "from-berth.tar")
	mustDocker(t, d, "tag", "berth-test/dk:1", "berth-test/dk:2")
	mustDocker(t, d, "save", "-o", fromBerth, "berth-test/dk:2")
	docker("load", "-i", fromBerth)
	if got := strings.TrimSpace(docker("image", "inspect", "-f", "{{.Id}}", "berth-test/dk:2")); got != img.ID().String() {
		t.Errorf("ID after berth save, docker load: %s, want %s", got, img.ID())
	}
}
