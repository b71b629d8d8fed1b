package caps

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// lastCapFile holds the number of the running kernel's highest capability.
const lastCapFile = "/proc/sys/kernel/cap_last_cap"

// Last returns the highest capability the running kernel knows, read from
// /proc/sys/kernel/cap_last_cap once.
func Last() (Cap, error) { return last() }

var last = sync.OnceValues(readLast)

func readLast() (Cap, error) {
	b, err := os.ReadFile(lastCapFile)
	if err != nil {
		return 0, fmt.Errorf("read the kernel's last capability: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("read the kernel's last capability: %s holds %q, not a number from 0 to 63", lastCapFile, b)
	}
	return Cap(n), nil
}

// Known returns, in ascending order, the names of the capabilities that both
// this package and the running kernel know: what `berth-runtime features`
// reports. When the kernel's last capability cannot be read (no /proc), it
// returns every name this package knows.
func Known() []string {
	last, err := Last()
	if err != nil || last > MaxKnown {
		last = MaxKnown
	}
	return append([]string(nil), capNames[:last+1]...)
}

// Validate checks every capability name of c against this package and the
// running kernel, and the relations the kernel enforces between the sets:
// effective and ambient must be permitted, ambient must be inheritable. The
// error names the set and the capability. A nil c is valid: no capability.
func Validate(c *specs.LinuxCapabilities) error {
	last, err := Last()
	if err != nil {
		return err
	}
	_, err = parseSets(c, last)
	return err
}

// DropBounding is the first of the three steps that give a container
// process its capabilities; the calling goroutine must be locked to its OS
// thread (runtime.LockOSThread) through all three and until execve, because
// capabilities belong to a thread, not to a process:
//
//  1. DropBounding(spec.Bounding), while the thread still holds
//     CAP_SETPCAP: every capability not in keep leaves the bounding set
//     (prctl PR_CAPBSET_DROP), so no later execve can gain it back;
//  2. the caller sets PR_SET_KEEPCAPS to 1 and switches groups, gid and uid:
//     keepcaps keeps the permitted set through a switch away from uid 0;
//  3. Apply(spec) sets permitted, effective and inheritable, raises the
//     ambient set and clears keepcaps.
//
// Capabilities already outside the bounding set are left alone, so calling
// DropBounding without CAP_SETPCAP succeeds when nothing needs dropping.
// Every name is checked before anything changes; an unknown one is an error
// wrapping ErrUnknown.
func DropBounding(keep []string) error {
	last, err := Last()
	if err != nil {
		return err
	}
	kept, err := parseSet(keep, last, "bounding")
	if err != nil {
		return err
	}
	for c := Cap(0); c <= last; c++ {
		if kept.has(c) {
			continue
		}
		// Dropped without asking first (one system call per capability,
		// not two): only a refusal, for want of CAP_SETPCAP, is checked
		// against the set, since a capability already gone needs no drop.
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err == nil {
			continue
		}
		if in, rerr := inBounding(c); rerr == nil && !in {
			continue
		}
		return fmt.Errorf("drop %s from the bounding set: %w", c, os.NewSyscallError("prctl PR_CAPBSET_DROP", err))
	}
	return nil
}

// Apply is the last step (see DropBounding): on the calling thread it sets
// the permitted, effective and inheritable sets of c with capset(2)
// (version 3), then empties the ambient set and raises each capability of
// c.Ambient, then clears PR_SET_KEEPCAPS. c.Bounding is not used: the
// bounding set is DropBounding's. A nil c drops every capability.
//
// The kernel only lowers the permitted set: after a switch to a non-root
// uid, the capabilities must have been kept with PR_SET_KEEPCAPS. Every name
// is checked (as Validate does) before anything changes.
func Apply(c *specs.LinuxCapabilities) error {
	last, err := Last()
	if err != nil {
		return err
	}
	s, err := parseSets(c, last)
	if err != nil {
		return err
	}
	if err := capset(s); err != nil {
		return err
	}
	if err := setAmbient(s.ambient, last); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keepcaps: %w", os.NewSyscallError("prctl PR_SET_KEEPCAPS", err))
	}
	return nil
}

// Current returns the five capability sets of the calling thread, each in
// ascending order: effective, permitted and inheritable from capget(2),
// bounding and ambient from prctl(2). A capability this package has no name
// for is shown as "CAP_<number>".
func Current() (*specs.LinuxCapabilities, error) {
	last, err := Last()
	if err != nil {
		return nil, err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("read capabilities: %w", os.NewSyscallError("capget", err))
	}
	var bounding, ambient set
	for c := Cap(0); c <= last; c++ {
		in, err := inBounding(c)
		if err != nil {
			return nil, err
		}
		if in {
			bounding |= 1 << uint(c)
		}
		in, err = inAmbient(c)
		if err != nil {
			return nil, err
		}
		if in {
			ambient |= 1 << uint(c)
		}
	}
	return &specs.LinuxCapabilities{
		Bounding:    bounding.names(),
		Effective:   join(data[0].Effective, data[1].Effective).names(),
		Inheritable: join(data[0].Inheritable, data[1].Inheritable).names(),
		Permitted:   join(data[0].Permitted, data[1].Permitted).names(),
		Ambient:     ambient.names(),
	}, nil
}

// sets holds the five sets of a specs.LinuxCapabilities as masks.
type sets struct {
	bounding, effective, inheritable, permitted, ambient set
}

// parseSets turns c into masks, checking the names and the relations
// between the sets that capset(2) and PR_CAP_AMBIENT_RAISE enforce.
func parseSets(c *specs.LinuxCapabilities, last Cap) (sets, error) {
	var s sets
	if c == nil {
		return s, nil
	}
	var err error
	for _, f := range []struct {
		field string
		names []string
		dst   *set
	}{
		{"bounding", c.Bounding, &s.bounding},
		{"effective", c.Effective, &s.effective},
		{"inheritable", c.Inheritable, &s.inheritable},
		{"permitted", c.Permitted, &s.permitted},
		{"ambient", c.Ambient, &s.ambient},
	} {
		if *f.dst, err = parseSet(f.names, last, f.field); err != nil {
			return s, err
		}
	}
	if extra := s.effective &^ s.permitted; extra != 0 {
		return s, fmt.Errorf("capabilities.effective: %s not in the permitted set: the kernel refuses it", strings.Join(extra.names(), ", "))
	}
	if extra := s.ambient &^ (s.permitted & s.inheritable); extra != 0 {
		return s, fmt.Errorf("capabilities.ambient: %s not in both the permitted and inheritable sets: the kernel refuses to raise it", strings.Join(extra.names(), ", "))
	}
	return s, nil
}

// parseSet turns the names of one set into a mask. The error names field.
func parseSet(names []string, last Cap, field string) (set, error) {
	var s set
	for _, n := range names {
		c, err := Parse(n)
		if err != nil {
			return 0, fmt.Errorf("capabilities.%s: %w", field, err)
		}
		if c > last {
			return 0, fmt.Errorf("capabilities.%s: %w %s: the running kernel's last capability is %s", field, ErrUnknown, c, last)
		}
		s |= 1 << uint(c)
	}
	return s, nil
}

// join makes one mask of the two 32-bit halves capget(2) and capset(2) use.
func join(low, high uint32) set { return set(low) | set(high)<<32 }

// capset sets the permitted, effective and inheritable sets of the thread.
func capset(s sets) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s.effective), Permitted: uint32(s.permitted), Inheritable: uint32(s.inheritable)},
		{Effective: uint32(s.effective >> 32), Permitted: uint32(s.permitted >> 32), Inheritable: uint32(s.inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		err = os.NewSyscallError("capset", err)
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set capabilities (permitted %v, inheritable %v): a capability is not held in the permitted set, or an inheritable one is outside the bounding set: %w",
				s.permitted.names(), s.inheritable.names(), err)
		}
		return fmt.Errorf("set capabilities: %w", err)
	}
	return nil
}

// setAmbient empties the ambient set and raises each capability of s.
func setAmbient(s set, last Cap) error {
	err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	if errors.Is(err, unix.EINVAL) && s == 0 {
		return nil // a kernel before 4.3: no ambient set to clear
	}
	if err != nil {
		return fmt.Errorf("clear the ambient set: %w", os.NewSyscallError("prctl PR_CAP_AMBIENT_CLEAR_ALL", err))
	}
	for c := Cap(0); c <= last; c++ {
		if !s.has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise %s in the ambient set: %w", c, os.NewSyscallError("prctl PR_CAP_AMBIENT_RAISE", err))
		}
	}
	return nil
}

// inBounding reports whether c is in the thread's bounding set.
func inBounding(c Cap) (bool, error) {
	r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
	if err != nil {
		return false, fmt.Errorf("read %s in the bounding set: %w", c, os.NewSyscallError("prctl PR_CAPBSET_READ", err))
	}
	return r == 1, nil
}

// inAmbient reports whether c is in the thread's ambient set. A kernel
// without ambient capabilities (before 4.3) has none.
func inAmbient(c Cap) (bool, error) {
	r, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0)
	if errors.Is(err, unix.EINVAL) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s in the ambient set: %w", c, os.NewSyscallError("prctl PR_CAP_AMBIENT_IS_SET", err))
	}
	return r == 1, nil
}

// Raw is c worked out for a process that applies it with bare system calls
// (see DropBounding and Apply for the order): the capabilities to drop from
// the bounding set, capset(2)'s data, and the ambient ones to raise.
type Raw struct {
	Drop    []uintptr
	Data    [2]unix.CapUserData
	Ambient []uintptr
}

// RawOf checks c as Apply does and returns it as Raw.
func RawOf(c *specs.LinuxCapabilities) (*Raw, error) {
	last, err := Last()
	if err != nil {
		return nil, err
	}
	s, err := parseSets(c, last)
	if err != nil {
		return nil, err
	}
	r := &Raw{Data: [2]unix.CapUserData{
		{Effective: uint32(s.effective), Permitted: uint32(s.permitted), Inheritable: uint32(s.inheritable)},
		{Effective: uint32(s.effective >> 32), Permitted: uint32(s.permitted >> 32), Inheritable: uint32(s.inheritable >> 32)},
	}}
	for x := Cap(0); x <= last; x++ {
		if !s.bounding.has(x) {
			r.Drop = append(r.Drop, uintptr(x))
		}
		if s.ambient.has(x) {
			r.Ambient = append(r.Ambient, uintptr(x))
		}
	}
	return r, nil
}
