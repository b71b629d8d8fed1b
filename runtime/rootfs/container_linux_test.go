package rootfs

// Root tests: a child process (this test binary, re-executed) is cloned
// into new mount, PID, IPC and UTS namespaces (and more, per test); it runs
// Prepare, Pivot, MountConsole and Finalize on a busybox root filesystem
// and execs a busybox script whose output the test checks.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/internal/testutil"
)

const childEnv = "BERTH_ROOTFS_TEST_CHILD"

func TestMain(m *testing.M) {
	if req := os.Getenv(childEnv); req != "" {
		os.Exit(runChild(req))
	}
	os.Exit(m.Run())
}

// childRequest is what the parent asks the child to do.
type childRequest struct {
	Spec     *specs.Spec
	Rootfs   string
	NoPivot  bool
	UserNS   bool
	CgroupNS bool
	Console  bool
	Report   string // host file for the child's mountinfo right after Prepare
	Script   string // run with busybox sh inside the container
}

// runChild is the container's init: it never returns on success.
func runChild(reqPath string) int {
	runtime.LockOSThread()
	fail := func(stage string, err error) int {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", stage, err)
		return 3
	}
	data, err := os.ReadFile(reqPath)
	if err != nil {
		return fail("read request", err)
	}
	var req childRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return fail("decode request", err)
	}
	c := &Config{Spec: req.Spec, Rootfs: req.Rootfs, NoPivot: req.NoPivot, UserNS: req.UserNS, CgroupNS: req.CgroupNS}
	if err := Prepare(c); err != nil {
		return fail("prepare", err)
	}
	if req.Report != "" {
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err == nil {
			err = os.WriteFile(req.Report, mi, 0o644)
		}
		if err != nil {
			return fail("report", err)
		}
	}
	if err := Pivot(c); err != nil {
		return fail("pivot", err)
	}
	if req.Console {
		if err := childConsole(); err != nil {
			return fail("console", err)
		}
	}
	if err := Finalize(c); err != nil {
		return fail("finalize", err)
	}
	err = syscall.Exec("/bin/busybox", []string{"sh", "-c", req.Script}, []string{"PATH=/bin"})
	return fail("exec", err)
}

// childConsole opens a pty of the container's devpts and mounts its slave
// on /dev/console, as the runtime does for a terminal.
func childConsole() error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return err
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return err
	}
	return MountConsole(fmt.Sprintf("/dev/pts/%d", n))
}

// container is a busybox bundle and how to run it.
type container struct {
	t          *testing.T
	dir        string // holds the bundle and the test's host-side files
	rootfs     string
	spec       *specs.Spec
	req        childRequest
	cloneflags uintptr
}

func newContainer(t *testing.T) *container {
	testutil.RequiresRoot(t)
	dir := filepath.Join(t.TempDir(), testutil.UniqueName(t))
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyHostFile(t, "/bin/busybox", filepath.Join(rootfs, "bin/busybox"), 0o755)
	for _, applet := range []string{"sh", "cat", "ls", "stat", "touch", "readlink", "wc", "echo", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return &container{t: t, dir: dir, rootfs: rootfs, spec: defaultSpec(rootfs)}
}

func copyHostFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// defaultSpec is what `runc spec` generates, with a read-only root.
func defaultSpec(rootfs string) *specs.Spec {
	return &specs.Spec{
		Root: &specs.Root{Path: rootfs, Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// result is what a run produced.
type result struct {
	out    string // the script's output
	report string // mountinfo seen by the child after Prepare
}

// run starts the child and waits for it. It checks that the host's mounts
// are the same afterwards: nothing left under the test's directory and
// none of the host's system mounts touched.
func (c *container) run(script string) (result, error) {
	t := c.t
	t.Helper()
	before := hostMounts(t)
	c.req.Spec, c.req.Rootfs, c.req.Script = c.spec, c.rootfs, script
	c.req.Report = filepath.Join(c.dir, "report")
	reqPath := filepath.Join(c.dir, "request.json")
	data, err := json.Marshal(c.req)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = []string{childEnv + "=" + reqPath}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | c.cloneflags,
		Pdeathsig:  syscall.SIGKILL,
	}
	if c.cloneflags&syscall.CLONE_NEWUSER != 0 {
		ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.UidMappings, cmd.SysProcAttr.GidMappings = ids, ids
	}
	err = cmd.Run()
	c.checkHostMounts(before)
	report, _ := os.ReadFile(c.req.Report)
	if err != nil {
		return result{report: string(report)}, fmt.Errorf("%w: %s%s", err, stderr.String(), stdout.String())
	}
	return result{out: stdout.String(), report: string(report)}, nil
}

func (c *container) mustRun(script string) result {
	c.t.Helper()
	r, err := c.run(script)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func hostMounts(t *testing.T) []mountInfo {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMountInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func isSystemMount(m mountInfo) bool {
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if m.mountpoint == p || strings.HasPrefix(m.mountpoint, p+"/") {
			return true
		}
	}
	return m.mountpoint == "/"
}

func (c *container) checkHostMounts(before []mountInfo) {
	c.t.Helper()
	after := hostMounts(c.t)
	ids := make(map[int]bool)
	for _, m := range after {
		ids[m.id] = true
		if strings.HasPrefix(m.mountpoint, c.dir) {
			c.t.Errorf("host has a leftover mount at %s (%s)", m.mountpoint, m.fstype)
		}
	}
	for _, m := range before {
		if isSystemMount(m) && !ids[m.id] {
			c.t.Errorf("host lost its mount %d at %s", m.id, m.mountpoint)
		}
	}
}

// section returns the lines the script printed after "== name".
func section(out, name string) string {
	_, rest, ok := strings.Cut(out, "== "+name+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "== "); i >= 0 {
		rest = rest[:i]
	}
	return strings.TrimSpace(rest)
}

// mountsAt indexes a mountinfo dump by mount point (the top mount wins).
func mountsAt(t *testing.T, mountinfo string) map[string]mountInfo {
	t.Helper()
	ms, err := parseMountInfo([]byte(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]mountInfo)
	for _, m := range ms {
		out[m.mountpoint] = m
	}
	return out
}

func hasOpt(list, opt string) bool {
	for _, o := range strings.Split(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
}
