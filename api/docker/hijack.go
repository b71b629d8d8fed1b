package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// The media types of an attach, exec or logs stream. A container or exec
// with a terminal has one merged output, sent raw; without one, stdout and
// stderr travel multiplexed in frames. Clients of API 1.42 and later are told
// which one they get; older clients always hear "raw-stream" and decide from
// the container's Tty themselves.
const (
	mediaTypeRawStream         = "application/vnd.docker.raw-stream"
	mediaTypeMultiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// Stream numbers in the frame header of a multiplexed stream.
const (
	streamStdout byte = 1
	streamStderr byte = 2
)

// streamMediaType is the Content-Type of an output stream for the request's
// API version.
func streamMediaType(r *http.Request, tty bool) string {
	if !tty && !requestVersion(r.Context()).less(apiVersion{1, 42}) {
		return mediaTypeMultiplexedStream
	}
	return mediaTypeRawStream
}

// frameWriter writes each Write as one frame of a multiplexed stream: an
// 8-byte header (the stream number, three zero bytes, the payload length as
// a big-endian uint32) followed by the payload. Frames of the stdout and
// stderr writers sharing mu never interleave.
type frameWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

// maxFrame bounds a frame's payload; longer writes are split.
const maxFrame = 1 << 20

func (f *frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		buf := make([]byte, 8+n)
		buf[0] = f.stream
		binary.BigEndian.PutUint32(buf[4:], uint32(n))
		copy(buf[8:], p[:n])
		if _, err := f.w.Write(buf); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// lockedWriter serializes the writes of a terminal's merged output, which
// the backend may write from two goroutines (stdout and stderr copies).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// outputStreams returns the writers for a stream's stdout and stderr over w:
// one shared raw writer with a terminal, two frame writers without.
func outputStreams(w io.Writer, tty bool) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	if tty {
		lw := &lockedWriter{mu: mu, w: w}
		return lw, lw
	}
	return &frameWriter{mu: mu, w: w, stream: streamStdout}, &frameWriter{mu: mu, w: w, stream: streamStderr}
}

// hijackedConn is the client connection of an attach or exec start, taken
// over from the HTTP server once the status line is sent. Reading it
// yields what the client sends after its request (stdin): first the bytes
// the HTTP server had already buffered, then the connection's, until the
// client half-closes its write side (EOF). Writes go straight to the
// connection. Failed writes cancel ctx: the client is gone. When ctx ends,
// the connection is closed, so reads and writes of the streams fail.
type hijackedConn struct {
	conn   net.Conn
	stdin  io.Reader
	ctx    context.Context
	cancel context.CancelFunc
	stdout io.Writer
	stderr io.Writer
}

// hijack takes over the connection of r and answers the request line the way
// dockerd does: "101 UPGRADED" with Connection and Upgrade headers when the
// client asked for an upgrade (docker CLI and moby's client always do), a
// plain 200 otherwise, with the stream's media type and the headers already
// set on w. The rest of the request body is discarded first. The returned
// connection's context ends when the server shuts down, a write fails or
// close is called, and the connection is closed then; close must be called
// once the streams are done.
func hijack(w http.ResponseWriter, r *http.Request, tty bool) (*hijackedConn, error) {
	// What is left of the body (bounded by its length) is not stdin.
	_, _ = io.Copy(io.Discard, r.Body)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijack the connection of %s %s: %w", r.Method, r.URL.Path, err)
	}
	// Bytes the client sent right after its request (a fast docker CLI
	// piping stdin) may already sit in the server's buffer; they belong to
	// stdin, before anything the connection still holds.
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	buffered = bytes.Clone(buffered)

	var head bytes.Buffer
	if r.Header.Get("Upgrade") != "" {
		head.WriteString("HTTP/1.1 101 UPGRADED\r\n")
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "tcp")
	} else {
		head.WriteString("HTTP/1.1 200 OK\r\n")
	}
	w.Header().Set("Content-Type", streamMediaType(r, tty))
	if err := w.Header().Write(&head); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("write the answer headers: %w", err)
	}
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("write the answer headers: %w", err)
	}

	// The request's context is cancelled when the client half-closes (the
	// HTTP server takes the end of its input for a client that left), but
	// a half-close only ends stdin here: output still flows.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	if stopping := serverStopping(r.Context()); stopping != nil {
		// http.Server.Shutdown does not track hijacked connections; end the
		// streams ourselves when the server stops.
		go func() {
			select {
			case <-stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	// Once the streams are over, a backend blocked reading stdin or
	// writing output must return: closing the connection fails both.
	context.AfterFunc(ctx, func() { _ = conn.Close() })
	h := &hijackedConn{conn: conn, ctx: ctx, cancel: cancel}
	h.stdin = io.MultiReader(bytes.NewReader(buffered), conn)
	h.stdout, h.stderr = outputStreams(&cancelOnError{w: conn, cancel: cancel}, tty)
	return h, nil
}

// close ends the streams and closes the connection, half-closing it first
// so that the client reads a clean end of the output.
func (h *hijackedConn) close() {
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	h.cancel()
	_ = h.conn.Close()
}

// cancelOnError cancels its context when a write fails: the reader of the
// stream is gone, so whatever feeds it should stop.
type cancelOnError struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c *cancelOnError) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		c.cancel()
	}
	return n, err
}

// streamError reports a failure that happened after the stream started, as
// dockerd does, as a line of text on the stream's stderr (stdout with a
// terminal).
func streamError(stderr io.Writer, prefix string, err error) {
	_, _ = fmt.Fprintf(stderr, "%s%s\r\n", prefix, clientMessage(err))
}
