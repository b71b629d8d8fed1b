package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeScript writes an executable shell script.
func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// fakeDaemonScript returns a berthd stand-in: this test binary serving
// the fake API on the --host it is given.
func fakeDaemonScript(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "berthd")
	writeScript(t, path, "exec env "+fakeDaemonEnv+"=1 '"+self+"' \"$@\"")
	return path
}

// stopFakeDaemon ends the daemon whose pid file is in dir and waits until
// it is gone.
func stopFakeDaemon(t *testing.T, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "fake-berthd.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Errorf("pid file: %v", err)
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	// The CLI's own wait reaps it; poll until the pid is gone.
	for range 500 {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// daemonEnv is an environment with no daemon running: BERTH_HOST names a
// socket in a directory that does not exist yet.
func daemonEnv(t *testing.T) (*testEnv, string) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	e := &testEnv{t: t, home: dir, env: map[string]string{
		"BERTH_HOST": "unix://" + filepath.Join(run, "berth.sock"),
		"HOME":       dir,
	}}
	return e, run
}

func TestAutoStartDaemon(t *testing.T) {
	e, run := daemonEnv(t)
	e.env["BERTH_DAEMON"] = fakeDaemonScript(t, e.home)
	t.Cleanup(func() { stopFakeDaemon(t, run) })

	r := e.berth("", "images", "-q")
	if r.code != 0 || r.stdout != "6d3e4188a38a\n6d3e4188a38a\na416a98b71e2\n" {
		t.Fatalf("first command: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	log, err := os.ReadFile(filepath.Join(run, "berthd.log"))
	if err != nil || !strings.Contains(string(log), "fake berthd listening on "+filepath.Join(run, "berth.sock")) {
		t.Errorf("daemon log %q: %v", log, err)
	}
	pid, err := os.ReadFile(filepath.Join(run, "fake-berthd.pid"))
	if err != nil {
		t.Fatal(err)
	}

	// The next command finds the daemon running and starts no other.
	if r := e.berth("", "images", "-q"); r.code != 0 {
		t.Fatalf("second command: exit %d, stderr %q", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(run, "fake-berthd.pid")); string(again) != string(pid) {
		t.Errorf("a second daemon was started: pid %s, then %s", pid, again)
	}
}

func TestAutoStartFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string // empty: BERTH_DAEMON names a missing file
		detail string
	}{
		{"daemon exits", `echo "berthd: open /var/lib/berth/metadata.db: permission denied" >&2; exit 1`, "permission denied"},
		{"no binary", "", "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, run := daemonEnv(t)
			e.env["BERTH_DAEMON"] = filepath.Join(e.home, "berthd")
			if tc.script != "" {
				writeScript(t, e.env["BERTH_DAEMON"], tc.script)
			}
			r := e.berth("", "images")
			head := "Cannot connect to the berth daemon at unix://" + filepath.Join(run, "berth.sock") + ". Is berthd running?\n"
			if r.code != 1 || !strings.HasPrefix(r.stderr, head) || !strings.Contains(r.stderr, tc.detail) {
				t.Errorf("exit %d, stderr %q; want 1, %q ... %q", r.code, r.stderr, head, tc.detail)
			}
		})
	}
}

// A socket named by DOCKER_HOST or -H belongs to some other daemon:
// berth reports that nothing answers and starts nothing there.
func TestNoAutoStartForOtherHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
	}{
		{"DOCKER_HOST", []string{"images"}, "DOCKER_HOST"},
		{"-H", []string{"-H", "SOCKET", "images"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := daemonEnv(t)
			socket := "unix://" + filepath.Join(e.home, "docker.sock")
			delete(e.env, "BERTH_HOST")
			if tc.env != "" {
				e.env[tc.env] = socket
			}
			marker := filepath.Join(e.home, "started")
			e.env["BERTH_DAEMON"] = filepath.Join(e.home, "berthd")
			writeScript(t, e.env["BERTH_DAEMON"], "touch '"+marker+"'")
			args := append([]string{}, tc.args...)
			for i, a := range args {
				if a == "SOCKET" {
					args[i] = socket
				}
			}
			r := e.berth("", args...)
			want := "Cannot connect to the berth daemon at " + socket + ". Is berthd running?\n"
			if r.code != 1 || r.stderr != want {
				t.Errorf("exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("berthd was started for a foreign host")
			}
		})
	}
}
