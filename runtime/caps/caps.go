// Package caps names Linux capabilities and sets the capability sets of a
// container process (bounding, permitted, effective, inheritable, ambient)
// as the OCI runtime specification describes them.
//
// Names are the kernel's, with the "CAP_" prefix: "CAP_CHOWN" is 0 and
// "CAP_CHECKPOINT_RESTORE" is 40. The Linux-only part (reading and changing
// the sets of the calling thread) lives in caps_linux.go; see DropBounding
// for the order in which a container init uses it.
package caps

import (
	"errors"
	"fmt"
)

// Cap is a Linux capability number, as in <linux/capability.h>.
type Cap int

// ErrUnknown is the category of every error about a capability name this
// package does not know, or a capability the running kernel does not have.
var ErrUnknown = errors.New("unknown capability")

// capNames holds the name of each capability, indexed by its number.
// It is never written.
var capNames = [...]string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// MaxKnown is the highest capability this package has a name for.
const MaxKnown = Cap(len(capNames) - 1)

// String returns the capability's name, or "CAP_<number>" for a number
// this package has no name for.
func (c Cap) String() string {
	if c >= 0 && c <= MaxKnown {
		return capNames[c]
	}
	return fmt.Sprintf("CAP_%d", int(c))
}

// Parse returns the capability called name. The name must be spelled as the
// kernel headers and the runtime specification spell it: upper case with the
// "CAP_" prefix. Any other name is an error wrapping ErrUnknown that quotes
// it. Parse does not consult the running kernel: Validate, DropBounding and
// Apply also refuse capabilities above the kernel's last one.
func Parse(name string) (Cap, error) {
	for i, n := range capNames {
		if n == name {
			return Cap(i), nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknown, name)
}

// set is a capability set as a bit mask: bit n is capability n.
type set uint64

func (s set) has(c Cap) bool { return s&(1<<uint(c)) != 0 }

// names lists the capabilities of s in ascending order.
func (s set) names() []string {
	out := []string{}
	for c := Cap(0); c < 64; c++ {
		if s.has(c) {
			out = append(out, c.String())
		}
	}
	return out
}
