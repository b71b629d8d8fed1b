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
	"sync"
	"sync/atomic"
	"time"

	"berth.dev/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config is what berth-shim is started with.
type Config struct {
	ID          string // container id
	Bundle      string // OCI bundle (config.json, rootfs)
	Dir         string // the shim's directory: socket, exit files
	Runtime     string // OCI runtime binary (berth-runtime, runc, crun)
	RuntimeRoot string // the runtime's --root; empty for its default
	LogPath     string // json-file log; empty for none
	Log         LogOptions
	Stdin       bool // keep a stdin pipe for attach -i
	Tty         bool // give the container a terminal
	// Deferred: the container is created and started by the start
	// request, with `runtime run --detach`, not created by New.
	Deferred bool
}

// Shim monitors one container: New creates it through the runtime, Serve
// answers clients until it has exited.
type Shim struct {
	cfg         Config
	runtimePath string // cfg.Runtime found in $PATH
	reaper      *reaper
	io          *processIO
	pid         int
	cgroup      string   // the container's memory cgroup directory, for OOM kills
	l           *os.File // the listening socket

	mu     sync.Mutex
	status string
	exit   *Exit
	exited chan struct{} // closed once exit is recorded
	// started is closed once the container runs, or, deferred, once its
	// start failed (startErr) or never came (startTimeout).
	started  chan struct{}
	startErr error
	execs    map[string]*processIO
	// consoles numbers the console sockets.
	consoles atomic.Int64
	conns    sync.WaitGroup
}

// New makes the shim a child subreaper, listens on its socket and runs
// `runtime create`. The error of a failed create carries the runtime's
// message.
func New(ctx context.Context, cfg Config) (_ *Shim, err error) {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.Dir == "" || cfg.Runtime == "" {
		return nil, fmt.Errorf("shim: id, bundle, dir and runtime are required: %w", errdefs.ErrInvalidArgument)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("shim: become child subreaper: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("shim: %w", err)
	}
	if err := writeFile(cfg.Dir, PidFile, []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		return nil, fmt.Errorf("shim: %w", err)
	}
	runtimePath, err := exec.LookPath(cfg.Runtime)
	if err != nil {
		return nil, fmt.Errorf("shim: runtime: %w: %w", errdefs.ErrNotFound, err)
	}
	s := &Shim{cfg: cfg, runtimePath: runtimePath, reaper: newReaper(), status: StatusCreated, exited: make(chan struct{}), execs: map[string]*processIO{}}
	sock := filepath.Join(cfg.Dir, SocketFile)
	os.Remove(sock)
	if s.l, err = listenUnix(sock); err != nil {
		return nil, fmt.Errorf("shim: listen: %w", err)
	}
	defer func() {
		if err != nil {
			s.l.Close()
		}
	}()
	log, err := openLog(cfg.LogPath, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("shim: %w", err)
	}
	s.started = make(chan struct{})
	if cfg.Deferred {
		if s.io, err = newIO(cfg.Tty, cfg.Stdin); err != nil {
			log.Close()
			return nil, err
		}
		s.io.log = log
		// An engine gone before the start leaves no shim behind for long.
		time.AfterFunc(startTimeout, func() {
			s.startFailed(fmt.Errorf("not started within %v", startTimeout), false)
		})
		return s, nil
	}
	pio, pid, err := s.runWithIO(ctx, cfg.Tty, cfg.Stdin, "init", "create", "--bundle", cfg.Bundle)
	if err != nil {
		log.Close()
		return nil, err
	}
	pio.log = log
	s.io, s.pid = pio, pid
	s.cgroup = memoryCgroup(pid)
	pio.start()
	close(s.started)
	return s, nil
}

// startTimeout bounds how long a deferred shim waits for its start.
const startTimeout = time.Minute

// run creates and starts a deferred shim's container with `runtime run
// --detach`.
func (s *Shim) run(ctx context.Context) error {
	s.mu.Lock()
	if s.status != StatusCreated || s.startErr != nil || s.pid != 0 {
		s.mu.Unlock()
		return fmt.Errorf("container is %s: %w", s.status, errdefs.ErrConflict)
	}
	s.pid = -1 // starting: a second start is refused
	s.mu.Unlock()
	pid, err := s.runProcess(ctx, s.io, "init", "run", "--detach", "--bundle", s.cfg.Bundle)
	if err != nil {
		err = fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
		s.startFailed(err, true)
		return err
	}
	s.mu.Lock()
	s.pid, s.status = pid, StatusRunning
	s.cgroup = memoryCgroup(pid)
	s.mu.Unlock()
	s.io.start()
	close(s.started)
	return nil
}

// startFailed ends a deferred shim whose container did not start (run's
// failure, with starting) or was not started in time: Serve returns once
// the clients have their answer. A start under way is left to finish.
func (s *Shim) startFailed(err error, starting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.startErr != nil || s.pid != 0 && !starting {
		return
	}
	s.startErr = err
	close(s.started)
}

// Pid is the container's init pid.
func (s *Shim) Pid() int { return s.pid }

// runWithIO runs a runtime command that makes a process (create, or exec
// -d), with new stdio for it, and returns the stdio and the pid.
func (s *Shim) runWithIO(ctx context.Context, tty, stdin bool, name string, args ...string) (*processIO, int, error) {
	pio, err := newIO(tty, stdin)
	if err != nil {
		return nil, 0, err
	}
	pid, err := s.runProcess(ctx, pio, name, args...)
	if err != nil {
		return nil, 0, err
	}
	return pio, pid, nil
}

// newIO makes the stdio of a process: pipes, or with tty a pty whose
// master the runtime sends over a console socket.
func newIO(tty, stdin bool) (*processIO, error) {
	if tty {
		return newTTYIO()
	}
	return newPipeIO(stdin)
}

// runProcess runs a runtime command that makes a process with stdio pio
// and returns its pid; on error pio is closed.
func (s *Shim) runProcess(ctx context.Context, pio *processIO, name string, args ...string) (int, error) {
	var console *consoleSocket
	var err error
	if pio.wantTTY {
		// A short name: the path must fit a sockaddr_un (108 bytes) in a
		// directory that already holds a 64-hex container ID.
		if console, err = listenConsole(filepath.Join(s.cfg.Dir, fmt.Sprintf("c%d.sock", s.consoles.Add(1)))); err != nil {
			pio.closeChild()
			pio.close()
			return 0, err
		}
		defer console.close()
		args = append(args, "--console-socket", console.path)
	}
	pidFile := filepath.Join(s.cfg.Dir, name+".pid")
	os.Remove(pidFile)
	args = append(args, "--pid-file", pidFile, s.cfg.ID)
	err = s.runtime(ctx, pio.child, args...)
	pio.closeChild()
	if err == nil && console != nil {
		var master *os.File
		if master, err = console.master(); err == nil {
			pio.setTTY(master)
		}
	}
	var pid int
	if err == nil {
		pid, err = readPid(pidFile)
	}
	if err != nil {
		pio.close()
		return 0, err
	}
	return pid, nil
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("shim: read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("shim: pid file %s holds %q", path, data)
	}
	return pid, nil
}

// runtime runs the OCI runtime with stdio (nil entries get /dev/null) and
// waits for it through the reaper. A failure carries the runtime's last
// logged error.
func (s *Shim) runtime(ctx context.Context, stdio [3]*os.File, args ...string) error {
	logPath := filepath.Join(s.cfg.Dir, "runtime.log")
	global := []string{"--log", logPath, "--log-format", "json"}
	if s.cfg.RuntimeRoot != "" {
		global = append(global, "--root", s.cfg.RuntimeRoot)
	}
	for i, f := range stdio {
		if f == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer null.Close()
			stdio[i] = null
		}
	}
	before := fileSize(logPath)
	// os.StartProcess rather than os/exec: no path search and environment
	// copy at each call (the path was resolved by New), less garbage left
	// resident in an idle shim.
	argv := append(append([]string{s.runtimePath}, global...), args...)
	proc, err := os.StartProcess(s.runtimePath, argv, &os.ProcAttr{Files: stdio[:]})
	if err != nil {
		return fmt.Errorf("shim: run %s: %w", s.cfg.Runtime, err)
	}
	var st unix.WaitStatus
	select {
	case st = <-s.reaper.wait(proc.Pid):
	case <-ctx.Done():
		proc.Kill()
		st = <-s.reaper.wait(proc.Pid)
	}
	proc.Release()
	if st.Exited() && st.ExitStatus() == 0 {
		return nil
	}
	msg := lastRuntimeError(logPath, before)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", exitCode(st))
	}
	return fmt.Errorf("%s %s: %s", filepath.Base(s.cfg.Runtime), args[0], msg)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// lastRuntimeError is the message of the last error the runtime logged
// after offset in its JSON log.
func lastRuntimeError(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return ""
	}
	var msg string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Level == "error" {
			msg = e.Msg
		}
	}
	return msg
}

// memoryCgroup finds the directory of pid's memory cgroup (v2, or the v1
// memory hierarchy), where the kernel counts OOM kills; "" if unknown.
func memoryCgroup(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			return filepath.Join("/sys/fs/cgroup", parts[2])
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", parts[2])
			}
		}
	}
	return ""
}

// oomKilled reports whether the kernel OOM-killed a process in the cgroup
// (memory.events on v2, memory.oom_control on v1: both have oom_kill).
func oomKilled(dir string) bool {
	if dir == "" {
		return false
	}
	for _, name := range []string{"memory.events", "memory.oom_control"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				return n > 0
			}
		}
	}
	return false
}

// Serve answers clients until the container has exited, its output is
// drained and its exit recorded; then it closes the socket and returns.
func (s *Shim) Serve(ctx context.Context) error {
	go s.accept()
	<-s.started
	if err := s.startErr; err != nil {
		return s.endUnstarted(err)
	}
	st := <-s.reaper.wait(s.pid)
	exit := Exit{Code: exitCode(st), ExitedAt: time.Now().UTC(), OOM: oomKilled(s.cgroup)}
	// Processes of the container that outlive its init (a host PID
	// namespace) may hold the output open: give the output a bound.
	select {
	case <-s.io.done:
	case <-time.After(5 * time.Second):
	}
	s.io.detachAll()
	werr := writeExit(s.cfg.Dir, exit)
	lerr := s.io.log.Close()
	s.mu.Lock()
	s.status, s.exit = StatusStopped, &exit
	close(s.exited)
	s.mu.Unlock()
	s.l.Close()
	os.Remove(filepath.Join(s.cfg.Dir, SocketFile))
	// Let the connections answer their waiters.
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.io.close()
	return errors.Join(werr, lerr)
}

// endUnstarted ends a deferred shim whose container never ran: its
// clients are detached, its waiters answered with the error.
func (s *Shim) endUnstarted(err error) error {
	s.io.detachAll()
	s.io.log.Close()
	s.mu.Lock()
	s.status = StatusStopped
	close(s.exited)
	s.mu.Unlock()
	s.l.Close()
	os.Remove(filepath.Join(s.cfg.Dir, SocketFile))
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.io.close()
	return err
}

func (s *Shim) accept() {
	for {
		conn, err := accept(s.l)
		if err != nil {
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			defer conn.Close()
			s.handle(conn)
		}()
	}
}

func (s *Shim) handle(conn *os.File) {
	// A small buffer: each request leaves it as garbage, and a shim that
	// is asked for its state every second should take long to reach the
	// collector's goal. Longer lines (an exec's process) are still read whole.
	r := bufio.NewReaderSize(conn, requestBufSize)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return
	}
	req, err := decodeRequest(line)
	if err != nil {
		reply(conn, errorResponse(err))
		return
	}
	switch req.Op {
	case OpAttach:
		s.attach(conn, r, req)
	case OpExec:
		s.exec(conn, r, req)
	case OpWait:
		select {
		case <-s.exited:
		case <-s.closedBy(r):
			return
		}
		reply(conn, s.state())
	default:
		reply(conn, s.control(req.Request))
	}
}

// closedBy returns a channel closed when the client hangs up.
func (s *Shim) closedBy(r *bufio.Reader) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		r.ReadByte()
		close(ch)
	}()
	return ch
}

func reply(conn io.Writer, r Response) error {
	_, err := conn.Write(append(r.appendJSON(nil), '\n'))
	return err
}

func (s *Shim) state() Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Response{Pid: max(s.pid, 0), Status: s.status, Exit: s.exit}
}

// control runs the requests that need no stream.
func (s *Shim) control(req Request) Response {
	ctx := context.Background()
	var err error
	switch req.Op {
	case OpState:
		return s.state()
	case OpStart:
		if s.cfg.Deferred {
			err = s.run(ctx)
			break
		}
		s.mu.Lock()
		if s.status != StatusCreated {
			s.mu.Unlock()
			return errorResponse(fmt.Errorf("container is %s: %w", s.status, errdefs.ErrConflict))
		}
		s.mu.Unlock()
		if err = s.runtime(ctx, [3]*os.File{}, "start", s.cfg.ID); err == nil {
			s.mu.Lock()
			if s.status == StatusCreated {
				s.status = StatusRunning
			}
			s.mu.Unlock()
		}
	case OpKill:
		if s.state().Status == StatusStopped {
			return errorResponse(fmt.Errorf("container has exited: %w", errdefs.ErrFailedPrecondition))
		}
		if s.cfg.Deferred && s.state().Pid <= 0 {
			return errorResponse(fmt.Errorf("container is not running: %w", errdefs.ErrFailedPrecondition))
		}
		args := []string{"kill"}
		if req.All {
			args = append(args, "--all")
		}
		sig := req.Signal
		if sig == 0 {
			sig = int(unix.SIGTERM)
		}
		err = s.runtime(ctx, [3]*os.File{}, append(args, s.cfg.ID, strconv.Itoa(sig))...)
	case OpResize:
		pio := s.io
		if req.Exec != "" {
			s.mu.Lock()
			pio = s.execs[req.Exec]
			s.mu.Unlock()
			if pio == nil {
				return errorResponse(fmt.Errorf("exec %s: %w", req.Exec, errdefs.ErrNotFound))
			}
		}
		if err = pio.resize(req.Width, req.Height); errors.Is(err, errNoTTY) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
		}
	default:
		err = fmt.Errorf("unknown op %q: %w", req.Op, errdefs.ErrNotImplemented)
	}
	if err != nil {
		return errorResponse(err)
	}
	return s.state()
}

// attach streams the container's stdio over conn until its output ends
// or the client goes away.
func (s *Shim) attach(conn *os.File, r *bufio.Reader, req wireRequest) {
	// A deferred shim's terminal comes with the start; a stdin pipe
	// exists from the first.
	if req.Stdin && !s.io.wantTTY && s.io.stdinWriter() == nil {
		reply(conn, errorResponse(fmt.Errorf("container has no stdin: %w", errdefs.ErrFailedPrecondition)))
		return
	}
	// Registered before the reply, so that a client that attaches before
	// start misses no output.
	c := &client{w: conn, stdout: req.Stdout, stderr: req.Stderr}
	s.io.attach(c)
	if err := reply(conn, s.state()); err != nil {
		return
	}
	if req.Stdin {
		go func() {
			<-s.started
			if s.startErr == nil {
				s.io.copyInput(r, req.CloseStdin)
			}
		}()
	}
	<-c.gone
}

// exec runs a process in the container with `runtime exec -d` and streams
// its stdio over conn; once it has exited and its output is drained, its
// exit code is written to exec-<id>.exit and the connection closed.
func (s *Shim) exec(conn *os.File, r *bufio.Reader, req wireRequest) {
	pio, pid, err := s.startExec(req)
	if err != nil {
		reply(conn, errorResponse(err))
		return
	}
	defer func() {
		s.mu.Lock()
		delete(s.execs, req.ID)
		s.mu.Unlock()
		pio.close()
		os.Remove(filepath.Join(s.cfg.Dir, "exec-"+req.ID+".json"))
		os.Remove(filepath.Join(s.cfg.Dir, "exec-"+req.ID+".pid"))
	}()
	c := &client{w: conn, stdout: true, stderr: true}
	pio.attach(c)
	status := s.reaper.wait(pid)
	if err := reply(conn, Response{Pid: pid, Status: StatusRunning}); err != nil {
		pio.detachAll()
	}
	pio.start()
	if req.Stdin {
		go pio.copyInput(r, true)
	}
	st := <-status
	select {
	case <-pio.done:
	case <-time.After(5 * time.Second):
	}
	pio.detachAll()
	writeFile(s.cfg.Dir, "exec-"+req.ID+".exit", []byte(strconv.Itoa(exitCode(st))+"\n"))
}

func (s *Shim) startExec(req wireRequest) (*processIO, int, error) {
	if req.ID == "" || strings.ContainsAny(req.ID, "/.") || req.process == nil {
		return nil, 0, fmt.Errorf("exec needs an id (no / or .) and a process: %w", errdefs.ErrInvalidArgument)
	}
	if s.state().Status != StatusRunning {
		return nil, 0, fmt.Errorf("container is not running: %w", errdefs.ErrFailedPrecondition)
	}
	s.mu.Lock()
	if _, ok := s.execs[req.ID]; ok {
		s.mu.Unlock()
		return nil, 0, fmt.Errorf("exec %s: %w", req.ID, errdefs.ErrAlreadyExists)
	}
	s.execs[req.ID] = nil
	s.mu.Unlock()
	name := "exec-" + req.ID
	var p specs.Process
	err := json.Unmarshal(req.process, &p)
	if err != nil {
		err = fmt.Errorf("exec %s: process: %w: %w", req.ID, errdefs.ErrInvalidArgument, err)
	}
	p.Terminal = req.Tty
	var data []byte
	if err == nil {
		data, err = json.Marshal(&p)
	}
	if err == nil {
		err = writeFile(s.cfg.Dir, name+".json", data)
	}
	var pio *processIO
	var pid int
	if err == nil {
		pio, pid, err = s.runWithIO(context.Background(), req.Tty, req.Stdin, name,
			"exec", "--process", filepath.Join(s.cfg.Dir, name+".json"), "--detach")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.execs, req.ID)
		return nil, 0, err
	}
	s.execs[req.ID] = pio
	return pio, pid, nil
}

// requestBufSize buffers a connection's reads: enough for a request line
// other than exec's and for input of attach and exec.
const requestBufSize = 512
