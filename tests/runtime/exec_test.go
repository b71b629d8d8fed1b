package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"berth.dev/internal/testutil"
	"berth.dev/tests/fixtures"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestExecJoinsEveryNamespace(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	r.OK("run", "-d", "--bundle", fixtures.Bundle(t, args("sleep", "1000")), id)
	pid := r.State(id).Pid
	out := r.OK("exec", id, "sh", "-c", "for n in mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done")
	got := strings.Fields(out)
	for i, n := range []string{"mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
		if i >= len(got) || got[i] != want {
			t.Errorf("exec'd process %s namespace: got %v, want %s", n, got, want)
		}
	}
	if res := r.Cmd("", "exec", id, "sh", "-c", "exit 7"); res.Code != 7 {
		t.Errorf("exec exit status %d, want 7", res.Code)
	}
	if out := r.OK("exec", "--user", "1000:1000", "--env", "BERTH=yes", "--cwd", "/tmp", id, "sh", "-c", "id -u; echo $BERTH; pwd"); strings.Join(strings.Fields(out), " ") != "1000 yes /tmp" {
		t.Errorf("exec with --user/--env/--cwd printed %q", out)
	}
}

func TestPauseResume(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	r.OK("run", "-d", "--bundle", fixtures.Bundle(t, args("sleep", "1000")), id)
	r.OK("pause", id)
	if st := r.State(id).Status; st != "paused" {
		t.Fatalf("after pause: %s", st)
	}
	pid := r.State(id).Pid
	if got := cgroupValue(t, "freezer", "/"+id, "freezer.state", "cgroup.freeze"); got != "FROZEN" && got != "1" {
		t.Errorf("freezer state %q", got)
	}
	if res := r.Cmd("", "exec", id, "true"); res.Code == 0 {
		t.Error("exec in a paused container succeeded")
	}
	r.OK("resume", id)
	if st := r.State(id).Status; st != "running" {
		t.Fatalf("after resume: %s", st)
	}
	if r.State(id).Pid != pid {
		t.Error("pid changed across pause")
	}
	if res := r.Cmd("", "resume", id); res.Code == 0 {
		t.Error("resume of a running container succeeded")
	}
}

func TestKillAll(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	r.OK("run", "-d", "--bundle", fixtures.Bundle(t, args("sh", "-c", "sleep 1000 & sleep 1000 & wait")), id)
	waitFor(t, "three processes", func() bool {
		return len(strings.Fields(r.OK("ps", "--format", "json", id))) > 0 && strings.Count(r.OK("ps", "--format", "json", id), ",") == 2
	})
	r.OK("kill", "--all", id, "SIGKILL")
	waitFor(t, "the container to stop", func() bool { return r.State(id).Status == "stopped" })
}

func TestTerminalThroughConsoleSocket(t *testing.T) {
	r := newRT(t)
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	masterc := make(chan *os.File, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			masterc <- nil
			return
		}
		defer conn.Close()
		f, _ := conn.(*net.UnixConn).File()
		defer f.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(int(f.Fd()), buf, oob, 0)
		if err != nil {
			masterc <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, _ := unix.ParseUnixRights(&msgs[0])
		masterc <- os.NewFile(uintptr(fds[0]), "master")
	}()
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, args("sh", "-c", "tty; stty size; read x; echo got $x"), func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	})
	r.OK("create", "--bundle", b, "--console-socket", sockPath, id)
	master := <-masterc
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	r.OK("start", id)
	master.Write([]byte("hello\n"))
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, master); close(done) }()
	waitFor(t, "the container to exit", func() bool { return r.State(id).Status == "stopped" })
	master.SetReadDeadline(time.Now().Add(time.Second))
	<-done
	text := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/0\n", "30 100\n", "got hello\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, text)
		}
	}
}

// The container's init runs from a sealed view of the runtime (a detached
// read-only overlay, or a sealed memfd): a process in the container cannot
// reach the host binary (CVE-2019-5736).
func TestInitIsSealedCopy(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	exe := createdInitExe(t, r, id)
	if exe == binary || strings.HasPrefix(exe, filepath.Dir(binary)) {
		t.Fatalf("init runs from the host binary %q", exe)
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", r.State(id).Pid), os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write([]byte("x"))
		f.Close()
	}
	if err == nil {
		t.Fatal("the init's executable is writable")
	}
}

// The common container gets the fast init: until start, its init is the
// sealed trampoline (runtime/trampoline_amd64.go); BERTH_RUNTIME_FAST_INIT=0
// gives the init executed from the sealed runtime binary instead.
func TestFastInit(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the fast init is amd64's")
	}
	for _, c := range []struct {
		env  string
		fast bool
	}{{"", true}, {"0", false}} {
		t.Run("BERTH_RUNTIME_FAST_INIT="+c.env, func(t *testing.T) {
			t.Setenv("BERTH_RUNTIME_FAST_INIT", c.env)
			r := newRT(t)
			id := testutil.UniqueName(t)
			exe := createdInitExe(t, r, id)
			if got := strings.Contains(exe, "memfd:berth-init"); got != c.fast {
				t.Errorf("init runs %q; fast init %v, want %v", exe, got, c.fast)
			}
			r.OK("start", id)
			waitFor(t, "the container to exit", func() bool { return r.State(id).Status == "stopped" })
		})
	}
}

// createdInitExe creates container id running true and returns what its
// init's /proc/<pid>/exe names.
func createdInitExe(t *testing.T, r *rt, id string) string {
	t.Helper()
	r.OK("create", "--bundle", fixtures.Bundle(t, args("true")), id)
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", r.State(id).Pid))
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// A directory descriptor the caller leaks into the runtime must not reach
// the container, not even as its working directory (CVE-2024-21626).
func TestLeakedDescriptorDoesNotReachContainer(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	hostDir, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	run := func(mod func(*specs.Spec)) (string, error) {
		b := fixtures.Bundle(t, mod)
		cmd := exec.Command(binary, "--root", root, "run", "--bundle", b, testutil.UniqueName(t))
		// The leaked directory is descriptor 5 in the runtime.
		cmd.ExtraFiles = []*os.File{devnull, devnull, hostDir}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(args("ls", "/proc/self/fd"))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if fds := strings.Fields(out); strings.Join(fds, " ") != "0 1 2 3" {
		// 3 is ls's own directory handle.
		t.Errorf("descriptors in the container: %v", fds)
	}
	out, err = run(func(s *specs.Spec) { s.Process.Args = []string{"pwd"}; s.Process.Cwd = "/proc/self/fd/5" })
	if err == nil {
		t.Errorf("a container started with its cwd on a leaked host directory: %s", out)
	}
}

func TestUpdateStatsAndPs(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	r.OK("run", "-d", "--bundle", fixtures.Bundle(t, args("sleep", "1000"), cgroupPath("/"+id)), id)
	r.OK("update", "--memory", "64m", "--pids-limit", "50", "--cpu-quota", "20000", "--cpu-period", "100000", id)
	for _, c := range []struct{ controller, v1, v2, want string }{
		{"memory", "memory.limit_in_bytes", "memory.max", "67108864"},
		{"pids", "pids.max", "pids.max", "50"},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "20000"},
	} {
		if got := cgroupValue(t, c.controller, "/"+id, c.v1, c.v2); got != c.want {
			t.Errorf("%s = %q, want %s", c.v1, got, c.want)
		}
	}
	if res := r.Cmd("", "update", "--memory", "lots", id); res.Code == 0 || !strings.Contains(res.Stderr, "memory") {
		t.Errorf("update with a bad value: code %d stderr %q", res.Code, res.Stderr)
	}
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Memory struct {
				Usage struct {
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.OK("events", "--stats", id)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "stats" || ev.ID != id || ev.Data.Memory.Usage.Limit != 64<<20 || ev.Data.Pids.Current != 1 || ev.Data.Pids.Limit != 50 {
		t.Errorf("events --stats: %+v", ev)
	}
	pid := r.State(id).Pid
	if got := strings.TrimSpace(r.OK("ps", "--format", "json", id)); got != fmt.Sprintf("[%d]", pid) {
		t.Errorf("ps --format json = %s, want [%d]", got, pid)
	}
	if out := r.OK("ps", id); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep 1000") {
		t.Errorf("ps:\n%s", out)
	}
}

// openPty opens a pseudo-terminal for the test to play the user's terminal.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// run and exec in the foreground relay a terminal between the user's and
// the container's pty, as `runc run` does for a spec with terminal: true.
func TestForegroundTerminal(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, args("sh"), func(s *specs.Spec) { s.Process.Terminal = true })
	master, slave := openPty(t)
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 77})
	cmd := exec.Command(binary, "--root", r.Root, "run", "--bundle", b, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	go io.Copy(&out, master)
	waitFor(t, "the container to run", func() bool {
		res := r.Cmd("", "state", id)
		return res.Code == 0 && strings.Contains(res.Stdout, `"running"`)
	})
	master.Write([]byte("stty size; echo $((6*7)); exit 4\n"))
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
		t.Errorf("run exited with %v, want status 4", err)
	}
	text := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"33 77\n", "42\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, text)
		}
	}
}

// A spec without a mount namespace: the container's mounts are made in
// the runtime's namespace (the test's), the process is chrooted into the
// rootfs, exec enters that root too, and delete detaches every mount it
// made while leaving the rest of the namespace alone.
func TestSharedMountNamespace(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, args("sleep", "1000"), func(s *specs.Spec) {
		var kept []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != specs.MountNamespace {
				kept = append(kept, ns)
			}
		}
		s.Linux.Namespaces = kept
		// Hiding paths needs a mount namespace (spec.Validate refuses
		// them without one, as runc does).
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	})
	marker := "berth-shared-mnt-" + id
	if err := os.WriteFile(filepath.Join(b, "rootfs", marker), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.OK("run", "-d", "--bundle", b, id)
	pid := r.State(id).Pid
	own, _ := os.Readlink("/proc/self/ns/mnt")
	if theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); theirs != own {
		t.Errorf("container mount namespace %s, want the runtime's %s", theirs, own)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(mi), filepath.Join(b, "rootfs", "proc")) {
		t.Errorf("the container's /proc is not mounted in the shared namespace:\n%s", mi)
	}
	if out := r.OK("exec", id, "sh", "-c", "ls /; cat /proc/1/cmdline | tr '\\0' ' '"); !strings.Contains(out, marker) || !strings.Contains(out, "sleep 1000") {
		t.Errorf("exec does not see the container's root and pid namespace:\n%s", out)
	}
	r.OK("delete", "--force", id)
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), b) {
		t.Errorf("mounts under the bundle left after delete:\n%s", mi)
	}
}
