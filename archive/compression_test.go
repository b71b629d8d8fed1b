package archive

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"berth.dev/internal/errdefs"
)

func TestCompressionRoundTrip(t *testing.T) {
	// Larger than the read-ahead chunks, so several of them are recycled.
	payload := []byte(strings.Repeat("layer content ", 400_000))
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := CompressStream(&buf, c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(payload); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if c != Uncompressed && buf.Len() >= len(payload) {
				t.Errorf("%v did not compress: %d bytes", c, buf.Len())
			}
			r, got, err := DecompressStream(&buf)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got != c {
				t.Errorf("detected %v, want %v", got, c)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, payload) {
				t.Errorf("round trip changed %d bytes into %d", len(payload), len(out))
			}
		})
	}
}

func TestDecompressShortAndEmpty(t *testing.T) {
	for _, in := range []string{"", "ab"} {
		r, c, err := DecompressStream(strings.NewReader(in))
		if err != nil || c != Uncompressed {
			t.Fatalf("%q: %v %v", in, c, err)
		}
		out, _ := io.ReadAll(r)
		if string(out) != in {
			t.Fatalf("%q came back as %q", in, out)
		}
	}
}

func TestDecompressCorrupt(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd} {
		var buf bytes.Buffer
		w, _ := CompressStream(&buf, c)
		w.Write(pseudoText(1 << 20))
		w.Close()
		b := buf.Bytes()
		b[len(b)/2] ^= 0x55
		r, _, err := DecompressStream(bytes.NewReader(b))
		if err != nil {
			continue // refused at once: fine
		}
		if _, err := io.ReadAll(r); err == nil {
			t.Errorf("%v: corrupt stream read without error", c)
		}
		r.Close()
	}
	if _, _, err := DecompressStream(bytes.NewReader([]byte{0x1f, 0x8b, 0x08, 0xff, 0xff})); err == nil {
		t.Error("truncated gzip header accepted")
	}
}

// pseudoText is compressible but not repetitive: a flipped byte in its
// compressed form changes the output.
func pseudoText(n int) []byte {
	b := make([]byte, n)
	x := uint32(1)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = 'a' + byte(x>>24)%16
	}
	return b
}

func TestCompressUnknown(t *testing.T) {
	if _, err := CompressStream(io.Discard, Compression(9)); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("unknown codec: %v", err)
	}
}

// TestReadAheadClose checks that closing before the end neither blocks nor
// lets a later Read return data.
func TestReadAheadClose(t *testing.T) {
	var buf bytes.Buffer
	w, _ := CompressStream(&buf, Gzip)
	w.Write(bytes.Repeat([]byte("x"), 10<<20))
	w.Close()
	r, _, err := DecompressStream(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if n, err := r.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Fatalf("Read after Close: %d, %v", n, err)
	}
}

// A compressed stream cut short is an error, not a clean end: the read-ahead
// once turned the decoder's io.ErrUnexpectedEOF into io.EOF.
func TestDecompressTruncated(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd} {
		for _, size := range []int{100, 3 << 20} {
			var buf bytes.Buffer
			w, _ := CompressStream(&buf, c)
			w.Write(pseudoText(size))
			w.Close()
			b := buf.Bytes()[:buf.Len()*2/3]
			r, _, err := DecompressStream(bytes.NewReader(b))
			if err != nil {
				continue // refused at once: fine
			}
			if _, err := io.ReadAll(r); err == nil {
				t.Errorf("%v, %d bytes: truncated stream read without error", c, size)
			}
			r.Close()
		}
	}
}

// igzipOrSkip returns ISA-L's igzip, or skips the test without it.
func igzipOrSkip(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("igzip")
	if err != nil {
		t.Skip("igzip is not installed (Debian package isal)")
	}
	return path
}

// An external inflater gives the Go decoder's bytes, reads its input to
// the end, and reports a corrupt or truncated stream as an error of Read.
func TestGzipCommand(t *testing.T) {
	igzip := igzipOrSkip(t)
	payload := []byte(strings.Repeat("layer content ", 400_000))
	var gz bytes.Buffer
	w, _ := CompressStream(&gz, Gzip)
	w.Write(payload)
	w.Close()

	in := bytes.NewReader(gz.Bytes())
	r, c, err := DecompressStream(in, WithGzipCommand(igzip))
	if err != nil || c != Gzip {
		t.Fatalf("DecompressStream = %v, %v", c, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !bytes.Equal(out, payload) {
		t.Fatalf("inflated %d bytes into %d", len(payload), len(out))
	}
	if in.Len() != 0 {
		t.Errorf("%d bytes of the input left unread at the end", in.Len())
	}

	// Small reads (buffered) and large ones (straight from the pipe when
	// nothing is buffered) mixed give the same bytes.
	r, _, err = DecompressStream(bytes.NewReader(gz.Bytes()), WithGzipCommand(igzip))
	if err != nil {
		t.Fatal(err)
	}
	var mixed []byte
	buf := make([]byte, 3*directReadSize)
	for i := 0; ; i++ {
		b := buf[:[]int{512, directReadSize, 1, 3 * directReadSize, 7000}[i%5]]
		n, err := r.Read(b)
		mixed = append(mixed, b[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	if !bytes.Equal(mixed, payload) {
		t.Fatalf("mixed reads gave %d bytes that differ from the %d inflated", len(mixed), len(payload))
	}

	for name, bad := range map[string][]byte{
		"truncated": gz.Bytes()[:gz.Len()/2],
		"corrupt":   append(append([]byte{}, gz.Bytes()[:20]...), bytes.Repeat([]byte{0xff}, 4096)...),
	} {
		t.Run(name, func(t *testing.T) {
			r, _, err := DecompressStream(bytes.NewReader(bad), WithGzipCommand(igzip))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := io.ReadAll(r); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("reading a %s stream: %v, want ErrInvalidArgument", name, err)
			}
		})
	}
}

// Closed before its end, the reader ends the program and reaps it.
func TestGzipCommandClose(t *testing.T) {
	igzip := igzipOrSkip(t)
	var gz bytes.Buffer
	w, _ := CompressStream(&gz, Gzip)
	w.Write(bytes.Repeat([]byte("x"), 8<<20))
	w.Close()
	r, _, err := DecompressStream(&gz, WithGzipCommand(igzip))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if st := r.(*commandReader).cmd.ProcessState; st == nil {
		t.Error("the program was not reaped at Close")
	}
	if _, err := r.Read(buf); err == nil {
		t.Error("a Read after Close succeeded")
	}
}
