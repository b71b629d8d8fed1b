package builtin

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"berth.dev/internal/testutil"
)

// writeArchiveFile writes the named image's archive to a temp file.
func writeArchiveFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar") // no colon: it would end an oci-archive: path
	if err := os.WriteFile(p, archiveOf(t, name), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tool runs an installed program (the test is skipped without it) with
// TMPDIR in a temp dir, and returns its stdout.
func tool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr)
	}
	return out
}

// imageConfigView is the part of an image config the tools show.
type imageConfigView struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Cmd []string `json:"Cmd"`
		Env []string `json:"Env"`
	} `json:"config"`
}

var builtinCmds = map[string][]string{HelloWorld: {"/hello"}, Busybox: {"sh"}}

// skopeo reads both views of the archive: the OCI layout and the docker
// save manifest.json.
func TestArchiveReadBySkopeo(t *testing.T) {
	for _, name := range Names() {
		t.Run(path.Base(name), func(t *testing.T) {
			file := writeArchiveFile(t, name)
			var cfg imageConfigView
			if err := json.Unmarshal(tool(t, "skopeo", "inspect", "--config", "oci-archive:"+file), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || !slices.Equal(cfg.Config.Cmd, builtinCmds[name]) {
				t.Errorf("skopeo oci-archive config: %+v", cfg)
			}
			var inspect struct{ Os, Architecture string }
			if err := json.Unmarshal(tool(t, "skopeo", "inspect", "docker-archive:"+file), &inspect); err != nil {
				t.Fatal(err)
			}
			if inspect.Os != "linux" || inspect.Architecture != runtime.GOARCH {
				t.Errorf("skopeo docker-archive: %+v", inspect)
			}
		})
	}
}

// podman loads the archive under its full name, as docker load would.
// Its storage is a temp dir (vfs driver: no mounts to undo).
func TestArchiveLoadedByPodman(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, name := range Names() {
		t.Run(path.Base(name), func(t *testing.T) {
			file := writeArchiveFile(t, name)
			store := t.TempDir()
			// podman wants a runroot of at most 50 characters, shorter
			// than t.TempDir's names.
			runroot, err := os.MkdirTemp("", "berth-test-podman-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(runroot) })
			podman := func(args ...string) []byte {
				return tool(t, "podman", append([]string{
					"--root", filepath.Join(store, "root"), "--runroot", runroot,
					"--storage-driver", "vfs", "--events-backend", "none",
				}, args...)...)
			}
			podman("load", "-q", "-i", file)
			var imgs []struct {
				Architecture, Os string
				RepoTags         []string
				Config           struct{ Cmd []string }
			}
			if err := json.Unmarshal(podman("image", "inspect", name), &imgs); err != nil {
				t.Fatal(err)
			}
			if len(imgs) != 1 || !slices.Contains(imgs[0].RepoTags, name) || !slices.Equal(imgs[0].Config.Cmd, builtinCmds[name]) ||
				imgs[0].Os != "linux" || imgs[0].Architecture != runtime.GOARCH {
				t.Errorf("podman image inspect %s: %+v", name, imgs)
			}
		})
	}
}
