package ocispec

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// hostFacts are what Generate learns from the kernel it runs on.
type hostFacts struct {
	cgroup2  bool
	apparmor bool
	selinux  bool
	// allCaps are the capabilities the kernel knows and this process may
	// grant, for --privileged and --cap-add ALL.
	allCaps []string
}

func readHostFacts() hostFacts {
	var h hostFacts
	var st unix.Statfs_t
	h.cgroup2 = unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil {
		h.apparmor = bytes.HasPrefix(b, []byte("Y"))
	}
	if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
		h.selinux = true
	}
	last := len(knownCapabilities) - 1
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && n >= 0 && n < last {
			last = n
		}
	}
	bounding := boundingSet()
	for i, c := range knownCapabilities[:last+1] {
		if bounding&(1<<i) != 0 {
			h.allCaps = append(h.allCaps, c)
		}
	}
	return h
}

// boundingSet is the capability bounding set of this process (all ones if
// it cannot be read). A container cannot be granted a capability outside
// it: when berthd itself runs in a container that lacks some, "all
// capabilities" means all that berthd has, or the runtime would fail to
// apply them.
func boundingSet() uint64 {
	return statusCaps("CapBnd:", ^uint64(0))
}
