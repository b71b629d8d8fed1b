package shim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// processIO holds one process's stdio on the shim's side: the pty master
// for a tty, else the parent ends of its pipes. Output is copied to the log
// (if any) and to the attached clients.
type processIO struct {
	// wantTTY: the process gets a terminal, whose pty master (tty) comes
	// from the runtime (setTTY); set under mu, read without it once the
	// process has started.
	wantTTY bool
	tty     *os.File      // pty master, nil without a tty
	size    *unix.Winsize // set before the tty came, applied when it comes
	stdin   *os.File      // write end of the stdin pipe, nil without one
	stdout  *os.File      // read ends of the output pipes
	stderr  *os.File
	// child ends for the runtime: stdin, stdout, stderr.
	child [3]*os.File

	log  logSink
	done chan struct{} // closed when all output has been copied

	// outMu is held from a read of output until it has been handed on,
	// so that the streams share one buffer, made at the first output: an
	// idle container's shim holds none.
	outMu sync.Mutex
	buf   []byte
	hdr   [8]byte // frame header, under mu

	mu      sync.Mutex
	clients map[*client]struct{}
	copying int // output streams not yet at their end
	stdinMu sync.Mutex
}

// outputBufSize is the most output read at once.
const outputBufSize = 32 * 1024

// client is one attached connection.
type client struct {
	w              io.Writer
	stdout, stderr bool
	gone           chan struct{}
}

// newPipeIO makes the pipes of a process without a tty; withStdin keeps a
// stdin pipe, else the process reads /dev/null.
func newPipeIO(withStdin bool) (_ *processIO, err error) {
	p := &processIO{clients: map[*client]struct{}{}, done: make(chan struct{})}
	defer func() {
		if err != nil {
			p.closeChild()
			p.close()
		}
	}()
	if withStdin {
		if p.child[0], p.stdin, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
	} else if p.child[0], err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if p.stdout, p.child[1], err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	if p.stderr, p.child[2], err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	return p, nil
}

// newTTYIO gives the runtime /dev/null as stdio; the pty master arrives
// later through setTTY.
func newTTYIO() (*processIO, error) {
	p := &processIO{wantTTY: true, clients: map[*client]struct{}{}, done: make(chan struct{})}
	for i := range p.child {
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			p.closeChild()
			return nil, err
		}
		p.child[i] = f
	}
	return p, nil
}

// closeChild closes the shim's copies of the child ends, once the runtime
// has handed them on, so that output ends when the process's copies close.
func (p *processIO) closeChild() {
	for i, f := range p.child {
		if f != nil {
			f.Close()
			p.child[i] = nil
		}
	}
}

// start copies output until every output stream ends.
func (p *processIO) start() {
	outputs := []*os.File{p.stdout, p.stderr}
	if p.tty != nil {
		outputs = []*os.File{p.tty}
	}
	p.copying = len(outputs)
	for i, f := range outputs {
		stream, name := byte(StreamStdout), "stdout"
		if i == 1 {
			stream, name = StreamStderr, "stderr"
		}
		go p.copyOutput(f, stream, name)
	}
}

// copyOutput copies f's output until it ends (EOF, or EIO on a pty master
// once the slave is gone) or f is closed. The last stream to end flushes
// the log and closes done.
func (p *processIO) copyOutput(f *os.File, stream byte, name string) {
	defer p.outputEnded()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		var rerr error
		// The callback takes outMu once data is there and keeps it when it
		// returns true, which is when Read returns nil.
		err := rc.Read(func(fd uintptr) bool {
			p.outMu.Lock()
			if p.buf == nil {
				p.buf = make([]byte, outputBufSize)
			}
			n, rerr = unix.Read(int(fd), p.buf)
			if rerr == unix.EAGAIN {
				p.outMu.Unlock()
				return false
			}
			return true
		})
		if err != nil {
			return
		}
		if n > 0 {
			p.broadcast(stream, p.buf[:n])
			if p.log != nil {
				p.log.WriteLog(name, p.buf[:n], time.Now())
			}
		}
		p.outMu.Unlock()
		if rerr == unix.EINTR {
			continue
		}
		if n <= 0 {
			return
		}
	}
}

func (p *processIO) outputEnded() {
	p.mu.Lock()
	p.copying--
	last := p.copying == 0
	p.mu.Unlock()
	if !last {
		return
	}
	if p.log != nil {
		p.log.Flush()
	}
	close(p.done)
}

func (p *processIO) broadcast(stream byte, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.clients {
		if stream == StreamStdout && !c.stdout || stream == StreamStderr && !c.stderr {
			continue
		}
		var err error
		if p.wantTTY {
			_, err = c.w.Write(data)
		} else {
			err = writeFrame(c.w, &p.hdr, stream, data)
		}
		if err != nil {
			delete(p.clients, c)
			close(c.gone)
		}
	}
}

// attach adds a client; its gone channel closes when output has ended or
// writing to it failed.
func (p *processIO) attach(c *client) {
	c.gone = make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		close(c.gone)
		return
	default:
	}
	p.clients[c] = struct{}{}
}

// detachAll ends every client, after the output has ended.
func (p *processIO) detachAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.clients {
		delete(p.clients, c)
		close(c.gone)
	}
}

// copyInput copies a client's input to the process's stdin; closeStdin
// ends that stdin when the input ends (a tty gets ^D instead, since
// closing the master would hang up the terminal).
func (p *processIO) copyInput(r io.Reader, closeStdin bool) {
	w := p.stdinWriter()
	if w == nil {
		return
	}
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	if !closeStdin {
		return
	}
	if p.tty != nil {
		p.tty.Write([]byte{4})
		return
	}
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
}

func (p *processIO) stdinWriter() io.Writer {
	if p.tty != nil {
		return p.tty
	}
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin == nil {
		return nil
	}
	return p.stdin
}

// setTTY hands the process's pty master to p, with the size a resize
// asked for before.
func (p *processIO) setTTY(master *os.File) {
	p.mu.Lock()
	p.tty = master
	size := p.size
	p.mu.Unlock()
	if size != nil {
		p.resize(size.Col, size.Row)
	}
}

// resize sets the terminal size; before the terminal exists (a deferred
// start), it is kept for it.
func (p *processIO) resize(width, height uint16) error {
	ws := &unix.Winsize{Col: width, Row: height}
	p.mu.Lock()
	tty := p.tty
	if tty == nil && p.wantTTY {
		p.size = ws
	}
	p.mu.Unlock()
	if tty == nil {
		if p.wantTTY {
			return nil
		}
		return errNoTTY
	}
	// Through the raw conn: File.Fd would put the master back in blocking
	// mode.
	rc, err := tty.SyscallConn()
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	if ierr != nil {
		return fmt.Errorf("resize: %w", ierr)
	}
	return nil
}

// close releases the shim's ends.
func (p *processIO) close() {
	for _, f := range []*os.File{p.tty, p.stdout, p.stderr} {
		if f != nil {
			f.Close()
		}
	}
	p.stdinMu.Lock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
	p.stdinMu.Unlock()
}

var errNoTTY = errors.New("the process has no terminal")

// consoleSocket listens for the one pty master the runtime sends over
// --console-socket.
type consoleSocket struct {
	path string
	l    *os.File
	got  chan consoleResult
}

type consoleResult struct {
	f   *os.File
	err error
}

func listenConsole(path string) (*consoleSocket, error) {
	os.Remove(path)
	l, err := listenUnix(path)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	c := &consoleSocket{path: path, l: l, got: make(chan consoleResult, 1)}
	go func() {
		f, err := c.receive()
		c.got <- consoleResult{f, err}
	}()
	return c, nil
}

func (c *consoleSocket) receive() (*os.File, error) {
	conn, err := accept(c.l)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	fd, err := receiveFD(conn)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	// Non-blocking, the master joins Go's poller: reading it holds no
	// thread, and Close interrupts a read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "pty-master"), nil
}

// master returns the received pty master; call it after the runtime
// succeeded.
func (c *consoleSocket) master() (*os.File, error) {
	r := <-c.got
	return r.f, r.err
}

func (c *consoleSocket) close() {
	c.l.Close()
	os.Remove(c.path)
}
