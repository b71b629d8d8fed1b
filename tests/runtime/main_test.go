// Package runtime_test drives the real berth-runtime binary through runc's
// command line against busybox bundles, and checks what a user of the
// runtime would observe: from inside the container (namespaces, mounts,
// credentials, limits) and from the host (state, cgroups, leftovers).
package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth.dev/tests/fixtures"
	"berth.dev/tests/runtimetest"
)

// binary is the berth-runtime built for this test run.
var binary string

func TestMain(m *testing.M) {
	code := run(m)
	fixtures.Cleanup()
	os.Exit(code)
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("skipping runtime integration tests: they need root")
		return 0
	}
	var cleanup func()
	var err error
	if binary, cleanup, err = runtimetest.Build(); err != nil {
		fmt.Println(err)
		return 1
	}
	defer cleanup()
	return m.Run()
}

// rt is one state root, with helpers to run berth-runtime commands in it.
type rt = runtimetest.Runtime

func newRT(t *testing.T) *rt { return runtimetest.New(t, binary) }

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unified reports whether the host runs cgroup v2 only.
func unified() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupDir is the directory of cgroup path p for a v1 controller, or the
// one v2 directory.
func cgroupDir(controller, p string) string {
	if unified() {
		return filepath.Join("/sys/fs/cgroup", p)
	}
	return filepath.Join("/sys/fs/cgroup", controller, p)
}

// cgroupValue reads a limit of cgroup p: the v1 file of a controller, or
// the v2 file (whose first field is compared).
func cgroupValue(t *testing.T, controller, p, v1file, v2file string) string {
	t.Helper()
	file := v1file
	if unified() {
		file = v2file
	}
	data, err := os.ReadFile(filepath.Join(cgroupDir(controller, p), file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
