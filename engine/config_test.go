package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"berth.dev/internal/errdefs"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "berth.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	p := writeConfig(t, `
root = "/srv/berth"
max_concurrent_downloads = 6
init_path = "/opt/tini"

[runtimes]
youki = "/usr/local/bin/youki"

[registry]
[[registry.hosts]]
host = "127.0.0.1:5000"
insecure = true
`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != "/srv/berth" || c.MaxConcurrentDownloads != 6 || c.ExecRoot != "/run/berth" || c.MaxConcurrentUploads != 5 ||
		c.InitPath != "/opt/tini" || c.Runtimes["youki"] != "/usr/local/bin/youki" {
		t.Fatalf("config %+v", c)
	}
	var reg struct {
		Hosts []struct {
			Host     string
			Insecure bool
		}
	}
	if err := c.DecodeRegistry(&reg); err != nil {
		t.Fatal(err)
	}
	if len(reg.Hosts) != 1 || reg.Hosts[0].Host != "127.0.0.1:5000" || !reg.Hosts[0].Insecure {
		t.Fatalf("registry section %+v", reg)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for name, text := range map[string]string{
		"unknown key":   `rooot = "/x"`,
		"relative root": `root = "var/lib/berth"`,
		"bad toml":      `root = `,
		"zero workers":  `max_concurrent_downloads = 0`,
		// The shim sockets under it would not fit in a sockaddr_un.
		"long exec root": `exec_root = "/run/user/1000/berth/run-time/x"`,
	} {
		if _, err := LoadConfig(writeConfig(t, text)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want invalid argument", name, err)
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("a missing config named on the command line was accepted")
	}
}
