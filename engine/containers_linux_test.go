package engine

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"berth.dev/api/docker/backend"
	"berth.dev/content"
	"berth.dev/image"
	"berth.dev/internal/testutil"
	"berth.dev/metadata"
	"berth.dev/snapshot"
	"berth.dev/snapshot/overlay"
	"berth.dev/tests/fixtures/images"
	"berth.dev/tests/runtimetest"
	"berth.dev/tests/shimtest"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// A container made from a loaded image runs in its own shim under
// berth-runtime, its output goes to the json-file log, its exit code
// comes back, and removing it leaves no mount, snapshot or directory.
// containerEnv is an engine with the busybox image loaded, berth-runtime
// and berth-shim built, and a cgroup parent of the test's own.
type containerEnv struct {
	cs     *Containers
	imgs   *Images
	snaps  snapshot.Snapshotter
	run    string
	parent string
	cfg    *Config
	db     *metadata.DB
}

func newContainerEnv(t *testing.T) *containerEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	// The shim leaves its starter's family; as a subreaper this process
	// inherits it and reaps it (Containers.exited), instead of leaving a
	// zombie to an init that may not reap.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	// The shim's socket path must fit in a sockaddr_un (108 bytes) with a
	// 64-hex container ID in it: a short run-time root, as /run/berth is.
	root := t.TempDir()
	run, rerr := os.MkdirTemp("/tmp", "bt")
	if rerr != nil {
		t.Fatal(rerr)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	cfg := DefaultConfig()
	cfg.Root, cfg.ExecRoot = root, run
	imgs, snaps, db := newBusyboxImages(t, cfg)
	runtimeBin, cleanup, err := runtimetest.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	shimBin, shimCleanup, err := shimtest.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shimCleanup)
	cfg.Runtime = runtimeBin
	cs := NewContainers(ContainersConfig{Config: cfg, Images: imgs, Snaps: snaps, DB: db, Shim: shimBin})
	env := &containerEnv{cs: cs, imgs: imgs, snaps: snaps, run: run, cfg: cfg, db: db}
	// A cgroup parent of the test's own, removed at the end (berthd's
	// default, /berth, is left in place like dockerd's /docker).
	env.parent = "/" + testutil.UniqueName(t)
	t.Cleanup(func() {
		// Containers still there are removed first, then the cgroups.
		cs := env.cs // a test may have replaced it (a restarted berthd)
		for _, x := range cs.all() {
			if err := cs.Remove(context.Background(), x.rec.ID, backend.ContainerRemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		cs.Close()
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", env.parent))
		if d := filepath.Join("/sys/fs/cgroup", env.parent); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Logf("remove %s: %v", d, err)
			}
		}
	})
	return env
}

// newBusyboxImages opens the stores under cfg's roots (overlay snapshots:
// the test is skipped where overlayfs does not work) and returns an image
// service with the busybox image loaded.
func newBusyboxImages(t *testing.T, cfg *Config) (*Images, snapshot.Snapshotter, *metadata.DB) {
	t.Helper()
	db, err := metadata.Open(cfg.MetadataPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := content.Open(cfg.ContentDir())
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := overlay.New(cfg.SnapshotDir())
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { snaps.Close() })
	imgs := NewImages(ImagesConfig{Config: cfg, Content: store, Snaps: snaps, Names: image.NewStore(db), DB: db, Events: NewEvents(10)})
	t.Cleanup(imgs.Close)
	var archive bytes.Buffer
	if err := images.Busybox(t).WriteDockerArchive(&archive, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := imgs.Load(context.Background(), &archive, nil); err != nil {
		t.Fatal(err)
	}
	return imgs, snaps, db
}

// create makes a busybox container running cmd with the test's cgroup
// parent; mod, when set, changes the request first.
func (e *containerEnv) create(t *testing.T, cmd []string, mod func(*container.Config, *container.HostConfig)) string {
	t.Helper()
	cfg := &container.Config{Image: "busybox", Cmd: cmd}
	hc := &container.HostConfig{Resources: container.Resources{CgroupParent: e.parent}, NetworkMode: "none"}
	if mod != nil {
		mod(cfg, hc)
	}
	resp, err := e.cs.Create(context.Background(), "", container.CreateRequest{Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

// A container made from a loaded image runs in its own shim under
// berth-runtime, its output goes to the json-file log, its exit code
// comes back, and removing it leaves no mount, snapshot or directory.
func TestContainerFromImage(t *testing.T) {
	env := newContainerEnv(t)
	ctx := context.Background()
	cs, snaps, run := env.cs, env.snaps, env.run
	parent := env.parent
	created, err := cs.Create(ctx, "", container.CreateRequest{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "echo hello from $(cat /etc/hostname 2>/dev/null || hostname); echo oops >&2; exit 3"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{CgroupParent: parent}, NetworkMode: "none"},
	})

	if err != nil {
		t.Fatal(err)
	}
	ctr := struct{ ID string }{created.ID}
	waitc, err := cs.Wait(ctx, ctr.ID, container.WaitConditionNextExit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Start(ctx, ctr.ID); err != nil {
		cs.Remove(ctx, ctr.ID, backend.ContainerRemoveOptions{})
		t.Fatal(err)
	}
	exit := <-waitc
	if exit.StatusCode != 3 {
		t.Errorf("exit code %d, want 3", exit.StatusCode)
	}
	info, err := cs.Inspect(ctx, ctr.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Status != container.StateExited || info.State.ExitCode != 3 || info.State.FinishedAt == "0001-01-01T00:00:00Z" {
		t.Errorf("state after exit: %+v", info.State)
	}
	log, err := os.ReadFile(cs.logPath(ctr.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"log":"hello from `) || !strings.Contains(string(log), `"stream":"stderr"`) {
		t.Errorf("log:\n%s", log)
	}
	// The runtime's state may already be gone (deleted by hand, or lost
	// with /run at a reboot): Remove still cleans up the rest.
	if out, err := exec.Command(cs.cfg.Runtime, "--root", filepath.Join(run, "runtime"), "delete", "--force", ctr.ID).CombinedOutput(); err != nil {
		t.Fatalf("runtime delete: %v\n%s", err, out)
	}
	if err := cs.Remove(ctx, ctr.ID, backend.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), run) {
		t.Errorf("mounts left under %s", run)
	}
	if _, err := snaps.Stat(ctx, snapshotKey(ctr.ID)); err == nil {
		t.Error("the container's snapshot is left")
	}
	if _, err := os.Stat(filepath.Join(run, "containers", ctr.ID)); !os.IsNotExist(err) {
		t.Error("the container's directory is left")
	}
	if err := cs.Remove(ctx, ctr.ID, backend.ContainerRemoveOptions{}); err == nil {
		t.Error("a second remove succeeded")
	}
}
