// Package snapshot defines how berth keeps the filesystems of image layers
// and containers: the Snapshotter interface, the Mount that turns a snapshot
// into a directory tree, and the types they share.
//
// Two drivers implement the interface: snapshot/overlay (overlayfs, the
// default: a layer is unpacked once and shared as a read-only lower by
// every image and container above it) and snapshot/native (plain copies,
// for filesystems where overlay does not work). Both keep the same layout
// under their root and pass the same conformance suite, snapshot/testsuite.
package snapshot

import (
	"context"
	"fmt"
	"time"
)

// Kind is the state of a snapshot.
type Kind int

const (
	// KindUnknown is the zero Kind; no stored snapshot has it.
	KindUnknown Kind = iota
	// View is a read-only snapshot of a parent, made by Snapshotter.View.
	// It can be mounted and removed, never committed.
	View
	// Active is a writable snapshot made by Snapshotter.Prepare. It can be
	// mounted, written, and committed.
	Active
	// Committed is an immutable snapshot made by Snapshotter.Commit. It is
	// never mounted itself: it is the parent of Active and View snapshots.
	Committed
)

func (k Kind) String() string {
	switch k {
	case View:
		return "view"
	case Active:
		return "active"
	case Committed:
		return "committed"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) {
	for _, k := range []Kind{View, Active, Committed} {
		if k.String() == s {
			return k, true
		}
	}
	return KindUnknown, false
}

// Info describes one snapshot.
type Info struct {
	Kind Kind
	// Name is the key of an Active or View snapshot, or the name a
	// Committed snapshot was given by Commit.
	Name string
	// Parent is the name of the Committed snapshot this one is based on,
	// or "" for a snapshot that started empty.
	Parent string
	// Labels are free-form metadata set at creation (WithLabels) or by
	// Update; the engine records ownership and garbage-collection roots here.
	Labels  map[string]string
	Created time.Time
	Updated time.Time
}

// Usage is the disk space a snapshot adds on top of its parents.
type Usage struct {
	// Size is the bytes of the contents: the lengths of files and
	// symlinks (directories count nothing, hard links once), as docker
	// reports the size of a layer or of a container's changes.
	Size int64
	// Inodes counts the distinct inodes; hard links count once.
	Inodes int64
}

// Snapshotter keeps a tree of filesystem snapshots, each identified by a
// string: a key while it is Active or a View, a name once it is Committed.
// Keys and names share one namespace.
//
// The lifecycle of an image layer:
//
//  1. Prepare(ctx, key, parent) makes an Active snapshot whose contents
//     are those of parent (or empty when parent is ""). It returns the
//     mounts that make it a writable directory tree.
//  2. The caller mounts them (MountAll), writes the layer into the tree
//     (for example by applying a layer tar), and unmounts (UnmountAll).
//  3. Commit(ctx, name, key) turns the Active snapshot into the Committed
//     snapshot name. The key is gone afterwards; name can now be the
//     parent of further snapshots. Berth names layer snapshots by the
//     layer's chain ID, so a layer shared by many images is unpacked once:
//     Stat(chainID) succeeding means there is nothing to do.
//
// A container's root filesystem is Prepare(ctx, containerKey, topLayer):
// writable, on top of the image's layers, and never committed unless the
// container is committed into a new image. View(ctx, key, parent) gives a
// read-only tree of parent, for inspecting an image or diffing a layer.
//
// Committed snapshots never change. Mounts are plain data: the
// Snapshotter mounts nothing itself and assumes nothing it returned is
// still mounted when Commit or Remove is called with that key.
//
// Errors wrap the categories of berth.dev/internal/errdefs: ErrNotFound for
// a key, name or parent that does not exist, ErrAlreadyExists for a key or
// name that is taken, ErrFailedPrecondition for an operation the snapshot's
// kind or children forbid, ErrInvalidArgument for malformed input.
//
// Implementations are safe for concurrent use.
type Snapshotter interface {
	// Stat returns the Info of the snapshot with this key or name.
	Stat(ctx context.Context, key string) (Info, error)

	// Update changes the labels of the snapshot info.Name and returns its
	// new Info; no other field can change. With no fieldpaths, or the
	// fieldpath "labels", the labels are replaced by info.Labels. The
	// fieldpath "labels.<k>" sets label k to info.Labels[k], or deletes
	// it when info.Labels has no (or an empty) value for k. Any other
	// fieldpath is ErrInvalidArgument. Updated is set to the current time.
	Update(ctx context.Context, info Info, fieldpaths ...string) (Info, error)

	// Usage returns the space the snapshot key uses apart from its
	// parents, which takes a walk of its tree: for an Active snapshot
	// every time, for a Committed one (which never changes) only the first
	// time, the figure being kept.
	Usage(ctx context.Context, key string) (Usage, error)

	// Mounts returns the mounts of an Active or View snapshot again, as
	// Prepare or View returned them. A Committed snapshot has no mounts of
	// its own (ErrFailedPrecondition): View it instead.
	Mounts(ctx context.Context, key string) ([]Mount, error)

	// Prepare creates the Active snapshot key on top of the Committed
	// snapshot parent ("" for an empty one) and returns its mounts, which
	// give a writable tree showing the parent's files. It fails with
	// ErrAlreadyExists if key is taken, ErrNotFound if parent does not
	// exist and ErrFailedPrecondition if parent is not Committed. A
	// failed Prepare leaves nothing behind.
	Prepare(ctx context.Context, key, parent string, opts ...Opt) ([]Mount, error)

	// View creates the View snapshot key of the Committed snapshot parent
	// and returns its mounts, which give a read-only tree of the parent's
	// files (an empty tree when parent is ""). Errors are those of Prepare.
	View(ctx context.Context, key, parent string, opts ...Opt) ([]Mount, error)

	// Commit turns the Active snapshot key into the Committed snapshot
	// name, keeping its parent and labels (opts add labels). Afterwards
	// key no longer exists. It fails with
	// ErrNotFound if key does not exist, ErrFailedPrecondition if key is
	// not Active, and ErrAlreadyExists if name is taken. Its mounts must
	// be unmounted before Commit.
	Commit(ctx context.Context, name, key string, opts ...Opt) error

	// Remove deletes the snapshot key (or name) and its files. It fails
	// with ErrFailedPrecondition while other snapshots have it as parent:
	// remove them first. Its mounts must be unmounted before Remove.
	Remove(ctx context.Context, key string) error

	// Walk calls fn with the Info of every snapshot that matches one of
	// the filters (every snapshot when there is none), in no fixed order,
	// and stops at fn's first error, which it returns. fn may call the
	// Snapshotter. A filter is a comma-separated list of conditions that
	// must all hold: field==value, field!=value, or a bare field that
	// must be non-empty, where field is name, parent, kind (view, active,
	// committed) or labels.<k>. A malformed filter is ErrInvalidArgument.
	Walk(ctx context.Context, fn func(context.Context, Info) error, filters ...string) error

	// Close releases the Snapshotter's database. Snapshots and mounts stay
	// as they are; New on the same root finds them again.
	Close() error
}

// Opt sets an optional property of a snapshot being created.
type Opt func(*Info) error

// WithLabels adds labels to the snapshot being created or committed.
func WithLabels(labels map[string]string) Opt {
	return func(info *Info) error {
		if info.Labels == nil {
			info.Labels = make(map[string]string, len(labels))
		}
		for k, v := range labels {
			info.Labels[k] = v
		}
		return nil
	}
}
