// Package backend holds the plain values that the Docker API server hands to
// the engine: request options, parsed filters and the progress sink of long
// operations. It imports nothing of the HTTP layer, so the engine implements
// the server's backend interfaces (berth.dev/api/docker) by importing only
// this package and the moby API types.
package backend

import (
	"io"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Progress is one update of a long-running operation (pull, push, load,
// import). The server renders it as one line of Docker's JSON message stream:
//
//	{"status":"Downloading","progressDetail":{"current":1,"total":2},"progress":"[=> ] 1B/2B","id":"3c7febba1a08"}
//
// Status is the text the docker CLI prints ("Pulling fs layer", "Download
// complete", "Digest: sha256:..."). ID names the line the status belongs to:
// the 12-hex short digest of a layer, or the tag on "Pulling from
// library/busybox"; messages without ID are printed on their own line.
// Current and Total, when Total or Current is non-zero, draw a progress bar
// in bytes. Stream is free text printed as-is (load prints
// "Loaded image: busybox:latest\n" this way). Aux is marshalled into the
// message's "aux" field (push ends with {"Tag","Digest","Size"}).
type Progress struct {
	ID      string
	Status  string
	Current int64
	Total   int64
	Stream  string
	Aux     any
}

// ProgressWriter receives the progress of one operation. It is safe for
// concurrent use (layers download in parallel) and each update reaches the
// client before WriteProgress returns. It returns an error once the client is
// gone; the operation's context is cancelled then too, so a backend may
// ignore the error and watch its context instead.
type ProgressWriter interface {
	WriteProgress(p Progress) error
}

// DiscardProgress is a ProgressWriter that drops every update.
type DiscardProgress struct{}

// WriteProgress drops p.
func (DiscardProgress) WriteProgress(Progress) error { return nil }

// ImageFilters are the filters of GET /images/json and POST /images/prune,
// parsed and validated by the server. An empty field does not filter.
type ImageFilters struct {
	// Dangling, when set, keeps only untagged images (true) or only tagged
	// ones (false).
	Dangling *bool
	// Reference keeps images with a name matching any of these patterns
	// ("busybox", "busybox:1.*", "docker.io/library/*").
	Reference []string
	// Label keeps images that have every one of these labels; each is
	// "key" (present) or "key=value".
	Label []string
	// LabelNot drops images having any of these labels (prune's "label!").
	LabelNot []string
	// Before and Since keep images created before/after the named image.
	Before []string
	Since  []string
	// Until keeps images created before this instant (zero: no limit).
	Until time.Time
}

// ImageListOptions are the options of GET /images/json.
type ImageListOptions struct {
	// All includes intermediate images.
	All     bool
	Filters ImageFilters
	// SharedSize asks for Summary.SharedSize (otherwise -1 is fine).
	SharedSize bool
	// Manifests asks for Summary.Manifests.
	Manifests bool
}

// PullOptions are the options of POST /images/create?fromImage=.
type PullOptions struct {
	// Platform is "os[/arch[/variant]]" or empty for the host's platform.
	Platform string
	// Auth is the client's X-Registry-Auth credential (may be empty).
	Auth registry.AuthConfig
}

// PushOptions are the options of POST /images/{name}/push.
type PushOptions struct {
	// Platform selects one platform of a multi-platform image (nil: all).
	Platform *ocispec.Platform
	Auth     registry.AuthConfig
}

// RemoveOptions are the options of DELETE /images/{name}.
type RemoveOptions struct {
	// Force removes the image even when it is tagged in several
	// repositories or used by a stopped container.
	Force bool
	// NoPrune keeps untagged parent images.
	NoPrune bool
}

// ImportOptions are the options of POST /images/create?fromSrc=-.
type ImportOptions struct {
	// Ref is the normalized name to give the image ("" for none).
	Ref string
	// Message is the history comment of the new layer.
	Message string
	// Changes are Dockerfile instructions applied to the config
	// ("ENV A=1", "CMD [\"sh\"]").
	Changes []string
	// Platform is "os[/arch[/variant]]" or empty for the host's platform.
	Platform string
}

// DiskUsageOptions select what GET /system/df computes. No field set means
// everything.
type DiskUsageOptions struct {
	Containers bool
	Images     bool
	Volumes    bool
	BuildCache bool
}

// DiskUsage is the engine's answer to GET /system/df. Nil slices are objects
// that were not asked for.
type DiskUsage struct {
	// LayersSize is the size of all unpacked image layers on disk.
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// ContainerFilters are the filters of GET /containers/json and POST
// /containers/prune, checked by the server (unknown keys and malformed
// values are refused there) and passed as given: key → values. Keys:
// ancestor, before, since, exited, health, id, isolation, label, label!,
// name, network, publish, expose, status, volume, until. Values of one key
// are alternatives (OR); different keys must all match (AND).
type ContainerFilters map[string][]string

// ContainerListOptions are the options of GET /containers/json.
type ContainerListOptions struct {
	// All includes containers that are not running.
	All bool
	// Limit returns only the Limit newest containers (0: no limit); it
	// implies All.
	Limit int
	// Size fills Summary.SizeRw and SizeRootFs.
	Size    bool
	Filters ContainerFilters
}

// ContainerRemoveOptions are the options of DELETE /containers/{id}.
type ContainerRemoveOptions struct {
	// Force kills a running container first.
	Force bool
	// RemoveVolumes removes the container's anonymous volumes.
	RemoveVolumes bool
}

// StopOptions are the options of POST /containers/{id}/stop and /restart.
type StopOptions struct {
	// Signal replaces the container's stop signal when not empty.
	Signal string
	// Timeout is the seconds to wait before SIGKILL: nil means the
	// container's StopTimeout (10 if unset), -1 waits forever.
	Timeout *int
}

// AttachOptions are the streams of an attach (POST
// /containers/{id}/attach), already hijacked by the server. A nil stream is
// not attached. Stdout and Stderr are the same writer, without
// multiplexing, when the container has a terminal.
type AttachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Logs replays the container's log before the live output; Stream
	// attaches to the live streams (one of them at least is set).
	Logs, Stream bool
	// DetachKeys is the detach sequence ("ctrl-p,ctrl-q" when empty); when
	// the client types it the attach ends and the container keeps running.
	DetachKeys string
}

// LogsOptions are the options of GET /containers/{id}/logs.
type LogsOptions struct {
	Stdout, Stderr bool
	// Follow keeps streaming until the container stops or the client goes.
	Follow bool
	// Since and Until bound the entries' times (zero: no bound).
	Since, Until time.Time
	// Tail is the number of last lines to show; -1 means all.
	Tail int
}

// LogMessage is one entry of a container's log.
type LogMessage struct {
	// Stream is "stdout" or "stderr".
	Stream string
	Time   time.Time
	// Line is the output, with its newline when it had one.
	Line []byte
}

// StatsOptions are the options of GET /containers/{id}/stats.
type StatsOptions struct {
	// Stream sends a reading every second until the client goes.
	Stream bool
	// OneShot, without Stream, answers with one reading at once, without
	// a previous one (so no CPU percentage can be computed from it);
	// otherwise the single answer waits for a second reading, as dockerd.
	OneShot bool
}

// ExecStartOptions are the streams of POST /exec/{id}/start, hijacked by
// the server unless Detach. Stdout and Stderr are the same writer when the
// exec has a terminal.
type ExecStartOptions struct {
	Detach         bool
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ConsoleSize is the initial [height, width] of the exec's terminal.
	ConsoleSize *[2]uint
}

// ArchiveOptions are the options of PUT /containers/{id}/archive.
type ArchiveOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID keeps the archive's owners (otherwise files belong to the
	// container's root, as docker cp without -a).
	CopyUIDGID bool
}

// CommitOptions are the options of POST /commit.
type CommitOptions struct {
	// Ref is the normalized name to give the image ("" for none).
	Ref     string
	Comment string
	Author  string
	// Pause freezes the container while its changes are copied.
	Pause bool
	// Changes are Dockerfile instructions applied to the config.
	Changes []string
	// Config, when set, is merged over the container's config (docker
	// commit's request body).
	Config *container.Config
}

// VolumeFilters are the filters of GET /volumes and POST /volumes/prune,
// passed as given like ContainerFilters. Keys: dangling, driver, label,
// label!, name, all (prune).
type VolumeFilters map[string][]string

// NetworkFilters are the filters of GET /networks and POST /networks/prune,
// passed as given like ContainerFilters. Keys: dangling, driver, id, label,
// name, scope, type (list); label and until (prune).
type NetworkFilters map[string][]string

// NetworkInspectOptions are the query parameters of GET /networks/{id}.
type NetworkInspectOptions struct {
	// Verbose asks for the detailed view (swarm services); a local engine
	// answers as without it.
	Verbose bool
	// Scope, when set, must match the network's scope ("local").
	Scope string
}

// BuildOptions are the query parameters of POST /build (docker's classic
// builder, what `DOCKER_BUILDKIT=0 docker build` sends), parsed.
type BuildOptions struct {
	Tags       []string           // t (repeated)
	Dockerfile string             // dockerfile: a path in the context
	BuildArgs  map[string]*string // buildargs (JSON)
	Target     string             // target
	NoCache    bool               // nocache
	Pull       bool               // pull
	Quiet      bool               // q
	Labels     map[string]string  // labels (JSON)
	Network    string             // networkmode
	Platform   string             // platform
	// Remove and ForceRemove (rm, forcerm) are accepted; berth never
	// leaves intermediate containers.
	Remove, ForceRemove bool
}

// BuildCachePruneOptions are the query parameters of POST /build/prune.
type BuildCachePruneOptions struct {
	// All removes every entry (berth's cache has no entries in use once
	// no build runs, so all or not, every entry goes).
	All bool
	// Until, when set, keeps the entries made at or after it (the until
	// filter); LabelFilters are the label and label! filters (entries
	// carry no labels).
	Until        time.Time
	Labels       []string
	LabelsAbsent []string
}
