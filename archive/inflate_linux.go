package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Geometry of the memory shared with berth-inflate: segments of
// inflateSegment bytes, as many as inflateSegments, filled in turn. A
// reader that keeps chunks must give back one before it holds them all
// (the engine's hashReader holds at most 6).
const (
	inflateSegment  = 1 << 20
	inflateSegments = 8
)

// shmInflater reads what berth-inflate (archive/inflate/inflate.c) inflates
// into memory shared with it: the program writes every byte once, where
// berthd reads it, instead of into a pipe it is copied out of again. Read
// copies out like any reader; as a ChunkReader it lends the segments
// themselves.
type shmInflater struct {
	cmd    *exec.Cmd
	mem    []byte
	filled *os.File // lengths of the segments filled, in turn
	free   *os.File // a byte per segment given back
	stderr bytes.Buffer
	next   int          // segment NextChunk returns next
	lent   atomic.Int32 // segments handed out and not given back
	cur    []byte       // Read's: the unread part of its segment
	curSeg bool         // Read holds a segment
	err    error        // sticky
}

func startInflater(path string, in io.Reader) (_ *shmInflater, err error) {
	size := inflateSegment * inflateSegments
	fd, err := unix.MemfdCreate("berth-inflate", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inflate: memfd: %w", err)
	}
	memfd := os.NewFile(uintptr(fd), "berth-inflate")
	defer memfd.Close()
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return nil, fmt.Errorf("inflate: size shared memory: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("inflate: map shared memory: %w", err)
	}
	s := &shmInflater{mem: mem}
	var filledW, freeR *os.File
	defer func() {
		if filledW != nil {
			filledW.Close()
		}
		if freeR != nil {
			freeR.Close()
		}
		if err != nil {
			if s.filled != nil {
				s.filled.Close()
			}
			if s.free != nil {
				s.free.Close()
			}
			unix.Munmap(mem)
		}
	}()
	if s.filled, filledW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if freeR, s.free, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	s.cmd = exec.Command(path, strconv.Itoa(inflateSegment), strconv.Itoa(inflateSegments))
	s.cmd.Stdin = stdinSource{in}
	s.cmd.ExtraFiles = []*os.File{memfd, filledW, freeR} // fds 3, 4, 5
	s.cmd.Stderr = &s.stderr
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("inflate with %s: %w", path, err)
	}
	return s, nil
}

// NextChunk waits for the next segment the program fills and lends it.
func (s *shmInflater) NextChunk() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	var lenBuf [4]byte
	if _, err := io.ReadFull(s.filled, lenBuf[:]); err != nil {
		s.err = s.end(err)
		return nil, s.err
	}
	n := int(binary.NativeEndian.Uint32(lenBuf[:]))
	if n <= 0 || n > inflateSegment {
		s.err = fmt.Errorf("inflate: the program announced a segment of %d bytes", n)
		return nil, s.err
	}
	off := (s.next % inflateSegments) * inflateSegment
	s.next++
	s.lent.Add(1)
	return s.mem[off : off+n : off+n], nil
}

// end is the error that ends the stream: io.EOF when the program
// succeeded, else what it said.
func (s *shmInflater) end(readErr error) error {
	if readErr != io.EOF {
		// A length cut short: the program died mid-write.
		s.cmd.Process.Kill()
	}
	if err := programError(s.cmd.Wait(), s.stderr.String()); err != nil {
		return err
	}
	if readErr != io.EOF {
		return fmt.Errorf("inflate: %w", readErr)
	}
	return io.EOF
}

// ReleaseChunk gives the oldest segment lent back to the program.
func (s *shmInflater) ReleaseChunk() {
	s.lent.Add(-1)
	s.free.Write([]byte{0}) // the program may have ended: nothing to tell
}

func (s *shmInflater) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(s.cur) == 0 {
		if s.curSeg {
			s.curSeg = false
			s.ReleaseChunk()
		}
		c, err := s.NextChunk()
		if err != nil {
			return 0, err
		}
		s.cur, s.curSeg = c, true
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// Close ends the program if it still runs and releases the shared memory
// (unless a segment is still lent: then it stays mapped, never reused).
func (s *shmInflater) Close() error {
	stopProgram(s.cmd)
	if s.err == nil {
		s.err = errors.New("read after close")
	}
	s.filled.Close()
	s.free.Close()
	if s.curSeg {
		s.curSeg = false
		s.lent.Add(-1)
	}
	if s.mem != nil && s.lent.Load() == 0 {
		unix.Munmap(s.mem)
		s.mem = nil
	}
	return nil
}
