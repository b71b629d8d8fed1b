package jsonfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"berth.dev/internal/errdefs"
)

// logFile is one file of a log set, open for reading.
type logFile struct {
	name string
	f    *os.File
	fi   os.FileInfo
}

func closeAll(files []*logFile) {
	for _, lf := range files {
		lf.f.Close()
	}
}

// listNames returns the names of path's rotated files, oldest (highest
// number) first, then path itself if it exists.
func listNames(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list json-file log %s: %w", path, err)
	}
	type numbered struct {
		n    int
		name string
	}
	var rotated []numbered
	live := false
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		if name == base {
			live = true
			continue
		}
		suffix, ok := strings.CutPrefix(name, base+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 || strconv.Itoa(n) != suffix {
			continue
		}
		rotated = append(rotated, numbered{n, filepath.Join(dir, name)})
	}
	slices.SortFunc(rotated, func(a, b numbered) int { return b.n - a.n })
	names := make([]string, 0, len(rotated)+1)
	for _, r := range rotated {
		names = append(names, r.name)
	}
	if live {
		names = append(names, path)
	}
	return names, nil
}

// maxSnapshotTries bounds how often openSet retries while the writer keeps
// rotating under it.
const maxSnapshotTries = 1000

// openSet opens the files of the log at path, oldest first. A writer may be
// rotating at the same time, so the set is listed and opened, then listed
// again: it is kept only if every name still names the file opened under it.
// Any state between two renames of a rotation lists the files in the order
// they were written, so a consistent set is always in order.
func openSet(path string) ([]*logFile, error) {
	for range maxSnapshotTries {
		files, stable, err := tryOpenSet(path)
		if err != nil || stable {
			return files, err
		}
	}
	return nil, fmt.Errorf("open json-file log %s: it keeps rotating: %w", path, errdefs.ErrUnavailable)
}

func tryOpenSet(path string) ([]*logFile, bool, error) {
	names, err := listNames(path)
	if err != nil {
		return nil, false, err
	}
	var files []*logFile
	for _, name := range names {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			closeAll(files)
			return nil, false, nil
		}
		if err != nil {
			closeAll(files)
			return nil, false, fmt.Errorf("open json-file log: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			closeAll(files)
			return nil, false, fmt.Errorf("open json-file log: %w", err)
		}
		files = append(files, &logFile{name: name, f: f, fi: fi})
	}
	again, err := listNames(path)
	if err != nil {
		closeAll(files)
		return nil, false, err
	}
	if !slices.Equal(names, again) {
		closeAll(files)
		return nil, false, nil
	}
	for _, lf := range files {
		fi, err := os.Stat(lf.name)
		if err != nil || !os.SameFile(fi, lf.fi) {
			closeAll(files)
			return nil, false, nil
		}
	}
	return files, true, nil
}
