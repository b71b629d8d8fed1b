package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Helpers for tests that drive the drivers against a tree of plain files
// shaped like cgroupfs.

// writeTree creates files (path relative to root → content), with parent
// directories.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns the content of root/name, without a trailing newline.
func readTree(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\n")
}

// fakeProc writes a fake /proc/self/cgroup and mountinfo and returns the
// options that make New read them.
func fakeProc(t *testing.T, selfCgroup, mountinfo string) []Option {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"cgroup": selfCgroup, "mountinfo": mountinfo})
	return []Option{func(c *config) {
		c.procSelfCgroup = filepath.Join(dir, "cgroup")
		c.mountinfo = filepath.Join(dir, "mountinfo")
	}}
}
