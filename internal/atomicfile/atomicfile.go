// Package atomicfile writes files that readers see whole or not at all: the
// data goes to a temporary file in the same directory, which is renamed
// over the target. With Durable it also survives a crash: the data is
// fsynced before the rename and the directory after it.
package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

type config struct{ durable bool }

// Option changes how a file is written.
type Option func(*config)

// Durable fsyncs the file before it is renamed into place and the
// directory after, so the new content is on disk once Write returns.
// Without it the write is atomic for readers but may be lost (never
// half-written) in a crash: right for run-time state on a tmpfs.
func Durable() Option { return func(c *config) { c.durable = true } }

// Write writes r to path with mode perm.
func Write(path string, r io.Reader, perm os.FileMode, opts ...Option) error {
	var c config
	for _, o := range opts {
		o(&c)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && c.durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if c.durable {
		return syncDir(dir)
	}
	return nil
}

// TempPrefix starts the name of the temporary file a Write to path uses,
// so that a caller can remove what a crash left in the middle of one.
func TempPrefix(path string) string { return "." + filepath.Base(path) + "-" }

// WriteBytes writes data to path with mode perm.
func WriteBytes(path string, data []byte, perm os.FileMode, opts ...Option) error {
	return Write(path, bytes.NewReader(data), perm, opts...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
