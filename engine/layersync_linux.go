package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"berth.dev/internal/errdefs"
	"berth.dev/snapshot"
)

// labelUnsynced marks a layer snapshot whose files may not be on disk yet:
// its value is the boot ID of the system that committed it.
const labelUnsynced = "berth.dev/unsynced"

// layerSyncer makes unpacked layers durable after their unpack returns
// instead of within it. A layer is committed with labelUnsynced; the
// syncer then runs one syncfs for every layer committed since its last
// one and removes their labels, parents first. A syncfs of a 128 MB layer
// takes 0.1 s or more: a pull no longer waits for it, and several layers
// share one.
//
// Nothing may be built on a layer before it is durable: the snapshotter
// the engine's containers and builds use (durable) waits for the parent's
// sync in Prepare and View. What a crash leaves is repaired at the next
// start (recover): a layer marked by this boot is only synced (the kernel
// still has its files), one marked by an earlier boot (the machine went
// down before the sync) may have lost data and is removed, to be unpacked
// again from its blob (Images.Recover).
type layerSyncer struct {
	snaps snapshot.Snapshotter
	// dir is on the snapshots' filesystem: what syncfs syncs.
	dir    string
	bootID string
	log    *slog.Logger

	mu sync.Mutex
	// pending has a wait for each layer not yet durable; queue holds
	// them in commit order, for the next syncfs.
	pending map[string]*syncWait
	queue   []string
	armed   bool // a delayed poke is on its way
	kick    chan struct{}
	quit    chan struct{}
	stopped chan struct{}
	started bool
}

// syncWait is closed once its layer is durable, or its sync failed (err).
type syncWait struct {
	done chan struct{}
	err  error
}

// newLayerSyncer returns a syncer of the snapshots on dir's filesystem.
// Start runs it.
func newLayerSyncer(snaps snapshot.Snapshotter, dir string, log *slog.Logger) *layerSyncer {
	return &layerSyncer{
		snaps: snaps, dir: dir, bootID: bootID(), log: log,
		pending: map[string]*syncWait{},
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// bootID identifies this boot of the system ("" where it cannot be read).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// deferred reports whether layers can be synced later: the boot ID tells
// a crash of berthd from one of the machine. Without it every layer is
// synced before it is committed.
func (s *layerSyncer) deferred() bool { return s != nil && s.bootID != "" }

func (s *layerSyncer) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		go s.run()
	}
}

// syncDelay is how long a committed layer may wait for its sync when
// nothing asks for it sooner (poke, wait).
const syncDelay = time.Second

// add queues a layer committed with labelUnsynced for the next syncfs,
// which runs when the operation that unpacked it ends (poke), when
// something is to be built on it (wait), or syncDelay later: its writing
// out then does not compete with the rest of that operation (the image
// name's record, the next layers).
func (s *layerSyncer) add(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[name] == nil {
		s.pending[name] = &syncWait{done: make(chan struct{})}
		s.queue = append(s.queue, name)
	}
	if !s.armed {
		s.armed = true
		time.AfterFunc(syncDelay, s.poke)
	}
}

// poke has what is queued synced now.
func (s *layerSyncer) poke() {
	if s == nil {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// wait returns once the layer name is durable: at once for a layer that
// is not waiting for a sync, else after its sync (or with its error).
func (s *layerSyncer) wait(ctx context.Context, name string) error {
	if s == nil || name == "" {
		return nil
	}
	s.mu.Lock()
	w := s.pending[name]
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	s.poke()
	select {
	case <-w.done:
		if w.err != nil {
			return fmt.Errorf("layer %s: %w", name, w.err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *layerSyncer) run() {
	defer close(s.stopped)
	for {
		select {
		case <-s.kick:
			s.flush()
		case <-s.quit:
			s.flush()
			return
		}
	}
}

// close makes what is pending durable (one attempt) and stops the syncer.
func (s *layerSyncer) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	started := s.started
	s.started = true // no start after close
	s.mu.Unlock()
	select {
	case <-s.quit:
		return
	default:
	}
	close(s.quit)
	if started {
		<-s.stopped
	} else {
		s.flush()
	}
}

// flush syncs the filesystem once for every queued layer and marks them
// durable in commit order; a layer that fails is queued again (with those
// after it) and retried a second later.
func (s *layerSyncer) flush() {
	s.mu.Lock()
	batch := s.queue
	s.queue = nil
	s.armed = false
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx := context.Background()
	err := syncDir(s.dir)
	done := 0
	if err == nil {
		for _, name := range batch {
			if err = clearUnsynced(ctx, s.snaps, name); err != nil {
				err = fmt.Errorf("mark synced: %w", err)
				break
			}
			done++
		}
	}
	s.mu.Lock()
	var finished []*syncWait
	for i, name := range batch {
		w := s.pending[name]
		if i < done {
			delete(s.pending, name)
		} else {
			s.pending[name] = &syncWait{done: make(chan struct{})}
			w.err = err
		}
		finished = append(finished, w)
	}
	if err != nil {
		s.queue = append(batch[done:len(batch):len(batch)], s.queue...)
	}
	s.mu.Unlock()
	for _, w := range finished {
		close(w.done)
	}
	if err != nil {
		s.log.Error("layers are not on disk yet; retrying", "layers", len(batch)-done, "err", err)
		time.AfterFunc(time.Second, s.poke)
		return
	}
	// A committed layer's usage is measured once: now, rather than when
	// it is first listed.
	for _, name := range batch {
		s.snaps.Usage(ctx, name)
	}
}

// clearUnsynced removes a layer's mark; a layer removed meanwhile needs
// none.
func clearUnsynced(ctx context.Context, snaps snapshot.Snapshotter, name string) error {
	_, err := snaps.Update(ctx, snapshot.Info{Name: name}, "labels."+labelUnsynced)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// recoverUnsynced deals with the layers an earlier engine committed but
// did not see synced (see layerSyncer). It returns the layers it removed.
func (s *layerSyncer) recoverUnsynced(ctx context.Context) (removed []string, err error) {
	var all []snapshot.Info
	if err := s.snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		all = append(all, info)
		return nil
	}); err != nil {
		return nil, err
	}
	children := map[string][]snapshot.Info{}
	var thisBoot, earlier []snapshot.Info
	for _, info := range all {
		children[info.Parent] = append(children[info.Parent], info)
		if info.Kind != snapshot.Committed || info.Labels[labelUnsynced] == "" {
			continue
		}
		if info.Labels[labelUnsynced] == s.bootID {
			thisBoot = append(thisBoot, info)
		} else {
			earlier = append(earlier, info)
		}
	}
	if len(thisBoot) > 0 {
		// berthd stopped before its sync; the kernel has the files.
		if err := syncDir(s.dir); err != nil {
			return nil, err
		}
		for _, info := range thisBoot {
			if err := clearUnsynced(ctx, s.snaps, info.Name); err != nil {
				return nil, err
			}
		}
	}
	gone := map[string]bool{}
	for _, info := range earlier {
		if gone[info.Name] {
			continue
		}
		// The layer and the layers on it (all unpacked after it, so no
		// more durable) go; anything else built on it (a container) was
		// made after the layer's sync and keeps it.
		var subtree []string
		var keeper string
		var walk func(name string)
		walk = func(name string) {
			for _, c := range children[name] {
				if c.Kind != snapshot.Committed || c.Labels[labelDiffID] == "" {
					keeper = c.Name
					return
				}
				walk(c.Name)
			}
			subtree = append(subtree, name) // children first
		}
		walk(info.Name)
		if keeper != "" {
			s.log.Error("layer may be damaged: the system went down before it was on disk, but other snapshots are built on it",
				"layer", info.Name, "snapshot", keeper)
			continue
		}
		for _, name := range subtree {
			if gone[name] {
				continue
			}
			if err := s.snaps.Remove(ctx, name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return removed, fmt.Errorf("remove layer %s, not on disk when the system went down: %w", name, err)
			}
			gone[name] = true
			removed = append(removed, name)
			s.log.Warn("removed a layer that was not on disk when the system went down; it is unpacked again from its blob", "layer", name)
		}
	}
	return removed, nil
}

// durable is the Snapshotter for what is built on layers (containers,
// builds): Prepare and View wait until the parent layer is durable.
type durable struct {
	snapshot.Snapshotter
	sync *layerSyncer
}

func (d durable) Prepare(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]snapshot.Mount, error) {
	if err := d.sync.wait(ctx, parent); err != nil {
		return nil, fmt.Errorf("prepare snapshot: %w", err)
	}
	return d.Snapshotter.Prepare(ctx, key, parent, opts...)
}

func (d durable) View(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]snapshot.Mount, error) {
	if err := d.sync.wait(ctx, parent); err != nil {
		return nil, fmt.Errorf("view snapshot: %w", err)
	}
	return d.Snapshotter.View(ctx, key, parent, opts...)
}
