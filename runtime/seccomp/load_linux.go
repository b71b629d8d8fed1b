package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

const (
	// maxInsns is the longest filter the kernel loads (BPF_MAXINSNS).
	maxInsns = 4096
	// optimizeAbove is the number of rules above which libseccomp is asked
	// for a binary tree of system call numbers instead of a linear list.
	// libseccomp up to 2.5.4 misbehaves with the tree and no rules.
	optimizeAbove = 32
)

// Load builds the filter c describes and loads it for every thread of the
// calling process (SECCOMP_FILTER_FLAG_TSYNC), so it holds for whatever the
// process execs next. c is checked with Validate first. When a rule has
// SCMP_ACT_NOTIFY, Load returns the listener (a close-on-exec descriptor on
// which the kernel queues the matched system calls for an agent to answer);
// otherwise it returns -1.
//
// The filter follows the specification: defaultAction (with
// defaultErrnoRet) for system calls no rule matches, the native
// architecture plus c.Architectures, and for each rule its action (with
// errnoRet) when the call is one of its names and its args all hold. As in
// runc, when two args of a rule compare the same argument index, the rule
// matches when any one of its args holds instead. Names unknown to
// libseccomp are skipped (see Validate); a rule whose action is the default
// action is skipped too, as it changes nothing. SCMP_ACT_KILL kills the
// thread, as SCMP_ACT_KILL_THREAD; errnoRet defaults to EPERM.
//
// Flags: SECCOMP_FILTER_FLAG_TSYNC is always used; _LOG and _SPEC_ALLOW are
// passed on; _WAIT_KILLABLE_RECV is passed on when there is a listener (the
// kernel only takes it with one) and ignored otherwise, as libseccomp does.
//
// The kernel only loads a filter for a thread that has set no_new_privs
// (prctl PR_SET_NO_NEW_PRIVS) or holds CAP_SYS_ADMIN in its user namespace;
// Load sets neither, that is the caller's choice (the specification's
// process.noNewPrivileges). Both belong to a thread, so the caller must set
// them and call Load on one OS thread (runtime.LockOSThread); the kernel
// then gives no_new_privs to the other threads with the filter. Without
// either the error wraps EACCES. A filter cannot be removed once loaded.
func Load(c *specs.LinuxSeccomp) (notifyFD int, err error) {
	if c == nil {
		return -1, fmt.Errorf("%w: no seccomp profile to load", ErrInvalid)
	}
	if err := Validate(c); err != nil {
		return -1, err
	}
	prog, err := compile(c)
	if err != nil {
		return -1, err
	}
	return install(prog, loadFlags(c))
}

// compile builds c's filter with libseccomp and returns its BPF program.
func compile(c *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	def, err := ruleAction(c.DefaultAction, c.DefaultErrnoRet, "seccomp.defaultAction", "seccomp.defaultErrnoRet")
	if err != nil {
		return nil, err
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("create seccomp filter: %w", err)
	}
	defer f.Release()
	for i, a := range c.Architectures {
		sa, _ := lookupArch(a)
		if err := f.AddArch(sa); err != nil {
			return nil, fmt.Errorf("seccomp.architectures[%d]: add %s: %w", i, a, err)
		}
	}
	if len(c.Syscalls) > optimizeAbove {
		// Only a speed-up: libseccomp before 2.5 cannot, and then the
		// filter is a linear list, which is correct too.
		_ = f.SetOptimize(2)
	}
	for i := range c.Syscalls {
		if err := addRule(f, &c.Syscalls[i], i, def); err != nil {
			return nil, err
		}
	}
	return export(f)
}

// addRule adds rule i, r, to f for each of its names that libseccomp knows.
func addRule(f *libseccomp.ScmpFilter, r *specs.LinuxSyscall, i int, def libseccomp.ScmpAction) error {
	field := fmt.Sprintf("seccomp.syscalls[%d]", i)
	act, err := ruleAction(r.Action, r.ErrnoRet, field+".action", field+".errnoRet")
	if err != nil {
		return err
	}
	if act == def {
		return nil // libseccomp refuses a rule that repeats the default
	}
	groups, err := conditions(r.Args, field)
	if err != nil {
		return err
	}
	for _, name := range r.Names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			continue // unknown to libseccomp: see Validate
		}
		for _, conds := range groups {
			if len(conds) == 0 {
				err = f.AddRule(nr, act)
			} else {
				err = f.AddRuleConditional(nr, act, conds)
			}
			if err != nil {
				return fmt.Errorf("%s: add rule for %s: %w", field, name, err)
			}
		}
	}
	return nil
}

// conditions turns a rule's args into groups of conditions, each group a
// libseccomp rule: one group of all args (they must all hold), or, when two
// args compare the same argument, one group per arg (any one must hold),
// which is what runc does with such profiles.
func conditions(args []specs.LinuxSeccompArg, field string) ([][]libseccomp.ScmpCondition, error) {
	var all []libseccomp.ScmpCondition
	seen := make(map[uint]bool)
	sameIndex := false
	for j, a := range args {
		op, _ := lookupOperator(a.Op)
		// For SCMP_CMP_MASKED_EQ, Value is the mask and ValueTwo the
		// datum; the other operators use Value only.
		cond, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.args[%d]: %w", ErrInvalid, field, j, err)
		}
		sameIndex = sameIndex || seen[a.Index]
		seen[a.Index] = true
		all = append(all, cond)
	}
	if !sameIndex {
		return [][]libseccomp.ScmpCondition{all}, nil
	}
	groups := make([][]libseccomp.ScmpCondition, len(all))
	for j, cond := range all {
		groups[j] = []libseccomp.ScmpCondition{cond}
	}
	return groups, nil
}

// export returns f's BPF program.
func export(f *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	b, err := f.ExportBPFMem()
	if errors.Is(err, unix.EOPNOTSUPP) {
		b, err = exportThroughMemfd(f) // libseccomp before 2.6
	}
	if err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	prog, err := DecodeProgram(b)
	if err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	return prog, nil
}

// exportThroughMemfd has libseccomp write f's program to a memfd: this
// needs no writable filesystem, unlike a temporary file, and no reader
// goroutine, unlike a pipe.
func exportThroughMemfd(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("berth-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	file := os.NewFile(uintptr(fd), "memfd:berth-seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(file)
}

// HasNotify reports whether a rule of c has SCMP_ACT_NOTIFY.
func HasNotify(c *specs.LinuxSeccomp) bool {
	for _, r := range c.Syscalls {
		if r.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// loadFlags returns the flags of seccomp(2) for c (see Load).
func loadFlags(c *specs.LinuxSeccomp) uint {
	listener := HasNotify(c)
	flags := uint(unix.SECCOMP_FILTER_FLAG_TSYNC)
	for _, f := range c.Flags {
		bit, _ := lookupFlag(f)
		if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !listener {
			continue
		}
		flags |= bit
	}
	if listener {
		// With a listener seccomp(2) returns its descriptor, so a thread
		// that cannot be synchronised must be reported as ESRCH rather
		// than by its id; the kernel refuses TSYNC with NEW_LISTENER alone.
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	return flags
}

// install loads prog with seccomp(2) and flags, and returns the listener
// when flags ask for one, else -1.
func install(prog []unix.SockFilter, flags uint) (int, error) {
	if len(prog) > maxInsns {
		return -1, fmt.Errorf("load seccomp filter: %d BPF instructions, the kernel takes at most %d", len(prog), maxInsns)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	switch {
	case errno == unix.EACCES:
		return -1, fmt.Errorf("load seccomp filter: set no_new_privs or hold CAP_SYS_ADMIN first: %w", os.NewSyscallError("seccomp", errno))
	case errno != 0:
		return -1, fmt.Errorf("load seccomp filter (flags %#x): %w", flags, os.NewSyscallError("seccomp", errno))
	case flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0:
		return int(r), nil
	case r != 0:
		return -1, fmt.Errorf("load seccomp filter: thread %d of the process could not take it (TSYNC); nothing was loaded", r)
	}
	return -1, nil
}

// kernelAcceptsFlags reports whether the kernel knows the seccomp(2) filter
// flags f. It loads nothing: given no program, a kernel that accepts the
// flags fails to read it (EFAULT), one that does not fails earlier (EINVAL).
func kernelAcceptsFlags(f uint) bool {
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f), 0)
	return errno == unix.EFAULT
}

// LoadFlags returns the flags of seccomp(2) Install uses for c.
func LoadFlags(c *specs.LinuxSeccomp) uint { return loadFlags(c) }
