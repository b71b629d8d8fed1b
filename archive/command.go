package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"berth.dev/internal/errdefs"
)

// commandPipeSize is the decompressor's output pipe: large, so that it
// runs ahead of the reader with few wake-ups.
const commandPipeSize = 1 << 20

// directReadSize is the smallest read that bypasses commandReader's buffer.
const directReadSize = 64 << 10

// commandReader reads what a decompressor program writes: `path -dc`
// with the compressed stream as its input.
type commandReader struct {
	cmd    *exec.Cmd
	out    *os.File
	br     *bufio.Reader
	stderr bytes.Buffer
	err    error // sticky: the end, or how the program failed
}

func startDecompressor(path string, in io.Reader) (*commandReader, error) {
	out, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	growPipe(w, commandPipeSize)
	c := &commandReader{out: out, br: bufio.NewReaderSize(out, commandPipeSize)}
	c.cmd = exec.Command(path, "-dc")
	c.cmd.Stdin = stdinSource{in}
	c.cmd.Stdout = w
	c.cmd.Stderr = &c.stderr
	// The input is copied by a goroutine of os/exec: Wait gives it this
	// long to finish after the program exits before it gives up on it.
	c.cmd.WaitDelay = 5 * time.Second
	err = c.cmd.Start()
	w.Close()
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("decompress with %s: %w", path, err)
	}
	return c, nil
}

// stdinSource hands os/exec's copy of the program's input large writes:
// reads of up to commandPipeSize into a pipe grown to hold them. (Its own
// copy goes by 32 KiB into a 64 KiB pipe, which wakes the program for each.)
type stdinSource struct{ r io.Reader }

func (s stdinSource) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s stdinSource) WriteTo(w io.Writer) (int64, error) {
	if f, ok := w.(*os.File); ok {
		growPipe(f, commandPipeSize)
	}
	// Neither side may choose its own way (ReaderFrom, WriterTo): buf is
	// the point.
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{s.r}, make([]byte, commandPipeSize))
}

func (c *commandReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	var n int
	var err error
	if c.br.Buffered() == 0 && len(p) >= directReadSize {
		// A large read (a buffering reader's, such as the engine's
		// hashing one) goes straight to the pipe: no copy through br.
		n, err = c.out.Read(p)
	} else {
		n, err = c.br.Read(p)
	}
	if err == io.EOF {
		// The end of the output: the program must have succeeded, and
		// its input been read whole.
		err = io.EOF
		if werr := programError(c.cmd.Wait(), c.stderr.String()); werr != nil {
			err = werr
		}
		c.err = err
	} else if err != nil {
		c.err = err
	}
	return n, err
}

// Close ends the program if it still runs and waits for it.
func (c *commandReader) Close() error {
	stopProgram(c.cmd)
	if c.err == nil {
		c.err = errors.New("read after close")
	}
	return c.out.Close()
}

// programError is the error of a decompressing program that has ended,
// from what Wait returned (nil when it succeeded) and what it said.
func programError(werr error, stderr string) error {
	switch {
	case werr == nil:
		return nil
	case errors.Is(werr, exec.ErrWaitDelay):
		return fmt.Errorf("decompress: the input outlived the decompressor: %w", werr)
	}
	return fmt.Errorf("decompress: %s: %w: %w", strings.TrimSpace(stderr), errdefs.ErrInvalidArgument, werr)
}

// stopProgram ends cmd if it still runs and waits for it.
func stopProgram(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}
