package shim

import (
	"os"
	"strings"
)

// DaemonEnv marks a berth-shim started to serve (not to daemonize itself).
// Its value lists the variables added for the shim's Go runtime, which
// the shim removes from its environment before it runs the OCI runtime.
const DaemonEnv = "_BERTH_SHIM_DAEMON"

// shimGOGC is the shim's GOGC unless the environment sets one. The
// collector's first goal is 4 MB times GOGC/100: at the default the heap
// of a shim that serves requests or execs grows to 4 MB of garbage before
// it is ever collected (3000 state requests: 0.76 → 5.6 MB anonymous). At
// 20 the goal is 0.8 MB, above what starting a container leaves (about
// 0.3 MB, so an idle shim never runs the collector, whose own structures
// cost some 0.25 MB), and the same requests end at 2.4 MB.
const shimGOGC = "20"

// DaemonEnvironment returns the variables a serving berth-shim is started
// with, on top of the caller's environment: one P (plenty to copy one
// container's output; each P's caches are allocated at process start, a
// quarter of an idle shim's anonymous memory), the GOGC above, and
// DaemonEnv listing them. Variables the environment already sets are left
// alone.
func DaemonEnvironment() []string {
	var env []string
	added := []string{DaemonEnv}
	if os.Getenv("GOMAXPROCS") == "" {
		env = append(env, "GOMAXPROCS=1")
		added = append(added, "GOMAXPROCS")
	}
	if os.Getenv("GOGC") == "" {
		env = append(env, "GOGC="+shimGOGC)
		added = append(added, "GOGC")
	}
	return append(env, DaemonEnv+"="+strings.Join(added, ","))
}
