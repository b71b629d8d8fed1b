package ocispec

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// device stats a host device node and describes it for the container at
// path dst.
func device(host, dst string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(host, &st); err != nil {
		return specs.LinuxDevice{}, invalidf("error gathering device information while adding custom device %q: %w", host, err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, invalidf("%q is not a device node", host)
	}
	mode := fs.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: dst, Type: typ,
		Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

// userDevices maps --device into nodes and cgroup rules.
func userDevices(devs []Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var nodes []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, d := range devs {
		dst := d.PathInContainer
		if dst == "" {
			dst = d.PathOnHost
		}
		if !filepath.IsAbs(dst) {
			return nil, nil, invalidf("device path in the container %q is not absolute", dst)
		}
		perms := d.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return nil, nil, invalidf("invalid device cgroup permissions %q (a combination of r, w and m)", perms)
		}
		found, err := devicesAt(d.PathOnHost, filepath.Clean(dst))
		if err != nil {
			return nil, nil, err
		}
		for _, n := range found {
			nodes = append(nodes, n)
			rules = append(rules, devRule(n.Type, n.Major, n.Minor, perms))
		}
	}
	return nodes, rules, nil
}

// devicesAt is the device node at host, or, when host is a directory
// (--device /dev/snd), every device node under it, at the same relative
// path under dst.
func devicesAt(host, dst string) ([]specs.LinuxDevice, error) {
	fi, err := os.Stat(host)
	if err != nil || !fi.IsDir() {
		d, err := device(host, dst)
		if err != nil {
			return nil, err
		}
		return []specs.LinuxDevice{d}, nil
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(host, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type()&fs.ModeDevice == 0 {
			return nil
		}
		rel, err := filepath.Rel(host, p)
		if err != nil {
			return err
		}
		d, err := device(p, filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, invalidf("error gathering device information while adding custom device %q: %w", host, err)
	}
	if len(out) == 0 {
		return nil, invalidf("no device nodes under %q", host)
	}
	return out, nil
}

// hostDevices lists the host's device nodes under /dev for a privileged
// container, leaving out the pty and console nodes the runtime makes
// itself and the kernel filesystems mounted under /dev.
func hostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) || os.IsPermission(err) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.lxc", "/dev/.udev":
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		d, err := device(p, p)
		if err != nil {
			return nil // gone or not a device any more
		}
		out = append(out, d)
		return nil
	})
	return out, err
}
