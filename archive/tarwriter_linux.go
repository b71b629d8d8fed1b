package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// tarWriter writes layer tar entries from files, with normalised headers:
// PAX format, numeric owners only (no user or group names), modification
// times to the second, no access or change times, and extended attributes
// other than overlayfs's private ones. Regular files that share an inode are
// written once and then as hard links to the first path.
type tarWriter struct {
	bw    *bufio.Writer
	tw    *tar.Writer
	buf   []byte
	links map[devIno]string
	opts  writeOptions
}

type devIno struct{ dev, ino uint64 }

// whiteoutTime is the modification time of whiteout entries, which have no
// file of their own to take it from.
var whiteoutTime = time.Unix(0, 0)

func newTarWriter(w io.Writer, opts writeOptions) *tarWriter {
	bw := bufio.NewWriterSize(w, 256<<10)
	return &tarWriter{
		bw:    bw,
		tw:    tar.NewWriter(bw),
		buf:   make([]byte, copyBufferSize),
		links: make(map[devIno]string),
		opts:  opts,
	}
}

// close writes the tar trailer and flushes; it does not close the
// underlying writer.
func (t *tarWriter) close() error {
	if err := t.tw.Close(); err != nil {
		return err
	}
	return t.bw.Flush()
}

// whiteout writes an empty marker entry named rel (".wh.name" or the opaque
// marker).
func (t *tarWriter) whiteout(rel string) error {
	return t.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     rel,
		ModTime:  whiteoutTime,
		Format:   tar.FormatPAX,
	})
}

// entry writes the entry name of directory dirfd as rel, with its content
// for a regular file. xattrs are the entry's extended attributes. Sockets are
// skipped: they cannot travel in a layer.
func (t *tarWriter) entry(dirfd int, name, rel string, st *unix.Stat_t, xattrs map[string]string) error {
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	if t.opts.clampSet && hdr.ModTime.After(t.opts.clamp) {
		hdr.ModTime = t.opts.clamp
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
		if st.Nlink > 1 {
			key := devIno{uint64(st.Dev), st.Ino}
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				t.links[key] = rel
			}
		}
	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, name)
		if err != nil {
			return wrapPath("readlink", rel, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil
	}
	for k, v := range xattrs {
		if isOverlayXattr(k) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattr+k] = v
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header of %s: %w", rel, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	return t.content(dirfd, name, rel, hdr.Size)
}

func (t *tarWriter) content(dirfd int, name, rel string, size int64) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapPath("open", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	n, err := io.CopyBuffer(t.tw, io.LimitReader(f, size), t.buf)
	if err != nil {
		return fmt.Errorf("write content of %s: %w", rel, err)
	}
	if n != size {
		return fmt.Errorf("write content of %s: file shrank from %d to %d bytes while read", rel, size, n)
	}
	return nil
}

// readXattrs returns the extended attributes of the entry name in dirfd,
// without following a final symlink.
func readXattrs(dirfd int, name string) (map[string]string, error) {
	p := procPath(dirfd, name)
	list, err := xattrCall(func(b []byte) (int, error) { return unix.Llistxattr(p, b) })
	if err != nil || len(list) == 0 {
		if unsupported(err) {
			err = nil
		}
		return nil, err
	}
	xattrs := make(map[string]string)
	for _, k := range bytes.Split(bytes.TrimSuffix(list, []byte{0}), []byte{0}) {
		key := string(k)
		v, err := xattrCall(func(b []byte) (int, error) { return unix.Lgetxattr(p, key, b) })
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("getxattr %s: %w", key, err)
		}
		xattrs[key] = string(v)
	}
	return xattrs, nil
}

// xattrCall runs a list or get xattr call with a buffer that grows until the
// answer fits.
func xattrCall(call func([]byte) (int, error)) ([]byte, error) {
	b := make([]byte, 256)
	for {
		n, err := call(b)
		if err == unix.ERANGE {
			if n, err = call(nil); err != nil {
				return nil, err
			}
			b = make([]byte, n+64)
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
}

// readdirSorted returns the names in the directory open as fd, sorted, and
// leaves fd open.
func readdirSorted(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), ".")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}
