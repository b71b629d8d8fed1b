package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The names of the runtime specification and what they stand for in
// libseccomp and the kernel. Each list is built afresh by a function, so
// nothing here can be changed by a caller.

// flagTsync is the flag runc accepts for SECCOMP_FILTER_FLAG_TSYNC, which
// the specification does not list; Load always uses it.
const flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// actions lists every action of the specification, in its order.
func actions() []specs.LinuxSeccompAction {
	return []specs.LinuxSeccompAction{
		specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
		specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
	}
}

// lookupAction returns libseccomp's action for a, without a return code.
// SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD, as in libseccomp and runc.
func lookupAction(a specs.LinuxSeccompAction) (libseccomp.ScmpAction, bool) {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, true
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, true
	case specs.ActTrap:
		return libseccomp.ActTrap, true
	case specs.ActErrno:
		return libseccomp.ActErrno, true
	case specs.ActTrace:
		return libseccomp.ActTrace, true
	case specs.ActAllow:
		return libseccomp.ActAllow, true
	case specs.ActLog:
		return libseccomp.ActLog, true
	case specs.ActNotify:
		return libseccomp.ActNotify, true
	}
	return libseccomp.ActInvalid, false
}

// operators lists every comparison operator of the specification.
func operators() []specs.LinuxSeccompOperator {
	return []specs.LinuxSeccompOperator{
		specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
	}
}

// lookupOperator returns libseccomp's comparison for op.
func lookupOperator(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, bool) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, true
	case specs.OpLessThan:
		return libseccomp.CompareLess, true
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, true
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, true
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, true
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, true
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, true
	}
	return libseccomp.CompareInvalid, false
}

// archs lists every architecture of the specification.
func archs() []specs.Arch {
	return []specs.Arch{
		specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL,
		specs.ArchMIPSEL64, specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64,
		specs.ArchPPC64LE, specs.ArchS390, specs.ArchS390X, specs.ArchPARISC,
		specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64, specs.ArchM68K,
		specs.ArchSH, specs.ArchSHEB,
	}
}

// lookupArch returns libseccomp's token for a.
func lookupArch(a specs.Arch) (libseccomp.ScmpArch, bool) {
	switch a {
	case specs.ArchX86:
		return libseccomp.ArchX86, true
	case specs.ArchX86_64:
		return libseccomp.ArchAMD64, true
	case specs.ArchX32:
		return libseccomp.ArchX32, true
	case specs.ArchARM:
		return libseccomp.ArchARM, true
	case specs.ArchAARCH64:
		return libseccomp.ArchARM64, true
	case specs.ArchMIPS:
		return libseccomp.ArchMIPS, true
	case specs.ArchMIPS64:
		return libseccomp.ArchMIPS64, true
	case specs.ArchMIPS64N32:
		return libseccomp.ArchMIPS64N32, true
	case specs.ArchMIPSEL:
		return libseccomp.ArchMIPSEL, true
	case specs.ArchMIPSEL64:
		return libseccomp.ArchMIPSEL64, true
	case specs.ArchMIPSEL64N32:
		return libseccomp.ArchMIPSEL64N32, true
	case specs.ArchPPC:
		return libseccomp.ArchPPC, true
	case specs.ArchPPC64:
		return libseccomp.ArchPPC64, true
	case specs.ArchPPC64LE:
		return libseccomp.ArchPPC64LE, true
	case specs.ArchS390:
		return libseccomp.ArchS390, true
	case specs.ArchS390X:
		return libseccomp.ArchS390X, true
	case specs.ArchPARISC:
		return libseccomp.ArchPARISC, true
	case specs.ArchPARISC64:
		return libseccomp.ArchPARISC64, true
	case specs.ArchRISCV64:
		return libseccomp.ArchRISCV64, true
	case specs.ArchLOONGARCH64:
		return libseccomp.ArchLOONGARCH64, true
	case specs.ArchM68K:
		return libseccomp.ArchM68K, true
	case specs.ArchSH:
		return libseccomp.ArchSH, true
	case specs.ArchSHEB:
		return libseccomp.ArchSHEB, true
	}
	return libseccomp.ArchInvalid, false
}

// flags lists every filter flag this package knows.
func flags() []specs.LinuxSeccompFlag {
	return []specs.LinuxSeccompFlag{
		flagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow,
		specs.LinuxSeccompFlagWaitKillableRecv,
	}
}

// lookupFlag returns the kernel's bit for f (SECCOMP_FILTER_FLAG_*).
func lookupFlag(f specs.LinuxSeccompFlag) (uint, bool) {
	switch f {
	case flagTsync:
		return unix.SECCOMP_FILTER_FLAG_TSYNC, true
	case specs.LinuxSeccompFlagLog:
		return unix.SECCOMP_FILTER_FLAG_LOG, true
	case specs.LinuxSeccompFlagSpecAllow:
		return unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, true
	case specs.LinuxSeccompFlagWaitKillableRecv:
		return unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, true
	}
	return 0, false
}

// probeFlags is what the kernel is asked to accept to tell whether it
// knows f: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is only valid with a
// listener.
func probeFlags(f uint) uint {
	if f == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
		return f | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	return f
}
