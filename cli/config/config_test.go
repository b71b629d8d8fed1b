package config

import (
	"testing"
)

func TestServerKey(t *testing.T) {
	for in, want := range map[string]string{
		"":                            IndexServer,
		"docker.io":                   IndexServer,
		"index.docker.io":             IndexServer,
		"registry-1.docker.io":        IndexServer,
		"https://index.docker.io/v1/": IndexServer,
		"localhost:5000":              "localhost:5000",
		"https://localhost:5000/v2/":  "localhost:5000",
		"ghcr.io":                     "ghcr.io",
	} {
		if got := ServerKey(in); got != want {
			t.Errorf("ServerKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDir(t *testing.T) {
	env := map[string]string{"HOME": "/home/me"}
	getenv := func(k string) string { return env[k] }
	if d := Dir("", getenv); d != "/home/me/.docker" {
		t.Errorf("default = %q", d)
	}
	env["DOCKER_CONFIG"] = "/etc/dc"
	if d := Dir("", getenv); d != "/etc/dc" {
		t.Errorf("DOCKER_CONFIG = %q", d)
	}
	if d := Dir("/flag", getenv); d != "/flag" {
		t.Errorf("flag = %q", d)
	}
}
