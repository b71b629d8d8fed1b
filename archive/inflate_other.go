//go:build !linux

package archive

import (
	"fmt"
	"io"

	"berth.dev/internal/errdefs"
)

func startInflater(path string, in io.Reader) (io.ReadCloser, error) {
	return nil, fmt.Errorf("inflate with %s: %w", path, errdefs.ErrNotImplemented)
}
