// Package enginetest runs the real berthd for end-to-end tests: it builds
// the binaries once per test binary and starts a daemon per test with its
// own root, run-time root and API socket, all under the test's temp dir,
// and stops it (by its pid) when the test ends.
package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/internal/testutil"
)

// Binaries are the programs under test.
type Binaries struct {
	Berthd string
	Berth  string
	Dir    string
}

// Build returns the binaries to test: those in $BERTH_BIN_DIR when set
// (make's bin/), else ones built now into a temp dir that cleanup removes.
func Build() (b Binaries, cleanup func(), err error) {
	if dir := os.Getenv("BERTH_BIN_DIR"); dir != "" {
		return Binaries{Berthd: filepath.Join(dir, "berthd"), Berth: filepath.Join(dir, "berth"), Dir: dir}, func() {}, nil
	}
	dir, err := os.MkdirTemp("", testutil.Prefix+"engine-bin-")
	if err != nil {
		return b, nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	for _, name := range []string{"berthd", "berth"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, name), "berth.dev/cmd/"+name)
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			cleanup()
			return b, nil, fmt.Errorf("build %s: %w", name, err)
		}
	}
	return Binaries{Berthd: filepath.Join(dir, "berthd"), Berth: filepath.Join(dir, "berth"), Dir: dir}, cleanup, nil
}

// Daemon is a running berthd.
type Daemon struct {
	T        *testing.T
	Bin      Binaries
	Root     string
	ExecRoot string
	Socket   string
	Config   string
	cmd      *exec.Cmd
	log      *testutil.Buffer
	done     chan struct{}
}

// Start starts a berthd for the test and waits until its API answers.
// config, if not empty, is written to the daemon's berth.toml.
func Start(t *testing.T, bin Binaries, config string) *Daemon {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	d := &Daemon{
		T: t, Bin: bin,
		Root:     filepath.Join(dir, "root"),
		ExecRoot: filepath.Join(dir, "run"),
		Socket:   filepath.Join(dir, "run", "berth.sock"),
		Config:   filepath.Join(dir, "berth.toml"),
	}
	if err := os.WriteFile(d.Config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("berthd log:\n%s", d.log.String())
		}
	})
	return d
}

func (d *Daemon) start() {
	t := d.T
	d.log = &testutil.Buffer{}
	d.cmd = exec.Command(d.Bin.Berthd, "--config", d.Config, "--root", d.Root, "--exec-root", d.ExecRoot, "-H", "unix://"+d.Socket, "--debug")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if d.Ping() == nil {
			return
		}
		select {
		case <-d.done:
			t.Fatalf("berthd exited at start:\n%s", d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			d.Kill()
			t.Fatalf("berthd did not answer on %s:\n%s", d.Socket, d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops the daemon gracefully and starts it again on the same
// roots.
func (d *Daemon) Restart() {
	d.Stop()
	d.start()
}

// Ping asks GET /_ping.
func (d *Daemon) Ping() error {
	resp, err := d.HTTPClient().Get("http://berth/_ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("_ping: %s", resp.Status)
	}
	return nil
}

// HTTPClient talks to the daemon's socket.
func (d *Daemon) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Socket)
		},
	}}
}

// Stop sends SIGTERM and waits for the daemon to exit (SIGKILL after 20 s).
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.T.Errorf("berthd did not stop on SIGTERM")
		d.Kill()
	}
}

// Kill ends the daemon with SIGKILL, as a crash would.
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// Docker runs the docker CLI against the daemon with a private config dir.
func (d *Daemon) Docker(args ...string) (stdout, stderr string, code int) {
	d.T.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		d.T.Skip("needs the docker CLI (Debian docker.io)")
	}
	cmd := exec.Command(docker, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.Socket, "DOCKER_CONFIG="+filepath.Join(filepath.Dir(d.Config), "docker-config"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.T.Fatal(err)
	}
	return out.String(), strings.TrimSpace(errb.String()), code
}

// Berth runs the berth CLI against the daemon, with a private config dir.
func (d *Daemon) Berth(args ...string) (stdout, stderr string, code int) {
	d.T.Helper()
	cmd := exec.Command(d.Bin.Berth, args...)
	cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+d.Socket, "DOCKER_CONFIG="+filepath.Join(filepath.Dir(d.Config), "docker-config"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.T.Fatal(err)
	}
	return out.String(), strings.TrimSpace(errb.String()), code
}

// Log returns what the daemon printed so far.
func (d *Daemon) Log() string { return d.log.String() }
