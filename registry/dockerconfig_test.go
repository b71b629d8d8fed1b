package registry

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"berth.dev/internal/errdefs"
)

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDockerConfigRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	orig := `{
	"auths": {
		"https://index.docker.io/v1/": {"auth": "aHViOmh1YnBhc3M="},
		"https://legacy.example.com/v1/": {"auth": "bGVnYWN5OnB3", "email": "a@b.c"}
	},
	"psFormat": "table {{.ID}}",
	"proxies": {"default": {"httpProxy": "http://proxy:3128"}}
}`
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host       string
		user, pass string
	}{
		{"docker.io", "hub", "hubpass"},
		{"index.docker.io", "hub", "hubpass"},
		{"legacy.example.com", "legacy", "pw"},
		{"unknown.example.com", "", ""},
	} {
		a, err := c.Get(tc.host)
		if err != nil || a.Username != tc.user || a.Password != tc.pass {
			t.Fatalf("Get(%s): %+v, %v; want %s/%s", tc.host, a, err, tc.user, tc.pass)
		}
	}

	if err := c.Store("127.0.0.1:5000", AuthConfig{Username: "bob", Password: "pw:with:colons"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Store("docker.io", AuthConfig{IdentityToken: "idtok"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Erase("legacy.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Erase("never.stored.example.com"); err != nil {
		t.Fatalf("Erase of nothing: %v", err)
	}

	m := readJSON(t, path)
	if m["psFormat"] != "table {{.ID}}" || !reflect.DeepEqual(m["proxies"], map[string]any{"default": map[string]any{"httpProxy": "http://proxy:3128"}}) {
		t.Fatalf("unknown keys lost: %v", m)
	}
	auths := m["auths"].(map[string]any)
	want := map[string]any{
		"https://index.docker.io/v1/": map[string]any{"identitytoken": "idtok"},
		"127.0.0.1:5000":              map[string]any{"auth": "Ym9iOnB3OndpdGg6Y29sb25z"},
	}
	if !reflect.DeepEqual(auths, want) {
		t.Fatalf("auths %v, want %v", auths, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode: %v, %v", fi.Mode(), err)
	}

	// Read back by a new load.
	c2, err := LoadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c2.Get("127.0.0.1:5000"); a.Username != "bob" || a.Password != "pw:with:colons" {
		t.Fatalf("reloaded: %+v", a)
	}
	if a, _ := c2.Get("docker.io"); a.IdentityToken != "idtok" || a.ServerAddress != DockerHubAuthKey {
		t.Fatalf("reloaded hub: %+v", a)
	}
}

func TestDockerConfigMissingAndBad(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadDockerConfig(filepath.Join(dir, "sub", "config.json"))
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if a, err := c.Get("docker.io"); err != nil || !a.Empty() {
		t.Fatalf("Get from an empty config: %+v, %v", a, err)
	}
	if err := c.Store("r.example.com", AuthConfig{Username: "u", Password: "p"}); err != nil {
		t.Fatalf("Store creates the file and its directory: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"auths": {"x": {"auth": "not base64!"}}}`), 0o600)
	c, err = LoadDockerConfig(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("x"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad auth entry: %v", err)
	}
	os.WriteFile(bad, []byte(`{not json`), 0o600)
	if _, err := LoadDockerConfig(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad JSON: %v", err)
	}
}

// fakeHelper is a docker-credential-<name> script that keeps credentials
// in files of its directory, one per server URL, and logs its calls.
const fakeHelper = `#!/bin/sh
dir=$(dirname "$0")
echo "$1" >> "$dir/calls"
case "$1" in
get)
	read -r url
	f="$dir/store-$(echo "$url" | tr -c 'a-zA-Z0-9\n' _)"
	if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
	json=$(cat)
	url=$(echo "$json" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
	echo "$json" > "$dir/store-$(echo "$url" | tr -c 'a-zA-Z0-9\n' _)" ;;
erase)
	read -r url
	rm -f "$dir/store-$(echo "$url" | tr -c 'a-zA-Z0-9\n' _)" ;;
esac
`

func TestCredentialHelper(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(fakeHelper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	path := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(path, []byte(`{"credsStore":"berthtest","credHelpers":{"other.example.com":"missing"},"auths":{}}`), 0o600)
	c, err := LoadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := c.Get("docker.io"); err != nil || !a.Empty() {
		t.Fatalf("Get before store: %+v, %v", a, err)
	}
	if err := c.Store("docker.io", AuthConfig{Username: "hubuser", Password: "hubpw"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Store("reg.example.com", AuthConfig{IdentityToken: "refresh-me"}); err != nil {
		t.Fatal(err)
	}
	if a, err := c.Get("docker.io"); err != nil || a.Username != "hubuser" || a.Password != "hubpw" {
		t.Fatalf("Get docker.io: %+v, %v", a, err)
	}
	if a, err := c.Get("reg.example.com"); err != nil || a.IdentityToken != "refresh-me" || a.Username != "" {
		t.Fatalf("Get identity token: %+v, %v", a, err)
	}
	// The secrets stay in the helper; config.json only lists the hosts.
	auths := readJSON(t, path)["auths"].(map[string]any)
	if !reflect.DeepEqual(auths, map[string]any{DockerHubAuthKey: map[string]any{}, "reg.example.com": map[string]any{}}) {
		t.Fatalf("auths %v", auths)
	}
	if err := c.Erase("docker.io"); err != nil {
		t.Fatal(err)
	}
	if a, err := c.Get("docker.io"); err != nil || !a.Empty() {
		t.Fatalf("Get after erase: %+v, %v", a, err)
	}
	// credHelpers wins over credsStore; a helper that is not installed
	// is an error, not anonymous access.
	if _, err := c.Get("other.example.com"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("missing helper: %v", err)
	}
}
