package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"berth.dev/snapshot"
)

// waitExit waits for the container to stop, with a bound so that a hang
// fails the test instead of the run.
func waitExit(t *testing.T, cs *Containers, id string) container.WaitResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch, err := cs.Wait(ctx, id, container.WaitConditionNotRunning)
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := <-ch
	if !ok {
		t.Fatalf("container %s did not stop", id)
	}
	return resp
}

// An attach made before start sees all the output, and its stdin reaches
// the container (docker run -i).
func TestAttachBeforeStart(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, []string{"sh", "-c", "read line; echo got $line; echo err >&2"}, func(c *container.Config, _ *container.HostConfig) {
		c.OpenStdin, c.StdinOnce, c.AttachStdin = true, true, true
	})
	var stdout, stderr testutil.Buffer
	done := make(chan error, 1)
	go func() {
		done <- env.cs.Attach(ctx, id, backend.AttachOptions{Stdin: strings.NewReader("hello\n"), Stdout: &stdout, Stderr: &stderr, Stream: true})
	}()
	// The attach registers before the start; give it the moment it needs.
	for i := 0; i < 100; i++ {
		x, _ := env.cs.find(id)
		x.mu.Lock()
		n := len(x.attachers)
		x.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := env.cs.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := waitExit(t, env.cs, id); got.StatusCode != 0 {
		t.Errorf("exit %d", got.StatusCode)
	}
	if stdout.String() != "got hello\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	// The log has both streams too, and Logs can pick one.
	var logged []string
	err := env.cs.Logs(ctx, id, backend.LogsOptions{Stdout: true, Tail: -1}, func(m backend.LogMessage) error {
		logged = append(logged, m.Stream+":"+string(m.Line))
		return nil
	})
	if err != nil || !slices.Equal(logged, []string{"stdout:got hello\n"}) {
		t.Errorf("logs %q, %v", logged, err)
	}
}

// detachReader ends input at the detach keys and passes everything else.
func TestDetachReader(t *testing.T) {
	keys, err := parseDetachKeys("")
	if err != nil || !bytes.Equal(keys, []byte{16, 17}) {
		t.Fatalf("default keys %v %v", keys, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"abc\x10\x11def", "abc"},
		{"a\x10b\x10\x11", "a\x10b"},
		{"plain", "plain"},
		{"\x10", "\x10"},
	} {
		detached := false
		r := &detachReader{r: strings.NewReader(tc.in), keys: keys, detach: func() { detached = true }}
		got, _ := io.ReadAll(r)
		if string(got) != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
		if want := strings.Contains(tc.in, "\x10\x11"); detached != want {
			t.Errorf("%q: detached %v", tc.in, detached)
		}
	}
	if _, err := parseDetachKeys("ctrl-"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad keys: %v", err)
	}
}

// Exec runs in the running container with its own environment and exit
// code; stop sends the stop signal first and SIGKILL after the timeout.
func TestExecAndStop(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, []string{"sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"}, nil)
	if _, err := env.cs.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if again, err := env.cs.Start(ctx, id); err != nil || !again {
		t.Errorf("second start: %v %v", again, err)
	}
	execID, err := env.cs.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo $FOO $(id -u); exit 7"}, Env: []string{"FOO=bar"}, User: "nobody", AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out testutil.Buffer
	if err := env.cs.ExecStart(ctx, execID, backend.ExecStartOptions{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	// A detached exec has a pid while it runs.
	bg, err := env.cs.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"sleep", "5"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cs.ExecStart(ctx, bg, backend.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if info, _ := env.cs.ExecInspect(ctx, bg); info.Pid > 0 && info.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a running exec without a pid")
		}
	}
	info, err := env.cs.ExecInspect(ctx, execID)
	if err != nil || info.ExitCode == nil || *info.ExitCode != 7 || info.Running {
		t.Errorf("exec inspect %+v %v", info, err)
	}
	if out.String() != "bar 65534\n" {
		t.Errorf("exec output %q", out.String())
	}
	// An exec with a terminal (its console socket's path must fit).
	ttyExec, err := env.cs.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"tty"}, Tty: true, AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var ttyOut testutil.Buffer
	if err := env.cs.ExecStart(ctx, ttyExec, backend.ExecStartOptions{Stdout: &ttyOut, Stderr: &ttyOut}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ttyOut.String(), "/dev/pts/") {
		t.Errorf("exec -t: %q", ttyOut.String())
	}
	top, err := env.cs.Top(ctx, id, "")
	if err != nil || len(top.Processes) == 0 {
		t.Errorf("top %+v %v", top, err)
	}
	var stats []container.StatsResponse
	if err := env.cs.Stats(ctx, id, backend.StatsOptions{}, func(s container.StatsResponse) error { stats = append(stats, s); return nil }); err != nil || len(stats) != 1 || stats[0].PidsStats.Current == 0 || stats[0].PreCPUStats.CPUUsage.TotalUsage == 0 {
		t.Errorf("stats %+v %v", stats, err)
	}
	if err := env.cs.Remove(ctx, id, backend.ContainerRemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("remove of a running container: %v", err)
	}
	if _, err := env.cs.Stop(ctx, id, backend.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	info2, _ := env.cs.Inspect(ctx, id, false)
	if info2.State.ExitCode != 42 || info2.State.Running {
		t.Errorf("after stop: %+v", info2.State)
	}
	if _, err := env.cs.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: []string{"true"}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("exec in a stopped container: %v", err)
	}

	// A process that ignores SIGTERM is killed after the timeout.
	stubborn := env.create(t, []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"}, nil)
	if _, err := env.cs.Start(ctx, stubborn); err != nil {
		t.Fatal(err)
	}
	one := 1
	if _, err := env.cs.Stop(ctx, stubborn, backend.StopOptions{Timeout: &one}); err != nil {
		t.Fatal(err)
	}
	if st, _ := env.cs.Inspect(ctx, stubborn, false); st.State.ExitCode != 137 {
		t.Errorf("killed after timeout: exit %d", st.State.ExitCode)
	}
	if already, err := env.cs.Stop(ctx, stubborn, backend.StopOptions{}); !already || err != nil {
		t.Errorf("stop of a stopped container: %v %v", already, err)
	}
}

// on-failure:2 restarts a failing container twice, then leaves it.
func TestRestartPolicy(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, []string{"sh", "-c", "exit 3"}, func(_ *container.Config, hc *container.HostConfig) {
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}
	})
	if _, err := env.cs.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := env.cs.Inspect(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if info.RestartCount == 2 && info.State.Status == container.StateExited {
			if info.State.ExitCode != 3 {
				t.Errorf("exit %d", info.State.ExitCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart count %d, status %s", info.RestartCount, info.State.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The policy is done: it stays exited.
	time.Sleep(500 * time.Millisecond)
	if info, _ := env.cs.Inspect(ctx, id, false); info.RestartCount != 2 || info.State.Status != container.StateExited {
		t.Errorf("after the retries: %d %s", info.RestartCount, info.State.Status)
	}
	if _, err := env.cs.Create(ctx, "", container.CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad policy: %v", err)
	}
}

// The lecture's demo at engine level: change a file, see it in diff, commit,
// run the new image and find the file; cp reads and writes inside the
// container and never outside it.
func TestCommitDiffCopy(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, []string{"sh", "-c", "echo hi > /greeting; rm /bin/vi; ln -s /../../../../etc /escape"}, nil)
	if _, err := env.cs.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := waitExit(t, env.cs, id); got.StatusCode != 0 {
		t.Fatalf("exit %d", got.StatusCode)
	}
	changes, err := env.cs.Changes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]container.ChangeType{}
	for _, c := range changes {
		have[c.Path] = c.Kind
	}
	if have["/greeting"] != container.ChangeAdd || have["/bin/vi"] != container.ChangeDelete {
		t.Errorf("changes %+v", changes)
	}
	if _, ok := have["/etc/hostname"]; ok {
		t.Errorf("the init layer's mount points show in the changes: %+v", changes)
	}

	// cp out: the file, and a path through a symlink that points up stays
	// inside the container.
	rc, st, err := env.cs.ArchivePath(ctx, id, "/greeting")
	if err != nil {
		t.Fatal(err)
	}
	files := readTar(t, rc)
	if st.Name != "greeting" || files["greeting"] != "hi\n" {
		t.Errorf("archive of /greeting: %+v %q", st, files)
	}
	rc, _, err = env.cs.ArchivePath(ctx, id, "/escape/passwd")
	if err != nil {
		t.Fatal(err)
	}
	passwd := readTar(t, rc)["passwd"]
	host, _ := os.ReadFile("/etc/passwd")
	if passwd == string(host) || !strings.HasPrefix(passwd, "root:") {
		t.Errorf("/escape/passwd read %q", passwd)
	}
	// The files berthd mounts are read from where the container sees them.
	rc, _, err = env.cs.ArchivePath(ctx, id, "/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTar(t, rc)["hostname"]; got != id[:12]+"\n" {
		t.Errorf("/etc/hostname read %q", got)
	}
	if _, err := env.cs.StatPath(ctx, id, "/nonexistent"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stat of a missing path: %v", err)
	}
	// cp in, through the same symlink: lands in the container's /etc.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "berth-test-dropped", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("in\n"))
	tw.Close()
	if err := env.cs.ExtractToPath(ctx, id, "/escape", &tb, backend.ArchiveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/etc/berth-test-dropped"); err == nil {
		os.Remove("/etc/berth-test-dropped")
		t.Fatal("cp wrote outside the container")
	}
	rc, _, err = env.cs.ArchivePath(ctx, id, "/etc/berth-test-dropped")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTar(t, rc)["berth-test-dropped"]; got != "in\n" {
		t.Errorf("copied in: %q", got)
	}

	imgID, err := env.cs.Commit(ctx, id, backend.CommitOptions{Ref: "berth-test-committed:v1", Comment: "greeting", Changes: []string{"ENV COMMITTED=yes"}})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := env.imgs.History(ctx, "berth-test-committed:v1")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := env.imgs.History(ctx, "busybox")
	if len(hist) != len(base)+1 || hist[0].Comment != "greeting" || hist[0].ID != imgID {
		t.Errorf("history of the commit: %+v", hist)
	}
	run := env.create(t, []string{"sh", "-c", "cat /greeting; echo $COMMITTED; test -e /bin/vi || echo novi"}, func(c *container.Config, _ *container.HostConfig) {
		c.Image = "berth-test-committed:v1"
	})
	var out testutil.Buffer
	go env.cs.Attach(ctx, run, backend.AttachOptions{Stdout: &out, Stream: true})
	time.Sleep(100 * time.Millisecond)
	if _, err := env.cs.Start(ctx, run); err != nil {
		t.Fatal(err)
	}
	waitExit(t, env.cs, run)
	var logged strings.Builder
	env.cs.Logs(ctx, run, backend.LogsOptions{Stdout: true, Tail: -1}, func(m backend.LogMessage) error { logged.Write(m.Line); return nil })
	if logged.String() != "hi\nyes\nnovi\n" {
		t.Errorf("the committed image's container printed %q", logged.String())
	}
	// The image is in use: rmi refuses, rm then rmi works.
	if _, err := env.imgs.Remove(ctx, "berth-test-committed:v1", backend.RemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("rmi of an image in use: %v", err)
	}
	if err := env.cs.Remove(ctx, run, backend.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.imgs.Remove(ctx, "berth-test-committed:v1", backend.RemoveOptions{}); err != nil {
		t.Errorf("rmi: %v", err)
	}
}

func readTar(t *testing.T, rc io.ReadCloser) map[string]string {
	t.Helper()
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[filepath.Clean(hdr.Name)] = string(data)
	}
}

// A new service over the same state finds a running container, follows
// it, and stops it; a container that exited meanwhile gets its exit code.
func TestRecover(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	live := env.create(t, []string{"sleep", "1000"}, nil)
	gone := env.create(t, []string{"sh", "-c", "sleep 0.5; exit 5"}, nil)
	always := env.create(t, []string{"sleep", "1000"}, func(_ *container.Config, hc *container.HostConfig) {
		hc.RestartPolicy.Name = container.RestartPolicyAlways
	})
	for _, id := range []string{live, gone, always} {
		if _, err := env.cs.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	zero := 0
	if _, err := env.cs.Stop(ctx, always, backend.StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	env.cs.Close() // berthd goes away; the containers run on
	time.Sleep(time.Second)
	// A cgroup a crash left under berth's default parent, with no record.
	orphan := "/sys/fs/cgroup/pids/berth/" + newID()
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil {
		orphan = "/sys/fs/cgroup/berth/" + newID()
	}
	if _, err := os.Stat(filepath.Dir(orphan)); os.IsNotExist(err) {
		// Made here: removed last (cleanups run in reverse order).
		t.Cleanup(func() { os.Remove(filepath.Dir(orphan)) })
	}
	if err := os.MkdirAll(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(orphan) })
	// Left by a crash, so not made a moment ago (a younger empty cgroup
	// may be a container another berthd is creating: it stays).
	young := filepath.Join(filepath.Dir(orphan), newID())
	if err := os.Mkdir(young, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(young) })
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}
	cs2 := NewContainers(ContainersConfig{Config: env.cfg, Images: env.imgs, Snaps: env.snaps, DB: env.db, Shim: env.cs.shimBin})
	if err := cs2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	env.cs = cs2
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan cgroup %s left: %v", orphan, err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a cgroup made a moment ago was removed: %v", err)
	}
	info, err := cs2.Inspect(ctx, gone, false)
	if err != nil || info.State.Status != container.StateExited || info.State.ExitCode != 5 {
		t.Errorf("exited while away: %+v %v", info.State, err)
	}
	info, _ = cs2.Inspect(ctx, live, false)
	if info.State.Status != container.StateRunning || info.State.Pid == 0 {
		t.Fatalf("still running: %+v", info.State)
	}
	// restart=always: started again when berthd starts, even though a user
	// stopped it, as dockerd does.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, _ := cs2.Inspect(ctx, always, false)
		if info.State.Status == container.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart=always container after berthd's start: %+v", info.State)
		}
	}
	// sleep as PID 1 has no handler for SIGTERM: killed after the timeout.
	one := 1
	if _, err := cs2.Stop(ctx, live, backend.StopOptions{Timeout: &one}); err != nil {
		t.Fatal(err)
	}
	if info, _ := cs2.Inspect(ctx, live, false); info.State.ExitCode != 137 {
		t.Errorf("stopped after recovery: %+v", info.State)
	}
}

// A --rm container whose command cannot run is removed at the failed
// start, and a wait for its removal is answered (docker run --rm waits so).
func TestAutoRemoveFailedStart(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	id := env.create(t, []string{"/nonexistent"}, func(_ *container.Config, hc *container.HostConfig) { hc.AutoRemove = true })
	removed, err := env.cs.Wait(ctx, id, container.WaitConditionRemoved)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.cs.Start(ctx, id); err == nil || startExitCode(err) != 127 {
		t.Fatalf("start of a missing command: %v", err)
	}
	select {
	case <-removed:
	case <-time.After(10 * time.Second):
		t.Fatal("no removal")
	}
	if _, err := env.cs.Inspect(ctx, id, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("inspect after the failed start: %v", err)
	}
}

// --runtime picks the OCI runtime per container: runc from $PATH runs the
// same container; an unknown name is refused at create.
func TestRuntimeChoice(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
	id := env.create(t, []string{"sh", "-c", "exit 6"}, func(_ *container.Config, hc *container.HostConfig) { hc.Runtime = "runc" })
	if _, err := env.cs.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := waitExit(t, env.cs, id); got.StatusCode != 6 {
		t.Errorf("exit under runc: %d", got.StatusCode)
	}
	if err := env.cs.Remove(ctx, id, backend.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("runc", "--root", env.cs.runtimeRoot(), "list", "-q").Output(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("runc still lists %q (%v)", out, err)
	}
	_, err := env.cs.Create(ctx, "", container.CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{Runtime: "nosuch"}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown runtime: %v", err)
	}
}

// A create that fails half way (a bad bind, after the snapshots were
// made) leaves nothing: no snapshot, directory, record or name.
func TestCreateFailureLeavesNothing(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	for _, hc := range []*container.HostConfig{
		{Binds: []string{"/tmp:/x:bogus"}},
		{Binds: []string{"/tmp:relative"}},
		{Mounts: []mount.Mount{{Type: "nfs", Target: "/x"}}},
	} {
		_, err := env.cs.Create(ctx, "berth-test-half", container.CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: hc})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: %v", hc, err)
		}
	}
	var left []string
	env.snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		// Layers and the image's shared init layer stay with the image.
		if !strings.HasPrefix(info.Name, "sha256:") && !isSharedInit(info.Name) {
			left = append(left, info.Name)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("snapshots left: %v", left)
	}
	if entries, _ := os.ReadDir(filepath.Join(env.cfg.Root, "containers")); len(entries) > 0 {
		t.Errorf("container directories left: %d", len(entries))
	}
	if len(env.cs.all()) != 0 {
		t.Error("a record was left")
	}
	// The name is free again.
	if _, err := env.cs.Create(ctx, "berth-test-half", container.CreateRequest{Config: &container.Config{Image: "busybox"}}); err != nil {
		t.Errorf("the name stayed taken: %v", err)
	}
}

// The containers of an image share one init layer: made by the first
// create, kept when its containers go, holding the mount points that never
// show in a container's diff, and removed with the image.
func TestSharedInitLayer(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	a := env.create(t, []string{"true"}, nil)
	b := env.create(t, []string{"true"}, nil)
	parent := func(id string) string {
		info, err := env.snaps.Stat(ctx, snapshotKey(id))
		if err != nil {
			t.Fatal(err)
		}
		return info.Parent
	}
	init := parent(a)
	if !isSharedInit(init) || parent(b) != init {
		t.Fatalf("init layers %q and %q: want one shared init-sha256:... layer", init, parent(b))
	}
	mounts, err := env.snaps.View(ctx, "berth-test-init-view", init)
	if err != nil {
		t.Fatal(err)
	}
	view := t.TempDir()
	if err := snapshot.MountAll(mounts, view); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(view, p)); err != nil {
			t.Errorf("init layer: %v", err)
		}
	}
	snapshot.UnmountAll(view)
	if err := env.snaps.Remove(ctx, "berth-test-init-view"); err != nil {
		t.Fatal(err)
	}
	changes, err := env.cs.Changes(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("a new container's changes: %+v, want none", changes)
	}
	for _, id := range []string{a, b} {
		if err := env.cs.Remove(ctx, id, backend.ContainerRemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.snaps.Stat(ctx, init); err != nil {
		t.Errorf("the init layer went with the containers, not the image: %v", err)
	}
	if _, err := env.imgs.Remove(ctx, "busybox", backend.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	var left []string
	env.snaps.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		left = append(left, info.Name)
		return nil
	})
	if len(left) > 0 {
		t.Errorf("snapshots left after the image's removal: %v", left)
	}
}

// A --rm container's overlay is volatile (nothing of it is kept, so
// nothing is synced); another container's is not. A stopped container whose
// snapshot was mounted volatile mounts again (cp, diff, a restart).
func TestVolatileRootfs(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	options := func(id string) string {
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 4 && f[4] == env.cs.rootfs(id) {
				return l
			}
		}
		t.Fatalf("%s is not mounted", env.cs.rootfs(id))
		return ""
	}
	rm := env.create(t, []string{"sleep", "100"}, func(_ *container.Config, hc *container.HostConfig) { hc.AutoRemove = true })
	kept := env.create(t, []string{"sleep", "100"}, nil)
	for _, id := range []string{rm, kept} {
		if _, err := env.cs.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if o := options(rm); !strings.Contains(o, "volatile") {
		t.Errorf("--rm container's rootfs not volatile: %s", o)
	}
	if o := options(kept); strings.Contains(o, "volatile") {
		t.Errorf("a kept container's rootfs is volatile: %s", o)
	}
	// The marker a volatile mount leaves does not stop the next mount.
	x, err := env.cs.find(rm)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cs.Kill(ctx, kept, "KILL"); err != nil {
		t.Fatal(err)
	}
	waitExit(t, env.cs, kept)
	x.mu.Lock()
	x.rec.HostConfig.AutoRemove = false // so that it stays after its exit
	x.mu.Unlock()
	if err := env.cs.Kill(ctx, rm, "KILL"); err != nil {
		t.Fatal(err)
	}
	waitExit(t, env.cs, rm)
	if _, err := env.cs.Changes(ctx, rm); err != nil {
		t.Errorf("diff after a volatile run: %v", err)
	}
	if _, err := env.cs.Start(ctx, rm); err != nil {
		t.Errorf("start after a volatile run: %v", err)
	}
}
