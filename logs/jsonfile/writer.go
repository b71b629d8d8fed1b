package jsonfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"berth.dev/internal/errdefs"
)

// MaxEntrySize is the most output bytes one entry holds, as in Docker: a
// longer line is split into entries of this size, the last one ending in
// "\n".
const MaxEntrySize = 16 * 1024

// fileMode is the permission of new log files, as Docker's.
const fileMode = 0o640

// Options configure a Writer.
type Options struct {
	// MaxSize is the size in bytes past which the live file is rotated;
	// 0 disables rotation.
	MaxSize int64
	// MaxFiles is how many files are kept in all, the live one included;
	// 0 means 1. With 1, rotation starts the live file afresh.
	MaxFiles int
	// Compress asks for rotated files to be gzipped. It is not supported:
	// NewWriter fails with errdefs.ErrNotImplemented.
	Compress bool
}

// Writer appends log entries to a json-file log, rotating it as Options say.
// It is safe for concurrent use. Output is split into entries at "\n"; an
// unterminated tail is kept per stream until its "\n" arrives, it reaches
// MaxEntrySize, or Flush or Close is called. An entry's time is the time
// passed with the chunk that completes it, so entries are in time order when
// callers pass non-decreasing times.
type Writer struct {
	path string
	opts Options

	mu      sync.Mutex
	f       *os.File
	size    int64
	partial map[string][]byte
	buf     []byte // entries encoded but not yet written
	// rotateErr is a rotation failure to report when the call ends.
	rotateErr error
	closed    bool
}

// NewWriter opens the log at path for appending, creating it if needed. The
// directory must exist.
func NewWriter(path string, opts Options) (*Writer, error) {
	if opts.Compress {
		return nil, fmt.Errorf("json-file log %s: compressed rotation: %w", path, errdefs.ErrNotImplemented)
	}
	if opts.MaxSize < 0 || opts.MaxFiles < 0 {
		return nil, fmt.Errorf("json-file log %s: max-size %d, max-file %d: %w", path, opts.MaxSize, opts.MaxFiles, errdefs.ErrInvalidArgument)
	}
	if opts.MaxFiles == 0 {
		opts.MaxFiles = 1
	}
	w := &Writer{path: path, opts: opts, partial: make(map[string][]byte)}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("open json-file log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open json-file log: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// WriteLog records a chunk of output read from stream ("stdout" or
// "stderr") at time t. The chunk may hold several lines or part of one.
func (w *Writer) WriteLog(stream string, line []byte, t time.Time) error {
	if stream == "" {
		return fmt.Errorf("json-file log %s: empty stream name: %w", w.path, errdefs.ErrInvalidArgument)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("json-file log %s: %w: %w", w.path, os.ErrClosed, errdefs.ErrFailedPrecondition)
	}
	data := line
	if p := w.partial[stream]; len(p) > 0 {
		data = append(p, line...)
	}
	for {
		i := bytes.IndexByte(data, '\n')
		var n int
		switch {
		case i >= 0 && i < MaxEntrySize:
			n = i + 1
		case len(data) >= MaxEntrySize:
			n = MaxEntrySize
		}
		if n == 0 {
			break
		}
		if err := w.add(stream, data[:n], t); err != nil {
			return err
		}
		data = data[n:]
	}
	// Keep the tail in the stream's own buffer: data may alias the caller's.
	w.partial[stream] = append(w.partial[stream][:0], data...)
	return w.finish()
}

// add encodes one entry, writing out what is pending and rotating first if
// the entry would make the live file exceed MaxSize.
func (w *Writer) add(stream string, log []byte, t time.Time) error {
	start := len(w.buf)
	w.buf = appendEntry(w.buf, stream, log, t)
	if w.opts.MaxSize <= 0 || w.size+int64(start) == 0 || w.size+int64(len(w.buf)) <= w.opts.MaxSize {
		return nil
	}
	entry := append([]byte(nil), w.buf[start:]...)
	w.buf = w.buf[:start]
	if err := w.write(); err != nil {
		return err
	}
	// A failed rotation must not cost the entry: it then goes to whichever
	// file is live, and the error is reported once the chunk is written.
	w.rotateErr = errors.Join(w.rotateErr, w.rotate())
	w.buf = append(w.buf, entry...)
	return nil
}

// finish writes the pending entries and reports a rotation that failed on
// the way.
func (w *Writer) finish() error {
	err := errors.Join(w.rotateErr, w.write())
	w.rotateErr = nil
	return err
}

// write appends the pending entries to the live file in one write.
func (w *Writer) write() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.f == nil {
		// A rotation failed to open the new file: try again.
		if err := w.open(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	w.buf = w.buf[:0]
	if err != nil {
		return fmt.Errorf("write json-file log: %w", err)
	}
	return nil
}

// rotate shifts the rotated files up by one, dropping the oldest, moves the
// live file to path.1 and opens a new live file. Every step is a rename, so
// a file a reader holds open stays whole.
func (w *Writer) rotate() error {
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("rotate json-file log: %w", err)
	}
	if w.opts.MaxFiles == 1 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate json-file log: %w", err)
		}
		return w.open()
	}
	for i := w.opts.MaxFiles - 1; i > 1; i-- {
		err := os.Rename(w.rotated(i-1), w.rotated(i))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate json-file log: %w", err)
		}
	}
	if err := os.Rename(w.path, w.rotated(1)); err != nil {
		return fmt.Errorf("rotate json-file log: %w", err)
	}
	return w.open()
}

func (w *Writer) rotated(n int) string { return w.path + "." + strconv.Itoa(n) }

// Flush writes every stream's unterminated output as an entry without "\n",
// timed now.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("json-file log %s: %w: %w", w.path, os.ErrClosed, errdefs.ErrFailedPrecondition)
	}
	return w.flush(time.Now())
}

func (w *Writer) flush(t time.Time) error {
	for _, stream := range slices.Sorted(maps.Keys(w.partial)) {
		p := w.partial[stream]
		if len(p) == 0 {
			continue
		}
		if err := w.add(stream, p, t); err != nil {
			return err
		}
		w.partial[stream] = p[:0]
	}
	return w.finish()
}

// Close flushes unterminated output and closes the file. Later calls return
// nil; WriteLog and Flush after Close fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	ferr := w.flush(time.Now())
	var cerr error
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			cerr = fmt.Errorf("close json-file log: %w", err)
		}
	}
	return errors.Join(ferr, cerr)
}
