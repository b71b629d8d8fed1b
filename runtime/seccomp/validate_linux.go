package seccomp

import (
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// ErrInvalid is the category of every error Validate returns.
var ErrInvalid = errors.New("invalid seccomp profile")

const (
	// maxArgs is the number of arguments a system call has.
	maxArgs = 6
	// maxErrno is the highest errno the kernel returns (MAX_ERRNO): it
	// clamps a larger SCMP_ACT_ERRNO value to it.
	maxErrno = 4095
	// maxTraceData is the largest value SCMP_ACT_TRACE hands the tracer.
	maxTraceData = 0xffff
)

// notifyRefused names the system calls a SCMP_ACT_NOTIFY rule may not
// match: the container init makes them after loading the filter to hand the
// listener to the agent, so they would wait for an agent that never gets it.
func notifyRefused() []string { return []string{"write", "sendmsg"} }

// Validate checks every field of c before any process is made, and returns
// an error wrapping ErrInvalid that names the first offending field, as in
// "seccomp.syscalls[3].args[0].op: unknown operator \"SCMP_CMP_FOO\"":
//
//   - defaultAction and each rule's action are actions of the
//     specification; defaultAction is not SCMP_ACT_NOTIFY (the init's own
//     system calls would wait for an agent that has no listener yet);
//   - defaultErrnoRet and errnoRet only come with SCMP_ACT_ERRNO (at most
//     4095) or SCMP_ACT_TRACE (at most 65535);
//   - each architecture is known, and the linked libseccomp can add it to
//     a filter of the native architecture (same byte order);
//   - each flag is known and accepted by the running kernel;
//   - each rule has names, none empty, at most 6 args, each with an index
//     from 0 to 5 and a known operator;
//   - listenerPath is set if and only if a rule has SCMP_ACT_NOTIFY, and no
//     such rule matches write or sendmsg.
//
// A system call name that libseccomp does not know for the native
// architecture is not an error: Load skips it. Profiles list the system
// calls of newer kernels than the one they run on, and runc and crun (unless
// its annotation run.oci.seccomp_fail_unknown_syscall is set) skip them too.
// A nil c is valid: no filter.
func Validate(c *specs.LinuxSeccomp) error {
	if c == nil {
		return nil
	}
	if _, err := ruleAction(c.DefaultAction, c.DefaultErrnoRet, "seccomp.defaultAction", "seccomp.defaultErrnoRet"); err != nil {
		return err
	}
	if c.DefaultAction == specs.ActNotify {
		return fmt.Errorf("%w: seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action: the container's init would wait on its own system calls before it can hand the listener to the agent", ErrInvalid)
	}
	if err := validateArchs(c.Architectures); err != nil {
		return err
	}
	if err := validateFlags(c.Flags); err != nil {
		return err
	}
	notifyRule := -1
	for i := range c.Syscalls {
		if err := validateRule(&c.Syscalls[i], fmt.Sprintf("seccomp.syscalls[%d]", i)); err != nil {
			return err
		}
		if notifyRule < 0 && c.Syscalls[i].Action == specs.ActNotify {
			notifyRule = i
		}
	}
	if notifyRule >= 0 && c.ListenerPath == "" {
		return fmt.Errorf("%w: seccomp.listenerPath: required by the SCMP_ACT_NOTIFY rule seccomp.syscalls[%d]", ErrInvalid, notifyRule)
	}
	if notifyRule < 0 && c.ListenerPath != "" {
		return fmt.Errorf("%w: seccomp.listenerPath: %q is set but no rule has action SCMP_ACT_NOTIFY", ErrInvalid, c.ListenerPath)
	}
	return nil
}

// ruleAction returns libseccomp's action for a with its return code: the
// errnoRet given, or EPERM for SCMP_ACT_ERRNO and SCMP_ACT_TRACE as runc
// does. The errors name actionField or errnoField.
func ruleAction(a specs.LinuxSeccompAction, errnoRet *uint, actionField, errnoField string) (libseccomp.ScmpAction, error) {
	act, ok := lookupAction(a)
	if !ok {
		return act, fmt.Errorf("%w: %s: unknown action %q", ErrInvalid, actionField, a)
	}
	if act != libseccomp.ActErrno && act != libseccomp.ActTrace {
		if errnoRet != nil {
			return act, fmt.Errorf("%w: %s: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", ErrInvalid, errnoField, a)
		}
		return act, nil
	}
	if errnoRet == nil {
		return act.SetReturnCode(int16(unix.EPERM)), nil
	}
	limit := uint(maxErrno)
	if act == libseccomp.ActTrace {
		limit = maxTraceData
	}
	if *errnoRet > limit {
		return act, fmt.Errorf("%w: %s: %d is above %d, the most %s can return", ErrInvalid, errnoField, *errnoRet, limit, a)
	}
	return act.SetReturnCode(int16(*errnoRet)), nil
}

// validateArchs checks that each architecture is known and supported.
func validateArchs(as []specs.Arch) error {
	if len(as) == 0 {
		return nil
	}
	supported := supportedArchs()
	for i, a := range as {
		field := fmt.Sprintf("seccomp.architectures[%d]", i)
		if _, ok := lookupArch(a); !ok {
			return fmt.Errorf("%w: %s: unknown architecture %q", ErrInvalid, field, a)
		}
		if !slices.Contains(supported, a) {
			native, _ := libseccomp.GetNativeArch()
			return fmt.Errorf("%w: %s: libseccomp %s cannot filter %s on this host (native architecture %s; a filter holds architectures of one byte order only)",
				ErrInvalid, field, LibseccompVersion(), a, native)
		}
	}
	return nil
}

// validateFlags checks that each flag is known and accepted by the kernel.
func validateFlags(fs []specs.LinuxSeccompFlag) error {
	for i, f := range fs {
		field := fmt.Sprintf("seccomp.flags[%d]", i)
		bit, ok := lookupFlag(f)
		if !ok {
			return fmt.Errorf("%w: %s: unknown flag %q", ErrInvalid, field, f)
		}
		if !kernelAcceptsFlags(probeFlags(bit)) {
			return fmt.Errorf("%w: %s: %s is not supported by the running kernel", ErrInvalid, field, f)
		}
	}
	return nil
}

// validateRule checks one entry of seccomp.syscalls, called field.
func validateRule(r *specs.LinuxSyscall, field string) error {
	if _, err := ruleAction(r.Action, r.ErrnoRet, field+".action", field+".errnoRet"); err != nil {
		return err
	}
	if len(r.Names) == 0 {
		return fmt.Errorf("%w: %s.names: no system call named", ErrInvalid, field)
	}
	for j, n := range r.Names {
		if n == "" {
			return fmt.Errorf("%w: %s.names[%d]: empty system call name", ErrInvalid, field, j)
		}
		if r.Action == specs.ActNotify && slices.Contains(notifyRefused(), n) {
			return fmt.Errorf("%w: %s.names[%d]: SCMP_ACT_NOTIFY cannot be used for %s: the container's init needs it to hand the listener to the agent", ErrInvalid, field, j, n)
		}
	}
	if len(r.Args) > maxArgs {
		return fmt.Errorf("%w: %s.args: %d conditions, at most %d are allowed", ErrInvalid, field, len(r.Args), maxArgs)
	}
	for j, a := range r.Args {
		if a.Index >= maxArgs {
			return fmt.Errorf("%w: %s.args[%d].index: %d, system call arguments are numbered 0 to %d", ErrInvalid, field, j, a.Index, maxArgs-1)
		}
		if _, ok := lookupOperator(a.Op); !ok {
			return fmt.Errorf("%w: %s.args[%d].op: unknown operator %q", ErrInvalid, field, j, a.Op)
		}
	}
	return nil
}
