package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A filter cannot be removed, so every test that loads one does it in a
// child: the test binary re-executed with childEnv set. The child loads the
// profile of profileEnv, makes the system calls listed in probesEnv and
// prints a childReport as JSON.
const (
	childEnv   = "BERTH_SECCOMP_TEST_CHILD"
	profileEnv = "BERTH_SECCOMP_TEST_PROFILE"
	probesEnv  = "BERTH_SECCOMP_TEST_PROBES"
	dirEnv     = "BERTH_SECCOMP_TEST_DIR"
	noNNPEnv   = "BERTH_SECCOMP_TEST_NO_NNP"
	uidEnv     = "BERTH_SECCOMP_TEST_UID"
	// agentFD is the child's end of a socket pair it sends the listener on.
	agentFD = 3
)

// childReport is what a child prints.
type childReport struct {
	LoadErr string
	// Listener is the descriptor Load returned; Cloexec tells if it is
	// close-on-exec.
	Listener int
	Cloexec  bool
	// Errnos maps each probe to the errno name it failed with, or "".
	Errnos map[string]string
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "" {
		os.Exit(m.Run())
	}
	if err := runChild(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runChild is the child's whole life.
func runChild() error {
	// no_new_privs belongs to a thread: set it on the one that loads.
	runtime.LockOSThread()
	// Killed children must not leave core files behind.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	var profile specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(profileEnv)), &profile); err != nil {
		return err
	}
	if uid := os.Getenv(uidEnv); uid != "" {
		n, _ := strconv.Atoi(uid)
		if err := unix.Setresuid(n, n, n); err != nil {
			return err
		}
	}
	if os.Getenv(noNNPEnv) == "" {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	other := startOtherThread()
	r := childReport{Errnos: map[string]string{}}
	// After a failed Load the probes still run, to show nothing was loaded.
	fd, err := Load(&profile)
	if err != nil {
		r.LoadErr = err.Error()
	}
	r.Listener = fd
	if fd >= 0 {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			return err
		}
		r.Cloexec = flags&unix.FD_CLOEXEC != 0
		// Like the container init: hand the listener over and keep no
		// copy, so the agent alone answers the notifications.
		if err := sendFD(fd); err != nil {
			return err
		}
		if err := unix.Close(fd); err != nil {
			return err
		}
	}
	for _, p := range strings.Fields(os.Getenv(probesEnv)) {
		e, err := probe(p, other)
		if err != nil {
			return err
		}
		r.Errnos[p] = e
	}
	return printReport(r)
}

func printReport(r childReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

// startOtherThread starts a goroutine locked to its own OS thread before
// the filter is loaded, to show that TSYNC reaches threads that already
// exist. It runs the functions sent to it.
func startOtherThread() chan<- func() {
	c := make(chan func())
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with it
		close(ready)
		for f := range c {
			f()
		}
	}()
	<-ready
	return c
}

// sendFD sends the listener to the parent over agentFD.
func sendFD(fd int) error {
	return unix.Sendmsg(agentFD, []byte("listener"), unix.UnixRights(fd), nil, 0)
}

// probe makes the system call p names and returns the name of its errno,
// or "" if it worked. Probes:
//
//	mkdir:NAME             mkdirat(AT_FDCWD, $dir/NAME)
//	mkdir-other:NAME       the same on the thread started before Load
//	close:FD:TAG           close(FD) with TAG as a second, ignored argument
//	personality:HEX        personality(HEX)
//	getppid, uname         getppid(), uname(buf)
//	exec-mkdir:NAME        exec busybox mkdir $dir/NAME (does not return)
func probe(p string, other chan<- func()) (string, error) {
	kind, arg, _ := strings.Cut(p, ":")
	var err error
	switch kind {
	case "mkdir":
		err = unix.Mkdirat(unix.AT_FDCWD, filepath.Join(os.Getenv(dirEnv), arg), 0o700)
	case "mkdir-other":
		done := make(chan error)
		other <- func() { done <- unix.Mkdirat(unix.AT_FDCWD, filepath.Join(os.Getenv(dirEnv), arg), 0o700) }
		err = <-done
	case "close":
		fd, tag, _ := strings.Cut(arg, ":")
		err = rawCall(unix.SYS_CLOSE, parseUint(fd), parseUint(tag))
	case "personality":
		err = rawCall(unix.SYS_PERSONALITY, parseUint(arg), 0)
	case "getppid":
		err = rawCall(unix.SYS_GETPPID, 0, 0)
	case "uname":
		var u unix.Utsname
		err = unix.Uname(&u)
	case "exec-mkdir":
		argv := []string{"busybox", "mkdir", filepath.Join(os.Getenv(dirEnv), arg)}
		return "", syscall.Exec("/bin/busybox", argv, []string{"PATH=/bin"})
	default:
		return "", fmt.Errorf("unknown probe %q", p)
	}
	if err == nil {
		return "", nil
	}
	errno, ok := err.(unix.Errno)
	if !ok {
		return "", err
	}
	return unix.ErrnoName(errno), nil
}

func rawCall(nr, a0, a1 uintptr) error {
	_, _, e := unix.Syscall(nr, a0, a1, 0)
	if e != 0 {
		return e
	}
	return nil
}

func parseUint(s string) uintptr {
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		panic(err)
	}
	return uintptr(n)
}

// childOpts says how to run a child.
type childOpts struct {
	profile *specs.LinuxSeccomp
	probes  []string
	dir     string
	noNNP   bool
	uid     int      // > 0: setresuid to it before Load
	agent   *os.File // passed as agentFD
}

// startChild starts a child; its stdout and stderr go to the buffers.
func startChild(t *testing.T, o childOpts) (cmd *exec.Cmd, stdout, stderr *bytes.Buffer) {
	t.Helper()
	profile, err := json.Marshal(o.profile)
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("/proc/self/exe")
	cmd.Dir = o.dir
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		profileEnv+"="+string(profile),
		probesEnv+"="+strings.Join(o.probes, " "),
		dirEnv+"="+o.dir,
	)
	if o.noNNP {
		cmd.Env = append(cmd.Env, noNNPEnv+"=1")
	}
	if o.uid > 0 {
		cmd.Env = append(cmd.Env, uidEnv+"="+strconv.Itoa(o.uid))
	}
	if o.agent != nil {
		cmd.ExtraFiles = []*os.File{o.agent}
	}
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, stderr
}

// waitReport waits for a child that must exit 0 and returns its report.
func waitReport(t *testing.T, cmd *exec.Cmd, stdout, stderr *bytes.Buffer) childReport {
	t.Helper()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	var r childReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("child report %q: %v", stdout, err)
	}
	return r
}

// runReport runs a child to its end and returns its report.
func runReport(t *testing.T, o childOpts) childReport {
	t.Helper()
	cmd, stdout, stderr := startChild(t, o)
	return waitReport(t, cmd, stdout, stderr)
}
