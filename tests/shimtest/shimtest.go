// Package shimtest gives tests the berth-shim to run: the C program of
// shim/c, built once per test binary.
package shimtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"berth.dev/internal/testutil"
)

// Build returns the berth-shim to test: $BERTH_SHIM_BINARY when set (make's
// bin/), else one built now with shim/c/build.sh into a temp dir that
// cleanup removes.
func Build() (binary string, cleanup func(), err error) {
	if binary = os.Getenv("BERTH_SHIM_BINARY"); binary != "" {
		return binary, func() {}, nil
	}
	dir, err := os.MkdirTemp("", testutil.Prefix+"shim-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "berth-shim")
	if err := BuildTo(binary); err != nil {
		cleanup()
		return "", nil, err
	}
	return binary, cleanup, nil
}

// BuildTo builds berth-shim at path, from the module the working
// directory is in (a test runs in its package's directory).
func BuildTo(path string) error {
	root, err := ModuleRoot()
	if err != nil {
		return fmt.Errorf("build berth-shim: %w", err)
	}
	out, err := exec.Command("sh", filepath.Join(root, "shim", "c", "build.sh"), path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("build berth-shim: %w\n%s", err, out)
	}
	return nil
}

// ModuleRoot is the directory of the go.mod above the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
