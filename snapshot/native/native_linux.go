// Package native is the snapshotter that works on any filesystem: every
// Active snapshot is a full copy of its parent's tree, mounted with a bind
// mount. It costs disk space and time per container that overlayfs saves,
// so berth uses it only where overlayfs does not work (and in tests that
// want no overlay). Copies use reflinks or copy_file_range where the
// filesystem offers them.
//
// Layout under the root: metadata.db (the snapshotter's bbolt database)
// and <n>/fs, the files of snapshot <n>, with short decimal ids.
package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"berth.dev/snapshot"
	"berth.dev/snapshot/internal/store"
)

// Native is the copying snapshotter. Copies keep owners, device nodes and
// trusted.* extended attributes only when it runs as root.
type Native struct {
	*store.Store
}

var _ snapshot.Snapshotter = (*Native)(nil)

// New opens the native snapshotter rooted at root, creating it if needed,
// and removes any directory left behind by a crash.
func New(root string) (*Native, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	s, err := store.Open(root, driver{})
	if err != nil {
		return nil, fmt.Errorf("native snapshotter: %w", err)
	}
	return &Native{Store: s}, nil
}

type driver struct{}

// Create copies the parent's tree for an Active snapshot. A View needs no
// copy: it is a read-only bind mount of the parent, which never changes.
func (driver) Create(ctx context.Context, dir string, kind snapshot.Kind, parents []string) error {
	fs := filepath.Join(dir, "fs")
	if kind == snapshot.Active && len(parents) > 0 {
		return copyTree(ctx, filepath.Join(parents[0], "fs"), fs)
	}
	return os.Mkdir(fs, 0o755)
}

func (driver) UsageDir(dir string) string { return filepath.Join(dir, "fs") }

func (driver) Mounts(dir string, kind snapshot.Kind, parents []string) []snapshot.Mount {
	source, mode := filepath.Join(dir, "fs"), "rw"
	if kind == snapshot.View {
		mode = "ro"
		if len(parents) > 0 {
			source = filepath.Join(parents[0], "fs")
		}
	}
	return []snapshot.Mount{{Type: "bind", Source: source, Options: []string{"rbind", mode}}}
}
