package runtime

import (
	"berth.dev/internal/atomicfile"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

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

var idPattern = regexp.MustCompile(`^[\w+\-.]+$`)

// ValidateID rejects ids that could escape the state root or confuse tools.
func ValidateID(id string) error {
	if id == "" || id == "." || id == ".." || !idPattern.MatchString(id) {
		return fmt.Errorf("%w: invalid container id %q: it must match %s", ErrInvalid, id, idPattern)
	}
	return nil
}

// saved is what state.json holds: enough to rebuild a Container in a later
// runtime process.
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
	// Spec is the bundle's config as it was at create: later commands run
	// its hooks and join its namespaces even if the bundle changes.
	Spec *specs.Spec `json:"config"`
	// Paused records a pause so that a frozen container reads as paused
	// even where the freezer state cannot be read back cheaply.
	Paused bool `json:"paused,omitempty"`
	// SharedMountNS: the spec has no mount namespace, so the container's
	// mounts live in the runtime's namespace until delete detaches them,
	// down to the mount RootfsMountID the rootfs was on before.
	SharedMountNS bool   `json:"shared_mount_ns,omitempty"`
	RootfsMountID uint64 `json:"rootfs_mount_id,omitempty"`
}

// rootfsPath is the container's rootfs as an absolute host path.
func (s *saved) rootfsPath() string {
	if filepath.IsAbs(s.Rootfs) {
		return s.Rootfs
	}
	return filepath.Join(s.Bundle, s.Rootfs)
}

func (s *saved) save(dir string) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, stateFile), data, 0o600)
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
	return &s, nil
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
