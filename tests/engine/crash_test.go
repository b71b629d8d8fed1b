package engine_test

import (
	"bufio"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/registry/registrytest"
	"berth.dev/tests/enginetest"
	"berth.dev/tests/fixtures/images"
)

// berthd killed with SIGKILL in the middle of a pull: after a restart
// there is no image, no mount and no half-unpacked snapshot left; the same
// pull then completes, and removing the image leaves no snapshot behind.
func TestKillDuringPull(t *testing.T) {
	reg := registrytest.Start(t)
	img := images.Many(t, 60)
	ref := reg.Ref("berth-test/crash:1")
	pushImage(t, ref, img)
	d := enginetest.Start(t, bin, "")

	resp, err := d.HTTPClient().Post("http://berth/images/create?fromImage="+url.QueryEscape(ref), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Kill while a layer is being unpacked: after 5 layers are done, at
	// the next "Extracting".
	sc := bufio.NewScanner(resp.Body)
	completed, killed := 0, false
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Pull complete") {
			completed++
		}
		if completed >= 5 && strings.Contains(line, "Extracting") {
			d.Kill()
			killed = true
			break
		}
	}
	resp.Body.Close()
	if !killed {
		t.Fatalf("the pull ended before it could be killed in an unpack")
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	leftover := strings.Count(string(mi), d.ExecRoot)
	t.Logf("mounts the killed daemon left: %d", leftover)

	d.Restart()
	if out := mustDocker(t, d, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("an image is recorded after a killed pull: %q", out)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), d.ExecRoot) {
		t.Errorf("mounts left under %s after the restart", d.ExecRoot)
	}
	out := mustDocker(t, d, "pull", ref)
	if !strings.Contains(out, "Already exists") || !strings.Contains(out, "Downloaded newer image") {
		t.Errorf("the pull after the restart did not reuse the unpacked layers:\n%s", out)
	}
	if got := strings.TrimSpace(mustDocker(t, d, "image", "inspect", "-f", "{{len .RootFS.Layers}}", ref)); got != "60" {
		t.Errorf("layers %s", got)
	}
	mustDocker(t, d, "rmi", ref)
	if out, _ := exec.Command("find", filepath.Join(d.Root, "snapshots"), "-mindepth", "1", "-maxdepth", "1", "-type", "d").Output(); len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("snapshot dirs left after rmi:\n%s", out)
	}
}
