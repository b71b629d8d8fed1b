package store

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"berth.dev/snapshot"
)

// diskUsage counts the distinct inodes under dir, dir included, and the
// bytes of their contents: the lengths of files and symlinks, not of
// directories, hard links once. That is what docker reports as a layer's
// or a container's size (not the blocks they take on disk).
func diskUsage(ctx context.Context, dir string) (snapshot.Usage, error) {
	type inode struct{ dev, ino uint64 }
	seen := make(map[inode]bool)
	var u snapshot.Usage
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return &os.PathError{Op: "stat", Path: path, Err: syscall.EINVAL}
		}
		in := inode{uint64(st.Dev), st.Ino}
		if seen[in] {
			return nil
		}
		seen[in] = true
		u.Inodes++
		if !d.IsDir() {
			u.Size += st.Size
		}
		return nil
	})
	return u, err
}
