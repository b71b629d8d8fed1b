package cgroups

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v2Devices applies device rules on v2: the rules are compiled into an
// eBPF program (devices_bpf.go) attached to the cgroup with
// BPF_PROG_ATTACH. Such an attachment outlives the process that made it,
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
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		Instructions: deviceProgram(rules),
		License:      "Apache-2.0",
	})
	if err != nil {
		return fmt.Errorf("load device program: %w", err)
	}
	defer prog.Close()
	return attachDeviceProgram(dir, prog)
}

// attachDeviceProgram attaches prog to the cgroup at dir, then detaches the
// device programs that were attached there before. The new program is in
// place before the old ones go, so the cgroup is never without rules.
// Ancestors' programs are not touched: the kernel runs them too (with
// BPF_F_ALLOW_MULTI every level must allow).
func attachDeviceProgram(dir string, prog *ebpf.Program) error {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("query device programs of %s: %w", dir, err)
	}
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("attach device program to %s: %w", dir, err)
	}
	var errs []error
	for _, p := range old.Programs {
		if err := detachProgram(fd, p.ID); err != nil {
			errs = append(errs, fmt.Errorf("detach old device program %d from %s: %w", p.ID, dir, err))
		}
	}
	return errors.Join(errs...)
}

func detachProgram(cgroupFd int, id ebpf.ProgramID) error {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return err
	}
	defer p.Close()
	return link.RawDetachProgram(link.RawDetachProgramOptions{
		Target: cgroupFd, Program: p, Attach: ebpf.AttachCGroupDevice,
	})
}
