package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v2Devices applies device rules on v2: the rules are compiled into an
// eBPF program (devices_bpf.go) loaded and attached to the cgroup with
// bpf(2) directly (BPF_PROG_LOAD, BPF_PROG_ATTACH): a library for it
// (cilium/ebpf) made every start of the runtime binary slower. Such an attachment outlives the process that made it,
// which a bpf_link would not, so a later runtime process can replace it.
type v2Devices struct{}

func (v2Devices) Name() string                       { return "" }
func (v2Devices) Wants(r *specs.LinuxResources) bool { return len(r.Devices) > 0 }
func (v2Devices) Stat(string, *Stats) error          { return nil }

func (v2Devices) Set(dir string, r *specs.LinuxResources) error {
	rules, err := normalizeDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	prog, err := assemble(deviceProgram(rules))
	if err != nil {
		return err
	}
	fd, err := loadDeviceProgram(prog)
	if err != nil {
		return fmt.Errorf("load device program: %w", err)
	}
	defer unix.Close(fd)
	return attachDeviceProgram(dir, fd)
}

// attachDeviceProgram attaches the program prog to the cgroup at dir, then
// detaches the device programs that were attached there before. The new
// program is in place before the old ones go, so the cgroup is never
// without rules. Ancestors' programs are not touched: the kernel runs them
// too (with BPF_F_ALLOW_MULTI every level must allow).
func attachDeviceProgram(dir string, prog int) error {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	old, err := queryDevicePrograms(fd)
	if err != nil {
		return fmt.Errorf("query device programs of %s: %w", dir, err)
	}
	attach := bpfAttachAttr{targetFd: uint32(fd), attachBpfFd: uint32(prog), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return fmt.Errorf("attach device program to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		if err := detachProgram(fd, id); err != nil {
			errs = append(errs, fmt.Errorf("detach old device program %d from %s: %w", id, dir, err))
		}
	}
	return errors.Join(errs...)
}

func detachProgram(cgroupFd int, id uint32) error {
	get := bpfGetIDAttr{id: id}
	p, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
	if err != nil {
		return err
	}
	defer unix.Close(p)
	detach := bpfAttachAttr{targetFd: uint32(cgroupFd), attachBpfFd: uint32(p), attachType: unix.BPF_CGROUP_DEVICE}
	_, err = bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach))
	return err
}

// The bpf(2) attributes used here: the leading fields of union bpf_attr
// for each command (include/uapi/linux/bpf.h). The kernel zero-fills what
// a shorter attribute leaves out. Its __aligned_u64 addresses are held as
// pointers (so the garbage collector and stack moves see them), which
// has their layout on 64-bit platforms only (bpfSupported).
type (
	bpfProgLoadAttr struct {
		progType    uint32
		insnCnt     uint32
		insns       unsafe.Pointer
		license     unsafe.Pointer
		logLevel    uint32
		logSize     uint32
		logBuf      unsafe.Pointer
		kernVersion uint32
		progFlags   uint32
	}
	bpfAttachAttr struct {
		targetFd     uint32
		attachBpfFd  uint32
		attachType   uint32
		attachFlags  uint32
		replaceBpfFd uint32
	}
	bpfQueryAttr struct {
		targetFd    uint32
		attachType  uint32
		queryFlags  uint32
		attachFlags uint32
		progIDs     unsafe.Pointer
		progCnt     uint32
		_           uint32
	}
	bpfGetIDAttr struct {
		id        uint32
		nextID    uint32
		openFlags uint32
	}
)

// bpfSupported: pointers have the size of the attributes' __aligned_u64.
const bpfSupported = unsafe.Sizeof(uintptr(0)) == 8

// bpf calls bpf(2); a returned descriptor is close-on-exec.
func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
		if errno == unix.EINTR || errno == unix.EAGAIN && cmd == unix.BPF_PROG_LOAD {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), nil
	}
}

// loadDeviceProgram loads an assembled BPF_PROG_TYPE_CGROUP_DEVICE program
// and returns its descriptor. When the verifier refuses it, the load is
// repeated with the verifier's log, which the error then quotes.
func loadDeviceProgram(prog []byte) (int, error) {
	if !bpfSupported {
		return -1, fmt.Errorf("%w: device programs on a 32-bit platform", ErrUnsupported)
	}
	license := []byte("Apache-2.0\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog) / bpfInsnBytes),
		insns:    unsafe.Pointer(&prog[0]),
		license:  unsafe.Pointer(&license[0]),
	}
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == nil || !(errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL)) {
		goruntime.KeepAlive(prog)
		goruntime.KeepAlive(license)
		return fd, err
	}
	log := make([]byte, 64<<10)
	attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), unsafe.Pointer(&log[0])
	fd, lerr := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	goruntime.KeepAlive(prog)
	goruntime.KeepAlive(license)
	if lerr == nil {
		return fd, nil // refused once only: take it
	}
	if n := bytes.IndexByte(log, 0); n > 0 {
		return -1, fmt.Errorf("%w: verifier: %s", err, strings.TrimSpace(string(log[:n])))
	}
	return -1, err
}

// queryDevicePrograms lists the ids of the device programs attached to the
// cgroup open at fd.
func queryDevicePrograms(fd int) ([]uint32, error) {
	for n := 16; ; n *= 4 {
		ids := make([]uint32, n)
		attr := bpfQueryAttr{targetFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE,
			progIDs: unsafe.Pointer(&ids[0]), progCnt: uint32(n)}
		_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		goruntime.KeepAlive(ids)
		if errors.Is(err, unix.ENOSPC) && n < 1<<16 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return ids[:attr.progCnt], nil
	}
}
