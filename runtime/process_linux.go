package runtime

import (
	"fmt"
	"os"
	"path/filepath"

	json "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth.dev/runtime/seccomp"
)

var rlimitNames = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

func setRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		res, ok := rlimitNames[l.Type]
		if !ok {
			return fmt.Errorf("%w: unknown rlimit %q", ErrInvalid, l.Type)
		}
		lim := unix.Rlimit{Cur: l.Soft, Max: l.Hard}
		if err := unix.Prlimit(0, res, &lim, nil); err != nil {
			return rlimitError(l, res, err)
		}
	}
	return nil
}

// rlimitError explains a refusal to set l (resource res); the caller's own
// hard limit is the one the process had.
func rlimitError(l specs.POSIXRlimit, res int, err error) error {
	var cur unix.Rlimit
	unix.Prlimit(0, res, nil, &cur)
	if err == unix.EPERM && l.Hard > cur.Max {
		return fmt.Errorf("set %s to soft %d hard %d: raising the hard limit above %d needs CAP_SYS_RESOURCE: %w", l.Type, l.Soft, l.Hard, cur.Max, err)
	}
	return fmt.Errorf("set %s to soft %d hard %d: %w", l.Type, l.Soft, l.Hard, err)
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther:    unix.SCHED_NORMAL,
	specs.SchedFIFO:     unix.SCHED_FIFO,
	specs.SchedRR:       unix.SCHED_RR,
	specs.SchedBatch:    unix.SCHED_BATCH,
	specs.SchedISO:      4, // SCHED_ISO: reserved, refused by mainline kernels
	specs.SchedIdle:     unix.SCHED_IDLE,
	specs.SchedDeadline: unix.SCHED_DEADLINE,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork:  0x01,
	specs.SchedFlagReclaim:      0x02,
	specs.SchedFlagDLOverrun:    0x04,
	specs.SchedFlagKeepPolicy:   0x08,
	specs.SchedFlagKeepParams:   0x10,
	specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT:   1,
	specs.IOPRIO_CLASS_BE:   2,
	specs.IOPRIO_CLASS_IDLE: 3,
}

var personalityDomains = map[specs.LinuxPersonalityDomain]uintptr{
	specs.PerLinux:   0x0000,
	specs.PerLinux32: 0x0008,
}

// setScheduling applies the process's scheduler, I/O priority and the
// container's personality.
func setScheduling(p *specs.Process) error {
	if s := p.Scheduler; s != nil {
		policy, ok := schedPolicies[s.Policy]
		if !ok {
			return fmt.Errorf("%w: unknown scheduler policy %q", ErrInvalid, s.Policy)
		}
		attr := &unix.SchedAttr{
			Size:     unix.SizeofSchedAttr,
			Policy:   policy,
			Nice:     s.Nice,
			Priority: uint32(s.Priority),
			Runtime:  s.Runtime,
			Deadline: s.Deadline,
			Period:   s.Period,
		}
		for _, f := range s.Flags {
			bit, ok := schedFlags[f]
			if !ok {
				return fmt.Errorf("%w: unknown scheduler flag %q", ErrInvalid, f)
			}
			attr.Flags |= bit
		}
		if err := unix.SchedSetAttr(0, attr, 0); err != nil {
			return fmt.Errorf("sched_setattr %s: %w", s.Policy, err)
		}
	}
	if io := p.IOPriority; io != nil {
		class, ok := ioprioClasses[io.Class]
		if !ok {
			return fmt.Errorf("%w: unknown I/O priority class %q", ErrInvalid, io.Class)
		}
		const whoProcess = 1
		prio := class<<13 | io.Priority
		if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(prio)); e != 0 {
			return fmt.Errorf("ioprio_set %s %d: %w", io.Class, io.Priority, e)
		}
	}
	return nil
}

func setPersonality(p *specs.LinuxPersonality) error {
	if p == nil {
		return nil
	}
	dom, ok := personalityDomains[p.Domain]
	if !ok {
		return fmt.Errorf("%w: unknown personality domain %q", ErrInvalid, p.Domain)
	}
	if _, _, e := unix.Syscall(unix.SYS_PERSONALITY, dom, 0, 0); e != 0 {
		return fmt.Errorf("personality %s: %w", p.Domain, e)
	}
	return nil
}

// applyLSM asks the kernel to switch the process's security label at exec.
func applyLSM(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		path := "/proc/self/attr/apparmor/exec"
		if _, err := os.Stat(path); err != nil {
			path = "/proc/self/attr/exec"
		}
		if err := os.WriteFile(path, []byte("exec "+p.ApparmorProfile), 0); err != nil {
			return fmt.Errorf("set AppArmor profile %q: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if err := os.WriteFile("/proc/self/attr/exec", []byte(p.SelinuxLabel), 0); err != nil {
			return fmt.Errorf("set SELinux label %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}

// sendSeccompListener hands the seccomp notification descriptor to the
// agent listening on listenerPath, with the container's state, as the
// runtime specification describes.
// The runtime connected to the agent before the init entered the container
// and passed the connection as conn.
func sendSeccompListener(conn *os.File, sc *specs.LinuxSeccomp, fd int, st *specs.State) error {
	defer conn.Close()
	msg, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      st.Pid,
		Metadata: sc.ListenerMetadata,
		State:    *st,
	})
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(int(conn.Fd()), msg, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("send seccomp listener to %s: %w", sc.ListenerPath, err)
	}
	return nil
}

// withSeccompAgent connects to the spec's seccomp agent, if any, and adds
// the connection to the files passed to the init, recording its number in
// cfg. closeAgent closes the runtime's copy once the init has its own.
func withSeccompAgent(s *specs.Spec, cfg *initConfig, files []*os.File) (_ []*os.File, closeAgent func(), err error) {
	cfg.SeccompAgentFD = -1
	agent, err := dialSeccompAgent(s)
	if err != nil || agent == nil {
		return files, func() {}, err
	}
	cfg.SeccompAgentFD = 3 + len(files)
	return append(files, agent), func() { agent.Close() }, nil
}

// dialSeccompAgent connects to the spec's seccomp listener, if any. The
// runtime does it on the host side: inside the container the path is gone.
func dialSeccompAgent(s *specs.Spec) (*os.File, error) {
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.ListenerPath == "" {
		return nil, nil
	}
	conn, err := dialUnix(s.Linux.Seccomp.ListenerPath)
	if err != nil {
		return nil, fmt.Errorf("connect to seccomp agent: %w", err)
	}
	return conn, nil
}

// seccompCacheDir is where, under the state root, built seccomp programs are
// kept (see seccomp.Program). Its name is not a valid container ID.
const seccompCacheDir = ".seccomp-cache"

// withSeccompProgram builds the spec's seccomp program, if it has a
// profile, for the init to install.
func withSeccompProgram(s *specs.Spec, cfg *initConfig, root string) error {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil
	}
	prog, err := seccomp.Program(s.Linux.Seccomp, filepath.Join(root, seccompCacheDir))
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	cfg.SeccompBPF = seccomp.EncodeProgram(prog)
	return nil
}

// initSpec is the part of s the init works from, which is what it decodes
// before anything else (the less it decodes, the sooner it starts): no
// process (initConfig carries it, once), no resources (the runtime applies
// them to the cgroup), and with a built seccomp program only what
// installing it needs of the profile (its flags, and the listener and the
// rules that ask for one), not the hundreds of rules an engine's profile
// holds.
func initSpec(s *specs.Spec, haveProgram bool) *specs.Spec {
	t := *s
	t.Process = nil
	// The other platforms' sections mean nothing to a Linux init.
	t.Solaris, t.Windows, t.VM, t.ZOS, t.FreeBSD = nil, nil, nil, nil, nil
	l := *s.Linux
	l.Resources = nil
	if sc := l.Seccomp; sc != nil && haveProgram {
		l.Seccomp = &specs.LinuxSeccomp{
			DefaultAction:    sc.DefaultAction,
			DefaultErrnoRet:  sc.DefaultErrnoRet,
			Flags:            sc.Flags,
			ListenerPath:     sc.ListenerPath,
			ListenerMetadata: sc.ListenerMetadata,
		}
		for _, r := range sc.Syscalls {
			if r.Action == specs.ActNotify {
				l.Seccomp.Syscalls = append(l.Seccomp.Syscalls, r)
			}
		}
	}
	t.Linux = &l
	return &t
}
