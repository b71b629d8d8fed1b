package ocispec

import (
	"path"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// userMounts are the mounts the options ask for, each checked: binds and
// volumes, --tmpfs, the engine's hosts/resolv.conf/hostname files and the
// --init binary.
func userMounts(o RunOptions) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range o.Mounts {
		bm, err := bindMount(m)
		if err != nil {
			return nil, err
		}
		out = append(out, bm)
	}
	dests := make([]string, 0, len(o.Tmpfs))
	for d := range o.Tmpfs {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		if !path.IsAbs(d) {
			return nil, invalidf("invalid tmpfs mount point %q: it must be an absolute path", d)
		}
		out = append(out, specs.Mount{Destination: path.Clean(d), Type: "tmpfs", Source: "tmpfs",
			Options: tmpfsOptions(o.Tmpfs[d])})
	}
	// The engine's files are writable unless the whole rootfs is read-only,
	// as in docker.
	files := []struct{ src, dst string }{
		{o.ResolvConfPath, "/etc/resolv.conf"},
		{o.HostnamePath, "/etc/hostname"},
		{o.HostsPath, "/etc/hosts"},
	}
	for _, f := range files {
		if f.src == "" || hasDestination(out, f.dst) {
			continue
		}
		opts := []string{"rbind", "rprivate"}
		if o.ReadOnly {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}
	if o.Init {
		if o.InitPath == "" || !path.IsAbs(o.InitPath) {
			return nil, invalidf("--init needs the absolute host path of an init binary, got %q", o.InitPath)
		}
		out = append(out, specs.Mount{Destination: InitDestination, Type: "bind", Source: o.InitPath,
			Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	return out, nil
}

func hasDestination(ms []specs.Mount, dst string) bool {
	return slices.ContainsFunc(ms, func(m specs.Mount) bool { return m.Destination == dst })
}

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

func bindMount(m Mount) (specs.Mount, error) {
	if !path.IsAbs(m.Source) {
		return specs.Mount{}, invalidf("mount source %q is not an absolute host path", m.Source)
	}
	if !path.IsAbs(m.Destination) || path.Clean(m.Destination) == "/" {
		return specs.Mount{}, invalidf("invalid mount destination %q: it must be an absolute path other than /", m.Destination)
	}
	prop := m.Propagation
	if prop == "" {
		prop = "rprivate"
	}
	if !slices.Contains(propagations, prop) {
		return specs.Mount{}, invalidf("invalid mount propagation %q", m.Propagation)
	}
	opts := []string{"rbind", prop}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	opts = append(opts, m.Options...)
	return specs.Mount{Destination: path.Clean(m.Destination), Type: "bind", Source: m.Source, Options: opts}, nil
}

// tmpfsOptions are docker's noexec, nosuid and nodev, unless the user's
// comma-separated options say exec, suid or dev, followed by the user's.
func tmpfsOptions(user string) []string {
	var given []string
	if user != "" {
		given = strings.Split(user, ",")
	}
	var out []string
	for _, d := range [...][2]string{{"noexec", "exec"}, {"nosuid", "suid"}, {"nodev", "dev"}} {
		if !slices.Contains(given, d[0]) && !slices.Contains(given, d[1]) {
			out = append(out, d[0])
		}
	}
	return append(out, given...)
}

// mergeMounts puts the user's mounts over the defaults: a user mount
// replaces a default at the same destination, and a user mount of /dev
// drops the defaults under /dev. The defaults keep their order and the
// user's follow, ordered so that a mount comes after the mounts of its
// parent directories.
func mergeMounts(defaults, user []specs.Mount) []specs.Mount {
	var out []specs.Mount
	for _, d := range defaults {
		covered := slices.ContainsFunc(user, func(u specs.Mount) bool {
			return u.Destination == d.Destination || (u.Destination == "/dev" && strings.HasPrefix(d.Destination, "/dev/"))
		})
		if !covered {
			out = append(out, d)
		}
	}
	user = slices.Clone(user)
	sort.SliceStable(user, func(i, j int) bool { return depth(user[i].Destination) < depth(user[j].Destination) })
	return append(out, user...)
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(path.Clean(p), "/")
}

// rootfsPropagation is the propagation the rootfs needs for the mounts'
// own: a shared bind needs a shared rootfs, a slave one at least a slave.
func rootfsPropagation(ms []specs.Mount) string {
	prop := ""
	for _, m := range ms {
		for _, o := range m.Options {
			switch o {
			case "shared", "rshared":
				prop = "rshared"
			case "slave", "rslave":
				if prop == "" {
					prop = "rslave"
				}
			}
		}
	}
	return prop
}
