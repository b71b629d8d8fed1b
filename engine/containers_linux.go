package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"

	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
	"berth.dev/shim"
	"berth.dev/snapshot"
)

// Containers is the engine's container service. A container is made from an
// image (a writable snapshot over the image's layers) and run by its own
// berth-shim, which outlives berthd: the service keeps each container's
// record in the metadata database, follows its shim while it runs, applies
// its restart policy, and on start reconnects to the shims of the last run.
// It implements the Docker API's ContainerBackend.
type Containers struct {
	cfg     *Config
	images  *Images
	snaps   snapshot.Snapshotter
	db      *metadata.DB
	events  *Events
	log     *slog.Logger
	volumes VolumeStore
	nets    *Networks
	shimBin string

	// ctx ends when the service closes: it bounds monitors and restarts.
	ctx    context.Context
	cancel context.CancelFunc
	// backlog is the removal work still running after its call returned.
	backlog backlog

	mu     sync.Mutex
	byID   map[string]*ctr
	byName map[string]string // "/name" → id
	execs  map[string]*execProcess
}

// VolumeStore is what containers need of the volume service.
type VolumeStore interface {
	// Acquire marks the volume (created when missing) as used by the
	// container and returns its host path.
	Acquire(ctx context.Context, name, containerID string, anonymous bool) (string, error)
	// Release drops the container's uses; with removeAnonymous its
	// anonymous volumes no other container uses are deleted.
	Release(ctx context.Context, containerID string, removeAnonymous bool) error
	// Populate copies src into the volume on its first use, when empty.
	Populate(ctx context.Context, name, src string) error
}

// ContainersConfig gathers what NewContainers needs.
type ContainersConfig struct {
	Config  *Config
	Images  *Images
	Snaps   snapshot.Snapshotter
	DB      *metadata.DB
	Events  *Events
	Log     *slog.Logger
	Volumes VolumeStore // nil: volumes are refused
	// Networks is the network service; nil leaves a container on a bridge
	// network with a namespace of its own holding only a loopback (tests).
	Networks *Networks
	// Shim is the berth-shim binary ("" finds it in $PATH).
	Shim string
}

// NewContainers returns the container service. Call Recover before serving.
func NewContainers(c ContainersConfig) *Containers {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// What containers and builds make on an image's layers waits until
	// the layers are on disk.
	var snaps snapshot.Snapshotter = durable{c.Snaps, c.Images.unpacker.sync}
	cs := &Containers{
		cfg: c.Config, images: c.Images, snaps: snaps, db: c.DB, events: c.Events, log: log,
		volumes: c.Volumes, nets: c.Networks, shimBin: c.Shim, ctx: ctx, cancel: cancel,
		byID: map[string]*ctr{}, byName: map[string]string{}, execs: map[string]*execProcess{},
	}
	c.Images.SetContainerUse(cs.ImageInUse)
	if c.Networks != nil {
		c.Networks.ctrs = cs
	}
	return cs
}

// Close stops following the shims; the containers keep running. It waits
// for the removals still finishing in the background.
func (c *Containers) Close() {
	c.cancel()
	c.backlog.settle()
}

// backlog tracks work that outlives the call that started it.
type backlog struct {
	mu      sync.Mutex
	next    int
	pending map[int]chan struct{}
}

// add registers a piece of work; the function it returns marks it done.
func (b *backlog) add() func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[int]chan struct{}{}
	}
	b.next++
	n, done := b.next, make(chan struct{})
	b.pending[n] = done
	return func() {
		b.mu.Lock()
		delete(b.pending, n)
		b.mu.Unlock()
		close(done)
	}
}

// settle waits for the work registered before it was called.
func (b *backlog) settle() {
	b.mu.Lock()
	var waits []chan struct{}
	for _, done := range b.pending {
		waits = append(waits, done)
	}
	b.mu.Unlock()
	for _, done := range waits {
		<-done
	}
}

// record is a container as the database keeps it.
type record struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"` // with its leading "/"
	Created time.Time `json:"created"`
	// Image is the image's ID; ImageRef the name it was created from.
	Image    string `json:"image"`
	ImageRef string `json:"imageRef"`
	// Config is the container's configuration merged with the image's;
	// HostConfig as given at create, normalised.
	Config     *container.Config      `json:"config"`
	HostConfig *container.HostConfig  `json:"hostConfig"`
	Mounts     []container.MountPoint `json:"mounts,omitempty"`
	State      state                  `json:"state"`
	// RestartCount counts restarts by the policy since the last start by
	// a user; ManuallyStopped is set by stop and kept until the next
	// start, so unless-stopped knows.
	RestartCount    int  `json:"restartCount,omitempty"`
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	StartedBefore   bool `json:"startedBefore,omitempty"`
	// Runtime is the OCI runtime binary the container runs under.
	Runtime string `json:"runtime"`
	// Networks are the networks the container is connected to, by name:
	// what was asked (aliases, address) and, while it runs, what it got.
	Networks map[string]*network.EndpointSettings `json:"networks,omitempty"`
	// While it runs: its pinned network namespace, the host end of its
	// veth on each network (by network ID) and its published ports.
	NetNS   string            `json:"netns,omitempty"`
	HostIfs map[string]string `json:"hostIfs,omitempty"`
	Ports   network.PortMap   `json:"ports,omitempty"`
}

// state is the container's State of docker inspect.
type state struct {
	Status     container.ContainerState `json:"status"`
	Pid        int                      `json:"pid,omitempty"`
	ExitCode   int                      `json:"exitCode"`
	Error      string                   `json:"error,omitempty"`
	OOMKilled  bool                     `json:"oomKilled,omitempty"`
	StartedAt  time.Time                `json:"startedAt"`
	FinishedAt time.Time                `json:"finishedAt"`
}

// ctr is a container in memory: its record, the client of its shim while
// it runs, and a channel closed at each change of state for waiters.
type ctr struct {
	mu      sync.Mutex
	rec     record
	shim    *shim.Client
	changed chan struct{}
	// starting is set while Start runs, so that a concurrent start or
	// remove waits (op serialises lifecycle operations).
	op sync.Mutex
	// restartTimer is the pending restart of the policy, if any.
	restartTimer *time.Timer
	removed      bool
	// attachers wait for the next start to attach.
	attachers []attacher
	// deleting is closed when the runtime's delete of the last run ends.
	deleting chan struct{}
}

// notify wakes the waiters. The caller holds c.mu.
func (x *ctr) notify() {
	close(x.changed)
	x.changed = make(chan struct{})
}

func (c *Containers) dir(id string) string    { return filepath.Join(c.cfg.ExecRoot, "containers", id) }
func (c *Containers) bundle(id string) string { return filepath.Join(c.dir(id), "bundle") }
func (c *Containers) rootfs(id string) string { return filepath.Join(c.bundle(id), "rootfs") }

// shimDir holds the shim's socket, pid and exit files. Its path is short
// (the run-time root, "s", the ID) because the sockets in it must fit a
// sockaddr_un's 108 bytes: MaxExecRootLen bounds the run-time root.
func (c *Containers) shimDir(id string) string { return filepath.Join(c.cfg.ExecRoot, "s", id) }
func (c *Containers) dataDir(id string) string {
	return filepath.Join(c.cfg.Root, "containers", id)
}
func (c *Containers) logPath(id string) string {
	return filepath.Join(c.dataDir(id), id+"-json.log")
}
func (c *Containers) runtimeRoot() string { return filepath.Join(c.cfg.ExecRoot, "runtime") }
func snapshotKey(id string) string        { return "container-" + id }

// save writes the record to the database. The caller holds x.mu.
func (c *Containers) save(ctx context.Context, rec *record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return c.db.Update(context.WithoutCancel(ctx), func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketContainers).Put([]byte(rec.ID), data)
	})
}

// find resolves a container by full ID, name (with or without "/") or
// unique ID prefix, as dockerd does.
func (c *Containers) find(name string) (*ctr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "" {
		return nil, fmt.Errorf("%w: No such container: %s", errdefs.ErrNotFound, name)
	}
	if x, ok := c.byID[name]; ok {
		return x, nil
	}
	n := name
	if !strings.HasPrefix(n, "/") {
		n = "/" + n
	}
	if id, ok := c.byName[n]; ok {
		return c.byID[id], nil
	}
	var found *ctr
	for id, x := range c.byID {
		if strings.HasPrefix(id, name) {
			if found != nil {
				return nil, fmt.Errorf("%w: multiple IDs found with provided prefix: %s", errdefs.ErrInvalidArgument, name)
			}
			found = x
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: No such container: %s", errdefs.ErrNotFound, name)
	}
	return found, nil
}

// all returns every container, newest first.
func (c *Containers) all() []*ctr {
	c.mu.Lock()
	out := make([]*ctr, 0, len(c.byID))
	for _, x := range c.byID {
		out = append(out, x)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b *ctr) int { return b.rec.Created.Compare(a.rec.Created) })
	return out
}

// snapshotRecord returns a copy of the record, safe to read.
func (x *ctr) snapshotRecord() record {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.copyRecord()
}

// copyRecord is snapshotRecord for a caller holding x.mu.
func (x *ctr) copyRecord() record {
	r := x.rec
	if r.Networks != nil {
		r.Networks = make(map[string]*network.EndpointSettings, len(x.rec.Networks))
		for k, es := range x.rec.Networks {
			r.Networks[k] = es.Copy()
		}
	}
	r.HostIfs = maps.Clone(x.rec.HostIfs)
	r.Ports = maps.Clone(x.rec.Ports)
	return r
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// reserveName takes name ("" for a generated one) for id and returns it with
// its leading "/".
func (c *Containers) reserveName(name, id string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "" {
		for i := 0; ; i++ {
			n := "/" + generateName(i > 10)
			if _, taken := c.byName[n]; !taken {
				c.byName[n] = id
				return n, nil
			}
		}
	}
	if !validName.MatchString(name) {
		return "", fmt.Errorf("%w: Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", errdefs.ErrInvalidArgument, name)
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if other, taken := c.byName[name]; taken {
		return "", fmt.Errorf("%w: Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", errdefs.ErrConflict, name, other)
	}
	c.byName[name] = id
	return name, nil
}

func (c *Containers) releaseName(name string) {
	c.mu.Lock()
	delete(c.byName, name)
	c.mu.Unlock()
}

// newID returns a random 64-hex container ID that does not begin with
// digits only (so that a short ID is never read as a number).
func newID() string {
	for {
		var raw [32]byte
		rand.Read(raw[:])
		id := hex.EncodeToString(raw[:])
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

// publish sends a container event with its name and image as attributes.
func (c *Containers) publish(rec *record, action events.Action, extra map[string]string) {
	if c.events == nil {
		return
	}
	attrs := map[string]string{"name": strings.TrimPrefix(rec.Name, "/"), "image": rec.ImageRef}
	if rec.Config != nil {
		for k, v := range rec.Config.Labels {
			attrs[k] = v
		}
	}
	for k, v := range extra {
		attrs[k] = v
	}
	c.events.Publish(events.ContainerEventType, action, rec.ID, attrs)
}

// loadRecords reads every record of the database into memory.
func (c *Containers) loadRecords(ctx context.Context) error {
	return c.db.View(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketContainers).ForEach(func(k, v []byte) error {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				c.log.Warn("container record unreadable; skipped", "id", string(k), "err", err)
				return nil
			}
			if rec.Config == nil || rec.HostConfig == nil {
				c.log.Warn("container record incomplete; skipped", "id", string(k))
				return nil
			}
			c.byID[rec.ID] = &ctr{rec: rec, changed: make(chan struct{})}
			c.byName[rec.Name] = rec.ID
			return nil
		})
	})
}

// removeRecord deletes the container's record.
func (c *Containers) removeRecord(ctx context.Context, id string) error {
	return c.db.Update(context.WithoutCancel(ctx), func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketContainers).Delete([]byte(id))
	})
}

// ImageInUse returns the IDs of the containers made from the image id. It
// first waits for the removals finishing in the background, so that the
// image's layers have no container snapshot left on them when it says
// none.
func (c *Containers) ImageInUse(imageID string) []string {
	c.backlog.settle()
	var ids []string
	for _, x := range c.all() {
		if x.snapshotRecord().Image == imageID {
			ids = append(ids, x.rec.ID)
		}
	}
	return ids
}

// Count returns the numbers of containers: all, running, paused, stopped.
func (c *Containers) Count() (total, running, paused, stopped int) {
	for _, x := range c.all() {
		r := x.snapshotRecord()
		total++
		switch r.State.Status {
		case container.StateRunning, container.StateRestarting:
			running++
		case container.StatePaused:
			paused++
		default:
			stopped++
		}
	}
	return
}

// errNotRunning is docker's error for operations that need a running
// container.
func errNotRunning(id string) error {
	return fmt.Errorf("%w: Container %s is not running", errdefs.ErrConflict, id)
}

// ignoreNotFound drops ErrNotFound.
func ignoreNotFound(err error) error {
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
