package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"berth.dev/internal/errdefs"
)

// Files the shim writes in its directory when the container exits. exit is
// written last, so its presence means the others are complete.
const (
	ExitFile     = "exit"      // the exit code as a decimal number
	ExitedAtFile = "exited-at" // the exit time, RFC 3339 with nanoseconds
	OOMFile      = "oom"       // present when the kernel OOM-killed a process of the container
	SocketFile   = "shim.sock" // the shim's socket while it runs
	PidFile      = "shim.pid"  // the shim's own pid
)

// Exit is how a container (or exec) ended. Code follows Docker: the exit
// status, or 128+signal for a process killed by a signal.
type Exit struct {
	Code     int       `json:"code"`
	ExitedAt time.Time `json:"exitedAt"`
	OOM      bool      `json:"oom,omitempty"`
}

// ReadExit reads the exit files a shim left in dir. It needs no running
// shim. It returns an error wrapping errdefs.ErrNotFound while the
// container has not exited (or its shim died before recording it).
func ReadExit(dir string) (Exit, error) {
	data, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Exit{}, fmt.Errorf("exit status in %s: %w", dir, errdefs.ErrNotFound)
	}
	if err != nil {
		return Exit{}, fmt.Errorf("read exit status: %w", err)
	}
	var e Exit
	if e.Code, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
		return Exit{}, fmt.Errorf("exit status in %s: %w: %w", dir, errdefs.ErrInvalidArgument, err)
	}
	if data, err = os.ReadFile(filepath.Join(dir, ExitedAtFile)); err == nil {
		e.ExitedAt, _ = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(data)))
	}
	_, err = os.Stat(filepath.Join(dir, OOMFile))
	e.OOM = err == nil
	return e, nil
}
