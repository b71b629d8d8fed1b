// Package overlay is berth's default snapshotter: each Committed snapshot
// (an image layer, named by its chain ID) is a directory that overlayfs
// stacks, read-only, under the snapshots above it, so a layer shared by any
// number of images and containers is unpacked and stored once. An Active
// snapshot is overlayfs's writable upper directory on top of its parents.
//
// Layout under the root (/var/lib/berth/snapshots):
//
//	metadata.db   the snapshotter's own bbolt database
//	<n>/fs        the snapshot's files: the upper directory while it is
//	              Active, a lower directory once it is Committed
//	<n>/work      overlayfs's work directory for <n>/fs as an upper
//
// The ids <n> are short decimal numbers because overlayfs takes all its
// lower directories in one option string; for images deep enough to
// overflow that anyway, snapshot.Mount falls back on other ways to mount.
package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"berth.dev/internal/errdefs"
	"berth.dev/snapshot"
	"berth.dev/snapshot/internal/store"
)

// Overlay is the overlayfs snapshotter. It needs root (or CAP_SYS_ADMIN)
// and a root directory on a filesystem overlayfs accepts as upper layer.
type Overlay struct {
	*store.Store
}

var _ snapshot.Snapshotter = (*Overlay)(nil)

// Option configures New.
type Option func(*config)

type config struct {
	mountOptions []string
}

// WithMountOptions adds overlayfs options (for example "index=off") to
// every overlay mount the snapshotter returns.
func WithMountOptions(options ...string) Option {
	return func(c *config) { c.mountOptions = append(c.mountOptions, options...) }
}

// New opens the overlay snapshotter rooted at root, creating it if
// needed. It first mounts a small overlay inside root and fails with
// errdefs.ErrFailedPrecondition if that does not work, then removes any
// directory left behind by a crash.
func New(root string, opts ...Option) (*Overlay, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("overlay snapshotter: %w", err)
	}
	if err := checkSupport(root, c.mountOptions); err != nil {
		return nil, fmt.Errorf("overlay snapshotter in %s: overlayfs does not work here, it needs root and a filesystem that can hold an upper directory (%w): %w",
			root, errdefs.ErrFailedPrecondition, err)
	}
	s, err := store.Open(root, driver{options: c.mountOptions})
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter: %w", err)
	}
	return &Overlay{Store: s}, nil
}

// checkSupport mounts and unmounts an overlay of one lower directory in a
// scratch directory under root, which store.Open removes if a crash
// leaves it there.
func checkSupport(root string, options []string) error {
	dir, err := os.MkdirTemp(root, "check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lower", "probe"), nil, 0o600); err != nil {
		return err
	}
	m := snapshot.Mount{Type: "overlay", Source: "overlay", Options: append([]string{
		"lowerdir=" + filepath.Join(dir, "lower"),
		"upperdir=" + filepath.Join(dir, "upper"),
		"workdir=" + filepath.Join(dir, "work"),
	}, options...)}
	merged := filepath.Join(dir, "merged")
	if err := m.Mount(merged); err != nil {
		return err
	}
	defer snapshot.UnmountAll(merged)
	if _, err := os.Stat(filepath.Join(merged, "probe")); err != nil {
		return fmt.Errorf("lower file not visible through the overlay: %w", err)
	}
	return snapshot.UnmountAll(merged)
}

// driver fills and mounts overlay snapshot directories.
type driver struct {
	options []string
}

func (d driver) Create(ctx context.Context, dir string, kind snapshot.Kind, parents []string) error {
	if err := os.Mkdir(filepath.Join(dir, "fs"), 0o755); err != nil {
		return err
	}
	if kind == snapshot.Active {
		return os.Mkdir(filepath.Join(dir, "work"), 0o711)
	}
	return nil
}

func (d driver) UsageDir(dir string) string { return filepath.Join(dir, "fs") }

func (d driver) Mounts(dir string, kind snapshot.Kind, parents []string) []snapshot.Mount {
	lowers := make([]string, len(parents))
	for i, p := range parents {
		lowers[i] = filepath.Join(p, "fs")
	}
	bind := func(source, mode string) []snapshot.Mount {
		return []snapshot.Mount{{Type: "bind", Source: source, Options: []string{"rbind", mode}}}
	}
	switch {
	case kind == snapshot.Active && len(lowers) == 0:
		return bind(filepath.Join(dir, "fs"), "rw")
	case kind == snapshot.Active:
		return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: append([]string{
			"lowerdir=" + strings.Join(lowers, ":"),
			"upperdir=" + filepath.Join(dir, "fs"),
			"workdir=" + filepath.Join(dir, "work"),
		}, d.options...)}}
	case len(lowers) == 0:
		return bind(filepath.Join(dir, "fs"), "ro")
	case len(lowers) == 1:
		return bind(lowers[0], "ro")
	default:
		// An overlay of lower directories only is read-only by itself.
		return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: append([]string{
			"ro", "lowerdir=" + strings.Join(lowers, ":"),
		}, d.options...)}}
	}
}
