package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth.dev/api/docker/backend"
	"berth.dev/engine/ocispec"
	"berth.dev/internal/errdefs"
	"berth.dev/logs/jsonfile"
	"berth.dev/shim"
)

// errDetached ends an attach whose client typed the detach keys.
var errDetached = errors.New("detached")

// Attach connects the streams to the container. A container that is not
// running yet is attached when it next starts, before its process runs, so
// that no output is lost (docker run attaches before it starts).
func (c *Containers) Attach(ctx context.Context, name string, opts backend.AttachOptions) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	rec := x.snapshotRecord()
	keys, err := parseDetachKeys(opts.DetachKeys)
	if err != nil {
		return err
	}
	if opts.Logs && rec.HostConfig.LogConfig.Type != "none" {
		err := jsonfile.Read(ctx, c.logPath(rec.ID), jsonfile.ReadOptions{Tail: -1}, func(e jsonfile.Entry) error {
			w := opts.Stdout
			if e.Stream == "stderr" {
				w = opts.Stderr
			}
			if w != nil {
				_, err := w.Write(e.Line)
				return err
			}
			return nil
		})
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	if !opts.Stream {
		return nil
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	streams := shim.Streams{Stdout: opts.Stdout, Stderr: opts.Stderr, CloseStdin: rec.Config.StdinOnce}
	var detached bool
	var dmu sync.Mutex
	if opts.Stdin != nil && rec.Config.OpenStdin {
		streams.Stdin = &detachReader{r: opts.Stdin, keys: keys, detach: func() {
			dmu.Lock()
			detached = true
			dmu.Unlock()
			cancel()
		}}
	}
	x.mu.Lock()
	cl := x.shim
	var pending chan *shim.Client
	var taken chan struct{}
	if cl == nil || x.rec.State.Status != container.StateRunning {
		pending, taken = make(chan *shim.Client, 1), make(chan struct{})
		x.attachers = append(x.attachers, attacher{client: pending, taken: taken})
		cl = nil
	}
	x.mu.Unlock()
	var attached *shim.Attached
	if cl != nil {
		if attached, err = cl.AttachStream(actx, streams, rec.Config.Tty); err != nil {
			return err
		}
	} else {
		select {
		case cl = <-pending:
		case <-ctx.Done():
			c.dropAttacher(x, pending)
			return ctx.Err()
		}
		attached, err = cl.AttachStream(actx, streams, rec.Config.Tty)
		close(taken)
		if err != nil {
			return err
		}
	}
	c.publish(&rec, events.ActionAttach, nil)
	err = attached.Wait()
	dmu.Lock()
	d := detached
	dmu.Unlock()
	if d {
		c.publish(&rec, events.ActionDetach, nil)
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// attacher is an attach waiting for the container's next start.
type attacher struct {
	client chan *shim.Client
	taken  chan struct{}
}

func (c *Containers) dropAttacher(x *ctr, ch chan *shim.Client) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, a := range x.attachers {
		if a.client == ch {
			x.attachers = append(x.attachers[:i], x.attachers[i+1:]...)
			return
		}
	}
}

// handAttachers gives the shim of a container being started to the
// attaches that wait for it, and waits until each has been taken in.
func (c *Containers) handAttachers(x *ctr, cl *shim.Client) {
	x.mu.Lock()
	list := x.attachers
	x.attachers = nil
	x.mu.Unlock()
	for _, a := range list {
		a.client <- cl
		select {
		case <-a.taken:
		case <-time.After(5 * time.Second):
		}
	}
}

// parseDetachKeys reads docker's detach key spec: comma-separated keys,
// each a single character or ctrl-<x>. Empty means ctrl-p,ctrl-q.
func parseDetachKeys(spec string) ([]byte, error) {
	if spec == "" {
		spec = "ctrl-p,ctrl-q"
	}
	var out []byte
	for _, k := range strings.Split(spec, ",") {
		if len(k) == 1 {
			out = append(out, k[0])
			continue
		}
		rest, ok := strings.CutPrefix(strings.ToLower(k), "ctrl-")
		if !ok || len(rest) != 1 {
			return nil, fmt.Errorf("%w: Invalid detach keys (%s) provided", errdefs.ErrInvalidArgument, spec)
		}
		ch := rest[0]
		switch {
		case ch >= 'a' && ch <= 'z':
			out = append(out, ch-'a'+1)
		case ch == '@':
			out = append(out, 0)
		case ch >= '[' && ch <= '_':
			out = append(out, ch-'['+27)
		default:
			return nil, fmt.Errorf("%w: Invalid detach keys (%s) provided", errdefs.ErrInvalidArgument, spec)
		}
	}
	return out, nil
}

// detachReader passes input through until the detach keys are typed in a
// row; then it calls detach and ends. Bytes that begin the sequence are
// held back until it is known whether they complete it.
type detachReader struct {
	r       io.Reader
	keys    []byte
	detach  func()
	matched int
	pending []byte
	done    bool
}

func (d *detachReader) Read(p []byte) (int, error) {
	if len(d.pending) > 0 {
		n := copy(p, d.pending)
		d.pending = d.pending[n:]
		return n, nil
	}
	if d.done {
		return 0, io.EOF
	}
	buf := make([]byte, len(p))
	n, err := d.r.Read(buf)
	var out []byte
	for _, b := range buf[:n] {
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				d.done = true
				d.pending = append(d.pending, out...)
				d.detach()
				m := copy(p, d.pending)
				d.pending = d.pending[m:]
				if m == 0 {
					return 0, io.EOF
				}
				return m, nil
			}
			continue
		}
		out = append(out, d.keys[:d.matched]...)
		d.matched = 0
		if b == d.keys[0] {
			d.matched = 1
			continue
		}
		out = append(out, b)
	}
	if err != nil && d.matched > 0 {
		out = append(out, d.keys[:d.matched]...)
		d.matched = 0
	}
	m := copy(p, out)
	d.pending = append(d.pending, out[m:]...)
	if m == 0 && err == nil {
		return d.Read(p)
	}
	return m, err
}

// Resize sets the container's terminal size.
func (c *Containers) Resize(ctx context.Context, name string, height, width uint) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	x.mu.Lock()
	cl := x.shim
	x.mu.Unlock()
	if cl == nil {
		return errNotRunning(x.rec.ID)
	}
	return cl.Resize(ctx, "", uint16(width), uint16(height))
}

// Logs calls fn with the container's log entries.
func (c *Containers) Logs(ctx context.Context, name string, opts backend.LogsOptions, fn func(backend.LogMessage) error) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	rec := x.snapshotRecord()
	if rec.HostConfig.LogConfig.Type == "none" {
		return fmt.Errorf("%w: configured logging driver does not support reading", errdefs.ErrNotImplemented)
	}
	ro := jsonfile.ReadOptions{Since: opts.Since, Until: opts.Until, Tail: opts.Tail}
	if opts.Follow && (rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused || rec.State.Status == container.StateRestarting) {
		ro.Follow = true
		stopped, err := c.Wait(ctx, rec.ID, container.WaitConditionNotRunning)
		if err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			<-stopped
			close(done)
		}()
		ro.Done = done
	}
	err = jsonfile.Read(ctx, c.logPath(rec.ID), ro, func(e jsonfile.Entry) error {
		if e.Stream == "stdout" && !opts.Stdout || e.Stream == "stderr" && !opts.Stderr {
			return nil
		}
		return fn(backend.LogMessage{Stream: e.Stream, Time: e.Time, Line: e.Line})
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil // never started: no log yet
	}
	return err
}

// execProcess is one exec of a container.
type execProcess struct {
	id        string
	container string
	req       container.ExecCreateRequest

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	pid      int
	done     chan struct{}
}

// ExecCreate prepares an exec in a running container.
func (c *Containers) ExecCreate(ctx context.Context, name string, req container.ExecCreateRequest) (string, error) {
	x, err := c.find(name)
	if err != nil {
		return "", err
	}
	rec := x.snapshotRecord()
	if rec.State.Status == container.StatePaused {
		return "", fmt.Errorf("%w: Container %s is paused, unpause the container before exec", errdefs.ErrConflict, rec.ID)
	}
	if rec.State.Status != container.StateRunning {
		return "", errNotRunning(rec.ID)
	}
	if len(req.Cmd) == 0 {
		return "", fmt.Errorf("%w: No exec command specified", errdefs.ErrInvalidArgument)
	}
	if _, err := parseDetachKeys(req.DetachKeys); err != nil {
		return "", err
	}
	var raw [32]byte
	rand.Read(raw[:])
	e := &execProcess{id: hex.EncodeToString(raw[:]), container: rec.ID, req: req, done: make(chan struct{})}
	c.mu.Lock()
	c.execs[e.id] = e
	c.mu.Unlock()
	c.publish(&rec, events.Action("exec_create: "+strings.Join(req.Cmd, " ")), map[string]string{"execID": e.id})
	return e.id, nil
}

func (c *Containers) findExec(id string) (*execProcess, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.execs[id]
	if !ok {
		return nil, fmt.Errorf("%w: No such exec instance: %s", errdefs.ErrNotFound, id)
	}
	return e, nil
}

// ExecStart runs an exec with the given streams.
func (c *Containers) ExecStart(ctx context.Context, execID string, opts backend.ExecStartOptions) error {
	e, err := c.findExec(execID)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return fmt.Errorf("%w: Error: Exec command %s is already running", errdefs.ErrConflict, execID)
	}
	e.started = true
	e.mu.Unlock()
	x, err := c.find(e.container)
	if err != nil {
		return err
	}
	x.mu.Lock()
	cl := x.shim
	rec := x.rec
	x.mu.Unlock()
	if cl == nil || rec.State.Status != container.StateRunning {
		return errNotRunning(rec.ID)
	}
	proc, err := c.execSpec(&rec, e.req)
	if err != nil {
		return err
	}
	so := shim.ExecOptions{ID: e.id[:16], Process: proc, Tty: e.req.Tty}
	if !opts.Detach {
		if e.req.AttachStdout {
			so.Stdout = opts.Stdout
		}
		if e.req.AttachStderr {
			so.Stderr = opts.Stderr
		}
		if e.req.AttachStdin && opts.Stdin != nil {
			keys, _ := parseDetachKeys(e.req.DetachKeys)
			so.Stdin = &detachReader{r: opts.Stdin, keys: keys, detach: func() {}}
		}
	}
	if cs := opts.ConsoleSize; cs != nil && e.req.Tty {
		proc.ConsoleSize = &specs.Box{Height: cs[0], Width: cs[1]}
	} else if cs := e.req.ConsoleSize; cs != nil && e.req.Tty {
		proc.ConsoleSize = &specs.Box{Height: cs[0], Width: cs[1]}
	}
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	c.publish(&rec, events.Action("exec_start: "+strings.Join(e.req.Cmd, " ")), map[string]string{"execID": e.id})
	run := func(ctx context.Context) error {
		code, err := cl.Exec(ctx, so)
		e.mu.Lock()
		e.running = false
		if err == nil {
			e.exitCode = &code
		}
		e.mu.Unlock()
		close(e.done)
		if err == nil {
			c.publish(&rec, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": fmt.Sprint(code)})
		}
		return err
	}
	if opts.Detach {
		go run(c.ctx)
		return nil
	}
	return run(ctx)
}

// execSpec builds the exec's process from the container's config.json.
func (c *Containers) execSpec(rec *record, req container.ExecCreateRequest) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(c.bundle(rec.ID), "config.json"))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, err
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("%w: the container's configuration has no process", errdefs.ErrFailedPrecondition)
	}
	base := *spec.Process
	return ocispec.ExecProcess(&base, c.rootfs(rec.ID), ocispec.ExecOptions{
		Cmd: req.Cmd, Env: req.Env, User: req.User, WorkingDir: req.WorkingDir, Tty: req.Tty, Privileged: req.Privileged,
	})
}

// ExecInspect describes an exec.
func (c *Containers) ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error) {
	e, err := c.findExec(execID)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	keys, _ := parseDetachKeys(e.req.DetachKeys)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running && e.pid == 0 {
		// The shim keeps the exec's pid in a file while it runs.
		if data, err := os.ReadFile(filepath.Join(c.shimDir(e.container), "exec-"+e.id[:16]+".pid")); err == nil {
			e.pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		}
	}
	resp := container.ExecInspectResponse{
		ID: e.id, ContainerID: e.container, Running: e.running, ExitCode: e.exitCode, Pid: e.pid,
		OpenStdin: e.req.AttachStdin, OpenStdout: e.req.AttachStdout, OpenStderr: e.req.AttachStderr,
		DetachKeys: keys, CanRemove: false,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.req.Tty, Entrypoint: e.req.Cmd[0], Arguments: e.req.Cmd[1:], User: e.req.User, Privileged: &e.req.Privileged},
	}
	return resp, nil
}

// ExecResize sets the terminal size of a running exec.
func (c *Containers) ExecResize(ctx context.Context, execID string, height, width uint) error {
	e, err := c.findExec(execID)
	if err != nil {
		return err
	}
	x, err := c.find(e.container)
	if err != nil {
		return err
	}
	x.mu.Lock()
	cl := x.shim
	x.mu.Unlock()
	if cl == nil {
		return errNotRunning(e.container)
	}
	return cl.Resize(ctx, e.id[:16], uint16(width), uint16(height))
}
