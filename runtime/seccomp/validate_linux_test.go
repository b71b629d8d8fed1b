package seccomp

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestValidate(t *testing.T) {
	mkdir := func(a specs.LinuxSeccompAction) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{"mkdir"}, Action: a}
	}
	args := func(n int) []specs.LinuxSeccompArg {
		out := make([]specs.LinuxSeccompArg, n)
		for i := range out {
			out[i] = specs.LinuxSeccompArg{Index: uint(i % maxArgs), Op: specs.OpEqualTo}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		c       *specs.LinuxSeccomp
		wantErr string // "" if valid
	}{
		{"nil", nil, ""},
		{"allow all", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, ""},
		{"full", &specs.LinuxSeccomp{
			DefaultAction:   specs.ActErrno,
			DefaultErrnoRet: errnoRet(38),
			Architectures:   nativeArchs(t),
			Flags:           []specs.LinuxSeccompFlag{flagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
			ListenerPath:    "/run/agent.sock",
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "write", "berth_no_such_syscall"}, Action: specs.ActAllow},
				{Names: []string{"mkdir"}, Action: specs.ActNotify},
				{Names: []string{"ptrace"}, Action: specs.ActTrace, ErrnoRet: errnoRet(0xffff)},
				{Names: []string{"clone"}, Action: specs.ActAllow, Args: args(maxArgs)},
				{Names: []string{"kill"}, Action: specs.ActKillProcess},
			},
		}, ""},

		{"unknown default action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, `seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"`},
		{"empty default action", &specs.LinuxSeccomp{}, `seccomp.defaultAction: unknown action ""`},
		{"notify as default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/a"}, "seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"},
		{"defaultErrnoRet with allow", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: errnoRet(1)}, "seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"},
		{"defaultErrnoRet too big", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errnoRet(4096)}, "seccomp.defaultErrnoRet: 4096 is above 4095"},
		{"unknown arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_Z80"}}, `seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80"`},
		{"unknown flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}}, `seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FAST"`},
		{"unknown rule action", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{mkdir(specs.ActErrno), mkdir("SCMP_ACT_DENY")}}, `seccomp.syscalls[1].action: unknown action "SCMP_ACT_DENY"`},
		{"errnoRet with allow", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, ErrnoRet: errnoRet(1)}}}, "seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"},
		{"errnoRet with kill", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActKill, ErrnoRet: errnoRet(1)}}}, "seccomp.syscalls[0].errnoRet: only valid"},
		{"trace data too big", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActTrace, ErrnoRet: errnoRet(0x10000)}}}, "seccomp.syscalls[0].errnoRet: 65536 is above 65535"},
		{"no names", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, "seccomp.syscalls[0].names: no system call named"},
		{"empty name", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", ""}, Action: specs.ActErrno}}}, "seccomp.syscalls[0].names[1]: empty system call name"},
		{"seven args", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: args(7)}}}, "seccomp.syscalls[0].args: 7 conditions, at most 6"},
		{"arg index 6", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "seccomp.syscalls[0].args[0].index: 6"},
		{"unknown operator", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: specs.OpEqualTo}, {Index: 1, Op: "SCMP_CMP_APPROX"}}}}}, `seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_APPROX"`},
		{"notify without listener", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{mkdir(specs.ActErrno), mkdir(specs.ActNotify)}}, "seccomp.listenerPath: required by the SCMP_ACT_NOTIFY rule seccomp.syscalls[1]"},
		{"listener without notify", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock", Syscalls: []specs.LinuxSyscall{mkdir(specs.ActErrno)}}, `seccomp.listenerPath: "/run/agent.sock" is set but no rule has action SCMP_ACT_NOTIFY`},
		{"notify on write", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a", Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActNotify}}}, "seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for write"},
		{"notify on sendmsg", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a", Syscalls: []specs.LinuxSyscall{{Names: []string{"sendmsg"}, Action: specs.ActNotify}}}, "seccomp.syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for sendmsg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.c)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an ErrInvalid containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestValidateForeignByteOrder: a filter holds the architectures of one byte
// order, so a big-endian one cannot join a little-endian native one.
func TestValidateForeignByteOrder(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("written for little-endian hosts")
	}
	err := Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390X}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "seccomp.architectures[0]: libseccomp") {
		t.Fatalf("Validate = %v, want an error about seccomp.architectures[0]", err)
	}
}

// TestLoadInvalidLoadsNothing checks that Load refuses a bad profile before
// anything reaches the kernel: the default action would block mkdir.
func TestLoadInvalidLoadsNothing(t *testing.T) {
	dir := t.TempDir()
	r := runReport(t, childOpts{
		profile: &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Syscalls:      []specs.LinuxSyscall{{Names: allowList(), Action: specs.ActAllow}, {Names: []string{"read"}, Action: "SCMP_ACT_BOGUS"}},
		},
		probes: []string{"mkdir:a"},
		dir:    dir,
	})
	if !strings.Contains(r.LoadErr, `seccomp.syscalls[1].action: unknown action "SCMP_ACT_BOGUS"`) {
		t.Errorf("Load error %q, want one naming seccomp.syscalls[1].action", r.LoadErr)
	}
	if r.Listener != -1 {
		t.Errorf("failed Load returned %d, want -1", r.Listener)
	}
	if r.Errnos["mkdir:a"] != "" || !exists(t, filepath.Join(dir, "a")) {
		t.Errorf("mkdir after a failed Load: errno %q; want it to work", r.Errnos["mkdir:a"])
	}
	if _, err := Load(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load(nil) = %v, want ErrInvalid", err)
	}
}
