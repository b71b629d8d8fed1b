package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"berth.dev/internal/errdefs"
)

// ErrCorrupt is returned, wrapped, by Read when it skipped lines that are
// not json-file entries (for example a file damaged by a crash). Every valid
// entry has still been delivered.
var ErrCorrupt = errors.New("corrupt json-file log entries")

// ReadOptions select the entries Read returns.
type ReadOptions struct {
	// Since and Until, when not zero, bound the entries' times, both
	// inclusive. Reading stops at the first entry after Until, as Docker's.
	Since, Until time.Time
	// Tail is how many of the last lines of the log (across its rotated
	// files) to consider; -1 (any negative) means all, 0 none of the
	// existing ones. Tail is applied before Since and Until, as Docker's.
	Tail int
	// Follow keeps returning new entries, following rotations, until the
	// context ends or Done is closed.
	Follow bool
	// Done, when not nil and closed, ends a Follow gracefully: Read returns
	// nil once it has delivered every complete entry written so far. Close it
	// after the writer has closed (the container exited) so that no final
	// line is lost, where cancelling the context stops at once.
	Done <-chan struct{}
}

// Entry is one entry of a json-file log.
type Entry struct {
	// Stream is "stdout" or "stderr".
	Stream string
	// Line is the output, ending in "\n" unless it is part of a longer line
	// or output unterminated when the writer flushed.
	Line []byte
	// Time is when the output was read.
	Time time.Time
}

// Read calls fn with the log's entries in the order written: the rotated
// files, oldest first, then the live file. It stops at the first error fn
// returns and returns it.
//
// A line still being written (no "\n" yet) is not returned until complete.
// Lines that are not valid entries are skipped and counted; after delivering
// the rest, Read returns an error wrapping ErrCorrupt that says how many.
//
// With Follow, Read waits for new entries (inotify on Linux, polling
// elsewhere) until ctx ends, then returns ctx.Err(), or until opts.Done is
// closed and the log is drained, then returns nil. When the live file is
// rotated, Read finishes it and goes on with the file written after it, so it
// returns each entry exactly once unless the writer dropped a rotated file
// before Read reached it.
//
// Read fails with errdefs.ErrNotFound when the log does not exist.
func Read(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	var w watcher
	if opts.Follow {
		// Watch before reading, so that nothing written after the
		// history is read can go unnoticed.
		w = newWatcher(path)
		defer w.Close()
	}
	files, err := openSet(path)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("json-file log %s: %w", path, errdefs.ErrNotFound)
	}
	r := &reader{path: path, opts: opts, fn: fn}
	defer func() { closeAll(files) }()
	if opts.Tail >= 0 {
		total, err := countLines(files)
		if err != nil {
			return err
		}
		r.skip = max(0, total-opts.Tail)
	}
	for i, lf := range files {
		if err := r.readFile(ctx, lf.f); err != nil || r.stopped {
			return r.result(err)
		}
		if i < len(files)-1 {
			r.endFile()
		}
	}
	if !opts.Follow {
		return r.result(nil)
	}
	cur := files[len(files)-1]
	files = files[:len(files)-1]
	defer func() { cur.f.Close() }()
	return r.result(r.follow(ctx, w, &cur))
}

// reader holds the state of one Read.
type reader struct {
	path    string
	opts    ReadOptions
	fn      func(Entry) error
	skip    int // lines yet to skip for Tail
	pending []byte
	br      *bufio.Reader
	stopped bool // an entry after Until was seen

	corrupt      int
	firstCorrupt error
}

// result adds the count of corrupt lines to err.
func (r *reader) result(err error) error {
	if r.corrupt == 0 {
		return err
	}
	cerr := fmt.Errorf("json-file log %s: %d lines skipped (first: %v): %w", r.path, r.corrupt, r.firstCorrupt, ErrCorrupt)
	if err == nil {
		return cerr
	}
	return errors.Join(err, cerr)
}

// readFile delivers the complete lines of f up to its current end. An
// incomplete last line is kept for the next call on the same file.
func (r *reader) readFile(ctx context.Context, f *os.File) error {
	if r.br == nil {
		r.br = bufio.NewReaderSize(f, 64*1024)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.pending = append(r.pending, chunk...)
			continue
		}
		if errors.Is(err, io.EOF) {
			r.pending = append(r.pending, chunk...)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read json-file log %s: %w", r.path, err)
		}
		line := chunk
		if len(r.pending) > 0 {
			line = append(r.pending, chunk...)
			r.pending = r.pending[:0]
		}
		if err := r.line(line); err != nil || r.stopped {
			return err
		}
	}
}

// endFile is called when a file is known to be complete: an unterminated
// last line in it will never be completed.
func (r *reader) endFile() {
	if len(bytes.TrimSpace(r.pending)) > 0 {
		r.countCorrupt(fmt.Errorf("unterminated last line"))
	}
	r.pending = r.pending[:0]
	r.br = nil
}

func (r *reader) countCorrupt(err error) {
	if r.corrupt == 0 {
		r.firstCorrupt = err
	}
	r.corrupt++
}

// jsonEntry is an entry as stored; "attrs", written by Docker with log
// options, is ignored.
type jsonEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// line decodes and delivers one complete line.
func (r *reader) line(line []byte) error {
	if r.skip > 0 {
		r.skip--
		return nil
	}
	var je jsonEntry
	if err := json.Unmarshal(line, &je); err != nil {
		r.countCorrupt(err)
		return nil
	}
	if je.Stream == "" || je.Time.IsZero() {
		r.countCorrupt(fmt.Errorf("entry without stream or time"))
		return nil
	}
	if !r.opts.Since.IsZero() && je.Time.Before(r.opts.Since) {
		return nil
	}
	if !r.opts.Until.IsZero() && je.Time.After(r.opts.Until) {
		r.stopped = true
		return nil
	}
	return r.fn(Entry{Stream: je.Stream, Line: []byte(je.Log), Time: je.Time})
}

// follow reads cur as it grows and, when it is rotated away, the files
// written after it, until ctx ends or opts.Done is closed and all is read.
func (r *reader) follow(ctx context.Context, w watcher, cur **logFile) error {
	draining := false
	for {
		if err := r.readFile(ctx, (*cur).f); err != nil || r.stopped {
			return err
		}
		fi, err := os.Stat(r.path)
		if err == nil && os.SameFile(fi, (*cur).fi) {
			if draining {
				return nil
			}
			draining, err = w.Wait(ctx, r.opts.Done)
			if err != nil {
				return err
			}
			continue
		}
		// cur is no longer the live file. The writer wrote its last entry
		// to it before renaming it, so reading it to its end now finishes it.
		if err := r.readFile(ctx, (*cur).f); err != nil || r.stopped {
			return err
		}
		next, err := r.filesAfter(*cur)
		if err != nil {
			return err
		}
		if len(next) == 0 {
			// Between the rename and the creation of the new file.
			if draining {
				return nil
			}
			draining, err = w.Wait(ctx, r.opts.Done)
			if err != nil {
				return err
			}
			continue
		}
		r.endFile()
		(*cur).f.Close()
		*cur = next[len(next)-1]
		for i, lf := range next[:len(next)-1] {
			err := r.readFile(ctx, lf.f)
			if err == nil && !r.stopped {
				r.endFile()
			}
			if err != nil || r.stopped {
				closeAll(next[i : len(next)-1])
				return err
			}
			lf.f.Close()
		}
	}
}

// filesAfter opens the files of the log written after cur. When cur is no
// longer among them (the writer dropped it), every file is after it.
func (r *reader) filesAfter(cur *logFile) ([]*logFile, error) {
	files, err := openSet(r.path)
	if err != nil {
		return nil, err
	}
	for i, lf := range files {
		if os.SameFile(lf.fi, cur.fi) {
			closeAll(files[:i+1])
			return files[i+1:], nil
		}
	}
	return files, nil
}

// countLines counts the complete lines of files up to their sizes when
// opened.
func countLines(files []*logFile) (int, error) {
	buf := make([]byte, 64*1024)
	total := 0
	for _, lf := range files {
		sr := io.NewSectionReader(lf.f, 0, lf.fi.Size())
		for {
			n, err := sr.Read(buf)
			total += bytes.Count(buf[:n], []byte{'\n'})
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return 0, fmt.Errorf("count json-file log lines %s: %w", lf.name, err)
			}
		}
	}
	return total, nil
}
