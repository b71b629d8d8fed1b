package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"berth.dev/internal/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the codec of a layer blob.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// zstdMaxWindow bounds the window a zstd frame may ask the decoder to
// allocate: 128 MiB, the largest that `zstd --long` uses.
const zstdMaxWindow = 1 << 27

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Read-ahead geometry for gzip: the decoder runs in its own goroutine, a few
// large chunks ahead of the reader, so inflating and unpacking use two cores
// as `tar xzf` does with its gzip child.
const (
	readAheadChunk = 1 << 20
	readAheadDepth = 4
)

// DecompressOption changes how DecompressStream decodes.
type DecompressOption func(*decompressConfig)

type decompressConfig struct {
	gzipCommand string
	inflater    string
}

// CheckInflater tells whether berth-inflate at path works here: it
// inflates a small stream with it.
func CheckInflater(path string) error {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	want := bytes.Repeat([]byte("berth-inflate "), 100)
	zw.Write(want)
	zw.Close()
	r, _, err := DecompressStream(&gz, WithInflater(path))
	if err != nil {
		return err
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("inflate with %s: %d bytes out of %d, not what went in", path, len(got), len(want))
	}
	return nil
}

// WithInflater has gzip streams inflated by berth-inflate at path (which
// inflates with ISA-L, as igzip, but into memory shared with the reader:
// the returned reader is then also a ChunkReader). It takes precedence
// over WithGzipCommand. An empty path leaves the choice to the other
// options.
func WithInflater(path string) DecompressOption {
	return func(c *decompressConfig) { c.inflater = path }
}

// WithGzipCommand has gzip streams inflated by the program at path, run as
// `path -dc` with the stream on its stdin: ISA-L's igzip inflates about
// 2.5 times as fast as the Go decoder, in a process of its own. A stream
// the program rejects is an error of Read, as the Go decoder's would be.
// An empty path keeps the Go decoder.
func WithGzipCommand(path string) DecompressOption {
	return func(c *decompressConfig) { c.gzipCommand = path }
}

// DecompressStream detects the codec of r by its magic number (gzip, zstd or
// none) and returns a reader of the decompressed bytes. A corrupt or
// truncated stream is reported by Read. Close releases the decoder; it does
// not close r. With WithGzipCommand, r is read to its end by the time Read
// has returned io.EOF (the program's input is all of it).
func DecompressStream(r io.Reader, opts ...DecompressOption) (io.ReadCloser, Compression, error) {
	var cfg decompressConfig
	for _, o := range opts {
		o(&cfg)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, Uncompressed, fmt.Errorf("detect compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic) && cfg.inflater != "":
		sr, err := startInflater(cfg.inflater, br)
		if err != nil {
			return nil, Gzip, err
		}
		return sr, Gzip, nil
	case bytes.HasPrefix(magic, gzipMagic) && cfg.gzipCommand != "":
		cr, err := startDecompressor(cfg.gzipCommand, br)
		if err != nil {
			return nil, Gzip, err
		}
		return cr, Gzip, nil
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("open gzip stream: %w: %w", errdefs.ErrInvalidArgument, err)
		}
		return newReadAhead(zr), Gzip, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, Zstd, fmt.Errorf("open zstd stream: %w: %w", errdefs.ErrInvalidArgument, err)
		}
		return zr.IOReadCloser(), Zstd, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}

// A ChunkReader hands out what it reads in chunks of its own, which a
// reader that keeps them a while (a hashing one) uses in place instead of
// copying. Chunks come in order and are given back in order: a chunk stays
// valid until ReleaseChunk is called for it, which may be from another
// goroutine than NextChunk's. NextChunk returns io.EOF at the end.
type ChunkReader interface {
	NextChunk() ([]byte, error)
	ReleaseChunk()
}

// CompressStream returns a writer that compresses into w with c. Close
// flushes the codec; it does not close w.
func CompressStream(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		return zstd.NewWriter(w)
	}
	return nil, fmt.Errorf("compress with %v: %w", c, errdefs.ErrNotImplemented)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// readAhead decodes src in a goroutine into a few recycled chunks. Only that
// goroutine touches src, and it closes src when it stops.
type readAhead struct {
	full  chan chunk
	free  chan []byte
	done  chan struct{}
	close sync.Once

	cur  []byte // unread part of buf
	buf  []byte
	err  error
	gone bool
}

type chunk struct {
	buf []byte
	n   int
	err error
}

func newReadAhead(src io.ReadCloser) *readAhead {
	ra := &readAhead{
		full: make(chan chunk, readAheadDepth),
		free: make(chan []byte, readAheadDepth+1),
		done: make(chan struct{}),
	}
	for range readAheadDepth {
		ra.free <- make([]byte, readAheadChunk)
	}
	go ra.fill(src)
	return ra
}

func (ra *readAhead) fill(src io.ReadCloser) {
	defer src.Close()
	for {
		var b []byte
		select {
		case b = <-ra.free:
		case <-ra.done:
			return
		}
		// Not io.ReadFull: it would turn the decoder's own
		// io.ErrUnexpectedEOF (a truncated stream) into a clean end.
		n, err := fillBuf(src, b)
		select {
		case ra.full <- chunk{b, n, err}:
		case <-ra.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// fillBuf reads src into b until b is full or src fails, and returns
// src's error as it is (io.EOF at the end of the stream).
func fillBuf(src io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := src.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.gone {
			return 0, errors.New("read after close")
		}
		if ra.buf != nil {
			ra.free <- ra.buf
			ra.buf = nil
		}
		c := <-ra.full
		ra.buf, ra.cur, ra.err = c.buf, c.buf[:c.n], c.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the decoder. It does not wait for a Read of the source that
// is in progress; the goroutine ends when that Read returns.
func (ra *readAhead) Close() error {
	ra.close.Do(func() {
		close(ra.done)
		ra.gone = true
		ra.cur = nil
	})
	return nil
}
