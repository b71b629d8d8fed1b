package archive

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
)

// ChangeKind is what happened to a path; the values are Docker's
// (GET /containers/{id}/changes).
type ChangeKind int

const (
	ChangeModify ChangeKind = iota
	ChangeAdd
	ChangeDelete
)

// String returns the letter `docker diff` prints: C, A or D.
func (k ChangeKind) String() string {
	switch k {
	case ChangeModify:
		return "C"
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one changed path, absolute in the container ("/etc/hosts").
type Change struct {
	Kind ChangeKind
	Path string
}

// Changes compares two plain trees, lower (the parent) and upper (the
// container's copy of it), and returns what changed in path order.
//
// A path only in upper is added, and so is everything below it. A path only
// in lower is deleted (its content is not listed). A path in both is
// modified when its type, mode, owner, device number, size (not for
// directories), modification time, symlink target or extended attributes
// differ; a directory whose entries changed is therefore modified too. A
// path whose type changed is modified, and when it became a directory its
// entries are added. File content is not read: the comparison trusts
// modification times, as Docker does.
func Changes(ctx context.Context, lower, upper string) ([]Change, error) {
	lfd, err := unix.Open(lower, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", &os.PathError{Op: "open", Path: lower, Err: err})
	}
	defer unix.Close(lfd)
	ufd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", &os.PathError{Op: "open", Path: upper, Err: err})
	}
	defer unix.Close(ufd)
	var c changeWalker
	if err := c.dir(ctx, lfd, ufd, ""); err != nil {
		return nil, fmt.Errorf("changes between %s and %s: %w", lower, upper, err)
	}
	return c.changes, nil
}

type changeWalker struct {
	changes []Change
}

func (c *changeWalker) add(kind ChangeKind, rel string) {
	c.changes = append(c.changes, Change{Kind: kind, Path: "/" + rel})
}

// dir compares the directories lfd and ufd at rel; lfd is -1 when the
// directory is new, making every entry an addition.
func (c *changeWalker) dir(ctx context.Context, lfd, ufd int, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unames, err := readdirSorted(ufd)
	if err != nil {
		return wrapPath("readdir", orDot(rel), err)
	}
	var lnames []string
	if lfd >= 0 {
		if lnames, err = readdirSorted(lfd); err != nil {
			return wrapPath("readdir", orDot(rel), err)
		}
	}
	i, j := 0, 0
	for i < len(lnames) || j < len(unames) {
		switch {
		case j == len(unames) || (i < len(lnames) && lnames[i] < unames[j]):
			c.add(ChangeDelete, joinName(rel, lnames[i]))
			i++
		case i == len(lnames) || unames[j] < lnames[i]:
			if err := c.entry(ctx, -1, ufd, rel, unames[j]); err != nil {
				return err
			}
			j++
		default:
			if err := c.entry(ctx, lfd, ufd, rel, unames[j]); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

// entry compares name in both directories (lfd -1: only in upper).
func (c *changeWalker) entry(ctx context.Context, lfd, ufd int, rel, name string) error {
	crel := joinName(rel, name)
	var ust unix.Stat_t
	if err := unix.Fstatat(ufd, name, &ust, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wrapPath("stat", crel, err)
	}
	sublower := -1
	if lfd < 0 {
		c.add(ChangeAdd, crel)
	} else {
		var lst unix.Stat_t
		if err := unix.Fstatat(lfd, name, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return wrapPath("stat", crel, err)
		}
		changed, err := differs(lfd, ufd, name, &lst, &ust)
		if err != nil {
			return wrapPath("compare", crel, err)
		}
		if changed {
			c.add(ChangeModify, crel)
		}
		if lst.Mode&unix.S_IFMT == unix.S_IFDIR && ust.Mode&unix.S_IFMT == unix.S_IFDIR {
			if sublower, err = openDirNoFollow(lfd, name); err != nil {
				return wrapPath("open", crel, err)
			}
			defer unix.Close(sublower)
		}
	}
	if ust.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	sub, err := openDirNoFollow(ufd, name)
	if err != nil {
		return wrapPath("open", crel, err)
	}
	defer unix.Close(sub)
	return c.dir(ctx, sublower, sub, crel)
}

func openDirNoFollow(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// differs tells whether an entry present in both trees changed.
func differs(lfd, ufd int, name string, l, u *unix.Stat_t) (bool, error) {
	if l.Mode != u.Mode || l.Uid != u.Uid || l.Gid != u.Gid || l.Rdev != u.Rdev ||
		l.Mtim != u.Mtim || (l.Mode&unix.S_IFMT != unix.S_IFDIR && l.Size != u.Size) {
		return true, nil
	}
	if l.Mode&unix.S_IFMT == unix.S_IFLNK {
		lt, err := readlinkat(lfd, name)
		if err != nil {
			return false, err
		}
		ut, err := readlinkat(ufd, name)
		if err != nil {
			return false, err
		}
		if lt != ut {
			return true, nil
		}
	}
	lx, err := readXattrs(lfd, name)
	if err != nil {
		return false, err
	}
	ux, err := readXattrs(ufd, name)
	if err != nil {
		return false, err
	}
	return !maps.Equal(lx, ux), nil
}

// WriteChanges writes to w the layer tar of changes (from Changes) in the
// tree upper: added and modified paths with their metadata and content,
// deleted ones as ".wh." whiteouts, and the parent directories of every
// change (with upper's metadata) so the layer records their owners and
// modes. Headers are normalised as WriteDiff's, entries go in path order, so
// the output is deterministic. upper must not change meanwhile. opts change
// the normalisation (ClampTimes).
func WriteChanges(ctx context.Context, w io.Writer, upper string, changes []Change, opts ...WriteOption) error {
	ufd, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write changes: %w", &os.PathError{Op: "open", Path: upper, Err: err})
	}
	defer unix.Close(ufd)
	type item struct {
		kind ChangeKind
		rel  string
	}
	items := make([]item, 0, len(changes))
	for _, ch := range changes {
		rel, err := cleanPath(ch.Path)
		if err != nil || rel == "." {
			return fmt.Errorf("write changes: path %q: %w", ch.Path, errdefs.ErrInvalidArgument)
		}
		items = append(items, item{ch.Kind, rel})
	}
	// Path order: a directory, then what is inside it, then its next sibling.
	slices.SortStableFunc(items, func(a, b item) int {
		return strings.Compare(strings.ReplaceAll(a.rel, "/", "\x00"), strings.ReplaceAll(b.rel, "/", "\x00"))
	})
	cw := changeWriter{t: newTarWriter(w, writeOpts(opts)), ufd: ufd, written: make(map[string]bool)}
	for i, it := range items {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := cw.write(it.kind, it.rel); err != nil {
			return fmt.Errorf("write changes of %s: %w", upper, err)
		}
	}
	if err := cw.t.close(); err != nil {
		return fmt.Errorf("write changes of %s: %w", upper, err)
	}
	return nil
}

type changeWriter struct {
	t       *tarWriter
	ufd     int
	written map[string]bool
}

func (cw *changeWriter) write(kind ChangeKind, rel string) error {
	dir, base := splitPath(rel)
	if err := cw.parents(dir); err != nil {
		return err
	}
	if kind == ChangeDelete {
		return cw.t.whiteout(path.Join(dir, WhiteoutPrefix+base))
	}
	if cw.written[rel] {
		return nil
	}
	cw.written[rel] = true
	return cw.entry(dir, base, rel)
}

// parents writes the directories leading to dir that are not written yet.
func (cw *changeWriter) parents(dir string) error {
	if dir == "." || cw.written[dir] {
		return nil
	}
	pdir, base := splitPath(dir)
	if err := cw.parents(pdir); err != nil {
		return err
	}
	cw.written[dir] = true
	return cw.entry(pdir, base, dir)
}

func (cw *changeWriter) entry(dir, base, rel string) error {
	pfd, err := openRel(cw.ufd, dir, unix.O_PATH|unix.O_DIRECTORY,
		unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		return wrapPath("open", dir, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wrapPath("stat", rel, err)
	}
	xattrs, err := readXattrs(pfd, base)
	if err != nil {
		return wrapPath("list xattrs", rel, err)
	}
	return cw.t.entry(pfd, base, rel, &st, xattrs)
}
