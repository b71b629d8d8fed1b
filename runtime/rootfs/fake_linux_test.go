package rootfs

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeNode is a file of the fake filesystem.
type fakeNode struct {
	mode    uint32 // S_IF* | permissions
	rdev    uint64
	link    string // symlink target
	fsType  int64  // what statfs reports for it
	fsFlags int64
	uid     int
	gid     int
}

// call is one recorded mutating system call. target (and source) name the
// path a /proc/self/fd/N link stands for.
type call struct {
	op     string
	source string
	target string
	fstype string
	flags  uintptr
	data   string
	attr   unix.MountAttr
}

func (c call) String() string {
	s := fmt.Sprintf("%s(%q -> %q", c.op, c.source, c.target)
	if c.fstype != "" {
		s += " type " + c.fstype
	}
	switch {
	case c.flags == 0:
	case c.op == "mount":
		s += fmt.Sprintf(" flags %s", flagNames(c.flags))
	default:
		s += fmt.Sprintf(" flags %#o", c.flags)
	}
	if c.data != "" {
		s += " data " + c.data
	}
	if c.attr != (unix.MountAttr{}) {
		s += fmt.Sprintf(" attr set %#x clr %#x", c.attr.Attr_set, c.attr.Attr_clr)
	}
	return s + ")"
}

// fakeSys is a recording Syscalls over an in-memory tree. It models what
// the setup code relies on: openat2 resolution (joining paths, following a
// final symlink inside the root with RESOLVE_IN_ROOT, refusing it with
// RESOLVE_NO_SYMLINKS), O_CREAT/O_EXCL, mount points (a propagation change
// on a path that is not one fails with EINVAL, as the kernel does) and
// descriptor bookkeeping (closing an unknown descriptor fails the test).
type fakeSys struct {
	t      *testing.T
	nodes  map[string]*fakeNode
	files  map[string]string // ReadFile contents
	fds    map[int]string
	nextFd int
	mounts map[string]bool
	calls  []call
	// contextMounts are the targets of MountContext calls.
	contextMounts []string
	// fail, when set, may return an error for a call before it happens.
	fail func(c call) error
}

func newFake(t *testing.T) *fakeSys {
	f := &fakeSys{
		t:      t,
		nodes:  map[string]*fakeNode{},
		files:  map[string]string{},
		fds:    map[int]string{},
		nextFd: 100,
		// "." is the old root during pivotRoot.
		mounts: map[string]bool{"/": true, ".": true},
	}
	f.dir("/")
	f.dir("/rootfs")
	f.dev("/dev/null", 1, 3)
	f.files["/proc/self/mountinfo"] = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n" +
		"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
	return f
}

func (f *fakeSys) dir(p string)            { f.nodes[p] = &fakeNode{mode: unix.S_IFDIR | 0o755} }
func (f *fakeSys) file(p string)           { f.nodes[p] = &fakeNode{mode: unix.S_IFREG | 0o644} }
func (f *fakeSys) symlink(p, to string)    { f.nodes[p] = &fakeNode{mode: unix.S_IFLNK | 0o777, link: to} }
func (f *fakeSys) node(p string) *fakeNode { return f.nodes[p] }
func (f *fakeSys) dev(p string, major, minor uint32) {
	f.nodes[p] = &fakeNode{mode: unix.S_IFCHR | 0o666, rdev: unix.Mkdev(major, minor)}
}

// resolve turns a /proc/self/fd/N link into the path it stands for.
func (f *fakeSys) resolve(p string) string {
	if n, ok := strings.CutPrefix(p, "/proc/self/fd/"); ok {
		fd, _ := strconv.Atoi(n)
		if s, ok := f.fds[fd]; ok {
			return s
		}
		f.t.Errorf("use of unknown descriptor %d", fd)
	}
	return p
}

func (f *fakeSys) record(c call) error {
	f.calls = append(f.calls, c)
	if f.fail != nil {
		return f.fail(c)
	}
	return nil
}

// only returns the recorded calls whose op is one of ops.
func (f *fakeSys) only(ops ...string) []call {
	var out []call
	for _, c := range f.calls {
		for _, op := range ops {
			if c.op == op {
				out = append(out, c)
			}
		}
	}
	return out
}

// mountsUnder returns the mount and mount_setattr calls on target or
// below it.
func (f *fakeSys) mountsUnder(target string) []call {
	var out []call
	for _, c := range f.only("mount", "mount_setattr") {
		if c.target == target || strings.HasPrefix(c.target, target+"/") {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSys) checkNoLeaks() {
	f.t.Helper()
	if len(f.fds) != 0 {
		f.t.Errorf("descriptors left open: %v", f.fds)
	}
}

func (f *fakeSys) Mount(source, target, fstype string, flags uintptr, data string) error {
	c := call{op: "mount", source: f.resolve(source), target: f.resolve(target), fstype: fstype, flags: flags, data: data}
	if err := f.record(c); err != nil {
		return err
	}
	const propagation = unix.MS_SHARED | unix.MS_PRIVATE | unix.MS_SLAVE | unix.MS_UNBINDABLE
	switch {
	case flags&propagation != 0:
		if !f.mounts[c.target] {
			return unix.EINVAL
		}
	case flags&unix.MS_REMOUNT != 0:
	default:
		if f.nodes[c.target] == nil {
			return unix.ENOENT
		}
		f.mounts[c.target] = true
	}
	return nil
}

// MountContext is recorded as the mount(2) it stands for, with the
// context's descriptor as the source's file system type.
func (f *fakeSys) MountContext(fsfd int, source, fstype string, flags uintptr, data []string, targetFD int) error {
	if fsfd <= 0 {
		f.t.Errorf("MountContext with context %d", fsfd)
	}
	f.contextMounts = append(f.contextMounts, f.fds[targetFD])
	return f.Mount(source, procFd(targetFD), fstype, flags, strings.Join(data, ","))
}

func (f *fakeSys) Unmount(target string, flags int) error {
	return f.record(call{op: "umount2", target: f.resolve(target), flags: uintptr(flags)})
}

func (f *fakeSys) MountSetattr(dirfd int, p string, flags uint, attr *unix.MountAttr) error {
	return f.record(call{op: "mount_setattr", target: f.fds[dirfd] + p, flags: uintptr(flags), attr: *attr})
}

func (f *fakeSys) PivotRoot(newRoot, putOld string) error {
	return f.record(call{op: "pivot_root", source: newRoot, target: putOld})
}

func (f *fakeSys) Chroot(p string) error { return f.record(call{op: "chroot", target: p}) }
func (f *fakeSys) Chdir(p string) error  { return f.record(call{op: "chdir", target: p}) }
func (f *fakeSys) Fchdir(fd int) error   { return f.record(call{op: "fchdir", target: f.fds[fd]}) }

func (f *fakeSys) at(dirfd int, name string) string {
	if dirfd == unix.AT_FDCWD {
		return path.Clean(name)
	}
	base, ok := f.fds[dirfd]
	if !ok {
		f.t.Errorf("use of unknown descriptor %d", dirfd)
	}
	return path.Join(base, name)
}

func (f *fakeSys) Openat2(dirfd int, name string, how *unix.OpenHow) (int, error) {
	full := f.at(dirfd, name)
	f.calls = append(f.calls, call{op: "openat2", source: f.fds[dirfd], target: full, flags: uintptr(how.Resolve)})
	n := f.nodes[full]
	if n != nil && n.link != "" && how.Flags&(unix.O_NOFOLLOW|unix.O_PATH) != unix.O_NOFOLLOW|unix.O_PATH {
		if how.Resolve&unix.RESOLVE_NO_SYMLINKS != 0 || how.Flags&unix.O_NOFOLLOW != 0 {
			return -1, unix.ELOOP
		}
		if how.Resolve&unix.RESOLVE_IN_ROOT != 0 && path.IsAbs(n.link) {
			full = path.Join(f.fds[dirfd], n.link)
		} else {
			full = path.Join(path.Dir(full), n.link)
		}
		n = f.nodes[full]
	}
	switch {
	case n == nil && how.Flags&unix.O_CREAT != 0:
		if err := f.record(call{op: "create", target: full, flags: uintptr(how.Mode)}); err != nil {
			return -1, err
		}
		f.nodes[full] = &fakeNode{mode: unix.S_IFREG | uint32(how.Mode)}
	case n == nil:
		return -1, unix.ENOENT
	case how.Flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL:
		return -1, unix.EEXIST
	case how.Flags&unix.O_DIRECTORY != 0 && n.mode&unix.S_IFMT != unix.S_IFDIR:
		return -1, unix.ENOTDIR
	}
	fd := f.nextFd
	f.nextFd++
	f.fds[fd] = full
	return fd, nil
}

func (f *fakeSys) Close(fd int) error {
	if _, ok := f.fds[fd]; !ok {
		f.t.Errorf("close of unknown descriptor %d", fd)
		return unix.EBADF
	}
	delete(f.fds, fd)
	return nil
}

func (f *fakeSys) Readlinkat(dirfd int, p string) (string, error) {
	if strings.HasPrefix(p, "/proc/self/fd/") {
		return f.resolve(p), nil
	}
	n := f.nodes[f.at(dirfd, p)]
	if n == nil || n.link == "" {
		return "", unix.EINVAL
	}
	return n.link, nil
}

func (f *fakeSys) Mkdirat(dirfd int, name string, mode uint32) error {
	full := f.at(dirfd, name)
	if err := f.record(call{op: "mkdir", target: full, flags: uintptr(mode)}); err != nil {
		return err
	}
	if f.nodes[full] != nil {
		return unix.EEXIST
	}
	f.nodes[full] = &fakeNode{mode: unix.S_IFDIR | mode}
	return nil
}

func (f *fakeSys) Mknodat(dirfd int, name string, mode uint32, dev uint64) error {
	full := f.at(dirfd, name)
	if err := f.record(call{op: "mknod", target: full, flags: uintptr(mode), data: devString(dev)}); err != nil {
		return err
	}
	if f.nodes[full] != nil {
		return unix.EEXIST
	}
	f.nodes[full] = &fakeNode{mode: mode, rdev: dev}
	return nil
}

func devString(dev uint64) string { return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)) }

func (f *fakeSys) Fchmodat(dirfd int, name string, mode uint32) error {
	full := f.at(dirfd, name)
	if err := f.record(call{op: "chmod", target: full, flags: uintptr(mode)}); err != nil {
		return err
	}
	n := f.nodes[full]
	if n == nil {
		return unix.ENOENT
	}
	n.mode = n.mode&unix.S_IFMT | mode
	return nil
}

func (f *fakeSys) Fchownat(dirfd int, name string, uid, gid int) error {
	full := f.at(dirfd, name)
	if err := f.record(call{op: "chown", target: full, data: fmt.Sprintf("%d:%d", uid, gid)}); err != nil {
		return err
	}
	n := f.nodes[full]
	if n == nil {
		return unix.ENOENT
	}
	n.uid, n.gid = uid, gid
	return nil
}

func (f *fakeSys) Symlinkat(to string, dirfd int, name string) error {
	full := f.at(dirfd, name)
	if err := f.record(call{op: "symlink", source: to, target: full}); err != nil {
		return err
	}
	if f.nodes[full] != nil {
		return unix.EEXIST
	}
	f.symlink(full, to)
	return nil
}

func (f *fakeSys) Unlinkat(dirfd int, name string, flags int) error {
	full := f.at(dirfd, name)
	if err := f.record(call{op: "unlink", target: full}); err != nil {
		return err
	}
	if f.nodes[full] == nil {
		return unix.ENOENT
	}
	delete(f.nodes, full)
	return nil
}

func (f *fakeSys) stat(p string, st *unix.Stat_t) error {
	n := f.nodes[p]
	if n == nil {
		return unix.ENOENT
	}
	*st = unix.Stat_t{Mode: n.mode, Rdev: n.rdev, Uid: uint32(n.uid), Gid: uint32(n.gid), Ino: uint64(len(p))}
	return nil
}

func (f *fakeSys) Fstat(fd int, st *unix.Stat_t) error {
	p, ok := f.fds[fd]
	if !ok {
		return unix.EBADF
	}
	return f.stat(p, st)
}

func (f *fakeSys) Fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	return f.stat(f.at(dirfd, name), st)
}

func (f *fakeSys) Stat(p string, st *unix.Stat_t) error { return f.stat(p, st) }

func (f *fakeSys) Statfs(p string, st *unix.Statfs_t) error {
	n := f.nodes[p]
	if n == nil {
		return unix.ENOENT
	}
	*st = unix.Statfs_t{Type: n.fsType, Flags: n.fsFlags}
	return nil
}

func (f *fakeSys) Fstatfs(fd int, st *unix.Statfs_t) error { return f.Statfs(f.fds[fd], st) }

func (f *fakeSys) ReadFile(p string) ([]byte, error) {
	s, ok := f.files[p]
	if !ok {
		return nil, unix.ENOENT
	}
	return []byte(s), nil
}

func (f *fakeSys) Dup3(oldfd, newfd, flags int) error {
	return f.record(call{op: "dup3", source: f.fds[oldfd], target: strconv.Itoa(newfd)})
}

func (f *fakeSys) CopyTree(srcDir, dstDir int) error {
	return f.record(call{op: "copytree", source: f.fds[srcDir], target: f.fds[dstDir]})
}
