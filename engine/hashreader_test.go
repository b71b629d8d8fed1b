package engine

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
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
			if size > 4*hashChunkSize && name == "one byte" {
				continue
			}
			hr := newHashReader(wrap(bytes.NewReader(data)), sha256.New())
			got, err := io.ReadAll(hr)
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
