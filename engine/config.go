package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"berth.dev/internal/errdefs"
)

// DefaultConfigPath is where berthd reads its configuration.
const DefaultConfigPath = "/etc/berth/berth.toml"

// Config is berthd's configuration, read from /etc/berth/berth.toml. Every
// field has a default, so a missing file means "all defaults".
//
//	root = "/var/lib/berth"         # images, snapshots, containers, volumes, metadata.db
//	exec_root = "/run/berth"        # the API socket, bundles, the runtime's state
//	host = "unix:///run/berth/berth.sock"
//	runtime = "berth-runtime"       # default OCI runtime: a name in PATH or a path
//	max_concurrent_downloads = 3
//	max_concurrent_uploads = 5
//
//	[registry]                      # see package registry: mirrors and insecure hosts
type Config struct {
	Root                   string `toml:"root"`
	ExecRoot               string `toml:"exec_root"`
	Host                   string `toml:"host"`
	Runtime                string `toml:"runtime"`
	MaxConcurrentDownloads int    `toml:"max_concurrent_downloads"`
	MaxConcurrentUploads   int    `toml:"max_concurrent_uploads"`
	// Runtimes names further OCI runtimes for --runtime: name → binary.
	Runtimes map[string]string `toml:"runtimes"`
	// InitPath is the init binary of --init (docker-init or tini).
	InitPath string `toml:"init_path"`

	// Network is the [network] table: the default bridge and the names
	// berth gives to what it makes on the host.
	Network NetworkConfig `toml:"network"`

	// Registry is the [registry] table, decoded by the registry package.
	Registry toml.Primitive `toml:"registry"`
	// meta decodes Registry.
	meta toml.MetaData
}

// DefaultConfig returns the configuration berthd uses without a file.
func DefaultConfig() *Config {
	return &Config{
		Root:                   "/var/lib/berth",
		ExecRoot:               "/run/berth",
		Host:                   "unix:///run/berth/berth.sock",
		Runtime:                "berth-runtime",
		MaxConcurrentDownloads: 3,
		MaxConcurrentUploads:   5,
		InitPath:               defaultInitPath(),
		Network:                NetworkConfig{Bridge: "berth0", Table: "berth", LinkPrefix: "bth"},
	}
}

// NetworkConfig is the [network] table of berth.toml:
//
//	[network]
//	bridge = "berth0"           # the default bridge network's link
//	subnet = ""                 # its subnet ("172.17.0.0/16", or "172.17.0.1/16" to name the
//	                            # gateway too); "" picks the first free one of docker's pools,
//	                            # once: the choice is kept with the network
//	mtu = 1500
//	nftables_table = "berth"    # berth's own nftables table (family inet)
//	link_prefix = "bth"         # user networks' bridges are <prefix>-<id>, veths <prefix>v<id>
type NetworkConfig struct {
	Bridge     string `toml:"bridge"`
	Subnet     string `toml:"subnet"`
	MTU        int    `toml:"mtu"`
	Table      string `toml:"nftables_table"`
	LinkPrefix string `toml:"link_prefix"`
}

// LoadConfig reads path over the defaults. A missing file is not an error
// when path is the default one; unknown keys are, so that a typo does not
// pass unnoticed.
func LoadConfig(path string) (*Config, error) {
	c := DefaultConfig()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && path == DefaultConfigPath {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, fmt.Errorf("%w: config %s: %w", errdefs.ErrInvalidArgument, path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		var unknown []string
		for _, k := range undecoded {
			if len(k) > 0 && k[0] == "registry" {
				continue // the registry package's part
			}
			unknown = append(unknown, k.String())
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("%w: config %s: unknown keys %v", errdefs.ErrInvalidArgument, path, unknown)
		}
	}
	c.meta = md
	return c, c.validate()
}

// DecodeRegistry decodes the [registry] table into v (nothing if absent).
func (c *Config) DecodeRegistry(v any) error {
	if !c.meta.IsDefined("registry") {
		return nil
	}
	return c.meta.PrimitiveDecode(c.Registry, v)
}

// MaxExecRootLen is the longest run-time root: a shim's socket is
// <exec_root>/s/<64-hex id>/shim.sock and must fit a sockaddr_un.
const MaxExecRootLen = 107 - len("/s/") - 64 - len("/shim.sock")

// Validate checks the configuration, as LoadConfig does; call it again
// after changing fields (berthd's flags).
func (c *Config) Validate() error { return c.validate() }

func (c *Config) validate() error {
	for name, p := range map[string]string{"root": c.Root, "exec_root": c.ExecRoot} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%w: config: %s must be an absolute path, got %q", errdefs.ErrInvalidArgument, name, p)
		}
	}
	if len(c.ExecRoot) > MaxExecRootLen {
		return fmt.Errorf("%w: config: exec_root %q is too long: the containers' sockets under it must fit in 108 bytes, so it may have at most %d characters", errdefs.ErrInvalidArgument, c.ExecRoot, MaxExecRootLen)
	}
	n := c.Network
	if n.Bridge == "" || len(n.Bridge) > 15 || strings.ContainsAny(n.Bridge, "/ :") {
		return fmt.Errorf("%w: config: [network] bridge %q is not a valid link name (1 to 15 characters)", errdefs.ErrInvalidArgument, n.Bridge)
	}
	if n.LinkPrefix == "" || len(n.LinkPrefix) > 6 || strings.ContainsAny(n.LinkPrefix, "/ :") {
		return fmt.Errorf("%w: config: [network] link_prefix %q must have 1 to 6 characters", errdefs.ErrInvalidArgument, n.LinkPrefix)
	}
	if n.Table == "" {
		return fmt.Errorf("%w: config: [network] nftables_table is empty", errdefs.ErrInvalidArgument)
	}
	if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
		return fmt.Errorf("%w: config: [network] mtu %d is out of range", errdefs.ErrInvalidArgument, n.MTU)
	}
	if c.MaxConcurrentDownloads < 1 || c.MaxConcurrentUploads < 1 {
		return fmt.Errorf("%w: config: max_concurrent_downloads and max_concurrent_uploads must be at least 1", errdefs.ErrInvalidArgument)
	}
	return nil
}

// Paths under the roots.
func (c *Config) ContentDir() string   { return filepath.Join(c.Root, "content") }
func (c *Config) SnapshotDir() string  { return filepath.Join(c.Root, "snapshots") }
func (c *Config) MetadataPath() string { return filepath.Join(c.Root, "metadata.db") }

// defaultInitPath is the first init for --init found on the host.
func defaultInitPath() string {
	for _, p := range []string{"/usr/bin/docker-init", "/usr/bin/tini", "/usr/libexec/docker/docker-init", "/usr/local/bin/tini"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
