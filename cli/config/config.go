// Package config locates the docker CLI's configuration, which berth shares
// with docker: the directory of config.json and the keys registry logins
// are stored under. Reading and writing the file (logins, credential
// helpers, other settings kept as they are) is registry.DockerConfig's.
package config

import (
	"os"
	"path/filepath"
	"strings"
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
