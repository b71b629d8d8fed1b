// Package enginetest runs the real berthd for end-to-end tests: it builds
// the binaries once per test binary and starts a daemon per test with its
// own root, run-time root and API socket, all under the test's temp dir,
// and stops it (by its pid) when the test ends.
package enginetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth.dev/internal/testutil"
	"berth.dev/tests/shimtest"
)

// Binaries are the programs under test, all four in Dir: berthd finds
// berth-shim and berth-runtime next to its own executable.
type Binaries struct {
	Berthd string
	Berth  string
	Dir    string
}

// Build returns the binaries to test: those in $BERTH_BIN_DIR when set
// (make's bin/, which has all four), else ones built now into a temp dir
// that cleanup removes. berth-runtime is built as the Makefile builds it:
// static, with cgo (its namespace-joining constructor is C); berth-shim is
// the C program of shim/c.
func Build() (b Binaries, cleanup func(), err error) {
	if dir := os.Getenv("BERTH_BIN_DIR"); dir != "" {
		return binariesIn(dir), func() {}, nil
	}
	dir, err := os.MkdirTemp("", testutil.Prefix+"engine-bin-")
	if err != nil {
		return b, nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	os.Chmod(dir, 0o755)
	if err := shimtest.BuildTo(filepath.Join(dir, "berth-shim")); err != nil {
		cleanup()
		return b, nil, err
	}
	// berthd uses berth-inflate where it finds it next to itself: built
	// where ISA-L's headers are (the setup installs them).
	if _, err := os.Stat("/usr/include/isa-l/igzip_lib.h"); err == nil {
		root, err := shimtest.ModuleRoot()
		if err != nil {
			cleanup()
			return b, nil, err
		}
		build := exec.Command("sh", filepath.Join(root, "archive", "inflate", "build.sh"), filepath.Join(dir, "berth-inflate"))
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			cleanup()
			return b, nil, fmt.Errorf("build berth-inflate: %w", err)
		}
	}
	for _, name := range []string{"berthd", "berth", "berth-runtime"} {
		args := []string{"build", "-o", filepath.Join(dir, name)}
		env := append(os.Environ(), "CGO_ENABLED=0")
		if name == "berth-runtime" {
			args = append(args, "-tags", "netgo,osusergo", "-ldflags", "-linkmode external -extldflags -static")
			env = append(os.Environ(), "CGO_ENABLED=1")
		}
		build := exec.Command("go", append(args, "berth.dev/cmd/"+name)...)
		build.Env = env
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			cleanup()
			return b, nil, fmt.Errorf("build %s: %w", name, err)
		}
	}
	return binariesIn(dir), cleanup, nil
}

// CgroupParent is the cgroup parent berthd puts containers under when none
// is given: /berth in every hierarchy.
const CgroupParent = "berth"

// KeepCgroupParents notes which of berthd's default cgroup parents exist
// now; the function it returns removes those made since, when empty (the
// runtime removes a container's cgroup, not the parent it made for it).
func KeepCgroupParents() (restore func()) {
	list := func() []string {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + CgroupParent)
		if top := "/sys/fs/cgroup/" + CgroupParent; dirExists(top) {
			dirs = append(dirs, top)
		}
		return dirs
	}
	before := map[string]bool{}
	for _, d := range list() {
		before[d] = true
	}
	return func() {
		for _, d := range list() {
			if !before[d] {
				os.Remove(d) // refused while not empty
			}
		}
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func binariesIn(dir string) Binaries {
	return Binaries{Berthd: filepath.Join(dir, "berthd"), Berth: filepath.Join(dir, "berth"), Dir: dir}
}

// Daemon is a running berthd.
type Daemon struct {
	T        *testing.T
	Bin      Binaries
	Root     string
	ExecRoot string
	Socket   string
	Config   string
	// Net names what the daemon makes on the host's network: the default
	// bridge, the prefix of its other links, its nftables table.
	Net  NetNames
	cmd  *exec.Cmd
	log  *testutil.Buffer
	done chan struct{}
}

// Start starts a berthd for the test and waits until its API answers.
// config, if not empty, is written to the daemon's berth.toml.
func Start(t *testing.T, bin Binaries, config string) *Daemon {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	// The exec root holds the shims' sockets, whose paths must fit in
	// sun_path (108 bytes): a short directory of its own, not t.TempDir().
	execRoot, err := os.MkdirTemp("/tmp", "bt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(execRoot) })
	d := &Daemon{
		T: t, Bin: bin,
		Root:     filepath.Join(dir, "root"),
		ExecRoot: execRoot,
		Socket:   filepath.Join(execRoot, "berth.sock"),
		Config:   filepath.Join(dir, "berth.toml"),
	}
	if !strings.Contains(config, "[network]") {
		// Names of the test's own, so that nothing of the host's (or of
		// another daemon's) is touched: appended, as a table ends the
		// top-level keys.
		var raw [2]byte
		rand.Read(raw[:])
		p := "t" + hex.EncodeToString(raw[:])
		d.Net = NetNames{Bridge: p + "-0", Prefix: p, Table: "berth_test_" + p}
		config += fmt.Sprintf("\n[network]\nbridge = %q\nlink_prefix = %q\nnftables_table = %q\n", d.Net.Bridge, d.Net.Prefix, d.Net.Table)
	}
	if err := os.WriteFile(d.Config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start()
	t.Cleanup(func() {
		d.removeContainers()
		d.Stop()
		if d.Net.Prefix != "" {
			d.removeNetwork()
		}
		if m := d.Mounts(); len(m) > 0 {
			t.Errorf("mounts left under the daemon's roots: %v", m)
			for i := len(m) - 1; i >= 0; i-- {
				syscall.Unmount(m[i], syscall.MNT_DETACH)
			}
		}
		if t.Failed() {
			t.Logf("berthd log:\n%s", d.log.String())
		}
	})
	return d
}

func (d *Daemon) start() {
	t := d.T
	if d.log == nil {
		d.log = &testutil.Buffer{}
	}
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

// removeContainers removes every container the test left, starting the
// daemon again if the test left it killed, so no shim or container
// outlives the test.
func (d *Daemon) removeContainers() {
	select {
	case <-d.done:
		d.start()
	default:
	}
	out, _, _ := d.Berth("ps", "-aq")
	if ids := strings.Fields(out); len(ids) > 0 {
		d.Berth(append([]string{"rm", "-f"}, ids...)...)
	}
}

// NetNames are the names of what a daemon makes on the host's network.
type NetNames struct {
	Bridge string // the default bridge network's link
	Prefix string // user networks' bridges are <Prefix>-<id>, veths <Prefix>v<id>
	Table  string // the nftables table (family inet)
}

// Links lists the host's links whose names start with prefix.
func Links(prefix string) []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, prefix) {
			out = append(out, i.Name)
		}
	}
	return out
}

// removeNetwork checks that the stopped daemon left no veth, then removes
// its bridges and nftables table, which outlive a daemon by design.
func (d *Daemon) removeNetwork() {
	// The kernel deletes a namespace's veths in the background.
	deadline := time.Now().Add(10 * time.Second)
	for len(Links(d.Net.Prefix+"v")) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if v := Links(d.Net.Prefix + "v"); len(v) > 0 {
		d.T.Errorf("veths left after every container was removed: %v", v)
	}
	for _, l := range append(Links(d.Net.Prefix+"v"), Links(d.Net.Prefix+"-")...) {
		exec.Command("ip", "link", "del", l).Run()
	}
	exec.Command("nft", "delete", "table", "inet", d.Net.Table).Run()
}

// Running says whether the daemon process is still alive.
func (d *Daemon) Running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Restart stops the daemon gracefully (if it still runs) and starts it
// again on the same roots.
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

// Kill ends the daemon with SIGKILL, as a crash would; Start (or Restart)
// brings it back on the same roots.
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
// The address is given with -H, so a daemon that is down is an error and
// never started on demand by the CLI.
func (d *Daemon) Berth(args ...string) (stdout, stderr string, code int) {
	d.T.Helper()
	cmd := d.BerthCommand(args...)
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

// BerthCommand is the command of Berth, for a test that wires its own
// stdio (a pseudo-terminal, a stream read while it runs).
func (d *Daemon) BerthCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(d.Bin.Berth, append([]string{"-H", "unix://" + d.Socket}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(filepath.Dir(d.Config), "docker-config"))
	return cmd
}

// MustBerth runs the berth CLI and fails the test unless it exits 0; it
// returns the standard output.
func (d *Daemon) MustBerth(args ...string) string {
	d.T.Helper()
	out, errOut, code := d.Berth(args...)
	if code != 0 {
		d.T.Fatalf("berth %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// Mounts returns the mount points under the daemon's roots, from
// /proc/self/mountinfo.
func (d *Daemon) Mounts() []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		d.T.Fatal(err)
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := f[4]
		if p == filepath.Join(d.ExecRoot, "netns") && d.Running() {
			// The running daemon's directory of pinned namespaces is a
			// mount of its own (shared, as ip netns makes /run/netns);
			// the pins in it count.
			continue
		}
		if strings.HasPrefix(p, d.Root+"/") || strings.HasPrefix(p, d.ExecRoot+"/") {
			mounts = append(mounts, p)
		}
	}
	return mounts
}

// ShimPids returns the pids in the shim pid files under the exec root
// (<exec-root>/s/<id>/shim.pid).
func (d *Daemon) ShimPids() []int {
	files, _ := filepath.Glob(filepath.Join(d.ExecRoot, "s", "*", "shim.pid"))
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Log returns what the daemon printed so far.
func (d *Daemon) Log() string { return d.log.String() }
