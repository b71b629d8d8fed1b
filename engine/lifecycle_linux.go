package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"

	"berth.dev/api/docker/backend"
	"berth.dev/cgroups"
	"berth.dev/engine/ocispec"
	"berth.dev/image"
	"berth.dev/internal/errdefs"
	"berth.dev/shim"
	"berth.dev/snapshot"
)

// Start starts a created or stopped container. It returns true, with
// nothing done, for a running one.
func (c *Containers) Start(ctx context.Context, name string) (bool, error) {
	x, err := c.find(name)
	if err != nil {
		return false, err
	}
	x.op.Lock()
	defer x.op.Unlock()
	x.mu.Lock()
	st, removed := x.rec.State.Status, x.removed
	if x.restartTimer != nil {
		x.restartTimer.Stop()
		x.restartTimer = nil
	}
	x.mu.Unlock()
	switch {
	case removed:
		return false, fmt.Errorf("%w: No such container: %s", errdefs.ErrNotFound, name)
	case st == container.StateRunning || st == container.StateRestarting && x.shim != nil:
		return true, nil
	case st == container.StatePaused:
		return false, fmt.Errorf("%w: cannot start a paused container, try unpause instead", errdefs.ErrConflict)
	}
	x.mu.Lock()
	x.rec.ManuallyStopped = false
	x.rec.RestartCount = 0
	autoRemove := x.rec.HostConfig.AutoRemove
	x.mu.Unlock()
	err = c.start(ctx, x)
	if err != nil && autoRemove {
		// As dockerd: a --rm container that cannot start is removed, so
		// that a client waiting for its removal is answered.
		x.op.Unlock()
		if rerr := c.Remove(context.WithoutCancel(ctx), x.rec.ID, backend.ContainerRemoveOptions{RemoveVolumes: true}); rerr != nil {
			c.log.Warn("remove a --rm container that failed to start", "id", x.rec.ID, "err", rerr)
		}
		x.op.Lock() // for the deferred unlock
	}
	return false, err
}

// start runs the container: mounts its rootfs, writes its config.json,
// starts its shim and the process. The caller holds x.op. A failure leaves
// the container stopped with the error in its state, and nothing running
// or mounted.
func (c *Containers) start(ctx context.Context, x *ctr) (err error) {
	c.waitRuntimeDeleted(x) // of the last run
	rec := x.snapshotRecord()
	id := rec.ID
	bg := context.WithoutCancel(ctx)
	// The network (a namespace; on a bridge a veth, an address, ports) is
	// set up while the rootfs is mounted: both are mostly kernel work, and
	// there is a CPU for each. setupNetwork writes only rec's network
	// fields, which nothing reads before network() returns.
	netDone := make(chan error, 1)
	go func() { netDone <- c.setupNetwork(ctx, &rec) }()
	network := sync.OnceValue(func() error { return <-netDone })
	defer func() {
		if err == nil {
			return
		}
		network() // joined: what it made is torn down below

		go reapShim(c.shimDir(id)) // a shim whose create failed exits
		c.cleanupRun(bg, id, rec.Runtime)
		c.teardownNetwork(bg, &rec)
		x.mu.Lock()
		x.rec.State.Error = err.Error()
		x.rec.State.ExitCode = startExitCode(err)
		if x.rec.State.Status != container.StateCreated {
			x.rec.State.Status = container.StateExited
		}
		x.rec.State.Pid = 0
		c.save(bg, &x.rec)
		x.notify()
		x.mu.Unlock()
	}()
	mounts, err := c.snaps.Mounts(ctx, snapshotKey(id))
	if err != nil {
		return fmt.Errorf("container snapshot: %w", err)
	}
	if err := os.MkdirAll(c.rootfs(id), 0o711); err != nil {
		return err
	}
	snapshot.UnmountAll(c.rootfs(id)) // a mount left by a crash
	if err := mountRootfs(mounts, c.rootfs(id), rec.HostConfig.AutoRemove); err != nil {
		return fmt.Errorf("mount the container's rootfs: %w", err)
	}
	if c.volumes != nil {
		for _, m := range rec.Mounts {
			if m.Type == "volume" && m.Name != "" {
				// The image's content there, resolved inside the rootfs:
				// an image's symlink never leads the copy out of it.
				src, err := resolveFollow(c.rootfs(id), m.Destination)
				if err != nil {
					continue // nothing there to copy
				}
				if err := c.volumes.Populate(ctx, m.Name, src); err != nil {
					return fmt.Errorf("populate volume %s: %w", m.Name, err)
				}
			}
		}
	}
	img, err := c.imageConfig(ctx, rec.Image)
	if err != nil {
		return err
	}
	if err := network(); err != nil {
		return err
	}
	if rec.NetNS != "" {
		// /etc/hosts names the container's address, resolv.conf the
		// embedded DNS server.
		if err := c.writeEtcFiles(&rec); err != nil {
			return err
		}
	}
	o, err := c.runOptions(&rec)
	if err != nil {
		return err
	}
	spec, err := ocispec.Generate(img, c.rootfs(id), o)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.bundle(id), "config.json"), data, 0o600); err != nil {
		return err
	}
	// The last run's exit files go: the shim writes them anew.
	os.RemoveAll(c.shimDir(id))
	logPath := c.logPath(id)
	if rec.HostConfig.LogConfig.Type == "none" {
		logPath = ""
	}
	lo, err := logOptions(rec.HostConfig.LogConfig.Config)
	if err != nil {
		return err
	}
	// Deferred: the shim creates and starts the container with one runtime
	// process at the start request, after the attachers are in.
	cl, _, err := shim.Start(ctx, shim.StartOptions{
		Binary: c.shimBin, ID: id, Bundle: c.bundle(id), Dir: c.shimDir(id),
		Runtime: rec.Runtime, RuntimeRoot: c.runtimeRoot(), LogPath: logPath, Log: lo,
		Stdin: rec.Config.OpenStdin, Tty: rec.Config.Tty, Deferred: true,
	})
	if err != nil {
		return err
	}
	c.handAttachers(x, cl)
	pid, err := cl.StartProcess(ctx)
	if err != nil {
		cl.Kill(bg, syscall.SIGKILL, true)
		cl.Wait(bg)
		return err
	}
	x.mu.Lock()
	x.shim = cl
	x.rec.Networks, x.rec.NetNS, x.rec.HostIfs, x.rec.Ports = rec.Networks, rec.NetNS, rec.HostIfs, rec.Ports
	x.rec.Config.Hostname = rec.Config.Hostname
	x.rec.State = state{Status: container.StateRunning, Pid: pid, StartedAt: time.Now().UTC()}
	x.rec.StartedBefore = true
	c.save(bg, &x.rec)
	x.notify()
	rec = x.rec
	x.mu.Unlock()
	c.publish(&rec, events.ActionStart, nil)
	go c.monitor(x, cl)
	return nil
}

// startExitCode is the exit code docker records for a container that
// could not start: 127 when its command is not found, 126 when it cannot
// be executed, 128 otherwise.
func startExitCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"), strings.Contains(msg, "exec format error"):
		return 126
	}
	return 128
}

func logOptions(opts map[string]string) (shim.LogOptions, error) {
	lo := shim.LogOptions{MaxFiles: 1}
	if v := opts["max-size"]; v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil {
			return lo, fmt.Errorf("%w: log-opt max-size=%s: %w", errdefs.ErrInvalidArgument, v, err)
		}
		lo.MaxSize = n
	}
	if v := opts["max-file"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return lo, fmt.Errorf("%w: log-opt max-file=%s", errdefs.ErrInvalidArgument, v)
		}
		lo.MaxFiles = n
	}
	return lo, nil
}

// imageConfig reads the config of the image with this ID.
func (c *Containers) imageConfig(ctx context.Context, id string) (image.Config, error) {
	m, err := c.images.lookup(ctx, id)
	if err != nil {
		return image.Config{}, fmt.Errorf("image %s of the container: %w", id, err)
	}
	r, err := c.images.load(ctx, m.Images[0])
	if err != nil {
		return image.Config{}, err
	}
	return r.config, nil
}

// cleanupRun undoes a run: the runtime's state, the rootfs mount and the
// shim's socket directory. Errors are logged; the next start retries.
func (c *Containers) cleanupRun(ctx context.Context, id, runtime string) {
	if out, err := exec.CommandContext(ctx, runtime, "--root", c.runtimeRoot(), "delete", "--force", id).CombinedOutput(); err != nil {
		c.log.Warn("runtime delete", "id", id, "err", err, "output", strings.TrimSpace(string(out)))
	}
	if err := snapshot.UnmountAll(c.rootfs(id)); err != nil {
		c.log.Warn("unmount container rootfs", "id", id, "err", err)
	}
}

// deleteRuntime runs the runtime's delete of the container in the
// background; waitRuntimeDeleted waits for it.
func (c *Containers) deleteRuntime(ctx context.Context, x *ctr, id, runtime string) {
	done := make(chan struct{})
	x.mu.Lock()
	x.deleting = done
	x.mu.Unlock()
	go func() {
		defer close(done)
		if out, err := exec.CommandContext(ctx, runtime, "--root", c.runtimeRoot(), "delete", "--force", id).CombinedOutput(); err != nil {
			c.log.Warn("runtime delete", "id", id, "err", err, "output", strings.TrimSpace(string(out)))
		}
	}()
}

// waitRuntimeDeleted waits for a delete deleteRuntime started.
func (c *Containers) waitRuntimeDeleted(x *ctr) {
	x.mu.Lock()
	done := x.deleting
	x.mu.Unlock()
	if done != nil {
		<-done
	}
}

// monitor waits for the container's exit and handles it.
func (c *Containers) monitor(x *ctr, cl *shim.Client) {
	exit, err := cl.Wait(c.ctx)
	if c.ctx.Err() != nil {
		return // berthd is stopping: the container lives on
	}
	if err != nil {
		c.log.Warn("lost the container's shim; recording an unknown exit", "id", x.rec.ID, "err", err)
		exit = shim.Exit{Code: 255, ExitedAt: time.Now().UTC()}
	}
	c.exited(x, exit)
}

// exited records the container's exit, cleans up its run, and applies
// AutoRemove or the restart policy.
func (c *Containers) exited(x *ctr, exit shim.Exit) {
	ctx := c.ctx
	bg := context.WithoutCancel(ctx)
	x.mu.Lock()
	if x.rec.State.Status != container.StateRunning && x.rec.State.Status != container.StatePaused {
		x.mu.Unlock()
		return
	}
	rec := x.copyRecord()
	x.mu.Unlock()
	go reapShim(c.shimDir(rec.ID))
	// The runtime's delete (a process of its own, some milliseconds) runs
	// while the exit is recorded and, with --rm, the rest is removed; a
	// start or remove waits for it.
	c.deleteRuntime(bg, x, rec.ID, rec.Runtime)
	if err := snapshot.UnmountAll(c.rootfs(rec.ID)); err != nil {
		c.log.Warn("unmount container rootfs", "id", rec.ID, "err", err)
	}
	c.teardownNetwork(bg, &rec)
	x.mu.Lock()
	x.rec.Networks, x.rec.NetNS, x.rec.HostIfs, x.rec.Ports = rec.Networks, rec.NetNS, rec.HostIfs, rec.Ports
	x.shim = nil
	x.rec.State.Status = container.StateExited
	x.rec.State.Pid = 0
	x.rec.State.ExitCode = exit.Code
	x.rec.State.OOMKilled = exit.OOM
	x.rec.State.FinishedAt = exit.ExitedAt
	if x.rec.State.FinishedAt.IsZero() {
		x.rec.State.FinishedAt = time.Now().UTC()
	}
	delay, restart := c.restartDelay(&x.rec)
	if restart {
		x.rec.State.Status = container.StateRestarting
	}
	if !x.rec.HostConfig.AutoRemove {
		// A --rm container's record goes next; should berthd die first,
		// its next start finds the shim gone and removes it then.
		c.save(bg, &x.rec)
	}
	x.notify()
	rec = x.rec
	x.mu.Unlock()
	if exit.OOM {
		c.publish(&rec, events.ActionOOM, nil)
	}
	c.publish(&rec, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(exit.Code)})
	switch {
	case rec.HostConfig.AutoRemove:
		if err := c.remove(bg, rec.ID, backend.ContainerRemoveOptions{RemoveVolumes: true}, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			c.log.Warn("auto-remove", "id", rec.ID, "err", err)
		}
	case restart:
		x.mu.Lock()
		x.restartTimer = time.AfterFunc(delay, func() { c.restart(x) })
		x.mu.Unlock()
	}
}

// restartDelay says whether the policy restarts the container that just
// exited, and after how long: 100 ms doubling with each restart in a row,
// at most a minute; a run of 10 s or more starts the back-off over. The
// caller holds x.mu.
func (c *Containers) restartDelay(rec *record) (time.Duration, bool) {
	p := rec.HostConfig.RestartPolicy
	if rec.ManuallyStopped || c.ctx.Err() != nil {
		return 0, false
	}
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if rec.State.ExitCode == 0 || p.MaximumRetryCount > 0 && rec.RestartCount >= p.MaximumRetryCount {
			return 0, false
		}
	default:
		return 0, false
	}
	if rec.State.FinishedAt.Sub(rec.State.StartedAt) >= 10*time.Second {
		rec.RestartCount = 0
	}
	d := 100 * time.Millisecond << min(rec.RestartCount, 10)
	return min(d, time.Minute), true
}

// restart is the policy's restart of x.
func (c *Containers) restart(x *ctr) {
	if c.ctx.Err() != nil {
		return
	}
	x.op.Lock()
	defer x.op.Unlock()
	x.mu.Lock()
	if x.removed || x.rec.State.Status != container.StateRestarting {
		x.mu.Unlock()
		return
	}
	x.restartTimer = nil
	x.rec.RestartCount++
	rec := x.rec
	x.mu.Unlock()
	c.publish(&rec, events.ActionRestart, nil)
	if err := c.start(c.ctx, x); err != nil {
		c.log.Warn("restart by policy failed", "id", rec.ID, "err", err)
	}
}

// Stop sends the stop signal, waits the timeout, then kills.
func (c *Containers) Stop(ctx context.Context, name string, opts backend.StopOptions) (bool, error) {
	x, err := c.find(name)
	if err != nil {
		return false, err
	}
	x.mu.Lock()
	x.rec.ManuallyStopped = true
	if x.restartTimer != nil {
		x.restartTimer.Stop()
		x.restartTimer = nil
		if x.rec.State.Status == container.StateRestarting {
			x.rec.State.Status = container.StateExited
			c.save(ctx, &x.rec)
			x.notify()
		}
	}
	running := x.rec.State.Status == container.StateRunning || x.rec.State.Status == container.StatePaused
	x.mu.Unlock()
	if !running {
		return true, nil
	}
	return false, c.stop(ctx, x, opts)
}

// stop stops a running container.
func (c *Containers) stop(ctx context.Context, x *ctr, opts backend.StopOptions) error {
	rec := x.snapshotRecord()
	sigName := opts.Signal
	if sigName == "" {
		sigName = rec.Config.StopSignal
	}
	sig := syscall.SIGTERM
	if sigName != "" {
		s, err := ocispec.ParseSignal(sigName)
		if err != nil {
			return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
		}
		sig = s
	}
	timeout := 10
	if rec.Config.StopTimeout != nil {
		timeout = *rec.Config.StopTimeout
	}
	if opts.Timeout != nil {
		timeout = *opts.Timeout
	}
	done, err := c.Wait(ctx, rec.ID, container.WaitConditionNotRunning)
	if err != nil {
		return err
	}
	if rec.State.Status == container.StatePaused {
		// A frozen process cannot take the signal: thaw it after sending.
		c.signal(ctx, x, sig, false)
		c.runtimeCmd(ctx, &rec, "resume", rec.ID)
	} else if err := c.signal(ctx, x, sig, false); err != nil && !errors.Is(err, errdefs.ErrConflict) {
		return err
	}
	c.publish(&rec, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	var expire <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-done:
	case <-expire:
		if err := c.signal(ctx, x, syscall.SIGKILL, true); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	c.publish(&rec, events.ActionStop, nil)
	return nil
}

// signal sends sig to the container's process (all of them with all).
func (c *Containers) signal(ctx context.Context, x *ctr, sig syscall.Signal, all bool) error {
	x.mu.Lock()
	cl, id := x.shim, x.rec.ID
	x.mu.Unlock()
	if cl == nil {
		return errNotRunning(id)
	}
	if err := cl.Kill(ctx, sig, all); err != nil {
		if errors.Is(err, errdefs.ErrFailedPrecondition) || errors.Is(err, errdefs.ErrUnavailable) {
			return errNotRunning(id)
		}
		return err
	}
	return nil
}

// Restart stops (if running) and starts the container.
func (c *Containers) Restart(ctx context.Context, name string, opts backend.StopOptions) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	if _, err := c.Stop(ctx, name, opts); err != nil {
		return err
	}
	if _, err := c.Start(ctx, x.rec.ID); err != nil {
		return err
	}
	rec := x.snapshotRecord()
	c.publish(&rec, events.ActionRestart, nil)
	return nil
}

// Kill sends a signal (SIGKILL when empty) to the container.
func (c *Containers) Kill(ctx context.Context, name string, signal string) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = ocispec.ParseSignal(signal); err != nil {
			return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
		}
	}
	rec := x.snapshotRecord()
	if rec.State.Status != container.StateRunning && rec.State.Status != container.StatePaused {
		return errNotRunning(rec.ID)
	}
	// Unlike stop, kill leaves the restart policy on: the exit it causes
	// is one the policy may restart from, as with dockerd.
	if err := c.signal(ctx, x, sig, false); err != nil {
		return err
	}
	c.publish(&rec, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	return nil
}

// Wait returns a channel that receives the container's exit once the
// condition holds.
func (c *Containers) Wait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	x, err := c.find(name)
	if err != nil {
		return nil, err
	}
	if cond == "" {
		cond = container.WaitConditionNotRunning
	}
	switch cond {
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, fmt.Errorf("%w: invalid condition: %q", errdefs.ErrInvalidArgument, cond)
	}
	x.mu.Lock()
	changed := x.changed
	startedAt := x.rec.State.StartedAt
	x.mu.Unlock()
	out := make(chan container.WaitResponse, 1)
	go func() {
		defer close(out)
		first := true
		for {
			x.mu.Lock()
			st := x.rec.State
			removed := x.removed
			if !first {
				changed = x.changed
			}
			x.mu.Unlock()
			resp := container.WaitResponse{StatusCode: int64(st.ExitCode)}
			if st.Error != "" {
				resp.Error = &container.WaitExitError{Message: st.Error}
			}
			notRunning := st.Status != container.StateRunning && st.Status != container.StatePaused && st.Status != container.StateRestarting
			switch cond {
			case container.WaitConditionRemoved:
				if removed {
					out <- resp
					return
				}
			case container.WaitConditionNotRunning:
				if notRunning || removed {
					out <- resp
					return
				}
			case container.WaitConditionNextExit:
				if removed || !first && (st.Status == container.StateExited || st.Status == container.StateRestarting) && !st.FinishedAt.Before(startedAt) && st.FinishedAt != (time.Time{}) {
					out <- resp
					return
				}
			}
			first = false
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Remove deletes a container and everything it used.
func (c *Containers) Remove(ctx context.Context, name string, opts backend.ContainerRemoveOptions) error {
	return c.remove(ctx, name, opts, false)
}

// remove is Remove; with later the container's files go in the background
// (see removeFiles).
func (c *Containers) remove(ctx context.Context, name string, opts backend.ContainerRemoveOptions, later bool) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	rec := x.snapshotRecord()
	running := rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused
	if running && !opts.Force {
		msg := "container is running: stop the container before removing or force remove"
		if rec.State.Status == container.StatePaused {
			msg = "container is paused and must be unpaused first"
		}
		return fmt.Errorf("%w: cannot remove container %q: %s", errdefs.ErrConflict, rec.Name, msg)
	}
	x.mu.Lock()
	x.rec.ManuallyStopped = true
	if x.restartTimer != nil {
		x.restartTimer.Stop()
		x.restartTimer = nil
	}
	x.mu.Unlock()
	if running {
		done, _ := c.Wait(ctx, rec.ID, container.WaitConditionNotRunning)
		if rec.State.Status == container.StatePaused {
			c.runtimeCmd(ctx, &rec, "resume", rec.ID)
		}
		if err := c.signal(ctx, x, syscall.SIGKILL, true); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return fmt.Errorf("%w: the container service is closing", errdefs.ErrUnavailable)
		}
	}
	x.op.Lock()
	defer x.op.Unlock()
	x.mu.Lock()
	if x.removed {
		x.mu.Unlock()
		return nil
	}
	x.mu.Unlock()
	if err := c.removeFiles(ctx, x, &rec, later); err != nil {
		return err // the record stays: a retry finishes the job
	}
	if c.volumes != nil && slices.ContainsFunc(rec.Mounts, func(m container.MountPoint) bool { return m.Type == mount.TypeVolume }) {
		if err := c.volumes.Release(ctx, rec.ID, opts.RemoveVolumes); err != nil {
			c.log.Warn("release volumes", "id", rec.ID, "err", err)
		}
	}
	if err := c.removeRecord(ctx, rec.ID); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.byID, rec.ID)
	delete(c.byName, rec.Name)
	for id, e := range c.execs {
		if e.container == rec.ID {
			delete(c.execs, id)
		}
	}
	c.mu.Unlock()
	x.mu.Lock()
	x.removed = true
	x.notify()
	x.mu.Unlock()
	c.publish(&rec, events.ActionDestroy, nil)
	return nil
}

// removeFiles deletes the container's runtime state, mount, snapshot and
// directories. With later (a --rm container's removal, which nobody waits
// to hear the errors of) only the unmount is done before it returns: the
// snapshot, the runtime's delete and the directories follow in the
// background, so that the container is gone (its record, its name) as soon
// as its exit is recorded. Close and the image service's removals wait for
// that work (settle); should berthd die first, its next start removes what
// no record owns. Otherwise it all goes before it returns, after the
// runtime's delete that the exit started.
func (c *Containers) removeFiles(ctx context.Context, x *ctr, rec *record, later bool) error {
	if err := snapshot.UnmountAll(c.rootfs(rec.ID)); err != nil {
		return err
	}
	if !later {
		c.waitRuntimeDeleted(x)
		if err := c.removeSnapshots(ctx, rec); err != nil {
			return err
		}
		return c.removeRuntimeFiles(ctx, rec)
	}
	done := c.backlog.add()
	go func() {
		defer done()
		bg := context.WithoutCancel(ctx)
		err := c.removeSnapshots(bg, rec)
		c.waitRuntimeDeleted(x)
		if err == nil {
			err = c.removeRuntimeFiles(bg, rec)
		}
		if err != nil {
			c.log.Warn("remove the container's files", "id", rec.ID, "err", err)
		}
	}()
	return nil
}

// removeSnapshots removes the container's snapshot and, for a container
// made before the image's containers shared their init layer, its own.
func (c *Containers) removeSnapshots(ctx context.Context, rec *record) error {
	info, serr := c.snaps.Stat(ctx, snapshotKey(rec.ID))
	if err := c.snaps.Remove(ctx, snapshotKey(rec.ID)); ignoreNotFound(err) != nil {
		return err
	}
	if serr == nil && info.Parent == initSnapshot(rec.ID) {
		if err := c.snaps.Remove(ctx, info.Parent); ignoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// removeRuntimeFiles deletes the container from the runtime, when it still
// knows it, and removes its directories.
func (c *Containers) removeRuntimeFiles(ctx context.Context, rec *record) error {
	// delete --force succeeds for a container the runtime no longer knows
	// (berth-runtime, runc and crun alike); it is not run again when the
	// runtime's state directory is gone already (deleted after the exit).
	if _, err := os.Stat(filepath.Join(c.runtimeRoot(), rec.ID)); !errors.Is(err, os.ErrNotExist) {
		if out, err := exec.CommandContext(ctx, rec.Runtime, "--root", c.runtimeRoot(), "delete", "--force", rec.ID).CombinedOutput(); err != nil {
			return fmt.Errorf("runtime delete: %v: %s", err, out)
		}
	}
	os.RemoveAll(c.dir(rec.ID))
	os.RemoveAll(c.shimDir(rec.ID))
	os.RemoveAll(c.dataDir(rec.ID))
	return nil
}

// runtimeCmd runs the container's OCI runtime with args.
func (c *Containers) runtimeCmd(ctx context.Context, rec *record, args ...string) error {
	full := append([]string{"--root", c.runtimeRoot()}, args...)
	out, err := exec.CommandContext(ctx, rec.Runtime, full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", filepath.Base(rec.Runtime), args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Recover loads the records of the last run, reconnects to the shims of
// running containers, records the exits that happened while berthd was
// away, restarts what the policies say, and removes what no record owns:
// container directories, snapshots and runtime states.
func (c *Containers) Recover(ctx context.Context) error {
	if err := c.loadRecords(ctx); err != nil {
		return err
	}
	for _, x := range c.all() {
		rec := x.snapshotRecord()
		switch rec.State.Status {
		case container.StateRunning, container.StatePaused:
			cl, err := shim.Connect(ctx, c.shimDir(rec.ID))
			if err == nil {
				st, serr := cl.State(ctx)
				if serr == nil && st.Status != shim.StatusStopped {
					x.mu.Lock()
					x.shim = cl
					x.mu.Unlock()
					if c.nets != nil {
						c.nets.restore(ctx, &rec)
					}
					go c.monitor(x, cl)
					continue
				}
			}
			exit, err := shim.ReadExit(c.shimDir(rec.ID))
			if err != nil {
				c.log.Warn("container's shim is gone without an exit status", "id", rec.ID, "err", err)
				exit = shim.Exit{Code: 255, ExitedAt: time.Now().UTC()}
			}
			c.exited(x, exit)
		case container.StateRestarting:
			x.mu.Lock()
			x.rec.State.Status = container.StateRunning // so that exited applies the policy
			x.mu.Unlock()
			c.exited(x, shim.Exit{Code: rec.State.ExitCode, ExitedAt: rec.State.FinishedAt, OOM: rec.State.OOMKilled})
		}
	}
	c.removeOrphans(ctx)
	if c.nets != nil {
		live := map[string]bool{}
		for _, x := range c.all() {
			x.mu.Lock()
			if x.rec.NetNS != "" {
				live[x.rec.ID] = true
			}
			x.mu.Unlock()
		}
		c.nets.reconcile(ctx, filepath.Join(c.cfg.ExecRoot, "netns"), live)
	}
	// As dockerd: at its start, containers with restart policy always, and
	// unless-stopped ones no user stopped, are started again.
	for _, x := range c.all() {
		rec := x.snapshotRecord()
		p := rec.HostConfig.RestartPolicy.Name
		if rec.State.Status != container.StateExited || !rec.StartedBefore {
			continue
		}
		if p == container.RestartPolicyAlways || p == container.RestartPolicyUnlessStopped && !rec.ManuallyStopped {
			go func() {
				x.op.Lock()
				defer x.op.Unlock()
				if err := c.start(c.ctx, x); err != nil {
					c.log.Warn("restart at daemon start", "id", rec.ID, "err", err)
				}
			}()
		}
	}
	return nil
}

// removeOrphans removes what a crash left without a record.
func (c *Containers) removeOrphans(ctx context.Context) {
	known := func(id string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.byID[id]
		return ok
	}
	for _, dir := range []string{filepath.Join(c.cfg.ExecRoot, "containers"), filepath.Join(c.cfg.ExecRoot, "s"), filepath.Join(c.cfg.Root, "containers")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if known(e.Name()) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			snapshot.UnmountAll(filepath.Join(p, "bundle", "rootfs"))
			c.log.Info("removing a container directory no record owns", "path", p)
			os.RemoveAll(p)
		}
	}
	states, _ := os.ReadDir(c.runtimeRoot())
	for _, e := range states {
		if !strings.HasPrefix(e.Name(), ".") && !known(e.Name()) { // the runtime's own files start with "."
			exec.CommandContext(ctx, c.cfg.Runtime, "--root", c.runtimeRoot(), "delete", "--force", e.Name()).Run()
		}
	}
	// Cgroups under the default parent that no container owns (a crash
	// between the runtime's create and berthd's record, or a runtime state
	// lost with /run). One made less than a minute ago may be a container
	// that another berthd sharing the parent is creating: it stays.
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth/*")
	more, _ := filepath.Glob("/sys/fs/cgroup/berth/*")
	seen := map[string]bool{}
	for _, d := range append(dirs, more...) {
		id := filepath.Base(d)
		if seen[id] || !isContainerID(id) || known(id) {
			continue
		}
		if fi, err := os.Stat(d); err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		seen[id] = true
		if cg, err := cgroups.New("/berth/" + id); err == nil {
			if pids, err := cg.Pids(); err == nil && len(pids) == 0 {
				c.log.Info("removing a container cgroup no record owns", "cgroup", "/berth/"+id)
				if err := cg.Destroy(); err != nil {
					c.log.Warn("remove orphan cgroup", "cgroup", "/berth/"+id, "err", err)
				}
			}
		}
	}
	var orphans, inits []string
	c.snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if id, ok := strings.CutPrefix(info.Name, "container-"); ok && !known(id) {
			orphans = append(orphans, info.Name)
		}
		if id, ok := strings.CutPrefix(info.Name, "init-"); ok && !isSharedInit(info.Name) && !known(strings.TrimSuffix(id, "-active")) {
			inits = append(inits, info.Name)
		}
		return nil
	})
	for _, key := range append(orphans, inits...) {
		c.log.Info("removing a container snapshot no record owns", "key", key)
		if err := c.snaps.Remove(ctx, key); err != nil {
			c.log.Warn("remove orphan snapshot", "key", key, "err", err)
		}
	}
}

// reapShim waits for the shim in dir to exit, when it is this process's
// child: berthd is a child subreaper, so the shims it starts become its
// children once they daemonize. A shim of an earlier berthd is not.
func reapShim(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, shim.PidFile))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ws syscall.WaitStatus
		p, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if p == pid || err == syscall.ECHILD {
			return
		}
	}
}

// isContainerID reports whether s has the form of a container ID (64
// lowercase hex digits).
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}
