package runtime_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"berth.dev/internal/testutil"
	"berth.dev/runtime/spec"
	"berth.dev/tests/fixtures"
	"berth.dev/tests/runtimetest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func args(a ...string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = a }
}

func cgroupPath(p string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Linux.CgroupsPath = p }
}

type state = runtimetest.State

func TestRunReturnsExitStatus(t *testing.T) {
	r := newRT(t)
	for _, code := range []int{0, 3, 42} {
		b := fixtures.Bundle(t, args("sh", "-c", "exit "+strconv.Itoa(code)))
		res := r.Cmd("", "run", "--bundle", b, testutil.UniqueName(t))
		if res.Code != code {
			t.Errorf("exit %d: got %d (stderr %q)", code, res.Code, res.Stderr)
		}
	}
	if entries, _ := os.ReadDir(r.Root); len(entries) != 0 {
		t.Errorf("run left %d entries in the state root", len(entries))
	}
}

func TestRunKilledBySignalExits128PlusSignal(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, args("sleep", "1000"))
	done := make(chan runtimetest.Result, 1)
	go func() { done <- r.Cmd("", "run", "--bundle", b, id) }()
	waitFor(t, "the container to run", func() bool {
		res := r.Cmd("", "state", id)
		return res.Code == 0 && strings.Contains(res.Stdout, `"running"`)
	})
	r.OK("kill", id, "KILL")
	if res := <-done; res.Code != 137 {
		t.Fatalf("exit code %d, want 137 (stderr %q)", res.Code, res.Stderr)
	}
}

func TestRunForwardsSignals(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	// pid 1 ignores signals it has no handler for: the trap makes TERM
	// an exit with status 5.
	b := fixtures.Bundle(t, args("sh", "-c", "trap 'exit 5' TERM; touch /ready; while true; do sleep 0.05; done"),
		func(s *specs.Spec) { s.Root.Readonly = false })
	cmd := exec.Command(binary, "--root", r.Root, "run", "--bundle", b, id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The trap must be in place before the signal: pid 1 ignores it
	// otherwise.
	waitFor(t, "the trap to be set", func() bool {
		_, err := os.Stat(filepath.Join(b, "rootfs", "ready"))
		return err == nil
	})
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
		t.Fatalf("run exited with %v, want status 5", err)
	}
}

func TestLifecycle(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	cg := "/" + id
	b := fixtures.Bundle(t, args("sh", "-c", "touch /started; exec sleep 1000"), cgroupPath(cg), func(s *specs.Spec) { s.Root.Readonly = false })
	started := filepath.Join(b, "rootfs", "started")

	r.OK("create", "--bundle", b, id)
	st := r.State(id)
	if st.Status != "created" || st.Pid <= 0 || st.ID != id || st.Bundle != b {
		t.Fatalf("after create: %+v", st)
	}
	if _, err := os.Stat(started); err == nil {
		t.Fatal("the user program ran before start")
	}
	if _, err := os.Stat(cgroupDir("memory", cg)); err != nil {
		t.Errorf("cgroup not created: %v", err)
	}
	if res := r.Cmd("", "delete", id); res.Code == 0 || !strings.Contains(res.Stderr, "not stopped") || r.State(id).Status != "created" {
		t.Errorf("delete of a created container: code %d stderr %q", res.Code, res.Stderr)
	}
	if res := r.Cmd("", "create", "--bundle", b, id); res.Code == 0 || !strings.Contains(res.Stderr, "already exists") {
		t.Errorf("second create with the same id: code %d stderr %q", res.Code, res.Stderr)
	}

	r.OK("start", id)
	waitFor(t, "the program to start", func() bool { _, err := os.Stat(started); return err == nil })
	if st := r.State(id); st.Status != "running" {
		t.Fatalf("after start: %s", st.Status)
	}
	if res := r.Cmd("", "start", id); res.Code == 0 {
		t.Error("start of a running container succeeded")
	}
	if res := r.Cmd("", "delete", id); res.Code == 0 || !strings.Contains(res.Stderr, "not stopped") {
		t.Errorf("delete of a running container: code %d stderr %q", res.Code, res.Stderr)
	}

	r.OK("kill", id, "KILL")
	waitFor(t, "the container to stop", func() bool { return r.State(id).Status == "stopped" })
	r.OK("delete", id)
	if res := r.Cmd("", "state", id); res.Code == 0 || !strings.Contains(res.Stderr, "does not exist") {
		t.Errorf("state after delete: code %d stderr %q", res.Code, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(r.Root, id)); !os.IsNotExist(err) {
		t.Errorf("state directory left behind: %v", err)
	}
	for _, c := range []string{"memory", "pids", "cpu", "freezer"} {
		if _, err := os.Stat(cgroupDir(c, cg)); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind: %v", c, err)
		}
	}
}

func TestDeleteForceKillsRunningContainer(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	b := fixtures.Bundle(t, args("sleep", "1000"))
	r.OK("run", "-d", "--bundle", b, id)
	pid := r.State(id).Pid
	r.OK("delete", "--force", id)
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		if data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(data), ") Z") {
			t.Errorf("process %d still alive after delete --force", pid)
		}
	}
}

func TestList(t *testing.T) {
	r := newRT(t)
	id := testutil.UniqueName(t)
	r.OK("create", "--bundle", fixtures.Bundle(t, args("true")), id)
	out := r.OK("list")
	if !strings.HasPrefix(out, "ID") || !strings.Contains(out, id) || !strings.Contains(out, "created") {
		t.Errorf("list:\n%s", out)
	}
	if q := strings.TrimSpace(r.OK("list", "-q")); q != id {
		t.Errorf("list -q = %q", q)
	}
	var states []state
	if err := json.Unmarshal([]byte(r.OK("list", "--format", "json")), &states); err != nil || len(states) != 1 || states[0].ID != id {
		t.Errorf("list --format json: %v %+v", err, states)
	}
}

type badInput struct {
	name string
	mod  func(*specs.Spec)
	want string
}

func TestBadInputLeavesNothing(t *testing.T) {
	r := newRT(t)
	cases := []badInput{
		{"no args", args(), "args"},
		{"unknown namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, "bogus"},
		{"missing rootfs", func(s *specs.Spec) { s.Root.Path = "/nonexistent-berth-rootfs" }, "nonexistent-berth-rootfs"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "cwd"},
		{"missing program", args("/no/such/program"), "/no/such/program"},
		// Both fail in the runtime's thread that builds the rootfs in the
		// init's namespaces (runtime/prepare_linux.go).
		{"missing bind source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/nonexistent-berth-bind", Options: []string{"bind"}})
		}, "nonexistent-berth-bind"},
		{"bad procfs option", func(s *specs.Spec) {
			for i := range s.Mounts {
				if s.Mounts[i].Type == "proc" {
					s.Mounts[i].Options = append(s.Mounts[i].Options, "hidepid=berth-bogus")
				}
			}
		}, "hidepid"},
		// Fails after the mounts were made in the runtime's own namespace.
		{"missing program, no mount namespace", func(s *specs.Spec) {
			args("/no/such/program")(s)
			var kept []specs.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type != specs.MountNamespace {
					kept = append(kept, ns)
				}
			}
			s.Linux.Namespaces = kept
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		}, "/no/such/program"},
		// Fail in the init, after the rootfs is built.
		{"missing cwd", func(s *specs.Spec) { s.Process.Cwd = "/nonexistent-berth-cwd" }, "chdir /nonexistent-berth-cwd"},
		{"rlimit above the hard limit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1 << 40}}
		}, "RLIMIT_NOFILE to soft 1024 hard 1099511627776: raising the hard limit above"},
	}
	// The default bundle gets the fast init (runtime/fast_linux.go);
	// BERTH_RUNTIME_FAST_INIT=0 gives the init executed from the sealed
	// binary.
	for _, init := range []struct{ name, env string }{{"fast init", ""}, {"sealed init", "0"}} {
		t.Run(init.name, func(t *testing.T) {
			t.Setenv("BERTH_RUNTIME_FAST_INIT", init.env)
			badInputLeavesNothing(t, r, cases)
		})
	}
}

func badInputLeavesNothing(t *testing.T, r *rt, cases []badInput) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := testutil.UniqueName(t)
			b := fixtures.Bundle(t, tc.mod, cgroupPath("/"+id))
			res := r.Cmd("", "create", "--bundle", b, id)
			if res.Code == 0 {
				r.Cmd("", "delete", "--force", id)
				t.Fatalf("create succeeded")
			}
			if !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("error %q does not mention %q", res.Stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(r.Root, id)); !os.IsNotExist(err) {
				t.Errorf("state directory left behind")
			}
			if _, err := os.Stat(cgroupDir("memory", id)); !os.IsNotExist(err) {
				t.Errorf("cgroup left behind")
			}
			if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), b) {
				t.Errorf("mount of the bundle left behind")
			}
		})
	}
}

// A runtime run by an unprivileged user: its own uid is root in a new user
// namespace, and without cgroup access it goes on without a cgroup.
func TestRootless(t *testing.T) {
	testutil.RequiresRoot(t)
	const uid = 1000
	b := fixtures.Bundle(t, func(s *specs.Spec) {
		*s = *spec.Default(true)
		s.Process.Terminal = false
		s.Process.Args = []string{"sh", "-c", "id -u; cat /proc/self/uid_map"}
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 1}}
	})
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(b), b, root} {
		os.Chmod(d, 0o755)
	}
	os.Chown(root, uid, uid)
	cmd := exec.Command(binary, "--root", root, "run", "--bundle", b, testutil.UniqueName(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rootless run: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != "0 0 1000 1" {
		t.Errorf("rootless container printed %q", out)
	}
}
