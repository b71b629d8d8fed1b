package ocispec

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions describe a process started in a running container (docker
// exec): what it changes of the container's own process.
type ExecOptions struct {
	// Cmd is the command and its arguments (required).
	Cmd []string
	// Env is added to the container's environment, replacing variables of
	// the same name.
	Env []string
	// User (-u) replaces the container's user when set, resolved in the
	// container's /etc/passwd and /etc/group.
	User string
	// WorkingDir (-w) replaces the container's working directory.
	WorkingDir string
	// Tty gives the process a terminal.
	Tty bool
	// Privileged grants every capability.
	Privileged bool
}

// ExecProcess returns the process of an exec: the container's process
// base (from its config.json) with o applied. rootfs is the container's
// root filesystem, where a user name is resolved.
func ExecProcess(base *specs.Process, rootfs string, o ExecOptions) (*specs.Process, error) {
	if len(o.Cmd) == 0 || o.Cmd[0] == "" {
		return nil, invalidf("no exec command specified")
	}
	p := *base
	p.Args = slices.Clone(o.Cmd)
	p.Terminal = o.Tty
	p.ConsoleSize = nil
	if o.WorkingDir != "" {
		if !path.IsAbs(o.WorkingDir) {
			return nil, invalidf("the working directory %q is invalid, it needs to be an absolute path", o.WorkingDir)
		}
		p.Cwd = path.Clean(o.WorkingDir)
	}
	home := ""
	if o.User != "" {
		u, err := resolveUser(rootfs, o.User, nil)
		if err != nil {
			return nil, err
		}
		p.User, home = u.user, u.home
	}
	env := slices.Clone(base.Env)
	if home != "" {
		env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") })
		env = append(env, "HOME="+home)
	}
	if o.Tty && !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "TERM=") }) {
		env = append(env, "TERM=xterm")
	}
	for _, kv := range o.Env {
		k, _, hasValue := strings.Cut(kv, "=")
		i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		switch {
		case !hasValue:
		case i >= 0:
			env[i] = kv
		default:
			env = append(env, kv)
		}
	}
	p.Env = env
	if o.Privileged {
		all := readHostFacts().allCaps
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return &p, nil
}
