package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testEnv is one fake daemon and one CLI environment around it.
type testEnv struct {
	t      *testing.T
	api    *fakeAPI
	socket string
	home   string
	env    map[string]string
}

// newTestEnv starts a fake API server and returns an environment whose
// BERTH_HOST points at it and whose HOME is a fresh directory.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, api: newFakeAPI(), socket: filepath.Join(dir, "berth.sock"), home: filepath.Join(dir, "home")}
	if err := os.Mkdir(e.home, 0o700); err != nil {
		t.Fatal(err)
	}
	e.api.serve(t, e.socket)
	e.env = map[string]string{
		"BERTH_HOST":   "unix://" + e.socket,
		"HOME":         e.home,
		"BERTH_DAEMON": filepath.Join(dir, "no-berthd"),
	}
	return e
}

// result is what one run printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

// berth runs the CLI in-process with stdin.
func (e *testEnv) berth(stdin string, args ...string) result {
	e.t.Helper()
	var out, errOut bytes.Buffer
	c := New(WithStreams(strings.NewReader(stdin), &out, &errOut),
		WithEnv(func(k string) string { return e.env[k] }),
		WithVersion("1.2.3", "abcdef0"))
	code := c.Run(context.Background(), args)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// docker runs the real docker CLI against the same fake, or skips the
// test when docker is not installed.
func (e *testEnv) docker(args ...string) result {
	e.t.Helper()
	bin, err := exec.LookPath("docker")
	if err != nil {
		e.t.Skip("docker CLI not installed")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"DOCKER_HOST=unix://" + e.socket, "HOME=" + e.home, "DOCKER_CONFIG=" + filepath.Join(e.home, ".docker-real"), "PATH=/usr/bin:/bin"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}
