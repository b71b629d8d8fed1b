package engine_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth.dev/registry/registrytest"
	"berth.dev/tests/enginetest"
	"berth.dev/tests/fixtures/images"
)

// A pull asks for its first layer as soon as the manifest names it, and
// prepares the snapshot to unpack it into, beside fetching the config.
// These tests check that nothing of that stays when it is not used.

// noLeftovers fails the test if the daemon holds a snapshot beyond
// layers, a mount or an unpack directory.
func noLeftovers(t *testing.T, d *enginetest.Daemon, layers int) {
	t.Helper()
	if dirs, _ := filepath.Glob(filepath.Join(d.Root, "snapshots", "[0-9]*")); len(dirs) != layers {
		t.Errorf("%d snapshots, want %d: %v", len(dirs), layers, dirs)
	}
	if m := d.Mounts(); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if tmp, _ := filepath.Glob(filepath.Join(d.ExecRoot, "tmp", "*")); len(tmp) != 0 {
		t.Errorf("unpack directories left: %v", tmp)
	}
}

// The first layer's blob is missing from the registry: the pull fails and
// leaves neither image, layer nor mount.
func TestPullFirstLayerMissing(t *testing.T) {
	img := layered(t)
	host := fakeRegistry(t, img, fakeBlobs{gone: img.Layers[0].Descriptor.Digest})
	d := enginetest.Start(t, bin, "")
	_, errOut, code := d.Docker("pull", host+"/berth-test/missing:1")
	if code == 0 {
		t.Fatal("pull without the first layer succeeded")
	}
	if !strings.Contains(errOut, img.Layers[0].Descriptor.Digest.String()) {
		t.Errorf("error does not name the missing blob: %s", errOut)
	}
	if out := mustDocker(t, d, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after a failed pull: %q", out)
	}
	noLeftovers(t, d, 0)
}

// The config is missing while the first layer's request gets no answer:
// the pull fails on the config without waiting for the layer.
func TestPullFailsWithoutWaitingForItsFirstLayer(t *testing.T) {
	img := layered(t)
	host := fakeRegistry(t, img, fakeBlobs{gone: img.Config.Digest, hang: img.Layers[0].Descriptor.Digest})
	d := enginetest.Start(t, bin, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The docker CLI's own pull is not cancelled: a berthd that waited
	// for the hanging answer would hold it until the test's end.
	out, err := exec.CommandContext(ctx, "docker", "-H", "unix://"+d.Socket, "pull", host+"/berth-test/noconfig:1").CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the pull waited for the first layer's answer:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), img.Config.Digest.String()) {
		t.Errorf("pull without its config: %v:\n%s", err, out)
	}
	noLeftovers(t, d, 0)
}

// twoNames pushes img under two names to a registry of the test's own and
// returns their references.
func twoNames(t *testing.T, img *images.Image, a, b string) (string, string) {
	t.Helper()
	reg := registrytest.Start(t)
	refA, refB := reg.Ref(a), reg.Ref(b)
	pushImage(t, refA, img)
	pushImage(t, refB, img)
	return refA, refB
}

// The first layer is unpacked but its blob is no longer in the store, so
// the pull of another name for the image asks for it and prepares a
// snapshot; the config then shows the layer there: both are dropped.
func TestPullDropsUnusedFirstLayer(t *testing.T) {
	img := layered(t)
	first, second := twoNames(t, img, "berth-test/prefetch:1", "berth-test/other:2")
	d := enginetest.Start(t, bin, "")
	mustDocker(t, d, "pull", first)
	layer0 := img.Layers[0].Descriptor.Digest
	if err := os.Remove(filepath.Join(d.Root, "content", "blobs", "sha256", layer0.Encoded())); err != nil {
		t.Fatal(err)
	}
	out := mustDocker(t, d, "pull", second)
	if !strings.Contains(out, layer0.Encoded()[:12]+": Already exists") {
		t.Errorf("pull of the second name:\n%s", out)
	}
	noLeftovers(t, d, len(img.Layers))
	if _, err := os.Stat(filepath.Join(d.Root, "content", "blobs", "sha256", layer0.Encoded())); err == nil {
		t.Error("the layer already unpacked was downloaded again")
	}
}

// Pulls of one image at once (the same name twice, another name once) all
// succeed and share its layers: one waits for the other's download and
// unpack instead of failing on its locked ingest.
func TestConcurrentPullsOfOneImage(t *testing.T) {
	img := layered(t)
	a, b := twoNames(t, img, "berth-test/together:1", "berth-test/alongside:1")
	d := enginetest.Start(t, bin, "")
	refs := []string{a, a, b}
	errs := make(chan string, len(refs))
	for _, ref := range refs {
		go func() {
			_, errOut, code := d.Docker("pull", ref)
			if code != 0 {
				errOut = fmt.Sprintf("pull %s: exit %d: %s", ref, code, errOut)
			} else {
				errOut = ""
			}
			errs <- errOut
		}()
	}
	for range refs {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	if ids := strings.Fields(mustDocker(t, d, "images", "-q")); len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("images after the pulls: %v", ids)
	}
	noLeftovers(t, d, len(img.Layers))
}
