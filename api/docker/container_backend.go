package docker

import (
	"context"
	"io"

	"berth.dev/api/docker/backend"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
)

// ContainerBackend is what the /containers, /exec and /commit routes need
// of the engine. Containers are named by full ID, a unique ID prefix, or
// name (with or without the leading "/"). Errors carry their errdefs
// category: an unknown container or exec is ErrNotFound ("No such
// container: x"), an operation the container's state forbids (start of a
// removed one, exec in a stopped one, remove of a running one without
// force, pause of a paused one) is ErrConflict, a bad argument
// ErrInvalidArgument.
type ContainerBackend interface {
	// Create makes a container from req (image, command, host config) with
	// the given name ("" for a generated one). An unknown image is
	// ErrNotFound ("No such image: x"); a name in use is ErrConflict
	// (`Conflict. The container name "/x" is already in use by container
	// "id". You have to remove (or rename) that container to be able to
	// reuse that name.`). Warnings go in the response.
	Create(ctx context.Context, name string, req container.CreateRequest) (container.CreateResponse, error)
	// Start starts a created or stopped container; starting a running one
	// does nothing (the server answers 304 then: ErrNotModified is not a
	// category, so Start returns (true, nil) for "already running").
	Start(ctx context.Context, name string) (alreadyRunning bool, err error)
	// Stop sends the stop signal, waits the timeout, then SIGKILL; it
	// returns once the container has stopped. A stopped container gives
	// (true, nil): the server answers 304.
	Stop(ctx context.Context, name string, opts backend.StopOptions) (alreadyStopped bool, err error)
	// Restart stops (if running) and starts the container.
	Restart(ctx context.Context, name string, opts backend.StopOptions) error
	// Kill sends signal ("" means SIGKILL; names with or without SIG, or
	// numbers). A container that is not running is ErrConflict
	// ("Container x is not running").
	Kill(ctx context.Context, name string, signal string) error
	// Wait registers a wait for condition ("" means not-running) and
	// returns a channel that receives the result once, or an error at once
	// (unknown container). The channel is closed without a value when ctx
	// ends first.
	Wait(ctx context.Context, name string, condition container.WaitCondition) (<-chan container.WaitResponse, error)
	// Remove deletes a stopped container and everything it used.
	Remove(ctx context.Context, name string, opts backend.ContainerRemoveOptions) error
	// List returns containers newest first (docker ps).
	List(ctx context.Context, opts backend.ContainerListOptions) ([]container.Summary, error)
	// Inspect describes one container; size fills SizeRw and SizeRootFs.
	Inspect(ctx context.Context, name string, size bool) (container.InspectResponse, error)
	// Attach connects the streams to the container until its output ends
	// (it stopped), the client detaches or ctx ends.
	Attach(ctx context.Context, name string, opts backend.AttachOptions) error
	// Resize sets the terminal size of a container that has one.
	Resize(ctx context.Context, name string, height, width uint) error
	// Logs calls fn with the log entries opts selects, oldest first, and
	// with new ones as they come when opts.Follow, until the container
	// stops, fn fails or ctx ends. A container logging with a driver that
	// cannot be read is ErrNotImplemented.
	Logs(ctx context.Context, name string, opts backend.LogsOptions, fn func(backend.LogMessage) error) error
	// Top lists the container's processes (docker top) with ps's
	// arguments psArgs ("-ef" when empty).
	Top(ctx context.Context, name string, psArgs string) (container.TopResponse, error)
	// Stats calls fn with the container's resource usage: once without
	// opts.Stream, else every second until ctx ends or fn fails. Each value
	// carries the previous reading in PreCPUStats; the first has none when
	// streaming or OneShot, and a single answer otherwise waits for a
	// second reading so that it has one.
	Stats(ctx context.Context, name string, opts backend.StatsOptions, fn func(container.StatsResponse) error) error
	// Pause freezes and Unpause thaws every process of the container.
	Pause(ctx context.Context, name string) error
	Unpause(ctx context.Context, name string) error
	// Rename gives the container a new name (ErrConflict if taken).
	Rename(ctx context.Context, name, newName string) error
	// Update changes the resources and restart policy of a container.
	Update(ctx context.Context, name string, cfg container.UpdateConfig) (container.UpdateResponse, error)
	// StatPath describes path inside the container (HEAD .../archive);
	// a path that does not exist is ErrNotFound.
	StatPath(ctx context.Context, name, path string) (container.PathStat, error)
	// ArchivePath returns a tar archive of path inside the container and
	// its stat (GET .../archive). Paths resolve inside the container's
	// root: symlinks and ".." never lead out of it.
	ArchivePath(ctx context.Context, name, path string) (io.ReadCloser, container.PathStat, error)
	// ExtractToPath unpacks the tar archive r into the directory path
	// inside the container (PUT .../archive).
	ExtractToPath(ctx context.Context, name, path string, r io.Reader, opts backend.ArchiveOptions) error
	// Changes lists what changed in the container's filesystem against its
	// image (docker diff).
	Changes(ctx context.Context, name string) ([]container.FilesystemChange, error)
	// Export returns a tar archive of the container's whole filesystem.
	Export(ctx context.Context, name string) (io.ReadCloser, error)
	// Commit makes an image of the container's changes and returns its ID.
	Commit(ctx context.Context, name string, opts backend.CommitOptions) (string, error)
	// Prune removes stopped containers the filters select.
	Prune(ctx context.Context, filters backend.ContainerFilters) (container.PruneReport, error)

	// ExecCreate prepares a process to run in a running container and
	// returns its ID; ErrConflict if the container is not running.
	ExecCreate(ctx context.Context, name string, req container.ExecCreateRequest) (string, error)
	// ExecStart runs the exec with the given streams until it exits (or,
	// with Detach, returns once it started). An exec already started is
	// ErrConflict.
	ExecStart(ctx context.Context, execID string, opts backend.ExecStartOptions) error
	// ExecInspect describes an exec, with its exit code once it exited.
	ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error)
	// ExecResize sets the terminal size of a running exec.
	ExecResize(ctx context.Context, execID string, height, width uint) error
}

// VolumeBackend is what the /volumes routes need of the engine. Only the
// "local" driver exists.
type VolumeBackend interface {
	// Create makes a volume (a generated name when req.Name is empty);
	// creating an existing one with the same driver returns it.
	Create(ctx context.Context, req volume.CreateRequest) (volume.Volume, error)
	List(ctx context.Context, filters backend.VolumeFilters) ([]volume.Volume, error)
	Inspect(ctx context.Context, name string) (volume.Volume, error)
	// Remove deletes a volume; one in use by a container is ErrConflict
	// unless force ("volume is in use - [id]").
	Remove(ctx context.Context, name string, force bool) error
	// Prune removes unused volumes: anonymous ones only unless the filter
	// all=true is given, as docker 23+.
	Prune(ctx context.Context, filters backend.VolumeFilters) (volume.PruneReport, error)
}
