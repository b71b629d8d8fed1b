package config

import (
	"encoding/json"
	"os"
	"path/filepath"
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

func TestSaveKeepsUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	orig := `{
	"auths": {"ghcr.io": {"auth": "Z2g6dG9rZW4=", "email": "me@example.com"}},
	"credHelpers": {"gcr.io": "gcloud"},
	"psFormat": "table {{.ID}}",
	"proxies": {"default": {"httpProxy": "http://proxy:3128"}}
}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.SetCredentials("localhost:5000", Credentials{Username: "user", Password: "secret"})
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	auths := got["auths"].(map[string]any)
	if a := auths["localhost:5000"].(map[string]any)["auth"]; a != "dXNlcjpzZWNyZXQ=" {
		t.Errorf("new auth = %v, want base64 of user:secret", a)
	}
	if e := auths["ghcr.io"].(map[string]any)["email"]; e != "me@example.com" {
		t.Errorf("unknown key in an existing entry lost: %v", auths["ghcr.io"])
	}
	for _, key := range []string{"credHelpers", "psFormat", "proxies"} {
		if got[key] == nil {
			t.Errorf("top-level key %q lost: %s", key, data)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if f.String("psFormat") != "table {{.ID}}" {
		t.Errorf("String(psFormat) = %q", f.String("psFormat"))
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	f, err := Load(dir) // no file yet
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Credentials(IndexServer); ok {
		t.Fatal("empty config has credentials")
	}
	f.SetCredentials(IndexServer, Credentials{Username: "me", Password: "pa:ss"})
	f.SetCredentials("https://registry.example.com/v2/", Credentials{Username: "u", Password: "p"})
	f.SetCredentials("token.example.com", Credentials{Username: "t", IdentityToken: "refresh"})
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	f, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		want Credentials
	}{
		{IndexServer, Credentials{Username: "me", Password: "pa:ss"}},
		// A URL-shaped key answers for its host.
		{"registry.example.com", Credentials{Username: "u", Password: "p"}},
		{"token.example.com", Credentials{Username: "t", IdentityToken: "refresh"}},
	} {
		got, ok := f.Credentials(tc.key)
		if !ok || got != tc.want {
			t.Errorf("Credentials(%q) = %+v, %v; want %+v", tc.key, got, ok, tc.want)
		}
	}
	if !f.RemoveCredentials("registry.example.com") {
		t.Error("RemoveCredentials found nothing under the URL-shaped key")
	}
	if _, ok := f.Credentials("registry.example.com"); ok {
		t.Error("credentials still there after RemoveCredentials")
	}
	if f.RemoveCredentials("registry.example.com") {
		t.Error("second RemoveCredentials reported a removal")
	}
}

func TestLoadRejectsBadJSON(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("Load accepted a broken file")
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
