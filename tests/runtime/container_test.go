package runtime_test

import (
	"encoding/json"
	"fmt"
	"golang.org/x/sys/unix"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/internal/testutil"
	"berth.dev/tests/fixtures"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runOut runs a bundle in the foreground and returns what it printed.
func runOut(r *rt, b string) string {
	r.T.Helper()
	return r.OK("run", "--bundle", b, testutil.UniqueName(r.T))
}

func hostNS(t *testing.T, name string) string {
	t.Helper()
	l, err := os.Readlink("/proc/self/ns/" + name)
	if err != nil {
		t.Skipf("namespace %s: %v", name, err)
	}
	return l
}

func TestEveryNamespaceIsNew(t *testing.T) {
	r := newRT(t)
	names := []string{"mnt", "pid", "net", "ipc", "uts", "user", "cgroup", "time"}
	b := fixtures.Bundle(t, args("sh", "-c", "for n in "+strings.Join(names, " ")+"; do readlink /proc/self/ns/$n; done"), func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces,
			specs.LinuxNamespace{Type: specs.UserNamespace},
			specs.LinuxNamespace{Type: specs.TimeNamespace},
			specs.LinuxNamespace{Type: specs.CgroupNamespace},
		)
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 86400}}
		// A user namespace cannot mount sysfs without its own network
		// namespace ownership; the default spec has both.
	})
	// The container's root is host uid 100000: it must reach the rootfs.
	os.Chmod(filepath.Dir(b), 0o755)
	os.Chmod(b, 0o755)
	got := strings.Fields(runOut(r, b))
	if len(got) != len(names) {
		t.Fatalf("got %d namespaces: %v", len(got), got)
	}
	for i, n := range names {
		if got[i] == hostNS(t, n) {
			t.Errorf("%s namespace is the host's (%s)", n, got[i])
		}
	}
}

func TestInsideView(t *testing.T) {
	r := newRT(t)
	b := fixtures.Bundle(t, args("sh", "-c", `echo pid=$$; hostname; ip -o link | cut -d: -f2; id -u`), func(s *specs.Spec) {
		s.Hostname = "berth-host"
	})
	out := runOut(r, b)
	for _, want := range []string{"pid=1\n", "berth-host\n", " lo\n", "0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n") != 4 {
		t.Errorf("more than the loopback link in a new network namespace:\n%s", out)
	}
}

// The mounts that show a namespace (sysfs the network's, mqueue the IPC's,
// procfs the PID's, the cgroup mount the container's cgroup) show the
// container's, including when the runtime makes them from a thread of its
// own (runtime/prepare_linux.go) while the init starts.
func TestFilesystemsShowTheContainer(t *testing.T) {
	r := newRT(t)
	b := fixtures.Bundle(t, args("sh", "-c", `
		ls /sys/class/net
		touch /dev/mqueue/berth-test-q && ls /dev/mqueue
		cat /proc/1/comm
		cat /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/cgroup.procs`))
	got := strings.Fields(runOut(r, b))
	if len(got) < 4 || got[0] != "lo" || got[1] != "berth-test-q" || got[2] != "sh" || got[3] != "1" {
		t.Errorf("got %q, want lo (the only link), berth-test-q (the only queue), sh (pid 1), then the cgroup's processes from 1", got)
	}
}

// A new cgroup namespace is rooted at the container's cgroup: inside, every
// hierarchy shows the process at "/". (On cgroup v1 the init joins its
// cgroup after making its other namespaces, and must make this one after
// the join.)
func TestCgroupNamespaceRootIsTheContainersCgroup(t *testing.T) {
	r := newRT(t)
	b := fixtures.Bundle(t, args("cat", "/proc/self/cgroup"), func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	})
	out := strings.TrimSpace(runOut(r, b))
	if out == "" {
		t.Fatal("no /proc/self/cgroup")
	}
	for _, line := range strings.Split(out, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			t.Fatalf("bad line %q", line)
		}
		if parts[2] != "/" {
			t.Errorf("%q: the process is not at its cgroup namespace's root", line)
		}
	}
}

func TestJoinNamespaceByPath(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	r.OK("run", "-d", "--bundle", fixtures.Bundle(t, args("sleep", "1000")), id)
	pid := r.State(id).Pid
	netns := fmt.Sprintf("/proc/%d/ns/net", pid)
	want, _ := os.Readlink(netns)
	b := fixtures.Bundle(t, args("readlink", "/proc/self/ns/net"), func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = netns
			}
		}
	})
	if got := strings.TrimSpace(runOut(r, b)); got != want {
		t.Errorf("joined network namespace %q, want %q", got, want)
	}
}

func TestMountsAndMaskedPaths(t *testing.T) {
	r := newRT(t)
	b := fixtures.Bundle(t, args("sh", "-c", `
		cat /proc/kcore | wc -c
		ls /proc/acpi | wc -l
		echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-readonly
		grep -c ' /dev/pts ' /proc/self/mounts
		grep -c ' /dev/shm ' /proc/self/mounts
		touch /rootfs-write && echo root-writable || echo root-readonly
		ls -l /dev/null | cut -c1`), func(s *specs.Spec) { s.Root.Readonly = true })
	got := strings.Fields(runOut(r, b))
	want := []string{"0", "0", "sys-readonly", "1", "1", "root-readonly", "c"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestCapabilities(t *testing.T) {
	r := newRT(t)
	b := fixtures.Bundle(t, args("grep", "^Cap", "/proc/self/status"), func(s *specs.Spec) {
		c := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
	})
	// CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10.
	const mask = "0000000000000421"
	out := runOut(r, b)
	for _, line := range []string{"CapInh:\t0000000000000000", "CapPrm:\t" + mask, "CapEff:\t" + mask, "CapBnd:\t" + mask, "CapAmb:\t0000000000000000"} {
		if !strings.Contains(out, line) {
			t.Errorf("missing %q in\n%s", line, out)
		}
	}
}

func TestUserAndGroups(t *testing.T) {
	r := newRT(t)
	b := fixtures.Bundle(t, args("sh", "-c", "id -u; id -g; id -G; umask"), func(s *specs.Spec) {
		mask := uint32(0o027)
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &mask}
	})
	if got := strings.Fields(runOut(r, b)); strings.Join(got, " ") != "1000 1000 1000 10 20 0027" {
		t.Errorf("got %v", got)
	}
}

func TestRlimits(t *testing.T) {
	r := newRT(t)
	b := fixtures.Bundle(t, args("sh", "-c", "ulimit -n; ulimit -Hn"), func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}}
	})
	if got := strings.Fields(runOut(r, b)); strings.Join(got, " ") != "123 456" {
		t.Errorf("got %v", got)
	}
}

// Regression: the check that the working directory is inside the
// container (CVE-2024-21626) used getcwd after the seccomp filter was in
// place, so a profile that forbids getcwd made every start fail.
func TestSeccompForbiddingGetcwd(t *testing.T) {
	r := newRT(t)
	errno := uint(1)
	b := fixtures.Bundle(t, args("sh", "-c", "echo started"), func(s *specs.Spec) {
		// Without no_new_privs the filter is loaded early, while the
		// init still has CAP_SYS_ADMIN.
		s.Process.NoNewPrivileges = false
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: &errno}},
		}
	})
	if out := runOut(r, b); strings.TrimSpace(out) != "started" {
		t.Errorf("output %q", out)
	}
}

func TestSeccompBlocksSyscallWithErrno(t *testing.T) {
	r := newRT(t)
	errno := uint(1) // EPERM
	b := fixtures.Bundle(t, args("sh", "-c", "mkdir /tmp/x 2>&1; echo done"), func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{
				Names:    []string{"mkdir", "mkdirat"},
				Action:   specs.ActErrno,
				ErrnoRet: &errno,
			}},
		}
	})
	out := runOut(r, b)
	if !strings.Contains(out, "Operation not permitted") || !strings.Contains(out, "done") {
		t.Errorf("mkdir was not refused with EPERM:\n%s", out)
	}
}

func TestSysctlAndDomainname(t *testing.T) {
	r := newRT(t)
	b := fixtures.Bundle(t, args("sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname"), func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Domainname = "berth.test"
	})
	if got := strings.Fields(runOut(r, b)); strings.Join(got, " ") != "1 berth.test" {
		t.Errorf("got %v", got)
	}
}

func TestHooksRunInOrderWithState(t *testing.T) {
	r := newRT(t)
	dir := t.TempDir()
	logf := filepath.Join(dir, "log")
	hook := func(name string) specs.Hook {
		// The hook appends its name and the state it received.
		return specs.Hook{Path: "/bin/busybox", Args: []string{"sh", "-c", "echo " + name + " $(cat) >> " + logf}}
	}
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, args("true"), func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{hook("createRuntime")},
			Poststart:     []specs.Hook{hook("poststart")},
			Poststop:      []specs.Hook{hook("poststop")},
		}
	})
	r.OK("run", "--bundle", b, id)
	data, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	wantOrder := []string{"createRuntime", "poststart", "poststop"}
	wantStatus := []string{"creating", "running", "stopped"}
	if len(lines) != len(wantOrder) {
		t.Fatalf("hooks ran %d times:\n%s", len(lines), data)
	}
	for i, line := range lines {
		name, js, _ := strings.Cut(line, " ")
		var st specs.State
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			t.Fatalf("hook %s got bad state %q: %v", name, js, err)
		}
		if name != wantOrder[i] || string(st.Status) != wantStatus[i] || st.ID != id || st.Bundle != b {
			t.Errorf("hook %d: %s with %+v", i, name, st)
		}
	}
}

func TestFailingHookFailsCreate(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, args("true"), func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/busybox", Args: []string{"false"}}}}
	})
	res := r.Cmd("", "create", "--bundle", b, id)
	if res.Code == 0 || !strings.Contains(res.Stderr, "createRuntime") {
		t.Fatalf("create with a failing hook: code %d stderr %q", res.Code, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(r.Root, id)); !os.IsNotExist(err) {
		t.Error("state left behind")
	}
}

// A failing poststop hook is a warning: the hooks after it still run and
// the container is still deleted (runtime spec, lifecycle step 13).
func TestFailingPoststopHookWarnsAndContinues(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	marker := filepath.Join(t.TempDir(), "second-hook-ran")
	b := fixtures.Bundle(t, args("true"), func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Poststop: []specs.Hook{
			{Path: "/bin/busybox", Args: []string{"false"}},
			{Path: "/bin/busybox", Args: []string{"touch", marker}},
		}}
	})
	res := r.Cmd("", "run", "--bundle", b, id)
	if res.Code != 0 {
		t.Fatalf("run: code %d, stderr %q", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "warning") || !strings.Contains(res.Stderr, "poststop hook #0") {
		t.Errorf("no warning about the failing hook: %q", res.Stderr)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the hook after the failing one did not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Root, id)); !os.IsNotExist(err) {
		t.Error("container state left behind")
	}
}

// With a SCMP_ACT_NOTIFY rule, the runtime hands the listener to the agent
// at listenerPath together with the container's state. Once the agent
// closes it, the notified syscall fails (ENOSYS).
func TestSeccompListenerReachesAgent(t *testing.T) {
	r := newRT(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type got struct {
		st  specs.ContainerProcessState
		fds int
		err error
	}
	gotc := make(chan got, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			gotc <- got{err: err}
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := conn.(*net.UnixConn).ReadMsgUnix(buf, oob)
		var g got
		g.err = err
		if err == nil {
			g.err = json.Unmarshal(buf[:n], &g.st)
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, _ := unix.ParseUnixRights(&m)
				for _, fd := range fds {
					g.fds++
					unix.Close(fd)
				}
			}
		}
		gotc <- g
	}()
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, args("sh", "-c", "mkdir /tmp/x 2>&1; echo done"), func(s *specs.Spec) {
		s.Process.NoNewPrivileges = true
		s.Root.Readonly = false
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction:    specs.ActAllow,
			ListenerPath:     sock,
			ListenerMetadata: "berth-test",
			Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
		}
	})
	out := r.OK("run", "--bundle", b, id)
	g := <-gotc
	if g.err != nil {
		t.Fatal(g.err)
	}
	if g.fds != 1 || g.st.Metadata != "berth-test" || g.st.State.ID != id || g.st.Pid <= 0 ||
		len(g.st.Fds) != 1 || g.st.Fds[0] != specs.SeccompFdName {
		t.Errorf("agent got %d fds and %+v", g.fds, g.st)
	}
	if !strings.Contains(out, "not implemented") || !strings.Contains(out, "done") {
		t.Errorf("container printed %q", out)
	}
}
