package ocispec

import (
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const capSysResource = 24

var rlimitResources = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// checkRlimitCeilings refuses a hard limit above the caller's own unless
// the caller may raise it (CAP_SYS_RESOURCE): the runtime, started by the
// engine, inherits the engine's limits and would fail to set it, later and
// less clearly.
func checkRlimitCeilings(rl []specs.POSIXRlimit) error {
	if len(rl) == 0 || effectiveCaps()&(1<<capSysResource) != 0 {
		return nil
	}
	for _, r := range rl {
		var cur unix.Rlimit
		if err := unix.Getrlimit(rlimitResources[r.Type], &cur); err != nil {
			continue
		}
		if r.Hard > cur.Max {
			return invalidf("ulimit %s: hard limit %d is above berthd's own hard limit %d, which it cannot raise without CAP_SYS_RESOURCE",
				strings.ToLower(strings.TrimPrefix(r.Type, "RLIMIT_")), int64(r.Hard), int64(cur.Max))
		}
	}
	return nil
}

// effectiveCaps is this process's effective capability set (none if it
// cannot be read).
func effectiveCaps() uint64 {
	return statusCaps("CapEff:", 0)
}

// statusCaps reads a capability set line of /proc/self/status, or gives
// fallback.
func statusCaps(key string, fallback uint64) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fallback
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				return n
			}
		}
	}
	return fallback
}
