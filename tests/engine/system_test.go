package engine_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/tests/enginetest"
)

func TestDockerVersionAndInfo(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	out, errOut, code := d.Docker("version", "--format", "{{json .Server}}")
	if code != 0 {
		t.Fatalf("docker version: %d %s", code, errOut)
	}
	var server struct {
		APIVersion string `json:"ApiVersion"`
		Os         string
	}
	if err := json.Unmarshal([]byte(out), &server); err != nil || server.Os != "linux" || server.APIVersion == "" {
		t.Fatalf("server version %q: %v", out, err)
	}
	out, errOut, code = d.Docker("info", "--format", "{{.DockerRootDir}} {{.OSType}} {{.Images}}")
	if code != 0 || strings.TrimSpace(out) != d.Root+" linux 0" {
		t.Fatalf("docker info = %q (%d %s)", out, code, errOut)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	out, err := exec.Command(bin.Berthd, "--config", d.Config, "--root", d.Root, "--exec-root", d.ExecRoot,
		"-H", "unix://"+filepath.Join(t.TempDir(), "other.sock")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another berthd is running") {
		t.Fatalf("second berthd: %v\n%s", err, out)
	}
	if err := d.Ping(); err != nil {
		t.Fatalf("the first daemon stopped answering: %v", err)
	}
}

func TestBadConfigRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "berth.toml")
	os.WriteFile(cfg, []byte("no_such_key = 1\n"), 0o644)
	out, err := exec.Command(bin.Berthd, "--config", cfg, "--root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "run"),
		"-H", "unix://"+filepath.Join(dir, "b.sock")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no_such_key") {
		t.Fatalf("berthd with an unknown config key: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.sock")); !os.IsNotExist(err) {
		t.Error("socket created despite the bad config")
	}
}

func TestRestartKeepsEngineID(t *testing.T) {
	d := enginetest.Start(t, bin, "")
	id1, _, _ := d.Docker("info", "--format", "{{.ID}}")
	d.Restart()
	id2, _, _ := d.Docker("info", "--format", "{{.ID}}")
	if strings.TrimSpace(id1) == "" || id1 != id2 {
		t.Fatalf("engine ID %q, after restart %q", id1, id2)
	}
	// A daemon killed with SIGKILL leaves its socket; the next one takes it over.
	d.Kill()
	d.Restart()
	if err := d.Ping(); err != nil {
		t.Fatal(err)
	}
}
