package shim

// DaemonEnv marks a berth-shim started to serve (not to daemonize itself).
// Its value lists the variables added to the shim's environment, which the
// shim removes before it runs the OCI runtime: here only DaemonEnv itself.
const DaemonEnv = "_BERTH_SHIM_DAEMON"

// DaemonEnvironment returns the variables a serving berth-shim is started
// with, on top of the caller's environment.
func DaemonEnvironment() []string {
	return []string{DaemonEnv + "=" + DaemonEnv}
}
