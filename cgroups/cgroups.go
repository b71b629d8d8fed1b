// Package cgroups places processes in control groups and applies, reads and
// tears down their resource limits. One Manager interface hides the two kernel
// interfaces: the v1 driver (one hierarchy per controller, as on hybrid hosts)
// and the v2 driver (the unified hierarchy). New picks the driver for the host.
//
// The runtime and the engine use only the Manager interface; nothing outside
// this package knows which cgroup version the host runs.
package cgroups

import (
	"context"
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mode is the cgroup layout of a host.
type Mode int

const (
	// Legacy is cgroup v1 only: every controller on its own hierarchy.
	Legacy Mode = iota
	// Hybrid is cgroup v1 controllers plus a cgroup2 mount (usually
	// /sys/fs/cgroup/unified) that carries no controllers.
	Hybrid
	// Unified is cgroup v2 only.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return "unknown"
}

// Errors callers can test for with errors.Is.
var (
	// ErrNotExist: the cgroup does not exist.
	ErrNotExist = errors.New("cgroup does not exist")
	// ErrInvalid: a resource value the kernel would refuse or that makes no
	// sense (negative limits, unknown devices, a limit below current usage).
	ErrInvalid = errors.New("invalid cgroup resource")
	// ErrUnsupported: the host lacks the controller or file a resource needs.
	ErrUnsupported = errors.New("cgroup resource not supported on this host")
)

// FreezerState is the state of a cgroup's freezer.
type FreezerState string

const (
	// Thawed: processes run.
	Thawed FreezerState = "THAWED"
	// Frozen: every process in the cgroup and below is stopped.
	Frozen FreezerState = "FROZEN"
)

// Manager owns one container's cgroup (in v1, one directory per controller
// hierarchy; in v2, one directory).
//
// Lifecycle: a Manager is made with New for a cgroupsPath from the runtime
// spec; Apply creates the cgroup (and any missing parents) and places a
// process in it; Set writes resource limits, and may be called again to
// update them; Freeze, Stats, Pids and Kill work while the cgroup exists;
// Destroy removes it. A Manager can be re-created from the same path and
// options in a later process (the runtime is one process per command), so it
// keeps no state that cannot be recomputed from the path.
//
// What Destroy removes: the cgroup at the path and its sub-cgroups,
// whoever created them; never a parent, not even one Apply created. A
// Manager records nothing (no side files), so it cannot tell a parent it
// made from one that was there; callers that create parents for
// containers (the engine's cgroup parent) remove them themselves.
type Manager interface {
	// Apply creates the cgroup if needed and moves pid into it. pid -1 only
	// creates the cgroup. Missing parents are created too; in v2 the
	// controllers each parent offers are enabled in its
	// cgroup.subtree_control from the root down. If Apply fails it removes
	// the directories it created and leaves pid where it was.
	Apply(pid int) error
	// Set applies resources. A nil resources value is a no-op. Invalid values
	// are reported with ErrInvalid, and resources whose controller the host
	// lacks with ErrUnsupported, before anything is written; a value the
	// kernel refuses is ErrInvalid too, but earlier writes of the same call
	// stay. Zero values of optional integer fields mean "not set", as in
	// runc (except pids.limit, where 0 is a limit).
	Set(r *specs.LinuxResources) error
	// Freeze freezes or thaws every process in the cgroup and waits until the
	// kernel reports the new state (with a bounded wait). If a freeze does
	// not complete in time the cgroup is thawed again and an error returned,
	// so a failed Freeze never leaves processes half frozen.
	Freeze(state FreezerState) error
	// FreezerState reports the current freezer state. A cgroup that is still
	// freezing reports Thawed. Without a freezer (v1 freezer not mounted)
	// it reports Thawed.
	FreezerState() (FreezerState, error)
	// Pids lists the processes in the cgroup and its descendants.
	Pids() ([]int, error)
	// Kill sends sig to every process in the cgroup and its descendants
	// (cgroup.kill on v2 for SIGKILL when available). For SIGKILL on v1 the
	// cgroup is frozen first so that no process can fork away, then thawed.
	// Processes that exit meanwhile are not an error.
	Kill(sig int) error
	// Stats reads resource usage. Controllers that are not available are
	// left zero; a missing cgroup is ErrNotExist.
	Stats() (*Stats, error)
	// OOMKillCount reports how many processes the kernel OOM-killed in the
	// cgroup (v1 memory.oom_control, v2 memory.events oom_kill).
	OOMKillCount() (uint64, error)
	// OOMEvents watches the cgroup for out-of-memory events (v1: an eventfd
	// registered on memory.oom_control; v2: inotify on memory.events, sending
	// when oom_kill grows). The channel holds at most one pending event, so
	// a burst of OOMs may arrive as one value. It is closed when ctx is done
	// or the cgroup is removed.
	OOMEvents(ctx context.Context) (<-chan struct{}, error)
	// Destroy removes the cgroup and its sub-cgroups (deepest first),
	// retrying rmdir for a bounded time while the kernel still reports
	// processes in them. It kills nothing. Parent directories are never
	// removed, even if Apply created them: the Manager keeps no record of
	// what it created. Destroying a cgroup that does not exist is not an
	// error.
	Destroy() error
	// Path returns the cgroup's path for a controller ("" for v2: the one
	// unified path), relative to the hierarchy root, or "" if the controller
	// is not mounted.
	Path(controller string) string
	// Paths maps each mounted controller (v1) or "" (v2) to its absolute
	// directory.
	Paths() map[string]string
}
