package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	"berth.dev/cgroups"
	"berth.dev/runtime/nsenter"
	"berth.dev/runtime/wire"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsFlags maps the runtime specification's namespace types to clone flags.
var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// nsJoin is a namespace to enter by path.
type nsJoin struct {
	typ  specs.LinuxNamespaceType
	path string
}

// bootstrap is what stage 0 needs: which namespaces to join and to create.
type bootstrap struct {
	// cgroupTasks are v1 "tasks" files stage 0 writes "0" into, first of
	// all, to move itself into the container's cgroup.
	cgroupTasks []string
	joins       []nsJoin
	cloneFlags  uintptr
	timeOffsets map[string]specs.LinuxTimeOffset
	uidMappings []specs.LinuxIDMapping
	gidMappings []specs.LinuxIDMapping
	// procfsFD, when positive, asks the init for a procfs context at that
	// descriptor (see nsenter.c), for prepareRootfs; spawnConfig.procfs
	// sets it to the first descriptor after those the init is given.
	procfsFD int
	// cgroupLater: the cgroup lines come in a second message, once the
	// cgroup exists (spawnConfig.lateCgroup).
	cgroupLater bool
}

func (b *bootstrap) encode() string {
	var sb strings.Builder
	for _, f := range b.cgroupTasks {
		fmt.Fprintf(&sb, "cgroup %s\n", f)
	}
	// The user namespace is joined first: it decides what may be joined
	// after it. nsenter.c relies on nothing else about the order.
	for _, j := range b.joins {
		if j.typ == specs.UserNamespace {
			fmt.Fprintf(&sb, "join %s %s\n", j.typ, j.path)
		}
	}
	for _, j := range b.joins {
		if j.typ != specs.UserNamespace {
			fmt.Fprintf(&sb, "join %s %s\n", j.typ, j.path)
		}
	}
	if b.cloneFlags != 0 {
		fmt.Fprintf(&sb, "clone %d\n", b.cloneFlags)
	}
	for clock, off := range b.timeOffsets {
		fmt.Fprintf(&sb, "timens %s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if b.procfsFD > 0 {
		fmt.Fprintf(&sb, "procfs %d\n", b.procfsFD)
	}
	if b.cgroupLater {
		sb.WriteString("cgroup-later\n")
	}
	sb.WriteString("end\n")
	return sb.String()
}

// initProcess is the runtime's side of a container init (or exec'd process)
// that has passed stage 0.
type initProcess struct {
	pid  int
	sock *os.File
	// r buffers what the init sends: stage 0's report lines, then the
	// messages (read through it, so nothing read ahead is lost).
	r *bufio.Reader
	// procfsFD is where the init holds a procfs context, 0 if it has none.
	procfsFD int
}

type spawnConfig struct {
	boot   bootstrap
	cgroup cgroups.Manager
	// lateCgroup, if set, makes the cgroup (into cgroup) once stage 0 is
	// started: on a v1 host, and without a new user namespace, stage 0
	// joins it by its tasks files after making the namespaces, so the
	// runtime creates it while stage 0 starts (0.5-1 ms).
	lateCgroup func() (cgroups.Manager, error)
	// procfs asks the init for a procfs context (bootstrap.procfsFD).
	procfs bool
	// files are passed to the init as descriptors 3, 4, ... in order.
	files                 []*os.File
	stdin, stdout, stderr *os.File
}

// spawn starts the init from a sealed copy of this binary, puts it in its
// cgroup, and runs stage 0's bootstrap. It returns once the final process
// (the child stage 0 forks) exists; on error nothing is left running.
func spawn(c *spawnConfig) (*initProcess, error) {
	exe, err := sealedExe()
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	joined, cgroupDir := true, (*os.File)(nil)
	if c.lateCgroup != nil {
		c.boot.cgroupLater = true
	} else if joined, cgroupDir, err = c.cgroupEntry(); err != nil {
		return nil, err
	}
	if cgroupDir != nil {
		defer cgroupDir.Close()
	}
	s, err := c.startStage0(exe, cgroupDir, joined)
	if err != nil && cgroupDir != nil {
		// A kernel without clone3(CLONE_INTO_CGROUP) (before 5.7): start
		// outside and move the process in by pid.
		joined = false
		s, err = c.startStage0(exe, nil, false)
	}
	if err != nil {
		return nil, fmt.Errorf("start container init: %w", err)
	}
	if c.lateCgroup != nil {
		if err := c.joinLate(s); err != nil {
			s.kill()
			s.wait()
			s.sock.Close()
			return nil, err
		}
	}
	p, err := s.bootstrap(c, joined)
	// Stage 0 exits once it has forked; reap it.
	if werr := s.wait(); err == nil && werr != nil {
		err = fmt.Errorf("container init stage 0: %w", werr)
	}
	if err != nil {
		s.sock.Close()
		if p != nil {
			p.kill()
		}
		return nil, err
	}
	return p, nil
}

// stage0 is a started stage 0 process and the runtime's end of its socket.
type stage0 struct {
	pid  int
	sock *os.File
	// sent: the bootstrap went into the socket before the process
	// started.
	sent bool
}

// maxEarlyBootstrap bounds the bootstrap written before stage 0 exists:
// the socket buffer must take it without blocking.
const maxEarlyBootstrap = 32 << 10

// startStage0 starts the sealed binary as stage 0, born in cgroupDir if
// not nil. When the init's cgroup needs no move by pid (joined), the
// bootstrap is written into the socket first, so stage 0 finds it there
// instead of waiting for this process to come back from the fork. The
// process is started with syscall.ForkExec rather than os/exec, whose
// first start in a process checks pidfd support with an extra fork
// (0.3 ms).
func (c *spawnConfig) startStage0(exe *os.File, cgroupDir *os.File, joined bool) (*stage0, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "init-sock-parent")
	child := os.NewFile(uintptr(fds[1]), "init-sock-child")
	defer child.Close()
	s := &stage0{sock: parent}
	files := append([]*os.File{c.stdin, c.stdout, c.stderr}, c.files...)
	files = append(files, child)
	if c.procfs {
		c.boot.procfsFD = len(files)
	}
	if msg := c.boot.encode(); (joined || c.cgroup == nil) && len(msg) <= maxEarlyBootstrap {
		if _, err := parent.WriteString(msg); err != nil {
			parent.Close()
			return nil, fmt.Errorf("send bootstrap: %w", err)
		}
		s.sent = true
	}
	attr := &syscall.ProcAttr{
		Env:   []string{nsenter.Env + "=" + strconv.Itoa(len(files)-1)},
		Files: make([]uintptr, len(files)),
	}
	for i, f := range files {
		attr.Files[i] = f.Fd()
	}
	if cgroupDir != nil {
		attr.Sys = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgroupDir.Fd())}
	}
	path := "/proc/self/fd/" + strconv.Itoa(int(exe.Fd()))
	s.pid, err = syscall.ForkExec(path, []string{"berth-runtime", "init"}, attr)
	goruntime.KeepAlive(files)
	if err != nil {
		parent.Close()
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	return s, nil
}

// kill ends stage 0 (which wait then reaps).
func (s *stage0) kill() { unix.Kill(s.pid, unix.SIGKILL) }

// wait reaps stage 0 and reports an unsuccessful exit.
func (s *stage0) wait() error {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(s.pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("wait4", err)
		}
		break
	}
	switch {
	case ws.Signaled():
		return fmt.Errorf("signal: %v", ws.Signal())
	case ws.ExitStatus() != 0:
		return fmt.Errorf("exit status %d", ws.ExitStatus())
	}
	return nil
}

// joinLate makes the cgroup and sends stage 0 the second message: the
// tasks files to join (none without a cgroup: a rootless runtime may go
// without one).
func (c *spawnConfig) joinLate(s *stage0) error {
	// The first message goes first (unless it was too big to be written
	// before stage 0 started).
	if !s.sent {
		if _, err := s.sock.WriteString(c.boot.encode()); err != nil {
			return fmt.Errorf("send bootstrap: %w", err)
		}
		s.sent = true
	}
	cg, err := c.lateCgroup()
	if err != nil {
		return err
	}
	c.cgroup = cg
	var sb strings.Builder
	if cg != nil {
		m, ok := cg.(interface{ TaskFiles() []string })
		if !ok {
			return fmt.Errorf("cgroup %T cannot be joined by its tasks files", cg)
		}
		for _, f := range m.TaskFiles() {
			fmt.Fprintf(&sb, "cgroup %s\n", f)
		}
	}
	sb.WriteString("end\n")
	if _, err := s.sock.WriteString(sb.String()); err != nil {
		return fmt.Errorf("send cgroups: %w", err)
	}
	return nil
}

// cgroupEntry decides how the init enters its cgroup without being moved
// by pid, which takes the kernel's global threadgroup lock (an RCU grace
// period, 10-25 ms): on v1, stage 0 moves itself through the tasks files
// (bootstrap "cgroup" lines); on v2 it is born in the cgroup
// (CLONE_INTO_CGROUP on the returned directory). joined reports that one
// of the two is arranged.
func (c *spawnConfig) cgroupEntry() (joined bool, dir *os.File, err error) {
	switch m := c.cgroup.(type) {
	case interface{ TaskFiles() []string }:
		c.boot.cgroupTasks = m.TaskFiles()
		return true, nil, nil
	case interface{ Dir() string }:
		f, err := os.OpenFile(m.Dir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, nil, fmt.Errorf("open cgroup: %w", err)
		}
		return true, f, nil
	}
	return false, nil, nil
}

// bootstrap sends stage 0 its bootstrap (unless it is there already),
// answers its requests, and returns the init once stage 0 reports it.
func (s *stage0) bootstrap(c *spawnConfig, joined bool) (*initProcess, error) {
	if c.cgroup != nil && !joined {
		if err := c.cgroup.Apply(s.pid); err != nil {
			s.kill()
			return nil, fmt.Errorf("join cgroup: %w", err)
		}
	}
	sock := s.sock
	if !s.sent {
		if _, err := sock.WriteString(c.boot.encode()); err != nil {
			s.kill()
			return nil, fmt.Errorf("send bootstrap: %w", err)
		}
	}
	r := bufio.NewReader(sock)
	// The child reports on its procfs context, if asked, in any order
	// with stage 0's "pid" line.
	var p *initProcess
	// fail ends stage 0 and the init, if it was reported already.
	fail := func(err error) (*initProcess, error) {
		if p != nil {
			p.kill()
		}
		s.kill()
		return nil, err
	}
	procfsReported, procfsOK := c.boot.procfsFD <= 0, false
	for p == nil || !procfsReported {
		line, err := readLine(r)
		if err != nil {
			return fail(fmt.Errorf("container init stage 0 exited without reporting: %w", err))
		}
		switch {
		case line == "procfs ok" || strings.HasPrefix(line, "procfs none "):
			procfsReported, procfsOK = true, line == "procfs ok"
		case line == "usermap":
			if err := writeIDMaps(s.pid, c.boot.uidMappings, c.boot.gidMappings); err != nil {
				return fail(err)
			}
			if _, err := sock.Write([]byte{'u'}); err != nil {
				return fail(err)
			}
		case strings.HasPrefix(line, "pid "):
			pid, err := strconv.Atoi(line[4:])
			if err != nil || pid <= 0 {
				return fail(fmt.Errorf("container init stage 0: bad report %q", line))
			}
			p = &initProcess{pid: pid, sock: sock, r: r}
		case strings.HasPrefix(line, "error "):
			return fail(errors.New(line[6:]))
		default:
			return fail(fmt.Errorf("container init stage 0: unexpected report %q", line))
		}
	}
	if procfsOK {
		p.procfsFD = c.boot.procfsFD
	}
	return p, nil
}

// readLine reads one report line of stage 0, without its newline.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return line[:len(line)-1], nil
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	write := func(file string, m []specs.LinuxIDMapping) error {
		var sb strings.Builder
		for _, e := range m {
			fmt.Fprintf(&sb, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
		}
		path := "/proc/" + strconv.Itoa(pid) + "/" + file
		if err := os.WriteFile(path, []byte(sb.String()), 0); err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
		return nil
	}
	if err := write("uid_map", uids); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		// Without CAP_SETGID on the host, the kernel takes a gid map only
		// once setgroups(2) is denied in the namespace.
		path := "/proc/" + strconv.Itoa(pid) + "/setgroups"
		if err := os.WriteFile(path, []byte("deny"), 0); err != nil {
			return fmt.Errorf("write setgroups: %w", err)
		}
	}
	return write("gid_map", gids)
}

// send writes one message or config to the init.
func (p *initProcess) send(v any) error {
	return wire.WriteFrame(p.sock, v)
}

// recv reads the next message from the init.
func (p *initProcess) recv() (message, error) {
	var m message
	err := wire.ReadFrame(p.r, &m)
	return m, err
}

// kill ends the init and reaps it; it is the runtime's child (stage 0 forked
// it with CLONE_PARENT), so the wait cannot hang on an unrelated process.
func (p *initProcess) kill() {
	unix.Kill(p.pid, unix.SIGKILL)
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(p.pid, &ws, 0, nil)
		if err != unix.EINTR {
			return
		}
	}
}
