package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
)

// copyBufferSize is the size of the buffer file content moves through.
const copyBufferSize = 1 << 20

// sparseBlock is the granularity at which sparse content is checked for
// zeros that become holes.
const sparseBlock = 4096

const paxXattr = "SCHILY.xattr."

// Apply unpacks the uncompressed layer tar r into the directory root and
// returns the bytes of content it holds (the sizes of its regular files).
//
// Every path is resolved inside root as the container would resolve it:
// leading slashes are dropped, symlinks (this layer's and those already in
// root, absolute like var/run -> /run or relative) are followed but never
// out of root, and a name whose ".." climbs above root is refused. The final
// component of an entry is never followed; an existing entry is replaced
// (a directory over a directory is kept and merged). Missing parents are
// created with mode 0755.
//
// Whiteouts apply to root as a merged view: ".wh.name" removes name, and
// ".wh..wh..opq" in a directory removes everything in it that this layer
// does not itself hold, wherever the marker sits in the tar. With
// WithOverlayWhiteouts they are written in overlay's own form instead.
//
// Entries keep their mode (setuid, setgid and sticky bits included), owner
// (as root, unless WithNoSameOwner; mapped by WithIDMap), modification time
// (directories get theirs after their content) and extended attributes,
// security.capability included. Overlay's private xattrs
// (trusted.overlay.*, user.overlay.*) are refused, since they would steer
// the overlay mount. Hard links must name an existing non-directory inside
// root. Character and block devices are refused with WithoutDevices. Sparse
// entries are written with holes. Global PAX headers and aufs metadata
// (".wh..wh.*") are skipped; any other entry type is refused.
//
// On error, naming the entry at fault, root may hold part of the layer and
// must be discarded; nothing outside root has been touched. Apply does not
// sync: the caller syncs the whole layer once.
func Apply(ctx context.Context, root string, r io.Reader, opts ...ApplyOption) (int64, error) {
	var o applyOptions
	for _, opt := range opts {
		opt(&o)
	}
	rt, err := openRoot(root)
	if err != nil {
		return 0, fmt.Errorf("apply layer: %w", err)
	}
	defer rt.close()
	a := &applier{
		applyOptions: o,
		root:         rt,
		files:        newFileWriter(),
		links:        make(map[string]struct{}),
		pending:      make(map[string]struct{}),
		sameOwner:    os.Geteuid() == 0 && !o.noSameOwner,
		euid:         os.Geteuid(),
		egid:         os.Getegid(),
		umask:        processUmask(),
		entries:      make(map[string]struct{}),
		parents:      make(map[string]struct{}),
		dirMeta:      make(map[string]*dirMeta),
	}
	defer a.files.close()
	if a.async, err = rt.empty(); err != nil {
		return 0, fmt.Errorf("apply layer: %w", err)
	}
	tr := tar.NewReader(r)
	last := ""
	for i := 0; ; i++ {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return a.size, err
			}
		}
		if err := a.files.failure(); err != nil {
			return a.size, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.size, fmt.Errorf("read layer tar after %q: %w: %w", last, errdefs.ErrInvalidArgument, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			if ferr := a.files.failure(); ferr != nil {
				return a.size, ferr // an earlier entry's, met waiting for the workers
			}
			return a.size, fmt.Errorf("apply layer entry %q: %w", hdr.Name, err)
		}
		last = hdr.Name
	}
	if err := a.files.close(); err != nil {
		return a.size, err
	}
	if err := a.finishDirs(); err != nil {
		return a.size, fmt.Errorf("apply layer: %w", err)
	}
	return a.size, nil
}

type applier struct {
	applyOptions
	root  *root
	files *fileWriter
	// async: the file writer's workers create new regular files (see
	// settle). Only in a root that was empty: a name new to the layer is
	// then new to the root. links are the symlinks the layer made, and
	// pending the files queued for workers to create since they were last
	// waited for.
	async          bool
	links, pending map[string]struct{}
	buf            []byte // for sparse content; made on first use
	sameOwner      bool
	euid, egid     int
	// umask is the process's, which a new file's mode goes through.
	umask uint32
	size  int64

	// entries holds every path this layer wrote, parents their ancestors:
	// an opaque marker keeps exactly those.
	entries, parents map[string]struct{}
	// dirMeta holds the metadata of directories, applied once at the end so
	// that writing their content does not change their times and a
	// read-only mode does not get in the way.
	dirMeta map[string]*dirMeta
}

type dirMeta struct {
	uid, gid     int // host IDs
	chown        bool
	mode         uint32
	atime, mtime time.Time
	xattrs       map[string]string
}

func (a *applier) entry(hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanPath(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := splitPath(rel)
	fresh, err := a.settle(rel, dir, base, hdr)
	if err != nil {
		return err
	}
	if strings.HasPrefix(base, WhiteoutPrefix) {
		return a.whiteout(dir, base)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("the root can only be a directory: %w", errdefs.ErrInvalidArgument)
		}
		return a.recordDir(rel, hdr)
	}
	a.markAdded(rel)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.mkdir(dir, rel, base, hdr)
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		return a.file(dir, rel, base, hdr, tr, fresh)
	case tar.TypeSymlink:
		if a.async {
			a.links[rel] = struct{}{}
		}
		return a.symlink(dir, rel, base, hdr)
	case tar.TypeLink:
		return a.hardlink(dir, rel, base, hdr)
	case tar.TypeChar, tar.TypeBlock:
		if a.noDevices {
			return fmt.Errorf("device nodes are not allowed: %w", errdefs.ErrForbidden)
		}
		return a.node(dir, rel, base, hdr)
	case tar.TypeFifo:
		return a.node(dir, rel, base, hdr)
	}
	return fmt.Errorf("unsupported entry type %q: %w", hdr.Typeflag, errdefs.ErrInvalidArgument)
}

// settle keeps Apply and the file writer's workers out of each other's
// way while workers may create files (async). An entry that could meet a
// file a worker has yet to create waits for the workers first: a name the
// layer wrote before, a name below a file it created, a whiteout, a hard
// link. Names reached through a symlink of this layer may alias any other,
// so the first such entry ends the workers' creating for the rest of the
// layer. It reports whether rel is a name new to the root, which a worker
// may create.
func (a *applier) settle(rel, dir, base string, hdr *tar.Header) (fresh bool, err error) {
	if !a.async {
		return false, nil
	}
	aliased := false
	below := false
	for p := dir; p != "."; p, _ = splitPath(p) {
		if _, ok := a.links[p]; ok {
			aliased = true
		}
		if _, ok := a.pending[p]; ok {
			below = true
		}
	}
	fresh = !aliased && !a.isAdded(rel) && !strings.HasPrefix(base, WhiteoutPrefix)
	if fresh && !below && hdr.Typeflag != tar.TypeLink {
		return true, nil
	}
	if err := a.files.barrier(); err != nil {
		return false, err
	}
	clear(a.pending)
	if aliased {
		a.async = false
		return false, nil
	}
	return fresh, nil
}

// markAdded records rel as written by this layer.
func (a *applier) markAdded(rel string) {
	a.entries[rel] = struct{}{}
	for p, _ := splitPath(rel); p != "."; p, _ = splitPath(p) {
		if _, ok := a.parents[p]; ok {
			return
		}
		a.parents[p] = struct{}{}
	}
}

func (a *applier) isAdded(rel string) bool {
	_, e := a.entries[rel]
	_, p := a.parents[rel]
	return e || p
}

// create runs mk in the parent directory; when the name exists, it removes
// what is there (a directory with its content) and runs mk again. It returns
// the parent directory, valid until the next create.
func (a *applier) create(dir, rel, base string, mk func(parent int) error) (dirHandle, error) {
	h, err := a.root.dir(dir, true)
	if err != nil {
		return h, err
	}
	err = mk(h.fd)
	if err != unix.EEXIST {
		return h, wrapPath("create", rel, err)
	}
	if h, err = a.remove(dir, rel, base); err != nil {
		return h, err
	}
	return h, wrapPath("create", rel, mk(h.fd))
}

// remove removes rel (base in dir) and everything below it, and returns its
// parent directory.
func (a *applier) remove(dir, rel, base string) (dirHandle, error) {
	h, err := a.root.dir(dir, false)
	if err != nil {
		return h, err
	}
	structural, err := removeAllAt(h.fd, base)
	if err != nil {
		return h, wrapPath("remove", rel, err)
	}
	if !structural {
		return h, nil
	}
	a.root.forget()
	a.dropDirMeta(rel, nil)
	return a.root.dir(dir, false)
}

// dropDirMeta forgets the recorded metadata of rel and the directories below
// it after they were removed, except those keep (if not nil) says still
// exist.
func (a *applier) dropDirMeta(rel string, keep func(p string) bool) {
	prefix := rel + "/"
	if rel == "." {
		prefix = ""
	}
	for p := range a.dirMeta {
		if (p == rel || strings.HasPrefix(p, prefix)) && (keep == nil || !keep(p)) {
			delete(a.dirMeta, p)
		}
	}
}

func (a *applier) mkdir(dir, rel, base string, hdr *tar.Header) error {
	h, err := a.root.dir(dir, true)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(h.fd, base, 0o755)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(h.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if h, err = a.remove(dir, rel, base); err != nil {
				return err
			}
			err = unix.Mkdirat(h.fd, base, 0o755)
		}
	}
	if err != nil {
		return wrapPath("mkdir", rel, err)
	}
	return a.recordDir(rel, hdr)
}

func (a *applier) recordDir(rel string, hdr *tar.Header) error {
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	xattrs, err := tarXattrs(hdr)
	if err != nil {
		return err
	}
	a.dirMeta[rel] = &dirMeta{
		uid: uid, gid: gid, chown: a.sameOwner,
		mode:  uint32(hdr.Mode) & 0o7777,
		atime: hdr.AccessTime, mtime: hdr.ModTime,
		xattrs: xattrs,
	}
	return nil
}

func (a *applier) file(dir, rel, base string, hdr *tar.Header, r io.Reader, fresh bool) error {
	sparse := isSparse(hdr)
	if hdr.Size < 0 {
		return fmt.Errorf("negative size: %w", errdefs.ErrInvalidArgument)
	}
	if a.maxSize > 0 && hdr.Size > a.maxSize-a.size {
		return fmt.Errorf("layer content exceeds %d bytes: %w", a.maxSize, errdefs.ErrInvalidArgument)
	}
	if limit := a.sparseLimit(); sparse && hdr.Size > limit {
		return fmt.Errorf("sparse file of %d bytes exceeds %d: %w", hdr.Size, limit, errdefs.ErrInvalidArgument)
	}
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	xattrs, err := tarXattrs(hdr)
	if err != nil {
		return err
	}
	// Made with its permission bits (the snapshot is not visible yet):
	// most files then need no chmod.
	perm := uint32(hdr.Mode) & 0o777
	meta := fileMeta{
		name: hdr.Name, rel: rel,
		uid: uid, gid: gid,
		mode:  uint32(hdr.Mode) & 0o7777,
		atime: hdr.AccessTime, mtime: hdr.ModTime,
		xattrs: xattrs,
	}
	// A new file is owned by its creator, and its group is the parent's
	// when that is setgid.
	setMode := func(setgid bool) {
		meta.chown = a.sameOwner && (uid != a.euid || gid != a.egid || setgid)
		meta.chmod = meta.chown || hdr.Mode&0o7000 != 0 || perm&a.umask != 0
	}
	if fresh && !sparse {
		h, err := a.root.dir(dir, true)
		if err != nil {
			return err
		}
		setMode(h.setgid)
		a.size += hdr.Size
		a.pending[rel] = struct{}{}
		return a.files.create(h, dir, base, perm, r, hdr.Size, meta)
	}
	fd := -1
	h, err := a.create(dir, rel, base, func(parent int) error {
		var err error
		fd, err = unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return err
	})
	if err != nil {
		return err
	}
	setMode(h.setgid)
	a.size += hdr.Size
	if !sparse {
		return a.files.add(fd, dir, r, hdr.Size, meta)
	}
	defer unix.Close(fd)
	if err := a.copySparse(fd, r, hdr.Size); err != nil {
		return err
	}
	return meta.apply(fd)
}

// setFileTimes is setTimes for an open file: futimens, no path lookup.
func setFileTimes(fd int, atime, mtime time.Time) error {
	ts := entryTimes(atime, mtime)
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// processUmask reads the process's umask (/proc/self/status, Linux 4.7);
// where it cannot, every bit counts as masked, so that every file gets its
// chmod.
func processUmask() uint32 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o777
}

func (a *applier) sparseLimit() int64 {
	if a.maxSize > 0 {
		return a.maxSize
	}
	return DefaultSparseLimit
}

// isSparse tells a GNU sparse entry, old style or PAX.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// copySparse writes r's content at its offsets and leaves every block of
// zeros as a hole. The tar reader expands the entry's holes into zeros; they
// are skipped here, never written.
func (a *applier) copySparse(fd int, r io.Reader, size int64) error {
	if a.buf == nil {
		a.buf = make([]byte, copyBufferSize)
	}
	var off int64
	for {
		n, err := readFull(r, a.buf)
		if werr := pwriteNonZero(fd, a.buf[:n], off); werr != nil {
			return fmt.Errorf("write: %w", werr)
		}
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read content: %w: %w", errdefs.ErrInvalidArgument, err)
		}
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return nil
}

var zeroBlock [sparseBlock]byte

// pwriteNonZero writes the blocks of b that are not all zeros at off.
func pwriteNonZero(fd int, b []byte, off int64) error {
	start := -1 // start of the current run of data blocks
	for i := 0; i < len(b); i += sparseBlock {
		blk := b[i:min(i+sparseBlock, len(b))]
		zero := bytes.Equal(blk, zeroBlock[:len(blk)])
		switch {
		case !zero && start < 0:
			start = i
		case zero && start >= 0:
			if err := pwriteAll(fd, b[start:i], off+int64(start)); err != nil {
				return err
			}
			start = -1
		}
	}
	if start >= 0 {
		return pwriteAll(fd, b[start:], off+int64(start))
	}
	return nil
}

func readFull(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func (a *applier) symlink(dir, rel, base string, hdr *tar.Header) error {
	h, err := a.create(dir, rel, base, func(parent int) error {
		return unix.Symlinkat(hdr.Linkname, parent, base)
	})
	if err != nil {
		return err
	}
	return a.finishNode(h, rel, base, hdr, false)
}

func (a *applier) node(dir, rel, base string, hdr *tar.Header) error {
	var typ uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		typ = unix.S_IFCHR
	case tar.TypeBlock:
		typ = unix.S_IFBLK
	default:
		typ = unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	h, err := a.create(dir, rel, base, func(parent int) error {
		return unix.Mknodat(parent, base, typ|0o600, int(dev))
	})
	if err != nil {
		return err
	}
	return a.finishNode(h, rel, base, hdr, true)
}

// finishNode sets the owner, mode, xattrs and times of a symlink, device or
// fifo just created as base in h.
func (a *applier) finishNode(h dirHandle, rel, base string, hdr *tar.Header, chmod bool) error {
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	xattrs, err := tarXattrs(hdr)
	if err != nil {
		return err
	}
	// Made owned by the creator, in the parent's group when that is setgid.
	if a.sameOwner && (uid != a.euid || gid != a.egid || h.setgid) {
		if err := unix.Fchownat(h.fd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return wrapPath("chown", rel, err)
		}
	}
	if chmod {
		// base is the node created a moment ago, not a symlink.
		if err := unix.Fchmodat(h.fd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return wrapPath("chmod", rel, err)
		}
	}
	for k, v := range xattrs {
		if err := unix.Lsetxattr(procPath(h.fd, base), k, []byte(v), 0); err != nil && !unsupported(err) {
			return wrapPath("setxattr "+k, rel, err)
		}
	}
	return wrapPath("utimes", rel, setTimes(h.fd, base, hdr.AccessTime, hdr.ModTime))
}

func (a *applier) hardlink(dir, rel, base string, hdr *tar.Header) error {
	target, err := cleanPath(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if target == "." || target == rel {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, errdefs.ErrInvalidArgument)
	}
	tdir, tbase := splitPath(target)
	// Its own descriptor: create may drop the cached ones.
	tfd, err := openRel(a.root.fd, tdir, unix.O_PATH|unix.O_DIRECTORY, inRoot)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hard link target %q is a directory: %w", hdr.Linkname, errdefs.ErrInvalidArgument)
	}
	_, err = a.create(dir, rel, base, func(parent int) error {
		return unix.Linkat(tfd, tbase, parent, base, 0)
	})
	return err
}

// whiteout applies a whiteout entry base found in dir.
func (a *applier) whiteout(dir, base string) error {
	if base == WhiteoutOpaque {
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	name := strings.TrimPrefix(base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("whiteout of %q: %w", name, errdefs.ErrInvalidArgument)
	}
	rel := name
	if dir != "." {
		rel = dir + "/" + name
	}
	if a.overlayWhiteouts {
		a.markAdded(rel)
		_, err := a.create(dir, rel, name, func(parent int) error {
			return unix.Mknodat(parent, name, unix.S_IFCHR, 0)
		})
		return err
	}
	_, err := a.remove(dir, rel, name)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing there to remove
	}
	return err
}

// opaque applies an opaque marker of directory dir.
func (a *applier) opaque(dir string) error {
	if a.overlayWhiteouts {
		a.markAdded(dir)
		h, err := a.root.dir(dir, true)
		if err != nil {
			return err
		}
		fd, err := unix.Openat(h.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return wrapPath("open", dir, err)
		}
		defer unix.Close(fd)
		return wrapPath("setxattr "+a.opaqueXattr, dir, unix.Fsetxattr(fd, a.opaqueXattr, []byte("y"), 0))
	}
	if _, ok := a.parents[dir]; !ok && dir != "." {
		done, err := a.recreate(dir)
		if done || err != nil {
			return err
		}
	}
	// Entries of this layer are already in dir: keep them and remove the
	// rest, at every depth.
	h, err := a.root.dir(dir, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	prefix := dir + "/"
	if dir == "." {
		prefix = ""
	}
	err = removeChildren(h.fd, ".", func(child string) (bool, bool) {
		added := a.isAdded(prefix + child)
		return added, added
	})
	a.root.forget()
	a.dropDirMeta(dir, func(p string) bool { return p == dir || a.isAdded(p) })
	return wrapPath("clear opaque directory", dir, err)
}

// recreate empties dir by removing it and making it again, when the layer
// has written nothing inside it yet. Through an overlay mount this is what
// makes overlayfs record the directory as opaque in the upper directory
// instead of one whiteout per hidden entry. It reports false when dir is
// not a plain directory (a symlink to one, say), which the caller then
// empties in place.
func (a *applier) recreate(dir string) (bool, error) {
	pdir, base := splitPath(dir)
	h, err := a.root.dir(pdir, false)
	if errors.Is(err, unix.ENOENT) {
		return true, nil // nothing to hide
	}
	if err != nil {
		return true, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(h.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return true, ignoreNotExist(wrapPath("stat", dir, err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, nil
	}
	if _, ok := a.dirMeta[dir]; !ok {
		a.dirMeta[dir] = &dirMeta{
			uid: int(st.Uid), gid: int(st.Gid), chown: a.sameOwner,
			mode:  st.Mode & 0o7777,
			atime: time.Unix(st.Atim.Unix()), mtime: time.Unix(st.Mtim.Unix()),
		}
	}
	if err := removeChildren(h.fd, base, nil); err != nil {
		return true, wrapPath("clear opaque directory", dir, err)
	}
	a.root.forget()
	a.dropDirMeta(dir, func(p string) bool { return p == dir })
	if h, err = a.root.dir(pdir, false); err != nil {
		return true, err
	}
	if err := unix.Unlinkat(h.fd, base, unix.AT_REMOVEDIR); err != nil {
		return true, wrapPath("rmdir", dir, err)
	}
	return true, wrapPath("mkdir", dir, unix.Mkdirat(h.fd, base, 0o755))
}

// finishDirs applies the recorded metadata of directories: what differs
// from what the directory has (most were made by Apply as they are meant
// to be, but for their times), through a descriptor that cannot be a
// symlink's, then the times. Siblings come one after the other, so that
// their parent stays cached.
func (a *applier) finishDirs() error {
	rels := make([]string, 0, len(a.dirMeta))
	for rel := range a.dirMeta {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	for _, rel := range rels {
		m := a.dirMeta[rel]
		dir, base := splitPath(rel)
		h, err := a.root.dir(dir, false)
		if gone(err) {
			continue
		}
		if err != nil {
			return err
		}
		var st unix.Stat_t
		err = unix.Fstatat(h.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if gone(err) || (err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR) {
			continue
		}
		if err != nil {
			return wrapPath("stat", rel, err)
		}
		chown := m.chown && (int(st.Uid) != m.uid || int(st.Gid) != m.gid)
		if chown || st.Mode&0o7777 != m.mode || len(m.xattrs) > 0 {
			fd, err := unix.Openat(h.fd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if gone(err) {
				continue
			}
			if err != nil {
				return wrapPath("open", rel, err)
			}
			err = m.apply(fd, chown)
			unix.Close(fd)
			if err != nil {
				return wrapPath("set metadata of", rel, err)
			}
		}
		if err := setTimes(h.fd, base, m.atime, m.mtime); err != nil {
			return wrapPath("utimes", rel, err)
		}
	}
	return nil
}

// gone tells an error that shows a directory recorded earlier was removed
// or replaced since (by a whiteout reached through another path, say), so
// its metadata no longer applies.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)
}

func (m *dirMeta) apply(fd int, chown bool) error {
	if chown {
		if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return err
	}
	for k, v := range m.xattrs {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil && !unsupported(err) {
			return fmt.Errorf("setxattr %s: %w", k, err)
		}
	}
	return nil
}

// owner returns the host owner of an entry.
func (a *applier) owner(hdr *tar.Header) (uid, gid int, err error) {
	if uid, err = mapID(a.uidMap, hdr.Uid); err != nil {
		return 0, 0, fmt.Errorf("owner: %w", err)
	}
	if gid, err = mapID(a.gidMap, hdr.Gid); err != nil {
		return 0, 0, fmt.Errorf("group: %w", err)
	}
	return uid, gid, nil
}

// tarXattrs returns the extended attributes an entry carries, refusing
// overlayfs's private ones.
func tarXattrs(hdr *tar.Header) (map[string]string, error) {
	var xattrs map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok {
			continue
		}
		if isOverlayXattr(name) {
			return nil, fmt.Errorf("overlay xattr %q: %w", name, errdefs.ErrInvalidArgument)
		}
		if xattrs == nil {
			xattrs = make(map[string]string)
		}
		xattrs[name] = v
	}
	return xattrs, nil
}

func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// unsupported tells an xattr the filesystem cannot hold, which is skipped.
func unsupported(err error) bool {
	return err == unix.ENOTSUP || err == unix.EOPNOTSUPP
}

func setTimes(dirfd int, name string, atime, mtime time.Time) error {
	ts := entryTimes(atime, mtime)
	return unix.UtimesNanoAt(dirfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}

// entryTimes are an entry's access and modification times for utimensat;
// an entry without an access time gets its modification time.
func entryTimes(atime, mtime time.Time) [2]unix.Timespec {
	if atime.IsZero() {
		atime = mtime
	}
	return [2]unix.Timespec{timespec(atime), timespec(mtime)}
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func wrapPath(op, rel string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: rel, Err: err}
}
