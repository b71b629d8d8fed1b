package shim

import (
	"encoding/binary"
	"fmt"
	"io"

	"berth.dev/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Operations of the socket protocol.
const (
	OpStart  = "start"  // runtime start; the container must be created
	OpAttach = "attach" // stream the container's stdio
	OpResize = "resize" // set the tty size of the container or of an exec
	OpKill   = "kill"   // runtime kill
	OpExec   = "exec"   // runtime exec; the connection streams its stdio
	OpState  = "state"  // pid, status, exit
	OpWait   = "wait"   // reply once the container has exited
)

// Container statuses reported by OpState.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// Stream numbers of the multiplexed frames.
const (
	StreamStdin  = 0
	StreamStdout = 1
	StreamStderr = 2
)

// Request is one line a client sends on the shim socket.
type Request struct {
	Op string `json:"op"`
	// Attach and exec: which streams the client takes part in. CloseStdin
	// closes the process's stdin when the client's input ends (docker's
	// stdinOnce).
	Stdin      bool `json:"stdin,omitempty"`
	Stdout     bool `json:"stdout,omitempty"`
	Stderr     bool `json:"stderr,omitempty"`
	CloseStdin bool `json:"closeStdin,omitempty"`
	// Resize: the new size; Exec names an exec process instead of the
	// container.
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	Exec   string `json:"exec,omitempty"`
	// Kill: the signal number, and whether to signal every process.
	Signal int  `json:"signal,omitempty"`
	All    bool `json:"all,omitempty"`
	// Exec: the exec's id (unique in the container), its process and
	// whether it gets a terminal.
	ID      string         `json:"id,omitempty"`
	Process *specs.Process `json:"process,omitempty"`
	Tty     bool           `json:"tty,omitempty"`
}

// Response is the line the shim answers a Request with.
type Response struct {
	// Error is the failure's message; Kind its errdefs category.
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Pid is the container's (or, for exec, the exec process's) pid.
	Pid    int    `json:"pid,omitempty"`
	Status string `json:"status,omitempty"`
	// Exit is set by state and wait once the container has exited.
	Exit *Exit `json:"exit,omitempty"`
}

// kinds names the errdefs categories on the wire.
var kinds = []error{
	errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
	errdefs.ErrFailedPrecondition, errdefs.ErrConflict, errdefs.ErrUnavailable,
	errdefs.ErrNotImplemented,
}

// err rebuilds the error of a Response, nil when it has none.
func (r Response) err() error {
	if r.Error == "" {
		return nil
	}
	for _, k := range kinds {
		if r.Kind == k.Error() {
			return fmt.Errorf("shim: %s: %w", r.Error, k)
		}
	}
	return fmt.Errorf("shim: %s", r.Error)
}

// Demux copies multiplexed frames from r to stdout and stderr (either may
// be nil to discard) until r ends. A clean end between frames is not an
// error.
func Demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("read frame header: %w", err)
		}
		size := int64(binary.BigEndian.Uint32(hdr[4:]))
		var w io.Writer
		switch hdr[0] {
		case StreamStdout:
			w = stdout
		case StreamStderr:
			w = stderr
		default:
			return fmt.Errorf("frame of unknown stream %d: %w", hdr[0], errdefs.ErrInvalidArgument)
		}
		if w == nil {
			w = io.Discard
		}
		if _, err := io.CopyN(w, r, size); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
	}
}
