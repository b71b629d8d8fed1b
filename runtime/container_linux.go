package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"berth.dev/cgroups"
	"berth.dev/runtime/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Container is a container known to the state root. Its methods implement
// the transitions of the runtime specification; each checks the current
// state first and refuses illegal transitions with ErrState.
type Container struct {
	root string
	dir  string
	s    *saved
	// cg is the container's cgroup manager, once made (Create keeps the
	// one it made: finding the hierarchies again reads the mount table).
	cg cgroups.Manager
}

// Load reads a container's state from root.
func Load(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	s, err := loadSaved(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
		}
		return nil, err
	}
	return &Container{root: root, dir: dir, s: s}, nil
}

// ID returns the container's id.
func (c *Container) ID() string { return c.s.ID }

// Pid returns the pid of the container's init.
func (c *Container) Pid() int { return c.s.Pid }

// Spec returns the config the container was created with.
func (c *Container) Spec() (*specs.Spec, error) { return c.s.loadSpec(c.dir) }

// hooks returns the container's hooks (empty lists when it has none).
func (c *Container) hooks() *specs.Hooks {
	if c.s.Hooks == nil {
		return &specs.Hooks{}
	}
	return c.s.Hooks
}

// Status reads the container's current status from the kernel.
func (c *Container) Status() Status {
	if !alive(c.s.Pid, c.s.StartTime) {
		return Stopped
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoName)); err == nil {
		return Created
	}
	if c.s.Paused {
		return Paused
	}
	return Running
}

// State returns what `state` prints.
func (c *Container) State() *State {
	st := c.Status()
	pid := c.s.Pid
	if st == Stopped {
		pid = 0
	}
	return &State{
		OCIVersion:  specs.Version,
		ID:          c.s.ID,
		Pid:         pid,
		Status:      st,
		Bundle:      c.s.Bundle,
		Rootfs:      c.s.Rootfs,
		Created:     c.s.Created,
		Owner:       ownerOf(c.dir),
		Annotations: c.s.Annotations,
	}
}

func (c *Container) ociState(st Status, pid int) *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          c.s.ID,
		Status:      specs.ContainerState(st),
		Pid:         pid,
		Bundle:      c.s.Bundle,
		Annotations: c.s.Annotations,
	}
}

// ErrNoCgroup: a rootless container created without cgroup access.
var ErrNoCgroup = errors.New("container has no cgroup (created rootless without cgroup access)")

func (c *Container) cgroup() (cgroups.Manager, error) {
	if c.s.CgroupPath == "" {
		return nil, ErrNoCgroup
	}
	if c.cg == nil {
		cg, err := cgroups.New(c.s.CgroupPath)
		if err != nil {
			return nil, err
		}
		c.cg = cg
	}
	return c.cg, nil
}

// Start releases a created container's init to exec the user program, then
// runs the poststart hooks.
func (c *Container) Start() error {
	if st := c.Status(); st != Created {
		return fmt.Errorf("%w: cannot start a container that is %s", ErrState, st)
	}
	fifo := filepath.Join(c.dir, fifoName)
	// O_NONBLOCK: if the init died the open must not wait for a writer
	// that never comes. The init holds the write side open while waiting.
	f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer f.Close()
	if err := waitReadable(f, c); err != nil {
		return err
	}
	buf := make([]byte, 1)
	if n, err := f.Read(buf); n != 1 {
		return fmt.Errorf("container init did not start the process: %v", err)
	}
	os.Remove(fifo)
	// The init keeps the fifo open until it executes the program (the
	// descriptor is close-on-exec): once no writer is left, the program
	// runs, or the init has died. So start returns with the user's
	// process in place, not a moment before (a signal sent right after
	// start reaches the program, not the init), and the poststart hooks
	// run after it is executed, as the specification wants.
	if err := waitClosed(f, c); err != nil {
		return err
	}
	if err := runHooks("poststart", c.hooks().Poststart, c.ociState(Running, c.s.Pid)); err != nil {
		// The specification: a failing poststart hook is logged, and the
		// lifecycle continues.
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	}
	return nil
}

// waitReadable waits until the init has written its byte into the fifo, or
// has died.
func waitReadable(f *os.File, c *Container) error {
	return pollFifo(f, c, fmt.Errorf("%w: container init exited before start", ErrState), func(revents int16) bool {
		return revents&unix.POLLIN != 0
	})
}

// waitClosed waits until the write side of the fifo f is closed, or the
// init is gone.
func waitClosed(f *os.File, c *Container) error {
	buf := make([]byte, 1)
	return pollFifo(f, c, nil, func(revents int16) bool {
		if revents&unix.POLLHUP != 0 {
			return true
		}
		if revents&unix.POLLIN == 0 {
			return false
		}
		// Input: read it; the end of it is the close.
		r, _ := f.Read(buf)
		return r == 0
	})
}

// pollFifo polls f for input until done says so of the events that came,
// or, checked every 100 ms, the init is gone (then it returns gone).
func pollFifo(f *os.File, c *Container, gone error, done func(revents int16) bool) error {
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 100)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 && done(fds[0].Revents) {
			return nil
		}
		if !alive(c.s.Pid, c.s.StartTime) {
			return gone
		}
	}
}

// Signal sends sig to the container's init, or with all to every process
// in its cgroup.
func (c *Container) Signal(sig syscall.Signal, all bool) error {
	st := c.Status()
	if all {
		if st == Stopped && !c.sharesPIDNamespace() {
			return fmt.Errorf("%w: container not running", ErrState)
		}
		cg, err := c.cgroup()
		if err != nil {
			return err
		}
		return cg.Kill(int(sig))
	}
	if st == Stopped {
		return fmt.Errorf("%w: container not running", ErrState)
	}
	if err := unix.Kill(c.s.Pid, sig); err != nil {
		return fmt.Errorf("kill %d: %w", c.s.Pid, err)
	}
	if st == Paused && (sig == unix.SIGKILL) {
		// A frozen process cannot die until it is thawed.
		return c.Resume()
	}
	return nil
}

func (c *Container) sharesPIDNamespace() bool { return c.s.SharedPIDNS }

// Delete removes a stopped (or created) container: kills what is left,
// runs the poststop hooks, removes the cgroup and the state. With force it
// first kills a running or paused container.
func (c *Container) Delete(force bool) error {
	st := c.Status()
	switch st {
	case Created, Running, Paused:
		// The specification: deleting a container that is not stopped is
		// an error, and leaves it as it was.
		if !force {
			return fmt.Errorf("%w: cannot delete container %s that is not stopped: %s", ErrState, c.s.ID, st)
		}
		if err := c.killAll(); err != nil {
			return err
		}
	}
	return c.destroy()
}

// killAll kills the init and, when the container shares a PID namespace
// (where the init's death does not take the others with it), every process
// in the cgroup.
func (c *Container) killAll() error {
	cg, err := c.cgroup()
	if err == nil && (c.sharesPIDNamespace() || c.s.Paused) {
		cg.Kill(int(unix.SIGKILL))
	}
	if alive(c.s.Pid, c.s.StartTime) {
		unix.Kill(c.s.Pid, unix.SIGKILL)
		if c.s.Paused && cg != nil {
			cg.Freeze(cgroups.Thawed)
		}
		if err := waitGone(c.s.Pid, c.s.StartTime, 10*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (c *Container) destroy() error {
	var errs []error
	if cg, err := c.cgroup(); err == nil {
		if c.sharesPIDNamespace() {
			cg.Kill(int(unix.SIGKILL))
		}
		if err := cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	if c.s.SharedMountNS {
		if err := rootfs.Unmount(c.s.rootfsPath(), c.s.RootfsMountID); err != nil {
			errs = append(errs, fmt.Errorf("unmount the container's filesystems: %w", err))
		}
	}
	if err := runHooksWarn("poststop", c.hooks().Poststop, c.ociState(Stopped, 0)); err != nil {
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Pause freezes every process of a running container.
func (c *Container) Pause() error {
	if st := c.Status(); st != Running {
		return fmt.Errorf("%w: container not running", ErrState)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Freeze(cgroups.Frozen); err != nil {
		return err
	}
	c.s.Paused = true
	return c.s.save(c.dir, false)
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != Paused {
		return fmt.Errorf("%w: container not paused", ErrState)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Freeze(cgroups.Thawed); err != nil {
		return err
	}
	c.s.Paused = false
	return c.s.save(c.dir, false)
}

// Processes lists the pids in the container's cgroup.
func (c *Container) Processes() ([]int, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	pids, err := cg.Pids()
	if err != nil {
		return nil, err
	}
	sort.Ints(pids)
	return pids, nil
}

// Update changes the container's resource limits.
func (c *Container) Update(r *specs.LinuxResources) error {
	if st := c.Status(); st == Stopped {
		return fmt.Errorf("%w: container not running", ErrState)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Set(r); err != nil {
		return err
	}
	s, err := c.Spec()
	if err != nil {
		return err
	}
	s.Linux.Resources = mergeResources(s.Linux.Resources, r)
	return c.s.save(c.dir, true)
}

// Stats reads the container's cgroup statistics.
func (c *Container) Stats() (*cgroups.Stats, error) {
	if st := c.Status(); st == Stopped {
		return nil, fmt.Errorf("%w: container not running", ErrState)
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// List returns the state of every container under root, sorted by id.
func List(root string) ([]*State, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := Load(root, e.Name())
		if err != nil {
			// A container still being created has no state yet.
			continue
		}
		out = append(out, c.State())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func ownerOf(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	uid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
	if name := userName("/etc/passwd", uid); name != "" {
		return name
	}
	return "#" + uid
}

// userName looks uid up in the passwd file at path, as os/user does for a
// static binary (without the package and its start-up cost).
func userName(path, uid string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 4)
		if len(f) == 4 && f[2] == uid && !strings.HasPrefix(f[0], "#") {
			return f[0]
		}
	}
	return ""
}

// mergeResources records an update in the saved spec so that later reads
// see the limits in force.
func mergeResources(old, upd *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		return upd
	}
	if upd.Memory != nil {
		old.Memory = upd.Memory
	}
	if upd.CPU != nil {
		old.CPU = upd.CPU
	}
	if upd.Pids != nil {
		old.Pids = upd.Pids
	}
	if upd.BlockIO != nil {
		old.BlockIO = upd.BlockIO
	}
	if upd.HugepageLimits != nil {
		old.HugepageLimits = upd.HugepageLimits
	}
	if upd.Network != nil {
		old.Network = upd.Network
	}
	if upd.Rdma != nil {
		old.Rdma = upd.Rdma
	}
	if upd.Unified != nil {
		old.Unified = upd.Unified
	}
	return old
}

// OOMEvents reports the container's out-of-memory events until stop is
// called or the cgroup goes away.
func (c *Container) OOMEvents() (<-chan struct{}, func(), error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := cg.OOMEvents(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return ch, cancel, nil
}
