package registry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth.dev/internal/errdefs"
)

// Compression of a layer blob.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "uncompressed"
}

// layerCompression maps the layer media types to their compression.
var layerCompression = map[string]Compression{
	ocispec.MediaTypeImageLayer:                     Uncompressed,
	ocispec.MediaTypeImageLayerGzip:                 Gzip,
	ocispec.MediaTypeImageLayerZstd:                 Zstd,
	ocispec.MediaTypeImageLayerNonDistributable:     Uncompressed, //nolint:staticcheck // still in images
	ocispec.MediaTypeImageLayerNonDistributableGzip: Gzip,         //nolint:staticcheck
	ocispec.MediaTypeImageLayerNonDistributableZstd: Zstd,         //nolint:staticcheck
	MediaTypeDockerLayer:                            Gzip,
	MediaTypeDockerForeignLayer:                     Gzip,
	"application/vnd.docker.image.rootfs.diff.tar":  Uncompressed,
}

// LayerCompression tells how a layer of the given media type is
// compressed; a media type that is not a layer's is an ErrNotImplemented
// error.
func LayerCompression(mediaType string) (Compression, error) {
	c, ok := layerCompression[mediaType]
	if !ok {
		return 0, fmt.Errorf("%w: unknown layer media type %q", errdefs.ErrNotImplemented, mediaType)
	}
	return c, nil
}

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress returns the tar stream of a layer blob read from r, whose
// media type says it is a layer. The compression is told by the stream's
// first bytes, as docker does, since some images label gzip layers as
// plain tar. The result reads r to its end before it returns io.EOF, so
// that a verifying reader (FetchBlob's) reports a digest mismatch through
// it: the tar is trustworthy only once io.EOF is read. Closing it closes r
// when r is an io.Closer.
func Decompress(mediaType string, r io.Reader) (io.ReadCloser, error) {
	if _, err := LayerCompression(mediaType); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	d := &decompressed{src: br, closeSrc: r}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip layer: %w", errdefs.ErrInvalidArgument, err)
		}
		d.r, d.close = zr, zr.Close
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd layer: %w", errdefs.ErrInvalidArgument, err)
		}
		d.r, d.close = zr, func() error { zr.Close(); return nil }
	default:
		d.r = br
	}
	return d, nil
}

// decompressed drains its source at the end so that the source's own
// end-of-stream checks run.
type decompressed struct {
	r        io.Reader
	close    func() error
	src      io.Reader
	closeSrc io.Reader
	done     error
}

func (d *decompressed) Read(p []byte) (int, error) {
	if d.done != nil {
		return 0, d.done
	}
	n, err := d.r.Read(p)
	if err == io.EOF {
		// Trailing bytes after the compressed stream (padding) are
		// read but not part of the tar.
		if _, derr := io.Copy(io.Discard, d.src); derr != nil {
			err = derr
		}
		d.done = err
	} else if err != nil {
		err = fmt.Errorf("decompress layer: %w", err)
		d.done = err
	}
	return n, err
}

func (d *decompressed) Close() error {
	var err error
	if d.close != nil {
		err = d.close()
	}
	if c, ok := d.closeSrc.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}
