package engine

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"sync"
	"testing"
	"testing/iotest"
)

// What hashReader passes on is what it reads, and its sum is the hash of
// all of it, whatever the sizes of the reads.
func TestHashReader(t *testing.T) {
	for _, size := range []int{0, 1, 511, hashChunkSize - 1, hashChunkSize, hashChunkSize + 1, 3*hashChunkSize + 12345, 40 * hashChunkSize} {
		data := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(data)
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"whole":    func(r io.Reader) io.Reader { return r },
			"one byte": iotest.OneByteReader,
			"half":     iotest.HalfReader,
		} {
			if size > hashChunkSize+1 && name == "one byte" {
				continue
			}
			hr := newHashReader(wrap(bytes.NewReader(data)), sha256.New())
			// The reader's own reads come in odd sizes too.
			got, err := readOdd(hr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("size %d, %s: passed on %d bytes that differ", size, name, len(got))
			}
			want := sha256.Sum256(data)
			if sum := hr.Sum(); !bytes.Equal(sum, want[:]) {
				t.Errorf("size %d, %s: sum %x, want %x", size, name, sum, want)
			}
		}
	}
}

// readOdd reads r to its end in reads of varying, mostly small sizes, as
// a tar reader does (headers, then file data).
func readOdd(r io.Reader) ([]byte, error) {
	var out []byte
	sizes := []int{512, 1, 7000, 512, 100000, 3}
	buf := make([]byte, 100000)
	for i := 0; ; i++ {
		b := buf[:sizes[i%len(sizes)]]
		n, err := r.Read(b)
		out = append(out, b[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// An error of r comes after the bytes read before it, and is returned
// again by later reads.
func TestHashReaderError(t *testing.T) {
	data := bytes.Repeat([]byte("berth"), 1000)
	boom := errors.New("boom")
	hr := newHashReader(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)), sha256.New())
	got, err := io.ReadAll(hr)
	if !errors.Is(err, boom) || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v; want %d bytes, then %v", len(got), err, len(data), boom)
	}
	if n, err := hr.Read(make([]byte, 10)); n != 0 || !errors.Is(err, boom) {
		t.Errorf("read after the error: %d, %v", n, err)
	}
	want := sha256.Sum256(data)
	if sum := hr.Sum(); !bytes.Equal(sum, want[:]) {
		t.Errorf("sum %x, want %x", sum, want)
	}
}

// chunkSource is an archive.ChunkReader over data that scribbles over a
// chunk when it is given back, and counts what is out.
type chunkSource struct {
	data   []byte
	size   int
	lent   [][]byte
	maxOut int
	mu     sync.Mutex
}

func (c *chunkSource) Read([]byte) (int, error) { panic("read instead of lent chunks") }

func (c *chunkSource) NextChunk() ([]byte, error) {
	if len(c.data) == 0 {
		return nil, io.EOF
	}
	n := min(c.size, len(c.data))
	chunk := append([]byte(nil), c.data[:n]...)
	c.data = c.data[n:]
	c.mu.Lock()
	c.lent = append(c.lent, chunk)
	c.maxOut = max(c.maxOut, len(c.lent))
	c.mu.Unlock()
	return chunk, nil
}

func (c *chunkSource) ReleaseChunk() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.lent[0] {
		c.lent[0][i] = 'X' // the source reuses it
	}
	c.lent = c.lent[1:]
}

// A ChunkReader's chunks are read and hashed in place, and each is given
// back once both are done with it.
func TestHashReaderChunks(t *testing.T) {
	data := make([]byte, 5*hashChunkSize+777)
	rand.New(rand.NewSource(1)).Read(data)
	src := &chunkSource{data: append([]byte(nil), data...), size: hashChunkSize}
	hr := newHashReader(src, sha256.New())
	got, err := readOdd(hr)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if sum := hr.Sum(); !bytes.Equal(sum, want[:]) || !bytes.Equal(got, data) {
		t.Fatalf("sum %x (want %x), %d bytes read, equal %v", sum, want, len(got), bytes.Equal(got, data))
	}
	// Out at most: the chunks queued for hashing, the one being hashed
	// and the one being read (berth-inflate has more segments than that).
	if len(src.lent) != 0 || src.maxOut > hashChunks+2 {
		t.Fatalf("%d chunks not given back; at most %d out at once", len(src.lent), src.maxOut)
	}
}
