package docker

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"berth.dev/api/docker/backend"
)

// TestDockerCLI runs the real docker CLI against the server with the fake
// backends, over a unix socket as berthd serves it.
func TestDockerCLI(t *testing.T) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "berth.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	sys, imgs := &fakeSystem{}, &fakeImages{}
	s := NewServer(Backends{System: sys, Images: imgs}, WithEngineVersion("0.1.0-test"))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(dockerBin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(),
			"DOCKER_HOST=unix://"+sock,
			"DOCKER_CONFIG="+filepath.Join(dir, "config"), // never the user's credentials
			"DOCKER_CONTEXT=", "DOCKER_API_VERSION=",
			"DOCKER_CLI_HINTS=false",
		)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	docker := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := run("", args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	sys.recorded = recordedEvents
	imgs.loaded = []string{"busybox:latest"}
	archive := filepath.Join(dir, "busybox.tar")
	if err := os.WriteFile(filepath.Join(dir, "rootfs.tar"), []byte("rootfs-bytes"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		args []string
		want []string // substrings of the output
		call string   // the backend method the command must reach
	}{
		{[]string{"version"}, []string{"Berth Test Engine", "0.1.0-test", "API version:      " + MaxAPIVersion + " (minimum version " + MinAPIVersion + ")", "abc1234"}, "Version"},
		{[]string{"info"}, []string{"berth-test-host", "Storage Driver: overlay", "Cgroup Version: 2", "Berth Test OS"}, "Info"},
		{[]string{"images", "--no-trunc"}, []string{"busybox", "latest", fakeImageID}, "List"},
		{[]string{"pull", "busybox"}, []string{"latest: Pulling from library/busybox", "3c7febba1a08: Pull complete", "Digest: " + fakeDigest, "Status: Downloaded newer image for busybox:latest", "docker.io/library/busybox:latest"}, "Pull"},
		{[]string{"tag", "busybox", "myrepo:v2"}, nil, "Tag"},
		{[]string{"history", "busybox"}, []string{"berth-fake-history", "<missing>", fakeImageID[7:19]}, "History"},
		{[]string{"image", "inspect", "busybox"}, []string{`"Id": "` + fakeImageID + `"`, `"Architecture": "amd64"`}, "Inspect"},
		{[]string{"rmi", "busybox"}, []string{"Untagged: busybox:latest", "Deleted: " + fakeImageID}, "Remove"},
		{[]string{"system", "df"}, []string{"Images", "Containers", "Local Volumes", "Build Cache"}, "DiskUsage"},
		{[]string{"events", "--since", "50", "--until", "1000", "--filter", "type=container"}, []string{"container create c0ffee1234", "container start c0ffee1234"}, "SubscribeEvents"},
		{[]string{"save", "-o", archive, "busybox"}, nil, "Save"},
		{[]string{"load", "-i", archive}, []string{"Loaded image: busybox:latest"}, "Load"},
		{[]string{"import", "-m", "hello", "-c", "ENV A=1", filepath.Join(dir, "rootfs.tar"), "myimp:v1"}, []string{fakeImageID}, "Import"},
		{[]string{"image", "prune", "-f"}, []string{"deleted: " + fakeImageID, "Total reclaimed space: 4.096kB"}, "Prune"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := docker(t, tt.args...)
			t.Logf("docker %s:\n%s", strings.Join(tt.args, " "), out)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			var calls []call
			calls = append(calls, sys.Calls()...)
			calls = append(calls, imgs.Calls()...)
			found := false
			for _, c := range calls {
				found = found || c.Method == tt.call
			}
			if !found {
				t.Errorf("the backend's %s was not called", tt.call)
			}
		})
	}

	t.Run("events are filtered", func(t *testing.T) {
		out := docker(t, "events", "--since", "50", "--until", "1000", "--filter", "type=container")
		if strings.Contains(out, "image pull") || strings.Contains(out, "network") {
			t.Errorf("unfiltered events:\n%s", out)
		}
	})

	t.Run("save writes the archive", func(t *testing.T) {
		b, err := os.ReadFile(archive)
		if err != nil || string(b) != "fake-tar:busybox" {
			t.Errorf("archive %q %v", b, err)
		}
	})

	t.Run("login then push with the stored credentials", func(t *testing.T) {
		out, err := run("bad\n", "login", "-u", "berth-test", "--password-stdin", "127.0.0.1:5999")
		if err == nil || !strings.Contains(out, "incorrect username or password") {
			t.Errorf("bad login: %v\n%s", err, out)
		}
		out, err = run("good\n", "login", "-u", "berth-test", "--password-stdin", "127.0.0.1:5999")
		if err != nil || !strings.Contains(out, "Login Succeeded") {
			t.Fatalf("login: %v\n%s", err, out)
		}
		docker(t, "tag", "busybox", "127.0.0.1:5999/team/busybox:v1")
		out = docker(t, "push", "127.0.0.1:5999/team/busybox:v1")
		if !strings.Contains(out, "167d66da158a: Pushed") || !strings.Contains(out, "digest: "+fakeDigest) {
			t.Errorf("push output:\n%s", out)
		}
		c := imgs.last(t)
		if opts, ok := c.Args[1].(backend.PushOptions); c.Method != "Push" || !ok || opts.Auth.Username != "berth-test" || c.Args[0] != "127.0.0.1:5999/team/busybox:v1" {
			t.Errorf("push call %+v", c)
		}
	})

	t.Run("search is refused", func(t *testing.T) {
		out, err := run("", "search", "busybox")
		if err == nil || !strings.Contains(out, "image search is not implemented by berth") {
			t.Errorf("search: %v\n%s", err, out)
		}
	})

	t.Run("backend arguments", func(t *testing.T) {
		want := []call{
			{"Tag", []any{"busybox", "docker.io/library/myrepo:v2"}},
			{"Import", []any{"rootfs-bytes", backend.ImportOptions{Ref: "docker.io/library/myimp:v1", Message: "hello", Changes: []string{"ENV A=1"}}}},
			{"Pull", []any{"docker.io/library/busybox:latest", backend.PullOptions{}}},
		}
		for _, w := range want {
			if !slices.ContainsFunc(imgs.Calls(), func(c call) bool { return reflect.DeepEqual(c, w) }) {
				t.Errorf("no call %+v among %+v", w, imgs.Calls())
			}
		}
	})
}
