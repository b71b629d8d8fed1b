package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrInvalid is wrapped by every error that rejects a configuration.
var ErrInvalid = errors.New("invalid config")

// FieldError rejects one field of a configuration. It wraps ErrInvalid and,
// when a host lookup failed (a namespace file that cannot be opened, a root
// directory that does not exist), the error of that lookup.
type FieldError struct {
	// Field is the JSON path of the offending field, such as
	// "linux.namespaces[2].path" or "process.rlimits[0].type".
	Field string
	// Reason says what is wrong with it.
	Reason string
	// Err is the underlying error of a host lookup, or nil.
	Err error
}

func (e *FieldError) Error() string {
	msg := ErrInvalid.Error() + ": " + e.Field + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrInvalid and the lookup error, if any.
func (e *FieldError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, e.Err}
}

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks a configuration for what the runtime-spec forbids and what
// a Linux runtime cannot carry out, and returns a *FieldError for the first
// problem found (nil if there is none).
//
// forCreate says the configuration is about to be used to create a container:
// a process is then required (otherwise it may be absent, but is checked when
// present). The linux section is always required.
//
// Some checks look at the host: root.path must be an existing directory
// (a relative path is taken against the current directory; Load makes it
// absolute), namespace paths must be namespace files of the declared type,
// and new namespaces of each type must be supported by the kernel.
//
// Validate does not check capability names, seccomp profiles or cgroup
// resources; the packages applying them do.
//
// Mount destinations may be relative: the runtime-spec deprecates but allows
// them on Linux, meaning relative to "/".
func Validate(s *specs.Spec, forCreate bool) error {
	if s == nil {
		return invalid("config", "missing")
	}
	checks := []func(*specs.Spec) error{
		checkVersion,
		checkRoot,
		func(s *specs.Spec) error { return checkProcess(s.Process, forCreate) },
		checkMounts,
		checkHooks,
		checkAnnotations,
		checkLinux,
	}
	for _, check := range checks {
		if err := check(s); err != nil {
			return err
		}
	}
	return nil
}

// checkVersion requires a SemVer 2.0.0 ociVersion with major version 1, the
// only major version of the runtime-spec.
func checkVersion(s *specs.Spec) error {
	if s.Version == "" {
		return invalid("ociVersion", "missing")
	}
	core, _, _ := strings.Cut(s.Version, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 || (hasPre && pre == "") {
		return invalid("ociVersion", "%q is not a SemVer version (MAJOR.MINOR.PATCH)", s.Version)
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 64); err != nil {
			return invalid("ociVersion", "%q is not a SemVer version (MAJOR.MINOR.PATCH)", s.Version)
		}
	}
	if parts[0] != "1" {
		return invalid("ociVersion", "%q: only major version 1 is supported", s.Version)
	}
	return nil
}

func checkRoot(s *specs.Spec) error {
	if s.Root == nil {
		return invalid("root", "missing")
	}
	if s.Root.Path == "" {
		return invalid("root.path", "missing")
	}
	fi, err := os.Stat(s.Root.Path)
	if err != nil {
		return &FieldError{Field: "root.path", Reason: "cannot use the root filesystem", Err: err}
	}
	if !fi.IsDir() {
		return invalid("root.path", "%s is not a directory", s.Root.Path)
	}
	return nil
}

// isBind tells whether a mount is a bind mount: the runtime-spec says so for
// "bind" and "rbind" options; type "bind" is accepted too, as other
// runtimes and engines write it.
func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func hasOption(m specs.Mount, names ...string) bool {
	for _, o := range m.Options {
		for _, n := range names {
			if o == n {
				return true
			}
		}
	}
	return false
}

func checkMounts(s *specs.Spec) error {
	for i, m := range s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if err := checkMount(s, field, m); err != nil {
			return err
		}
	}
	return nil
}

func checkMount(s *specs.Spec, field string, m specs.Mount) error {
	if m.Destination == "" {
		return invalid(field+".destination", "missing")
	}
	for _, f := range [...]struct{ name, value string }{
		{"destination", m.Destination}, {"source", m.Source}, {"type", m.Type},
	} {
		if strings.IndexByte(f.value, 0) >= 0 {
			return invalid(field+"."+f.name, "contains a NUL byte")
		}
	}
	bind := isBind(m)
	if bind && m.Source == "" {
		return invalid(field+".source", "a bind mount needs a source")
	}
	if !bind && m.Type == "" {
		return invalid(field+".type", "missing (only bind mounts may omit it)")
	}
	return checkMountIDMap(s, field, m, bind)
}

// checkMountIDMap checks id-mapped mounts: the kernel id-maps bind mounts
// only, and the mappings come either from the mount or from the container's
// user namespace.
func checkMountIDMap(s *specs.Spec, field string, m specs.Mount, bind bool) error {
	hasMaps := m.UIDMappings != nil || m.GIDMappings != nil
	if !hasMaps && !hasOption(m, "idmap", "ridmap") {
		return nil
	}
	if !bind {
		return invalid(field, "id-mapped mounts must be bind mounts")
	}
	if hasMaps && (len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0) {
		return invalid(field, "uidMappings and gidMappings must be given together")
	}
	if !hasMaps && (s.Linux == nil || !hasNamespace(s, specs.UserNamespace)) {
		return invalid(field+".options", "idmap without mappings needs a user namespace to take them from")
	}
	if err := checkIDMappings(field+".uidMappings", m.UIDMappings); err != nil {
		return err
	}
	return checkIDMappings(field+".gidMappings", m.GIDMappings)
}

func checkHooks(s *specs.Spec) error {
	if s.Hooks == nil {
		return nil
	}
	//nolint:staticcheck // Prestart is deprecated but still run, so still checked.
	lists := []struct {
		name  string
		hooks []specs.Hook
	}{
		{"prestart", s.Hooks.Prestart},
		{"createRuntime", s.Hooks.CreateRuntime},
		{"createContainer", s.Hooks.CreateContainer},
		{"startContainer", s.Hooks.StartContainer},
		{"poststart", s.Hooks.Poststart},
		{"poststop", s.Hooks.Poststop},
	}
	for _, l := range lists {
		for i, h := range l.hooks {
			field := fmt.Sprintf("hooks.%s[%d]", l.name, i)
			if !filepath.IsAbs(h.Path) {
				return invalid(field+".path", "%q is not an absolute path", h.Path)
			}
			if h.Timeout != nil && *h.Timeout <= 0 {
				return invalid(field+".timeout", "%d must be greater than zero", *h.Timeout)
			}
			if err := checkEnv(field+".env", h.Env); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkAnnotations(s *specs.Spec) error {
	if _, ok := s.Annotations[""]; ok {
		return invalid("annotations", "keys must not be empty")
	}
	return nil
}
