package archive

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
)

// Overlayfs's private xattrs that WriteDiff reads in an upper directory.
var (
	opaqueXattrs   = []string{"trusted.overlay.opaque", "user.overlay.opaque"}
	redirectXattrs = []string{"trusted.overlay.redirect", "user.overlay.redirect"}
	metacopyXattrs = []string{"trusted.overlay.metacopy", "user.overlay.metacopy"}
)

// WriteDiff writes to w the layer tar of an overlay upper directory, the
// changes a container made over lowers (its layers, top first).
//
// A 0/0 character device in upper (overlayfs's whiteout) becomes ".wh.name",
// and a directory marked opaque (trusted.overlay.opaque=y, or user.overlay.
// opaque=y under userxattr) is written followed by its ".wh..wh..opq"
// marker. lowers only decide whether a whiteout or an opaque marker is
// needed: one that hides nothing in lowers is left out; with no lowers every
// one is written. Every other entry is written with its metadata (see the
// normalisation below), hard links inside the diff as links.
//
// The tar is deterministic: entries in path order (a directory, then its
// opaque marker, then its entries sorted by name), PAX headers with numeric
// owners and no user or group names, modification times to the second, no
// access or change times, whiteouts dated 1970-01-01. The same tree gives
// byte-identical output.
//
// upper must not change while WriteDiff reads it (pause or stop the
// container). A directory renamed by overlayfs's redirect_dir feature or a
// metacopy-only file cannot be represented and fails with ErrNotImplemented:
// mount layer snapshots with redirect_dir=off and metacopy=off.
//
// opts change the normalisation (ClampTimes).
func WriteDiff(ctx context.Context, w io.Writer, upper string, lowers []string, opts ...WriteOption) error {
	ufd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write diff: %w", &os.PathError{Op: "open", Path: upper, Err: err})
	}
	defer unix.Close(ufd)
	d := &differ{t: newTarWriter(w, writeOpts(opts)), all: len(lowers) == 0}
	defer func() {
		for _, fd := range d.lowers {
			unix.Close(fd)
		}
	}()
	for _, l := range lowers {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("write diff: %w", &os.PathError{Op: "open", Path: l, Err: err})
		}
		d.lowers = append(d.lowers, fd)
	}
	if err := d.walk(ctx, ufd, ""); err != nil {
		return fmt.Errorf("write diff of %s: %w", upper, err)
	}
	if err := d.t.close(); err != nil {
		return fmt.Errorf("write diff of %s: %w", upper, err)
	}
	return nil
}

type differ struct {
	t      *tarWriter
	lowers []int
	all    bool // no lowers given: write every whiteout
}

func (d *differ) walk(ctx context.Context, dirfd int, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := readdirSorted(dirfd)
	if err != nil {
		return wrapPath("readdir", orDot(rel), err)
	}
	for _, name := range names {
		crel := joinName(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return wrapPath("stat", crel, err)
		}
		if isWhiteoutDevice(&st) {
			if d.inLowers(crel) {
				if err := d.t.whiteout(joinName(rel, WhiteoutPrefix+name)); err != nil {
					return err
				}
			}
			continue
		}
		xattrs, err := readXattrs(dirfd, name)
		if err != nil {
			return wrapPath("list xattrs", crel, err)
		}
		if hasAny(xattrs, redirectXattrs) || hasAny(xattrs, metacopyXattrs) {
			return fmt.Errorf("%s: overlay redirect or metacopy entry: %w", crel, errdefs.ErrNotImplemented)
		}
		if err := d.t.entry(dirfd, name, crel, &st, xattrs); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if isOpaque(xattrs) && d.inLowers(crel) {
			if err := d.t.whiteout(crel + "/" + WhiteoutOpaque); err != nil {
				return err
			}
		}
		sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return wrapPath("open", crel, err)
		}
		err = d.walk(ctx, sub, crel)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

// inLowers tells whether rel is visible in the lowers, so that a whiteout or
// an opaque marker for it hides something. Lowers are layer directories,
// which hold overlay's whiteouts themselves; nothing in them is followed.
// When unsure it answers true: a needless whiteout is harmless, a missing
// one is not.
func (d *differ) inLowers(rel string) bool {
	if d.all {
		return true
	}
	dir, base := splitPath(rel)
	for _, lfd := range d.lowers {
		pfd, err := openRel(lfd, dir, unix.O_PATH|unix.O_DIRECTORY,
			unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
		switch err {
		case nil:
		case unix.ENOENT:
			continue
		case unix.ENOTDIR, unix.ELOOP:
			return false // a non-directory here hides everything below
		default:
			return true
		}
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(pfd)
		switch {
		case err == unix.ENOENT:
			continue
		case err != nil:
			return true
		}
		return !isWhiteoutDevice(&st)
	}
	return false
}

func isWhiteoutDevice(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(xattrs map[string]string) bool {
	for _, k := range opaqueXattrs {
		if xattrs[k] == "y" {
			return true
		}
	}
	return false
}

func hasAny(xattrs map[string]string, keys []string) bool {
	for _, k := range keys {
		if _, ok := xattrs[k]; ok {
			return true
		}
	}
	return false
}

func joinName(rel, name string) string {
	if rel == "" || rel == "." {
		return name
	}
	return rel + "/" + name
}

func orDot(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}
