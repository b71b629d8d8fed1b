// Package runtimetest runs the real berth-runtime binary for end-to-end
// tests: it builds the binary once per test binary and gives each test a
// state root of its own with helpers to run commands in it.
package runtimetest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/internal/testutil"
)

// Build returns the berth-runtime to test: $BERTH_RUNTIME_BINARY when set
// (make's bin/), else one built now into a temp dir that cleanup removes.
// The directory is world-readable so tests can run the binary as another
// user.
func Build() (binary string, cleanup func(), err error) {
	if binary = os.Getenv("BERTH_RUNTIME_BINARY"); binary != "" {
		return binary, func() {}, nil
	}
	dir, err := os.MkdirTemp("", testutil.Prefix+"runtime-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "berth-runtime")
	build := exec.Command("go", "build", "-o", binary, "berth.dev/cmd/berth-runtime")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("build berth-runtime: %w", err)
	}
	return binary, cleanup, nil
}

// Runtime is one state root; Cleanup force-deletes what a test left in it.
type Runtime struct {
	T      *testing.T
	Binary string
	Root   string
}

// New makes a state root for the test; the test is skipped without root.
func New(t *testing.T, binary string) *Runtime {
	t.Helper()
	testutil.RequiresRoot(t)
	r := &Runtime{T: t, Binary: binary, Root: t.TempDir()}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(r.Root)
		for _, e := range entries {
			exec.Command(binary, "--root", r.Root, "delete", "--force", e.Name()).Run()
		}
	})
	return r
}

// Result is what a command printed and its exit status.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Cmd runs a command with stdin as its input.
func (r *Runtime) Cmd(stdin string, args ...string) Result {
	r.T.Helper()
	c := exec.Command(r.Binary, append([]string{"--root", r.Root}, args...)...)
	// Files, not pipes: a detached container keeps its stdio open, and
	// waiting for a pipe's end would wait for the container.
	dir := r.T.TempDir()
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	errf, _ := os.Create(filepath.Join(dir, "stderr"))
	defer out.Close()
	defer errf.Close()
	c.Stdout, c.Stderr = out, errf
	c.Stdin = strings.NewReader(stdin)
	err := c.Run()
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	res := Result{Stdout: string(o), Stderr: string(e)}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		r.T.Fatalf("berth-runtime %v: %v", args, err)
	}
	return res
}

// OK runs a command that must succeed and returns its stdout.
func (r *Runtime) OK(args ...string) string {
	r.T.Helper()
	res := r.Cmd("", args...)
	if res.Code != 0 {
		r.T.Fatalf("berth-runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// State is the part of `state` output tests look at.
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

// State reads a container's state.
func (r *Runtime) State(id string) State {
	r.T.Helper()
	var st State
	if err := json.Unmarshal([]byte(r.OK("state", id)), &st); err != nil {
		r.T.Fatalf("parse state: %v", err)
	}
	return st
}
