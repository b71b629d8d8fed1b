package archive

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"berth.dev/internal/errdefs"
)

// buildInflater builds berth-inflate as the Makefile does; without ISA-L's
// headers (Debian's libisal-dev) there is nothing to test.
func buildInflater(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/include/isa-l/igzip_lib.h"); err != nil {
		t.Skip("ISA-L's headers are not installed (libisal-dev)")
	}
	out := filepath.Join(t.TempDir(), "berth-inflate")
	cmd := exec.Command("sh", "inflate/build.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth-inflate: %v\n%s", err, b)
	}
	return out
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

func mixedData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b[:n/2]) // incompressible, then text
	for i := n / 2; i < n; i++ {
		b[i] = "layer content "[i%14]
	}
	return b
}

func TestInflater(t *testing.T) {
	path := buildInflater(t)
	if err := CheckInflater(path); err != nil {
		t.Fatalf("CheckInflater: %v", err)
	}
	// What the engine then does without it: a program missing, or one
	// that is no inflater (it exits at once, having sent nothing).
	before := openFDs(t)
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing"), "/bin/true"} {
		if err := CheckInflater(bad); err == nil {
			t.Errorf("CheckInflater(%s) succeeded", bad)
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before the failed checks, %d after", before, after)
	}
	big := mixedData(t, 11<<20+12345) // segments over and over, the last partial
	two := append(gzipped(t, []byte("first member ")), gzipped(t, []byte("second member"))...)
	corrupt := gzipped(t, big)
	corrupt[len(corrupt)/2] ^= 0x55
	whole := gzipped(t, big)
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []byte
		wantErr string // what the program says, with exit status 1
	}{
		{"large", whole, big, ""},
		{"two members", two, []byte("first member second member"), ""},
		{"empty content", gzipped(t, nil), nil, ""},
		{"corrupt", corrupt, nil, "invalid"},
		{"cut short", whole[:len(whole)/3], nil, "unexpected end of stream"},
		{"trailing garbage", append(gzipped(t, []byte("x")), "garbage after the stream"...), nil, "not in gzip format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := openFDs(t)
			r, c, err := DecompressStream(bytes.NewReader(tc.in), WithInflater(path))
			if err != nil || c != Gzip {
				t.Fatalf("DecompressStream: %v, %v", c, err)
			}
			if _, ok := r.(ChunkReader); !ok {
				t.Fatalf("%T is no ChunkReader", r)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if tc.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "exit status 1") {
					t.Fatalf("error %v, want an invalid stream: %s, exit status 1", err, tc.wantErr)
				}
			} else if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("%d bytes, %v; want %d", len(got), err, len(tc.want))
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d descriptors open before, %d after", before, after)
			}
		})
	}
}

// Lent chunks hold the inflater back until they are given back, in order;
// closing with chunks still lent ends the program and keeps them readable.
func TestInflaterChunks(t *testing.T) {
	path := buildInflater(t)
	data := mixedData(t, 20<<20)
	r, _, err := DecompressStream(bytes.NewReader(gzipped(t, data)), WithInflater(path))
	if err != nil {
		t.Fatal(err)
	}
	cr := r.(ChunkReader)
	var got []byte
	var lent [][]byte
	for {
		c, err := cr.NextChunk()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lent = append(lent, c)
		if len(lent) == inflateSegments { // every segment lent: give them back
			for _, c := range lent {
				got = append(got, c...)
				cr.ReleaseChunk()
			}
			lent = lent[:0]
		}
	}
	for _, c := range lent {
		got = append(got, c...)
		cr.ReleaseChunk()
	}
	r.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("%d bytes through chunks, want %d", len(got), len(data))
	}

	r, _, err = DecompressStream(bytes.NewReader(gzipped(t, data)), WithInflater(path))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.(ChunkReader).NextChunk()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !bytes.Equal(c, data[:len(c)]) {
		t.Fatal("a chunk lent over Close changed")
	}
}

// The program inflates in seccomp's strict mode: read, write and _exit
// are all it may do.
func TestInflaterIsConfined(t *testing.T) {
	path := buildInflater(t)
	data := mixedData(t, 4<<20)
	r, _, err := DecompressStream(bytes.NewReader(gzipped(t, data)), WithInflater(path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := r.(*shmInflater)
	if _, err := s.NextChunk(); err != nil { // the program has started inflating
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nSeccomp:\t1\n") {
		t.Fatalf("berth-inflate is not in seccomp strict mode:\n%s", status)
	}
	s.ReleaseChunk()
}
