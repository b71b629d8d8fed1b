package archive

import (
	"archive/tar"
	"context"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// WriteTree writes the file or directory tree at src to w as a tar (docker
// cp and export). The top entry is named name, and the tree's entries sit
// below it; with name "" or "." the top entry is left out and a
// directory's content sits at the top. Symbolic links are written as
// links, never followed, except src itself when followTop is set. Files
// linked more than once inside the tree are written once, then as hard
// links. Owners are numeric, without user or group names. Sockets and
// other files a tar cannot hold are skipped.
func WriteTree(ctx context.Context, w io.Writer, src, name string, followTop bool) error {
	if name == "." {
		name = ""
	}
	tw := tar.NewWriter(w)
	root := filepath.Clean(src)
	links := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		entry := path.Join(name, filepath.ToSlash(rel))
		if rel == "." {
			if name == "" {
				return nil
			}
			entry = name
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if p == root && followTop {
			if fi, err = os.Stat(p); err != nil {
				return err
			}
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // a socket or the like
		}
		hdr.Name = entry
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = entry
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		flags := os.O_RDONLY | unix.O_NOFOLLOW
		if p == root && followTop {
			flags = os.O_RDONLY
		}
		f, err := os.OpenFile(p, flags, 0)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, io.LimitReader(f, hdr.Size))
		f.Close()
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
