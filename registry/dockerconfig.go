package registry

import (
	"berth.dev/internal/atomicfile"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"berth.dev/internal/errdefs"
)

// AuthConfig is what it takes to log in to one registry. Username and
// Password are used for Basic auth and to fetch bearer tokens; an
// IdentityToken (an OAuth refresh token from an earlier login) replaces
// them when fetching tokens; a RegistryToken is sent as the bearer token
// itself.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
	// ServerAddress is the key the credentials are stored under.
	ServerAddress string `json:"serveraddress,omitempty"`
}

// Empty reports whether a carries no credentials at all (anonymous).
func (a AuthConfig) Empty() bool {
	return a.Username == "" && a.Password == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// DockerConfig is a docker CLI config.json: the "auths" map of stored logins
// and the credential helpers ("credsStore", "credHelpers"). Keys it does not
// know are kept as they are when it writes the file back, so the docker CLI
// and berth can share one file.
//
// Logins are stored like the docker CLI stores them: under
// "https://index.docker.io/v1/" for Docker Hub and under the bare host name
// otherwise; {"auth": base64("user:password")} inline, or in the credential
// helper (docker-credential-<name> on $PATH, with an empty entry left in
// "auths") when one is configured for the host.
type DockerConfig struct {
	path        string
	raw         map[string]json.RawMessage
	auths       map[string]json.RawMessage
	credsStore  string
	credHelpers map[string]string
}

// authEntry is one value of "auths".
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// DefaultDockerConfigPath is $DOCKER_CONFIG/config.json, or
// ~/.docker/config.json without it, as the docker CLI uses.
func DefaultDockerConfigPath() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker", "config.json")
}

// LoadDockerConfig reads the config.json at path. A missing file is an empty
// config (it is created by the first Store).
func LoadDockerConfig(path string) (*DockerConfig, error) {
	c := &DockerConfig{path: path, raw: map[string]json.RawMessage{}, auths: map[string]json.RawMessage{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(data, &c.raw); err != nil {
		return nil, fmt.Errorf("%w: docker config %s: %w", errdefs.ErrInvalidArgument, path, err)
	}
	for key, dst := range map[string]any{"auths": &c.auths, "credsStore": &c.credsStore, "credHelpers": &c.credHelpers} {
		if v, ok := c.raw[key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("%w: docker config %s: %q: %w", errdefs.ErrInvalidArgument, path, key, err)
			}
		}
	}
	if c.auths == nil {
		c.auths = map[string]json.RawMessage{}
	}
	return c, nil
}

// String returns a top-level string setting of the file, such as the
// docker CLI's "imagesFormat", or "" when it is absent or not a string.
func (c *DockerConfig) String(key string) string {
	var v string
	if raw, ok := c.raw[key]; ok {
		json.Unmarshal(raw, &v)
	}
	return v
}

// HasHelper reports whether host's credentials live in a credential
// helper rather than in the file.
func (c *DockerConfig) HasHelper(host string) bool { return c.helperFor(host) != "" }

// Path is the file the config is read from and written to.
func (c *DockerConfig) Path() string { return c.path }

// Get returns the credentials stored for a registry host ("docker.io",
// "127.0.0.1:5000"). No stored login is not an error: it gives an empty
// AuthConfig, which means anonymous access.
func (c *DockerConfig) Get(host string) (AuthConfig, error) {
	key := c.findKey(host)
	if helper := c.helperFor(host); helper != "" {
		a, err := helperGet(helper, key)
		if err != nil {
			return AuthConfig{}, fmt.Errorf("credentials for %s: %w", host, err)
		}
		return a, nil
	}
	raw, ok := c.auths[key]
	if !ok {
		return AuthConfig{}, nil
	}
	var e authEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return AuthConfig{}, fmt.Errorf("%w: docker config %s: auths[%q]: %w", errdefs.ErrInvalidArgument, c.path, key, err)
	}
	a := AuthConfig{
		Username:      e.Username,
		Password:      e.Password,
		IdentityToken: e.IdentityToken,
		RegistryToken: e.RegistryToken,
		ServerAddress: key,
	}
	if e.Auth != "" {
		dec, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return AuthConfig{}, fmt.Errorf("%w: docker config %s: auths[%q].auth is not base64: %w", errdefs.ErrInvalidArgument, c.path, key, err)
		}
		user, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return AuthConfig{}, fmt.Errorf("%w: docker config %s: auths[%q].auth is not user:password", errdefs.ErrInvalidArgument, c.path, key)
		}
		a.Username, a.Password = user, pass
	}
	return a, nil
}

// Store saves the credentials for host and writes the file.
func (c *DockerConfig) Store(host string, a AuthConfig) error {
	key := c.findKey(host)
	if helper := c.helperFor(host); helper != "" {
		if err := helperStore(helper, key, a); err != nil {
			return fmt.Errorf("store credentials for %s: %w", host, err)
		}
		c.auths[key] = json.RawMessage("{}")
		return c.save()
	}
	e := authEntry{IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if a.Username != "" || a.Password != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	c.auths[key] = raw
	return c.save()
}

// Erase removes the credentials of host (a logout) and writes the file.
// Erasing credentials that are not there is not an error.
func (c *DockerConfig) Erase(host string) error {
	key := c.findKey(host)
	if helper := c.helperFor(host); helper != "" {
		if err := helperErase(helper, key); err != nil {
			return fmt.Errorf("erase credentials for %s: %w", host, err)
		}
	}
	if _, ok := c.auths[key]; !ok {
		return nil
	}
	delete(c.auths, key)
	return c.save()
}

// storeKey is the key the docker CLI stores host's login under.
func storeKey(host string) string {
	n, err := normalizeHost(host)
	if err != nil {
		return host
	}
	if n == DockerHub {
		return DockerHubAuthKey
	}
	return n
}

// findKey returns the key of host in "auths": the docker CLI's key when
// present, else any key that names the same host with a scheme or a path
// ("https://registry.example.com/v1/"), else the docker CLI's key.
func (c *DockerConfig) findKey(host string) string {
	want := storeKey(host)
	if _, ok := c.auths[want]; ok {
		return want
	}
	for k := range c.auths {
		if storeKey(keyHost(k)) == want {
			return k
		}
	}
	return want
}

// keyHost strips the scheme and path from an "auths" key.
func keyHost(key string) string {
	h := key
	if _, rest, ok := strings.Cut(h, "://"); ok {
		h = rest
	}
	h, _, _ = strings.Cut(h, "/")
	return h
}

// helperFor names the credential helper for host, if any: its entry in
// "credHelpers", else "credsStore".
func (c *DockerConfig) helperFor(host string) string {
	for k, v := range c.credHelpers {
		if storeKey(keyHost(k)) == storeKey(host) {
			return v
		}
	}
	return c.credsStore
}

// save writes the config to a temporary file and renames it into place, so a
// crash never leaves half a file; credentials are private (0600).
func (c *DockerConfig) save() error {
	auths, err := json.Marshal(c.auths)
	if err != nil {
		return err
	}
	c.raw["auths"] = auths
	data, err := json.MarshalIndent(c.raw, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	// Credentials are private: 0600, as the docker CLI writes the file.
	if err := atomicfile.WriteBytes(c.path, append(data, '\n'), 0o600, atomicfile.Durable()); err != nil {
		return fmt.Errorf("docker config: write %s: %w", c.path, err)
	}
	return nil
}

// The credential helper protocol: docker-credential-<name> get|store|erase,
// with the request on stdin and the answer on stdout.

// helperCredentials is the JSON the helpers exchange.
type helperCredentials struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// helperTokenUser is the Username a helper stores an identity token under.
const helperTokenUser = "<token>"

// helperNotFound is the message the protocol defines for "no credentials
// stored" (helpers exit 1 and print it), which is not a failure for us.
const helperNotFound = "credentials not found in native keychain"

func helperGet(helper, serverURL string) (AuthConfig, error) {
	out, err := runHelper(helper, "get", []byte(serverURL))
	if err != nil {
		if strings.Contains(string(out), helperNotFound) {
			return AuthConfig{}, nil
		}
		return AuthConfig{}, err
	}
	var hc helperCredentials
	if err := json.Unmarshal(out, &hc); err != nil {
		return AuthConfig{}, fmt.Errorf("docker-credential-%s get: bad answer: %w", helper, err)
	}
	a := AuthConfig{ServerAddress: serverURL}
	if hc.Username == helperTokenUser {
		a.IdentityToken = hc.Secret
	} else {
		a.Username, a.Password = hc.Username, hc.Secret
	}
	return a, nil
}

func helperStore(helper, serverURL string, a AuthConfig) error {
	hc := helperCredentials{ServerURL: serverURL, Username: a.Username, Secret: a.Password}
	if a.IdentityToken != "" {
		hc.Username, hc.Secret = helperTokenUser, a.IdentityToken
	}
	in, err := json.Marshal(hc)
	if err != nil {
		return err
	}
	_, err = runHelper(helper, "store", in)
	return err
}

func helperErase(helper, serverURL string) error {
	out, err := runHelper(helper, "erase", []byte(serverURL))
	if err != nil && strings.Contains(string(out), helperNotFound) {
		return nil
	}
	return err
}

// runHelper runs docker-credential-<helper> <action> with stdin and returns
// its stdout (its output, on failure, which is where helpers write why).
func runHelper(helper, action string, stdin []byte) ([]byte, error) {
	name := "docker-credential-" + helper
	cmd := exec.Command(name, action)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%w: credential helper %s: %w", errdefs.ErrFailedPrecondition, name, err)
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, action, err, msg)
	}
	return stdout.Bytes(), nil
}
