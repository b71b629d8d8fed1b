package runtime

import (
	"berth.dev/internal/atomicfile"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	json "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Errors callers can test for with errors.Is.
var (
	ErrNotExist = errors.New("container does not exist")
	ErrExist    = errors.New("container with given ID already exists")
	ErrInvalid  = errors.New("invalid argument")
	// ErrState: the container is in a state the operation does not allow.
	ErrState = errors.New("invalid container state")
)

// Status is a container's state as the runtime specification names it, plus
// "paused".
type Status string

const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped"
)

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// idPattern is what ValidateID accepts, for its error message.
const idPattern = `^[\w+\-.]+$`

// ValidateID rejects ids that could escape the state root or confuse tools:
// an id is letters, digits and "_+-." (idPattern), and not "." or "..".
// Checked by hand, not with regexp: compiling the pattern at start was
// part of every runtime command's cost.
func ValidateID(id string) error {
	ok := id != "" && id != "." && id != ".."
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '+' || c == '-' || c == '.'
	}
	if !ok {
		return fmt.Errorf("%w: invalid container id %q: it must match %s", ErrInvalid, id, idPattern)
	}
	return nil
}

// saved is what state.json holds: enough to rebuild a Container in a later
// runtime process. The config the container was created with is kept
// beside it in its own file (configFile), read only by the commands that
// need more of it than its hooks: start, delete, state and kill read
// state.json alone, which stays small whatever the config holds (a
// seccomp profile is most of an engine's).
type saved struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
	Pid    int    `json:"pid"`
	// StartTime is field 22 of /proc/<pid>/stat: it tells a live init from
	// an unrelated process that reused its pid.
	StartTime   uint64            `json:"start_time"`
	Created     time.Time         `json:"created"`
	CgroupPath  string            `json:"cgroup_path"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Hooks are the config's hooks, for start (poststart) and delete
	// (poststop).
	Hooks *specs.Hooks `json:"hooks,omitempty"`
	// SharedPIDNS: the container has no PID namespace of its own, so the
	// death of its init does not end its other processes.
	SharedPIDNS bool `json:"shared_pid_ns,omitempty"`
	// Paused records a pause so that a frozen container reads as paused
	// even where the freezer state cannot be read back cheaply.
	Paused bool `json:"paused,omitempty"`
	// SharedMountNS: the spec has no mount namespace, so the container's
	// mounts live in the runtime's namespace until delete detaches them,
	// down to the mount RootfsMountID the rootfs was on before.
	SharedMountNS bool   `json:"shared_mount_ns,omitempty"`
	RootfsMountID uint64 `json:"rootfs_mount_id,omitempty"`

	// spec is the config, once read (or given at create).
	spec *specs.Spec
	// legacy: the state file held the config (see legacyState); the next
	// save moves it to its own file.
	legacy bool
}

// legacyState is the config as state files written before it had a file
// of its own held it. It is decoded apart, and only when the file has it:
// encoding/json builds its encoders for a struct's whole type graph at
// first use, and a *specs.Spec field in saved made every start and delete
// pay for the runtime spec's hundred types (0.45 ms), config or not.
type legacyState struct {
	Spec *specs.Spec `json:"config"`
}

// configFile holds the config the container was created with: later
// commands run its hooks and join its namespaces even if the bundle
// changes.
const configFile = "config.json"

// newSaved starts the state of a container created from spec s.
func newSaved(s *specs.Spec) *saved {
	shared := true
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			shared = false
		}
	}
	return &saved{Annotations: s.Annotations, Hooks: s.Hooks, SharedPIDNS: shared, spec: s}
}

// rootfsPath is the container's rootfs as an absolute host path.
func (s *saved) rootfsPath() string {
	if filepath.IsAbs(s.Rootfs) {
		return s.Rootfs
	}
	return filepath.Join(s.Bundle, s.Rootfs)
}

// save writes the state. The config is written too when withSpec is set
// (after an update changed it), before state.json, whose presence says the
// container's files are complete (create writes the config earlier, with
// saveSpec).
func (s *saved) save(dir string, withSpec bool) error {
	if withSpec || s.legacy {
		if err := s.saveSpec(dir); err != nil {
			return err
		}
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, stateFile), data, 0o600)
}

// saveSpec writes the container's config.
func (s *saved) saveSpec(dir string) error {
	data, err := json.Marshal(s.spec)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, configFile), data, 0o600); err != nil {
		return err
	}
	s.legacy = false
	return nil
}

func loadSaved(dir string) (*saved, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var s saved
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, stateFile), err)
	}
	if bytes.Contains(data, []byte(`"config":`)) {
		var l legacyState
		if err := json.Unmarshal(data, &l); err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, stateFile), err)
		}
		if l.Spec != nil {
			from := newSaved(l.Spec)
			s.Hooks, s.SharedPIDNS, s.spec, s.legacy = from.Hooks, from.SharedPIDNS, l.Spec, true
		}
	}
	return &s, nil
}

// loadSpec returns the config, reading it on first use.
func (s *saved) loadSpec(dir string) (*specs.Spec, error) {
	if s.spec != nil {
		return s.spec, nil
	}
	path := filepath.Join(dir, configFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	s.spec = &spec
	return s.spec, nil
}

// State is what `state` prints: the runtime specification's state plus the
// fields runc adds, so tools written for runc can read it.
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      Status            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}
