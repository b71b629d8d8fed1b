package store

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"berth.dev/snapshot"
)

// diskUsage counts the blocks and distinct inodes under dir, dir included.
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
		u.Size += st.Blocks * 512
		return nil
	})
	return u, err
}
