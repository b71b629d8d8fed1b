package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"berth.dev/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Ready is the message berth-shim writes on its --ready-fd: the
// container's pid, or why it could not be created.
type Ready struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// LogOptions bound the json-file log.
type LogOptions struct {
	MaxSize  int64 // bytes of the live file past which it is rotated; 0 never rotates
	MaxFiles int   // files kept, the live one included; 0 means 1
}

// StartOptions are the flags berth-shim is started with.
type StartOptions struct {
	Binary      string // berth-shim; found in $PATH when empty
	ID          string
	Bundle      string
	Dir         string
	Runtime     string
	RuntimeRoot string
	LogPath     string
	Log         LogOptions
	Stdin       bool
	Tty         bool
	// Deferred leaves the container uncreated until StartProcess, which
	// creates and starts it with one `runtime run --detach`: one runtime
	// process per start instead of two (create, then start). Start then
	// reports pid 0.
	Deferred bool
}

// Client talks to the shim of one container through <dir>/shim.sock. Each
// call uses a connection of its own, so a Client is safe for concurrent use.
type Client struct {
	dir string
}

// Start execs berth-shim detached (in a session of its own, so that it
// outlives the caller) and waits until the container is created (with
// o.Deferred, until the shim is ready to create it). A failed create
// returns the runtime's message, wrapped with errdefs.ErrFailedPrecondition.
func Start(ctx context.Context, o StartOptions) (*Client, int, error) {
	bin := o.Binary
	if bin == "" {
		bin = "berth-shim"
	}
	args := []string{"--id", o.ID, "--bundle", o.Bundle, "--dir", o.Dir, "--runtime", o.Runtime,
		"--log-max-size", strconv.FormatInt(o.Log.MaxSize, 10), "--log-max-files", strconv.Itoa(o.Log.MaxFiles),
		"--ready-fd", "3"}
	if o.RuntimeRoot != "" {
		args = append(args, "--runtime-root", o.RuntimeRoot)
	}
	if o.LogPath != "" {
		args = append(args, "--log-path", o.LogPath)
	}
	if o.Stdin {
		args = append(args, "--stdin")
	}
	if o.Tty {
		args = append(args, "--tty")
	}
	if o.Deferred {
		args = append(args, "--deferred")
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("start shim for %s: %w", o.ID, err)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("start shim for %s: %w", o.ID, err)
	}
	logf, err := os.OpenFile(filepath.Join(o.Dir, "shim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("start shim for %s: %w", o.ID, err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	// The shim is started as berth-shim's daemonize would re-execute
	// itself (a session of its own, the Go runtime's settings in its
	// environment, its output in shim.log), which saves a process start.
	// It stays the caller's child: a goroutine reaps it when it exits.
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), DaemonEnvironment()...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("start shim for %s: %w", o.ID, err)
	}
	go cmd.Wait()
	type result struct {
		ready Ready
		err   error
	}
	got := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(r)
		var res result
		if err == nil && len(data) == 0 {
			err = fmt.Errorf("shim exited before it was ready (see %s): %w",
				filepath.Join(o.Dir, "shim.log"), errdefs.ErrUnavailable)
		} else if err == nil {
			err = json.Unmarshal(data, &res.ready)
		}
		res.err = err
		got <- res
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		// The shim goes on with the create: its answer (or its exit)
		// comes soon, and once it is in, the caller's cleanup (the
		// runtime's delete) finds whatever the create made; returning
		// before it would leave a container created after that cleanup.
		<-got
		return nil, 0, fmt.Errorf("start shim for %s: %w", o.ID, ctx.Err())
	}
	if res.err != nil {
		return nil, 0, fmt.Errorf("start shim for %s: %w", o.ID, res.err)
	}
	if res.ready.Error != "" {
		return nil, 0, fmt.Errorf("create %s: %s: %w", o.ID, res.ready.Error, errdefs.ErrFailedPrecondition)
	}
	return &Client{dir: o.Dir}, res.ready.Pid, nil
}

// Connect returns a Client for the shim already running in dir (after the
// engine restarted). It fails with errdefs.ErrUnavailable when no shim
// answers there; ReadExit then tells whether the container exited.
func Connect(ctx context.Context, dir string) (*Client, error) {
	c := &Client{dir: dir}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return c, nil
}

// Dir is the shim's directory.
func (c *Client) Dir() string { return c.dir }

func (c *Client) dial(ctx context.Context) (*os.File, error) {
	conn, err := dialUnix(ctx, filepath.Join(c.dir, SocketFile))
	if err != nil {
		return nil, fmt.Errorf("connect to shim in %s: %w: %w", c.dir, errdefs.ErrUnavailable, err)
	}
	return conn, nil
}

// call sends req and reads the response; the connection is returned open
// with its reader for streaming ops, and closed otherwise.
func (c *Client) call(ctx context.Context, req Request, keep bool) (Response, *os.File, *bufio.Reader, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return Response{}, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	data, _ := json.Marshal(req)
	if _, err := conn.Write(append(data, '\n')); err != nil {
		conn.Close()
		return Response{}, nil, nil, fmt.Errorf("shim %s: %w", req.Op, err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Response{}, nil, nil, fmt.Errorf("shim %s: %w", req.Op, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		conn.Close()
		return Response{}, nil, nil, fmt.Errorf("shim %s: bad response: %w", req.Op, err)
	}
	if err := resp.err(); err != nil || !keep {
		conn.Close()
		return resp, nil, nil, err
	}
	return resp, conn, br, nil
}

// StartContainer runs `runtime start` (for a deferred shim, `runtime run
// --detach`).
func (c *Client) StartContainer(ctx context.Context) error {
	_, err := c.StartProcess(ctx)
	return err
}

// StartProcess is StartContainer returning the container's pid. A failed
// create of a deferred shim returns the runtime's message, wrapped with
// errdefs.ErrFailedPrecondition, and the shim exits.
func (c *Client) StartProcess(ctx context.Context) (int, error) {
	resp, _, _, err := c.call(ctx, Request{Op: OpStart}, false)
	return resp.Pid, err
}

// Kill sends sig to the container's init (to every process with all).
func (c *Client) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	_, _, _, err := c.call(ctx, Request{Op: OpKill, Signal: int(sig), All: all}, false)
	return err
}

// Resize sets the container's terminal size; execID names an exec's
// terminal instead when not empty.
func (c *Client) Resize(ctx context.Context, execID string, width, height uint16) error {
	_, _, _, err := c.call(ctx, Request{Op: OpResize, Exec: execID, Width: width, Height: height}, false)
	return err
}

// State is the container as its shim sees it.
type State struct {
	Pid    int
	Status string // StatusCreated, StatusRunning or StatusStopped
	Exit   *Exit  // set once stopped
}

// State asks the shim for the container's state.
func (c *Client) State(ctx context.Context) (State, error) {
	resp, _, _, err := c.call(ctx, Request{Op: OpState}, false)
	if err != nil {
		return State{}, err
	}
	return State{Pid: resp.Pid, Status: resp.Status, Exit: resp.Exit}, nil
}

// Wait blocks until the container has exited and returns its exit. When
// the shim is gone (it exits right after the container) the exit files
// answer instead.
func (c *Client) Wait(ctx context.Context) (Exit, error) {
	resp, _, _, err := c.call(ctx, Request{Op: OpWait}, false)
	if err == nil && resp.Exit != nil {
		return *resp.Exit, nil
	}
	if ctx.Err() != nil {
		return Exit{}, ctx.Err()
	}
	if e, rerr := ReadExit(c.dir); rerr == nil {
		return e, nil
	}
	if err == nil {
		err = fmt.Errorf("shim closed without an exit: %w", errdefs.ErrUnavailable)
	}
	return Exit{}, err
}

// Streams are the ends of an attach or exec; nil members are not wanted.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// CloseStdin closes the process's stdin when Stdin ends.
	CloseStdin bool
}

// Attach streams the container's stdio until its output ends (it exited)
// or ctx is done. With tty the output is raw and goes to Stdout.
func (c *Client) Attach(ctx context.Context, s Streams, tty bool) error {
	a, err := c.AttachStream(ctx, s, tty)
	if err != nil {
		return err
	}
	return a.Wait()
}

// Attached is an attach in progress.
type Attached struct {
	done chan struct{}
	err  error
}

// Wait blocks until the attach ends: the container's output ended, or the
// context given to AttachStream was done.
func (a *Attached) Wait() error {
	<-a.done
	return a.err
}

// AttachStream is Attach that returns once the shim has taken the client
// in, so that a container started afterwards loses no output to it.
func (c *Client) AttachStream(ctx context.Context, s Streams, tty bool) (*Attached, error) {
	req := Request{Op: OpAttach, Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil, CloseStdin: s.CloseStdin}
	_, conn, br, err := c.call(ctx, req, true)
	if err != nil {
		return nil, err
	}
	a := &Attached{done: make(chan struct{})}
	go func() {
		a.err = stream(ctx, conn, br, s, tty)
		close(a.done)
	}()
	return a, nil
}

// stream copies s.Stdin to conn and conn's output to s until the output
// ends.
func stream(ctx context.Context, conn *os.File, br *bufio.Reader, s Streams, tty bool) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.Stdin != nil {
		go func() {
			io.Copy(conn, s.Stdin)
			closeWrite(conn)
		}()
	}
	var err error
	if tty {
		out := s.Stdout
		if out == nil {
			out = io.Discard
		}
		_, err = io.Copy(out, br)
	} else {
		err = Demux(br, s.Stdout, s.Stderr)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("attach: %w", err)
	}
	return nil
}

// ExecOptions describe a process to run in the running container.
type ExecOptions struct {
	ID      string // unique among the container's execs; no / or .
	Process *specs.Process
	Tty     bool
	Streams
}

// Exec runs a process in the container, streams its stdio until it ends
// and returns its exit code (Docker's: 128+signal when killed).
func (c *Client) Exec(ctx context.Context, o ExecOptions) (int, error) {
	req := Request{Op: OpExec, ID: o.ID, Process: o.Process, Tty: o.Tty, Stdin: o.Stdin != nil}
	_, conn, br, err := c.call(ctx, req, true)
	if err != nil {
		return 0, err
	}
	s := o.Streams
	s.CloseStdin = true
	if err := stream(ctx, conn, br, s, o.Tty); err != nil {
		return 0, err
	}
	return readExecExit(c.dir, o.ID)
}

func readExecExit(dir, id string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "exec-"+id+".exit"))
	if err != nil {
		return 0, fmt.Errorf("exec %s: exit code: %w: %w", id, errdefs.ErrUnavailable, err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("exec %s: exit code %q: %w", id, data, errdefs.ErrInvalidArgument)
	}
	return code, nil
}
