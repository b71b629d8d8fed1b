// Package archive turns layer tars into directories and directories back into
// layer tars.
//
// Apply unpacks an uncompressed layer tar into a directory: the first layer's
// empty snapshot, an overlay mount of a new layer over its parents, or a copy
// of the parent (the native snapshotter). Layer tars are hostile input: every
// path is resolved inside the root as the container would see it (absolute
// and relative symlinks of this layer and of the layers below are followed,
// but never out of the root), hard links only point inside the root,
// whiteouts remove only what lies inside the root, and sizes are bounded.
// Nothing is ever written outside the root; on error the caller discards the
// snapshot. Regular files are written, and in an empty root created, by
// worker goroutines while the tar is read on (filewriter_linux.go).
//
// WriteDiff turns an overlay upper directory (a container's changes) into a
// layer tar, and Changes with WriteChanges do the same for two plain trees.
// Both write deterministic tars: the same tree gives byte-identical output.
//
// DecompressStream and CompressStream wrap the gzip and zstd codecs that
// layer blobs use. Gzip is inflated by berth-inflate (inflate/, ISA-L into
// memory shared with the reader, confined by seccomp) or igzip where the
// engine has them, else by the Go decoder.
package archive

import (
	"fmt"
	"time"

	"berth.dev/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Whiteout names, as in the OCI image layer specification.
const (
	// WhiteoutPrefix starts the name of an entry that deletes the entry
	// of the same name without the prefix from the layers below.
	WhiteoutPrefix = ".wh."
	// WhiteoutOpaque in a directory hides everything the layers below
	// hold in that directory.
	WhiteoutOpaque = WhiteoutPrefix + WhiteoutPrefix + ".opq"
	// whiteoutMeta starts the names of aufs's internal entries, which
	// carry no meaning for the image and are skipped.
	whiteoutMeta = WhiteoutPrefix + WhiteoutPrefix
)

// DefaultSparseLimit bounds the logical size of a sparse entry when Apply
// runs without WithMaxSize. The tar reader expands holes into zeros that
// Apply must scan to skip, so a header claiming terabytes would otherwise
// cost minutes of CPU even though nothing lands on disk.
const DefaultSparseLimit int64 = 8 << 30

// ApplyOption changes how Apply unpacks a layer.
type ApplyOption func(*applyOptions)

type applyOptions struct {
	overlayWhiteouts bool
	opaqueXattr      string
	maxSize          int64
	uidMap, gidMap   []specs.LinuxIDMapping
	noSameOwner      bool
	noDevices        bool
}

// WithOverlayWhiteouts makes Apply write straight into an overlay upper
// directory that is not mounted: a whiteout becomes a 0/0 character device
// and an opaque directory gets the xattr trusted.overlay.opaque=y, which is
// what overlayfs itself records. The layers below are not visible in this
// mode, so symlinks they hold are not followed and a hard link may only
// point at an entry of the same layer.
func WithOverlayWhiteouts() ApplyOption {
	return func(o *applyOptions) {
		o.overlayWhiteouts = true
		if o.opaqueXattr == "" {
			o.opaqueXattr = "trusted.overlay.opaque"
		}
	}
}

// WithOverlayUserXattr is WithOverlayWhiteouts for an overlay mounted with
// the userxattr option (rootless): opaque directories get
// user.overlay.opaque=y.
func WithOverlayUserXattr() ApplyOption {
	return func(o *applyOptions) {
		o.overlayWhiteouts = true
		o.opaqueXattr = "user.overlay.opaque"
	}
}

// WithMaxSize refuses a layer whose content exceeds n bytes: the sum of the
// sizes of its regular files, sparse ones counted at their logical size.
// A sparse entry is also refused above n (without this option, above
// DefaultSparseLimit).
func WithMaxSize(n int64) ApplyOption {
	return func(o *applyOptions) { o.maxSize = n }
}

// WithIDMap maps the owners recorded in the tar (container IDs) to host IDs.
// An owner outside the maps is refused.
func WithIDMap(uidMap, gidMap []specs.LinuxIDMapping) ApplyOption {
	return func(o *applyOptions) {
		o.uidMap = append([]specs.LinuxIDMapping(nil), uidMap...)
		o.gidMap = append([]specs.LinuxIDMapping(nil), gidMap...)
	}
}

// WithNoSameOwner leaves every entry owned by the caller instead of the owner
// recorded in the tar. It is the default when Apply does not run as root.
func WithNoSameOwner() ApplyOption {
	return func(o *applyOptions) { o.noSameOwner = true }
}

// WithoutDevices refuses character and block device entries (fifos are still
// created). Without it, devices are created as Docker does; creating them
// needs root.
func WithoutDevices() ApplyOption {
	return func(o *applyOptions) { o.noDevices = true }
}

// WriteOption changes how WriteDiff and WriteChanges write a layer tar.
type WriteOption func(*writeOptions)

type writeOptions struct {
	clamp    time.Time
	clampSet bool
}

// ClampTimes writes every modification time later than t as t (to the
// second), as SOURCE_DATE_EPOCH asks of reproducible builds: a layer made
// now from the same files gives the same tar as one made tomorrow. Earlier
// times are kept.
func ClampTimes(t time.Time) WriteOption {
	return func(o *writeOptions) { o.clamp, o.clampSet = time.Unix(t.Unix(), 0), true }
}

func writeOpts(opts []WriteOption) writeOptions {
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// mapID translates a container ID through an ID map; an empty map is the
// identity.
func mapID(m []specs.LinuxIDMapping, id int) (int, error) {
	if len(m) == 0 {
		return id, nil
	}
	for _, e := range m {
		if id >= int(e.ContainerID) && id-int(e.ContainerID) < int(e.Size) {
			return int(e.HostID) + id - int(e.ContainerID), nil
		}
	}
	return 0, fmt.Errorf("id %d is outside the id map: %w", id, errdefs.ErrInvalidArgument)
}
