package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// New returns the Manager for the cgroup at path, using the v1 driver on
// Legacy and Hybrid hosts (the empty unified mount of a hybrid host is
// ignored) and the v2 driver on Unified hosts. It creates nothing; Apply
// does.
//
// path follows runc's cgroupsPath: an absolute path is taken from the
// hierarchy root; a relative one is placed under the calling process's own
// cgroup (read from /proc/self/cgroup, per controller on v1). ".." elements,
// the hierarchy root itself and systemd's "slice:prefix:name" syntax are
// refused.
func New(path string, opts ...Option) (Manager, error) {
	cfg := newConfig(opts)
	clean, err := cleanCgroupPath(path)
	if err != nil {
		return nil, err
	}
	var mode Mode
	if cfg.mode != nil {
		mode = *cfg.mode
	} else if mode, err = DetectMode(cfg.mountRoot); err != nil {
		return nil, err
	}
	if mode == Unified {
		return newV2(clean, cfg)
	}
	return newV1(clean, cfg)
}

// DetectMode reports the cgroup layout under root (normally
// /sys/fs/cgroup). A cgroup2 mount is recognised by its cgroup.controllers
// file, a v1 hierarchy by its tasks file (which v2 does not have), so a
// fake tree of plain files is detected like the real one.
func DetectMode(root string) (Mode, error) {
	if fileExists(root, "cgroup.controllers") {
		return Unified, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, fmt.Errorf("detect cgroup mode: %w", err)
	}
	hasV1 := false
	for _, e := range entries {
		if fileExists(filepath.Join(root, e.Name()), "tasks") {
			hasV1 = true
			break
		}
	}
	if !hasV1 {
		return 0, fmt.Errorf("detect cgroup mode: %w: no cgroup v1 or v2 hierarchy under %s", ErrUnsupported, root)
	}
	if fileExists(filepath.Join(root, "unified"), "cgroup.controllers") {
		return Hybrid, nil
	}
	return Legacy, nil
}

// cleanCgroupPath checks a cgroupsPath and returns it cleaned; absolute
// paths keep their leading slash.
func cleanCgroupPath(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%w: empty cgroup path", ErrInvalid)
	case strings.ContainsAny(p, "\x00\n"):
		return "", fmt.Errorf("%w: cgroup path %q contains a NUL or newline", ErrInvalid, p)
	case !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2:
		return "", fmt.Errorf("%w: cgroup path %q uses the systemd slice:prefix:name syntax; berth drives cgroupfs directly", ErrUnsupported, p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("%w: cgroup path %q contains \"..\"", ErrInvalid, p)
		}
	}
	clean := filepath.Clean(p)
	if clean == "/" || clean == "." {
		return "", fmt.Errorf("%w: cgroup path %q names the hierarchy root", ErrInvalid, p)
	}
	return clean, nil
}

// readProcSelfCgroup parses the configured /proc/self/cgroup.
func readProcSelfCgroup(cfg config) (map[string]string, error) {
	f, err := os.Open(cfg.procSelfCgroup)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	paths, err := parseProcCgroup(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", cfg.procSelfCgroup, err)
	}
	return paths, nil
}

// underRoot reports whether p is root or below it.
func underRoot(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}
