package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// isRlimit tells whether name is a resource limit Linux knows (getrlimit(2)).
func isRlimit(name string) bool {
	switch name {
	case "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
		"RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE",
		"RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING",
		"RLIMIT_STACK":
		return true
	}
	return false
}

// isSchedFlag tells whether f is a scheduling flag the runtime-spec defines.
func isSchedFlag(f specs.LinuxSchedulerFlag) bool {
	switch f {
	case specs.SchedFlagResetOnFork, specs.SchedFlagReclaim, specs.SchedFlagDLOverrun,
		specs.SchedFlagKeepPolicy, specs.SchedFlagKeepParams, specs.SchedFlagUtilClampMin,
		specs.SchedFlagUtilClampMax:
		return true
	}
	return false
}

func checkProcess(p *specs.Process, forCreate bool) error {
	if p == nil {
		if forCreate {
			return invalid("process", "missing (required to create a container)")
		}
		return nil
	}
	if len(p.Args) == 0 || p.Args[0] == "" {
		return invalid("process.args", "must name the program to run")
	}
	if !filepath.IsAbs(p.Cwd) {
		return invalid("process.cwd", "%q is not an absolute path", p.Cwd)
	}
	if err := checkEnv("process.env", p.Env); err != nil {
		return err
	}
	if err := checkRlimits(p.Rlimits); err != nil {
		return err
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return invalid("process.oomScoreAdj", "%d is outside [-1000, 1000]", *p.OOMScoreAdj)
	}
	if err := checkIOPriority(p.IOPriority); err != nil {
		return err
	}
	return checkScheduler(p.Scheduler)
}

// checkEnv requires NAME=VALUE entries with a non-empty name and no NUL
// byte, which execve(2) could not carry.
func checkEnv(field string, env []string) error {
	for i, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%q is not NAME=VALUE", kv)
		case name == "":
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%q has an empty name", kv)
		case strings.IndexByte(kv, 0) >= 0:
			return invalid(fmt.Sprintf("%s[%d]", field, i), "variable %s contains a NUL byte", name)
		}
	}
	return nil
}

func checkRlimits(rlimits []specs.POSIXRlimit) error {
	seen := make(map[string]bool)
	for i, r := range rlimits {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		if !isRlimit(r.Type) {
			return invalid(field+".type", "%q is not a Linux resource limit", r.Type)
		}
		if seen[r.Type] {
			return invalid(field+".type", "%s is given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return invalid(field, "soft limit %d is above hard limit %d", r.Soft, r.Hard)
		}
	}
	return nil
}

func checkIOPriority(p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	switch p.Class {
	case specs.IOPRIO_CLASS_RT, specs.IOPRIO_CLASS_BE, specs.IOPRIO_CLASS_IDLE:
	default:
		return invalid("process.ioPriority.class", "%q is not an I/O scheduling class", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return invalid("process.ioPriority.priority", "%d is outside [0, 7]", p.Priority)
	}
	return nil
}

// checkScheduler follows sched_setattr(2): nice applies to the normal
// policies, a static priority to the real-time ones, runtime, deadline and
// period to SCHED_DEADLINE only.
func checkScheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	const field = "process.scheduler"
	switch s.Policy {
	case specs.SchedOther, specs.SchedBatch, specs.SchedIdle, specs.SchedFIFO, specs.SchedRR, specs.SchedDeadline:
	case specs.SchedISO:
		return invalid(field+".policy", "SCHED_ISO is not implemented by Linux")
	case "":
		return invalid(field+".policy", "missing")
	default:
		return invalid(field+".policy", "%q is not a scheduling policy", s.Policy)
	}
	if (s.Policy == specs.SchedOther || s.Policy == specs.SchedBatch) && (s.Nice < -20 || s.Nice > 19) {
		return invalid(field+".nice", "%d is outside [-20, 19]", s.Nice)
	}
	realtime := s.Policy == specs.SchedFIFO || s.Policy == specs.SchedRR
	if s.Priority != 0 && !realtime {
		return invalid(field+".priority", "only SCHED_FIFO and SCHED_RR take a static priority")
	}
	if realtime && (s.Priority < 1 || s.Priority > 99) {
		return invalid(field+".priority", "%d is outside [1, 99]", s.Priority)
	}
	if s.Policy != specs.SchedDeadline && (s.Runtime != 0 || s.Deadline != 0 || s.Period != 0) {
		return invalid(field, "runtime, deadline and period apply to SCHED_DEADLINE only")
	}
	for i, f := range s.Flags {
		if !isSchedFlag(f) {
			return invalid(fmt.Sprintf("%s.flags[%d]", field, i), "%q is not a scheduling flag", f)
		}
	}
	return nil
}
