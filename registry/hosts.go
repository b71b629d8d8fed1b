package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"berth.dev/internal/errdefs"
)

// DockerHub is the domain of Docker Hub in references; its API is served by
// DockerHubAPIHost and its credentials are stored under DockerHubAuthKey.
const (
	DockerHub        = "docker.io"
	DockerHubAPIHost = "registry-1.docker.io"
	DockerHubAuthKey = "https://index.docker.io/v1/"
)

// Config is the [registry] table of /etc/berth/berth.toml:
//
//	[[registry.hosts]]
//	host = "docker.io"
//	mirrors = ["https://mirror.example.com", "127.0.0.1:5001"]
//
//	[[registry.hosts]]
//	host = "registry.lan:5000"
//	insecure = true
type Config struct {
	Hosts []HostConfig `toml:"hosts"`
}

// HostConfig says how to reach one registry host.
type HostConfig struct {
	// Host is the registry's domain as written in references:
	// "docker.io", "quay.io", "127.0.0.1:5000".
	Host string `toml:"host"`
	// Mirrors are tried in order before the host itself when pulling. Each is
	// "host[:port][/path]" or a URL with an http or https scheme; http means
	// plain HTTP. Pushes always go to the host itself.
	Mirrors []string `toml:"mirrors"`
	// Insecure lets the host answer over TLS with a certificate that is not
	// verified, or over plain HTTP when TLS fails (https is tried first, as
	// Docker does). Loopback hosts (localhost, 127.0.0.0/8, ::1) are insecure
	// without saying so.
	Insecure bool `toml:"insecure"`
}

// Hosts is the per-host configuration of registries. The zero value and nil
// are valid: every host is reached directly over verified HTTPS, except
// loopback hosts which are insecure.
type Hosts struct {
	byHost map[string]HostConfig
}

// Endpoint is one place a registry's requests may be sent to.
type Endpoint struct {
	// Host is the host[:port] the requests go to (registry-1.docker.io for
	// docker.io).
	Host string
	// Path is a prefix before /v2/ (only mirrors have one).
	Path string
	// PlainHTTP makes every request use http.
	PlainHTTP bool
	// Insecure skips TLS verification and falls back to plain HTTP when
	// the TLS handshake fails.
	Insecure bool
	// Mirror is set for a mirror of the registry rather than the registry.
	Mirror bool
	// AuthHost is the name credentials are looked up under.
	AuthHost string
}

// NewHosts validates cfgs and returns their Hosts. A host named twice is an
// error.
func NewHosts(cfgs ...HostConfig) (*Hosts, error) {
	h := &Hosts{byHost: make(map[string]HostConfig, len(cfgs))}
	for _, c := range cfgs {
		host, err := normalizeHost(c.Host)
		if err != nil {
			return nil, fmt.Errorf("registry hosts: %w", err)
		}
		if _, dup := h.byHost[host]; dup {
			return nil, fmt.Errorf("%w: registry hosts: host %q configured twice", errdefs.ErrInvalidArgument, c.Host)
		}
		for _, m := range c.Mirrors {
			if _, err := parseMirror(m); err != nil {
				return nil, fmt.Errorf("registry hosts: host %s: %w", c.Host, err)
			}
		}
		c.Host = host
		h.byHost[host] = c
	}
	return h, nil
}

// ParseHosts reads the [registry] table of a berth.toml document. Keys
// outside [registry] are ignored (they belong to the engine); unknown keys
// inside it are an error.
func ParseHosts(data []byte) (*Hosts, error) {
	var doc struct {
		Registry Config `toml:"registry"`
	}
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, fmt.Errorf("%w: registry config: %w", errdefs.ErrInvalidArgument, err)
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "registry" {
			unknown = append(unknown, k.String())
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: registry config: unknown keys %v", errdefs.ErrInvalidArgument, unknown)
	}
	return NewHosts(doc.Registry.Hosts...)
}

// LoadHosts reads the [registry] table of the berth.toml file at path. A
// missing file gives the defaults.
func LoadHosts(path string) (*Hosts, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Hosts{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry config: %w", err)
	}
	h, err := ParseHosts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// Lookup returns the configuration of host, with the defaults filled in:
// loopback hosts are insecure.
func (h *Hosts) Lookup(host string) HostConfig {
	n, err := normalizeHost(host)
	if err != nil {
		n = host
	}
	var c HostConfig
	if h != nil {
		c = h.byHost[n]
	}
	c.Host = n
	if isLoopback(n) {
		c.Insecure = true
	}
	return c
}

// Endpoints returns where requests for the registry host go, in the order
// to try them: for a pull its mirrors first, then the host itself (Docker
// Hub's API host for docker.io); for a push only the host itself.
func (h *Hosts) Endpoints(host string, pull bool) []Endpoint {
	c := h.Lookup(host)
	var eps []Endpoint
	if pull {
		for _, m := range c.Mirrors {
			ep, err := parseMirror(m)
			if err != nil {
				continue // NewHosts rejected these already
			}
			if !ep.PlainHTTP && h.Lookup(ep.Host).Insecure {
				ep.Insecure = true
			}
			eps = append(eps, ep)
		}
	}
	api := c.Host
	if api == DockerHub {
		api = DockerHubAPIHost
	}
	return append(eps, Endpoint{Host: api, Insecure: c.Insecure, AuthHost: c.Host})
}

// normalizeHost lower-cases host and folds Docker Hub's aliases into
// docker.io. It rejects anything that is not host[:port].
func normalizeHost(host string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(host))
	if h == "" || strings.ContainsAny(h, "/ @?#") {
		return "", fmt.Errorf("%w: %q is not a registry host (host[:port])", errdefs.ErrInvalidArgument, host)
	}
	switch h {
	case "index.docker.io", DockerHubAPIHost:
		return DockerHub, nil
	}
	return h, nil
}

// parseMirror reads "host[:port][/path]" or "http(s)://host[:port][/path]".
func parseMirror(m string) (Endpoint, error) {
	s := strings.TrimSpace(m)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Endpoint{}, fmt.Errorf("%w: mirror %q is not [http[s]://]host[:port][/path]", errdefs.ErrInvalidArgument, m)
	}
	host := strings.ToLower(u.Host)
	return Endpoint{
		Host:      host,
		Path:      strings.TrimSuffix(u.Path, "/"),
		PlainHTTP: u.Scheme == "http",
		Mirror:    true,
		AuthHost:  host,
	}, nil
}

// isLoopback reports whether host[:port] names this machine: localhost or a
// loopback address, which Docker treats as insecure by default.
func isLoopback(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}
