package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"berth.dev/internal/errdefs"
)

// treeEntry is one file of a copy's source tree.
type treeEntry struct {
	// rel is the slash path relative to the tree's root ("app/x").
	rel string
	// hdr holds the file's Typeflag, Mode (permissions and setuid,
	// setgid, sticky bits), Size, Linkname and ModTime.
	hdr tar.Header
	// open reads a regular file.
	open func() (io.ReadCloser, error)
}

// A tree is where COPY and ADD read files: the build context or another
// stage's or image's filesystem.
type tree interface {
	// walk calls fn for rel and, when it is a directory, everything under
	// it: parents before children, names sorted. fn returning fs.SkipDir
	// for a directory skips what is under it. A missing rel is an
	// errdefs.ErrNotFound error.
	walk(ctx context.Context, rel string, fn func(*treeEntry) error) error
}

// contextTree is the build context: files are read through an os.Root, so
// no path or symlink leads out of it, and .dockerignore leaves files out.
type contextTree struct {
	root   *os.Root
	ignore *patternmatcher.PatternMatcher
}

func (t *contextTree) ignored(rel string) (bool, error) {
	if t.ignore == nil || rel == "." {
		return false, nil
	}
	return t.ignore.MatchesOrParentMatches(rel)
}

func (t *contextTree) walk(ctx context.Context, rel string, fn func(*treeEntry) error) error {
	ign, err := t.ignored(rel)
	if err != nil {
		return err
	}
	if ign {
		return fmt.Errorf("%w: %s is excluded by .dockerignore", errdefs.ErrNotFound, rel)
	}
	fi, err := t.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", errdefs.ErrNotFound, rel)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errdefs.ErrForbidden, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// A source that is a symlink is followed, as docker does, but only
		// inside the context: one that leads out (or nowhere) is copied
		// as the symlink it is.
		if target, err := t.root.Stat(rel); err == nil {
			fi = target
		}
	}
	return t.visit(ctx, rel, fi, fn, true)
}

func (t *contextTree) visit(ctx context.Context, rel string, fi fs.FileInfo, fn func(*treeEntry) error, emit bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if emit {
		te, err := t.entry(rel, fi)
		if err != nil {
			return err
		}
		if err := fn(te); err != nil {
			if errors.Is(err, fs.SkipDir) && fi.IsDir() {
				return nil
			}
			return err
		}
	}
	if !fi.IsDir() {
		return nil
	}
	d, err := t.root.Open(rel)
	if err != nil {
		return fmt.Errorf("open %s: %w", rel, err)
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("read directory %s: %w", rel, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, de := range ents {
		child := path.Join(rel, de.Name())
		ign, err := t.ignored(child)
		if err != nil {
			return err
		}
		if ign && !(de.IsDir() && t.ignore.Exclusions()) {
			continue
		}
		cfi, err := de.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", child, err)
		}
		// An ignored directory is entered only for the exceptions ("!")
		// below it, and is not itself copied.
		if err := t.visit(ctx, child, cfi, fn, !ign); err != nil {
			return err
		}
	}
	return nil
}

func (t *contextTree) entry(rel string, fi fs.FileInfo) (*treeEntry, error) {
	te := &treeEntry{rel: rel}
	te.hdr.Mode = int64(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		te.hdr.Mode |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		te.hdr.Mode |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		te.hdr.Mode |= 0o1000
	}
	te.hdr.ModTime = fi.ModTime()
	switch {
	case fi.Mode().IsRegular():
		te.hdr.Typeflag = tar.TypeReg
		te.hdr.Size = fi.Size()
		te.open = func() (io.ReadCloser, error) {
			f, err := t.root.Open(rel)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", rel, err)
			}
			// The file may have been replaced since it was described.
			if ofi, err := f.Stat(); err != nil || !ofi.Mode().IsRegular() {
				f.Close()
				return nil, fmt.Errorf("%w: %s changed while it was copied", errdefs.ErrConflict, rel)
			}
			return f, nil
		}
	case fi.IsDir():
		te.hdr.Typeflag = tar.TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		te.hdr.Typeflag = tar.TypeSymlink
		target, err := t.root.Readlink(rel)
		if err != nil {
			return nil, fmt.Errorf("readlink %s: %w", rel, err)
		}
		te.hdr.Linkname = target
	default:
		return nil, fmt.Errorf("%w: %s: not a regular file, directory or symlink (%s)", errdefs.ErrInvalidArgument, rel, fi.Mode().Type())
	}
	return te, nil
}

// readDockerignore reads the context's .dockerignore, if any.
func readDockerignore(root *os.Root) (*patternmatcher.PatternMatcher, error) {
	f, err := root.Open(".dockerignore")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open .dockerignore: %w", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%w: .dockerignore: %w", errdefs.ErrInvalidArgument, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%w: .dockerignore: %w", errdefs.ErrInvalidArgument, err)
	}
	return pm, nil
}

// exportTree is a stage's or image's filesystem, read through the
// Executor's FileSource.
type exportTree struct {
	ctx   context.Context
	fs    FileSource
	state State
}

// maxSymlinks bounds the symlinks followed to a source of COPY --from.
const maxSymlinks = 40

// resolve follows the symlinks that rel itself is (its parents the
// Executor resolves), inside the root.
func (t *exportTree) resolve(ctx context.Context, rel string) (string, error) {
	p := path.Clean("/" + strings.TrimPrefix(rel, "."))
	for range maxSymlinks {
		fi, err := t.fs.Stat(ctx, t.state, p)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		rc, err := t.fs.Export(ctx, t.state, p)
		if err != nil {
			return "", err
		}
		hdr, err := tar.NewReader(rc).Next()
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("read exported %s: %w", p, err)
		}
		target := hdr.Linkname
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return "", fmt.Errorf("%w: %s: too many levels of symbolic links", errdefs.ErrInvalidArgument, rel)
}

func (t *exportTree) walk(ctx context.Context, rel string, fn func(*treeEntry) error) error {
	real, err := t.resolve(ctx, rel)
	if err != nil {
		return err
	}
	rc, err := t.fs.Export(ctx, t.state, real)
	if err != nil {
		return err
	}
	defer rc.Close()
	realRel := strings.TrimPrefix(real, "/")
	if realRel == "" {
		realRel = "."
	}
	tr := tar.NewReader(rc)
	skip := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read exported files: %w", err)
		}
		// Entries are named after rel, wherever its symlinks led.
		rename := func(n string) string {
			n = strings.TrimPrefix(path.Clean("/"+n), "/")
			if n == "" {
				n = "."
			}
			switch {
			case realRel == rel:
			case n == realRel:
				n = rel
			case realRel == ".":
				n = path.Join(rel, n)
			case strings.HasPrefix(n, realRel+"/"):
				n = path.Join(rel, strings.TrimPrefix(n, realRel+"/"))
			}
			return n
		}
		name := rename(hdr.Name)
		if skip != "" && strings.HasPrefix(name, skip+"/") {
			continue
		}
		skip = ""
		te := &treeEntry{rel: name}
		te.hdr = tar.Header{
			Typeflag: hdr.Typeflag, Mode: hdr.Mode & 0o7777, Size: hdr.Size, ModTime: hdr.ModTime,
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			te.hdr.Typeflag = tar.TypeReg
			body := tr
			te.open = func() (io.ReadCloser, error) { return io.NopCloser(body), nil }
		case tar.TypeSymlink:
			te.hdr.Linkname = hdr.Linkname
		case tar.TypeLink:
			te.hdr.Linkname = rename(hdr.Linkname)
		}
		if err := fn(te); err != nil {
			if errors.Is(err, fs.SkipDir) && hdr.Typeflag == tar.TypeDir {
				skip = name
				continue
			}
			return err
		}
	}
}
