package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// The build context is prepared as docker's CLI does for its classic
// builder: a directory becomes a tar of the files .dockerignore leaves in
// (always with the Dockerfile and .dockerignore themselves, which the
// builder needs), owned by root; a Dockerfile from outside the directory
// or from standard input is added under a generated name that
// .dockerignore then lists, so that COPY . does not pick it up; standard
// input is a context tar, or a lone Dockerfile when it is not an archive.

// defaultDockerfile is the Dockerfile's name in a context.
const defaultDockerfile = "Dockerfile"

// buildContext is what POST /build is sent: the context tar and the
// Dockerfile's path in it ("" for the daemon's default).
type buildContext struct {
	body       io.Reader
	dockerfile string
	// close releases what reading the context holds (an open tarball).
	close func() error
}

// contextSource is where the context and the Dockerfile come from, as the
// command line gave them.
type contextSource struct {
	path       string    // PATH argument: a directory, a tarball, or "-"
	dockerfile string    // -f: a path, "-" for stdin, or ""
	stdin      io.Reader // standard input
}

// prepare makes the context tar. Its errors read like docker's ("unable
// to prepare context: ...").
func (s contextSource) prepare() (*buildContext, error) {
	if s.dockerfile == "-" && s.path == "-" {
		return nil, errors.New("invalid argument: can't use stdin for both build context and dockerfile")
	}
	if s.path == "-" {
		bc, err := s.fromStdin()
		if err != nil {
			return nil, fmt.Errorf("unable to prepare context: %w", err)
		}
		return bc, nil
	}
	if isURLContext(s.path) {
		return nil, fmt.Errorf("unable to prepare context: berth does not build from a URL (%s): clone or download it and build from the directory", s.path)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context: path %q not found", s.path)
	}
	if !fi.IsDir() {
		return s.fromTarball()
	}
	return s.fromDir()
}

// isURLContext tells the remote contexts docker's CLI accepts: URLs and
// git remotes.
func isURLContext(s string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "github.com/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// fromStdin reads standard input as a context archive or, when it is not
// one, as a Dockerfile alone.
func (s contextSource) fromStdin() (*buildContext, error) {
	in := bufio.NewReaderSize(s.stdin, 2*512)
	if isArchive(in) {
		return &buildContext{body: in, dockerfile: s.dockerfile, close: noClose}, nil
	}
	switch s.dockerfile {
	case "-":
		return nil, errors.New("build context is not an archive")
	case "":
	default:
		return nil, errors.New("ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles")
	}
	content, err := io.ReadAll(in)
	if err != nil {
		return nil, fmt.Errorf("read Dockerfile from stdin: %w", err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := writeFile(tw, defaultDockerfile, content, 0o644, time.Now()); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buildContext{body: &b, dockerfile: defaultDockerfile, close: noClose}, nil
}

// isArchive peeks at r for a tar header or a compressed stream's magic
// number.
func isArchive(r *bufio.Reader) bool {
	head, _ := r.Peek(2 * 512)
	for _, magic := range [][]byte{
		{0x1f, 0x8b},                     // gzip
		[]byte("BZh"),                    // bzip2
		{0xfd, '7', 'z', 'X', 'Z', 0x00}, // xz
		{0x28, 0xb5, 0x2f, 0xfd},         // zstd
	} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	_, err := tar.NewReader(bytes.NewReader(head)).Next()
	return err == nil
}

// fromTarball sends a tar archive file as it is; -f names the Dockerfile
// inside it. (Docker's CLI takes only directories; berth also takes the
// tarball `berth build - < ctx.tar` would read.)
func (s contextSource) fromTarball() (*buildContext, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context: %w", err)
	}
	r := bufio.NewReaderSize(f, 2*512)
	if !isArchive(r) {
		f.Close()
		return nil, fmt.Errorf("unable to prepare context: %s is neither a directory nor a tar archive", s.path)
	}
	if s.dockerfile == "-" {
		f.Close()
		return nil, errors.New("unable to prepare context: a Dockerfile from stdin needs a directory as context, not a tarball")
	}
	return &buildContext{body: r, dockerfile: s.dockerfile, close: f.Close}, nil
}

// fromDir tars a context directory.
func (s contextSource) fromDir() (*buildContext, error) {
	dir, err := filepath.Abs(s.path)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context: unable to evaluate symlinks in context path: %w", err)
	}
	var extra []byte // a Dockerfile from stdin or from outside dir
	rel := ""
	switch s.dockerfile {
	case "-":
		if extra, err = io.ReadAll(s.stdin); err != nil {
			return nil, fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
	default:
		if rel, err = dockerfileIn(dir, s.dockerfile); err != nil {
			return nil, fmt.Errorf("unable to prepare context: %w", err)
		}
		if strings.HasPrefix(rel, "../") {
			if extra, err = os.ReadFile(s.dockerfile); err != nil {
				return nil, fmt.Errorf("unable to open Dockerfile: %w", err)
			}
			rel = ""
		}
	}
	entries, err := contextEntries(dir, rel)
	if err != nil {
		return nil, fmt.Errorf("error checking context: %w", err)
	}
	pr, pw := io.Pipe()
	bc := &buildContext{body: pr, dockerfile: rel, close: pr.Close}
	var added *addedDockerfile
	if extra != nil {
		added = newAddedDockerfile(extra)
		bc.dockerfile = added.name
	}
	go func() { pw.CloseWithError(writeContext(pw, entries, added)) }()
	return bc, nil
}

// dockerfileIn finds the Dockerfile: by default "Dockerfile" in dir (or
// "dockerfile" when only that exists), else the -f path, relative to the
// working directory. It returns the path relative to dir, with slashes;
// one starting with "../" lies outside.
func dockerfileIn(dir, flag string) (string, error) {
	path := flag
	if path == "" {
		path = filepath.Join(dir, defaultDockerfile)
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			lower := filepath.Join(dir, strings.ToLower(defaultDockerfile))
			if _, err := os.Lstat(lower); err == nil {
				path = lower
			}
		}
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("unable to get absolute path to Dockerfile: %w", err)
	}
	if path, err = filepath.EvalSymlinks(path); err != nil {
		return "", fmt.Errorf("unable to evaluate symlinks in Dockerfile path: %w", err)
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return "", fmt.Errorf("unable to get relative Dockerfile path: %w", err)
	}
	return filepath.ToSlash(rel), nil
}

// contextEntry is one file of the context: its path on disk and in the
// tar.
type contextEntry struct {
	path, name string
	info       fs.FileInfo
}

// contextEntries lists the files of dir that .dockerignore leaves in, in
// lexical order, plus the Dockerfile (dockerfile, relative) and
// .dockerignore even when it excludes them. Files that cannot be read are
// an error now rather than a broken upload later.
func contextEntries(dir, dockerfile string) ([]contextEntry, error) {
	pm, err := readDockerignore(dir)
	if err != nil {
		return nil, err
	}
	var entries []contextEntry
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("can't stat '%s'", path)
			}
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		excluded, err := pm.MatchesOrParentMatches(name)
		if err != nil {
			return fmt.Errorf("match .dockerignore patterns: %w", err)
		}
		if excluded && name != dockerfile && name != ".dockerignore" {
			if d.IsDir() && !mayKeepUnder(pm, name, dockerfile) {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSocket != 0 {
			return nil // tar has no sockets
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("no permission to read from '%s'", path)
			} else if err != nil {
				return err
			}
			f.Close()
		}
		entries = append(entries, contextEntry{path: path, name: name, info: info})
		return nil
	})
	return entries, err
}

// readDockerignore reads dir/.dockerignore; without one, nothing is
// excluded.
func readDockerignore(dir string) (*patternmatcher.PatternMatcher, error) {
	var patterns []string
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		defer f.Close()
		if patterns, err = ignorefile.ReadAll(f); err != nil {
			return nil, fmt.Errorf("read .dockerignore: %w", err)
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	return pm, nil
}

// mayKeepUnder tells whether an excluded directory may still hold files
// the context keeps: the Dockerfile, or ones an exception ("!dir/file")
// brings back.
func mayKeepUnder(pm *patternmatcher.PatternMatcher, dir, dockerfile string) bool {
	if strings.HasPrefix(dockerfile, dir+"/") {
		return true
	}
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(p.String()+"/", dir+"/") {
			return true
		}
	}
	return false
}

// addedDockerfile is a Dockerfile from outside the context directory (or
// stdin) added to the context tar. Its name is derived from its content,
// so the same Dockerfile gives the same context (docker picks a random
// name).
type addedDockerfile struct {
	name    string
	content []byte
}

func newAddedDockerfile(content []byte) *addedDockerfile {
	sum := sha256.Sum256(content)
	return &addedDockerfile{name: ".dockerfile." + hex.EncodeToString(sum[:])[:20], content: content}
}

// ignoreLine is what .dockerignore gets so that the added Dockerfile
// stays out of COPY . as docker's CLI arranges.
func (a *addedDockerfile) ignoreLine() string { return "\n" + a.name + "\n" }

// writeContext writes the tar of entries to w, owned by root, with the
// added Dockerfile (when not nil) at the end and listed in .dockerignore.
func writeContext(w io.Writer, entries []contextEntry, added *addedDockerfile) error {
	tw := tar.NewWriter(w)
	ignoreSeen := false
	for _, e := range entries {
		if added != nil && e.name == ".dockerignore" && e.info.Mode().IsRegular() {
			content, err := os.ReadFile(e.path)
			if err != nil {
				return err
			}
			ignoreSeen = true
			if err := writeFile(tw, e.name, append(content, added.ignoreLine()...), int64(e.info.Mode().Perm()), e.info.ModTime()); err != nil {
				return err
			}
			continue
		}
		if err := writeEntry(tw, e); err != nil {
			return err
		}
	}
	if added != nil {
		now := time.Now()
		if err := writeFile(tw, added.name, added.content, 0o600, now); err != nil {
			return err
		}
		if !ignoreSeen {
			if err := writeFile(tw, ".dockerignore", []byte(".dockerignore"+added.ignoreLine()), 0o600, now); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// writeEntry writes one file, directory or link of the context.
func writeEntry(tw *tar.Writer, e contextEntry) error {
	link := ""
	if e.info.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(e.path); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(e.info, link)
	if err != nil {
		return fmt.Errorf("%s: %w", e.path, err)
	}
	h.Name = e.name
	if e.info.IsDir() {
		h.Name += "/"
	}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !e.info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if n, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", e.path, err)
	} else if n != h.Size {
		return fmt.Errorf("%s changed size while it was sent", e.path)
	}
	return nil
}

// writeFile writes a regular file of the given content.
func writeFile(tw *tar.Writer, name string, content []byte, mode int64, mtime time.Time) error {
	h := &tar.Header{Name: name, Mode: mode, Size: int64(len(content)), ModTime: mtime.Truncate(time.Second), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := tw.Write(content)
	return err
}

// gzipTo writes r to w compressed with gzip (--compress).
func gzipTo(w io.Writer, r io.Reader) error {
	zw := gzip.NewWriter(w)
	if _, err := io.Copy(zw, r); err != nil {
		return err
	}
	return zw.Close()
}

func noClose() error { return nil }
