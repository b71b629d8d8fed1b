package spec

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// namespaceFileType opens a namespace file (/proc/<pid>/ns/<name> or a bind
// mount of one) and asks the kernel its type with NS_GET_NSTYPE
// (ioctl_ns(2), Linux 4.11). Any other file fails the ioctl with ENOTTY.
func namespaceFileType(path string) (specs.LinuxNamespaceType, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	flag, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return "", &os.PathError{Op: "ioctl NS_GET_NSTYPE", Path: path, Err: err}
	}
	switch flag {
	case unix.CLONE_NEWNS:
		return specs.MountNamespace, nil
	case unix.CLONE_NEWNET:
		return specs.NetworkNamespace, nil
	case unix.CLONE_NEWPID:
		return specs.PIDNamespace, nil
	case unix.CLONE_NEWIPC:
		return specs.IPCNamespace, nil
	case unix.CLONE_NEWUTS:
		return specs.UTSNamespace, nil
	case unix.CLONE_NEWUSER:
		return specs.UserNamespace, nil
	case unix.CLONE_NEWCGROUP:
		return specs.CgroupNamespace, nil
	case unix.CLONE_NEWTIME:
		return specs.TimeNamespace, nil
	}
	return "", fmt.Errorf("%s: unknown namespace type %#x", path, flag)
}

// procNSName is the name of a namespace type under /proc/self/ns.
func procNSName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.MountNamespace:
		return "mnt"
	case specs.NetworkNamespace:
		return "net"
	}
	return string(t)
}

// kernelHasNamespace fails if the running kernel lacks namespaces of type t:
// each type the kernel was built with appears under /proc/self/ns.
func kernelHasNamespace(t specs.LinuxNamespaceType) error {
	_, err := os.Lstat("/proc/self/ns/" + procNSName(t))
	return err
}

// sameFile tells whether two paths name the same inode, as two namespace
// files of the same namespace do.
func sameFile(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, &os.PathError{Op: "stat", Path: a, Err: err}
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, &os.PathError{Op: "stat", Path: b, Err: err}
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}
