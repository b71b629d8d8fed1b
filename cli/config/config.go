// Package config reads and writes the docker CLI's configuration file,
// config.json, which berth shares with docker: registry credentials live
// under "auths" keyed by registry ("https://index.docker.io/v1/" for
// Docker Hub), each as {"auth": base64("user:password")}. Keys berth does
// not know are kept as they are when the file is written back.
package config

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"berth.dev/internal/errdefs"
)

// FileName is the name of the configuration file inside its directory.
const FileName = "config.json"

// IndexServer is the key Docker Hub's credentials are stored under.
const IndexServer = "https://index.docker.io/v1/"

// Dir returns the configuration directory: flagValue when set, else
// $DOCKER_CONFIG, else ~/.docker.
func Dir(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".docker")
}

// File is a loaded config.json.
type File struct {
	path string
	// raw holds every top-level key, so that keys berth does not use
	// survive a rewrite.
	raw   map[string]json.RawMessage
	auths map[string]map[string]json.RawMessage
}

// Credentials are a registry login.
type Credentials struct {
	Username string
	Password string
	// IdentityToken, when the registry issued one, replaces the password.
	IdentityToken string
}

// Load reads dir/config.json. A missing file is an empty configuration.
func Load(dir string) (*File, error) {
	f := &File{
		path:  filepath.Join(dir, FileName),
		raw:   map[string]json.RawMessage{},
		auths: map[string]map[string]json.RawMessage{},
	}
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(data, &f.raw); err != nil {
		return nil, fmt.Errorf("load config %s: %w: %w", f.path, errdefs.ErrInvalidArgument, err)
	}
	if a, ok := f.raw["auths"]; ok {
		if err := json.Unmarshal(a, &f.auths); err != nil {
			return nil, fmt.Errorf("load config %s: auths: %w: %w", f.path, errdefs.ErrInvalidArgument, err)
		}
		if f.auths == nil {
			f.auths = map[string]map[string]json.RawMessage{}
		}
	}
	return f, nil
}

// Path is the file's location.
func (f *File) Path() string { return f.path }

// Credentials returns the login stored for a registry key (see
// ServerKey). Entries saved under a URL form of the same host
// ("https://host/v2/") count too.
func (f *File) Credentials(server string) (Credentials, bool) {
	entry, ok := f.auths[server]
	if !ok {
		want := hostOf(server)
		for key, e := range f.auths {
			if hostOf(key) == want {
				entry, ok = e, true
				break
			}
		}
	}
	if !ok {
		return Credentials{}, false
	}
	var c Credentials
	var auth string
	unmarshalString(entry["auth"], &auth)
	unmarshalString(entry["username"], &c.Username)
	unmarshalString(entry["password"], &c.Password)
	unmarshalString(entry["identitytoken"], &c.IdentityToken)
	if auth != "" {
		decoded, err := base64.StdEncoding.DecodeString(auth)
		if err == nil {
			user, pass, found := strings.Cut(string(decoded), ":")
			if found {
				c.Username, c.Password = user, pass
			}
		}
	}
	if c.Username == "" && c.Password == "" && c.IdentityToken == "" {
		return Credentials{}, false
	}
	return c, true
}

func unmarshalString(raw json.RawMessage, into *string) {
	if raw != nil {
		_ = json.Unmarshal(raw, into)
	}
}

// SetCredentials stores a login for server. Like docker, a login with an
// identity token keeps the user name and the token but not the password.
func (f *File) SetCredentials(server string, c Credentials) {
	entry := map[string]json.RawMessage{}
	if c.IdentityToken != "" {
		entry["auth"] = mustJSON(base64.StdEncoding.EncodeToString([]byte(c.Username + ":")))
		entry["identitytoken"] = mustJSON(c.IdentityToken)
	} else {
		entry["auth"] = mustJSON(base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password)))
	}
	f.auths[server] = entry
}

// RemoveCredentials deletes the login for server (and any URL form of the
// same host) and reports whether there was one.
func (f *File) RemoveCredentials(server string) bool {
	removed := false
	want := hostOf(server)
	for key := range f.auths {
		if key == server || hostOf(key) == want {
			delete(f.auths, key)
			removed = true
		}
	}
	return removed
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only strings are marshalled here
	}
	return b
}

// Save writes the file atomically (temporary file, fsync, rename) with
// mode 0600, creating its directory when needed.
func (f *File) Save() error {
	auths, err := json.Marshal(f.auths)
	if err != nil {
		return err
	}
	f.raw["auths"] = auths
	data, err := json.MarshalIndent(f.raw, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, FileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// ServerKey returns the key a registry's credentials are stored under:
// IndexServer for Docker Hub (docker.io, index.docker.io,
// registry-1.docker.io), the bare host[:port] for any other registry.
func ServerKey(registry string) string {
	h := hostOf(registry)
	switch h {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return IndexServer
	}
	return h
}

// hostOf strips a scheme and a path: "https://host:5000/v2/" → "host:5000".
func hostOf(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	return s
}

// String returns a top-level string setting such as "imagesFormat", or
// "" when it is absent.
func (f *File) String(key string) string {
	var s string
	unmarshalString(f.raw[key], &s)
	return s
}
