# shellcheck shell=bash
# bench/lib/hybrid-cgroups.sh: sourced by bench/ and conformance/ scripts.
#
# crun 1.8 refuses to run on a cgroup v1 "hybrid" host while any controller
# (hugetlb, on this VM) sits on the otherwise empty cgroup2 mount:
#   "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"
# A controller leaves cgroup2 while a v1 hierarchy of it is mounted.
#
# hybrid_v1_mount mounts such a hierarchy where nobody else can see it: in a
# private mount namespace kept alive by a sleeping process this shell
# starts, on a temp dir. Nothing is mounted under /sys/fs/cgroup, so no other
# program creates cgroups in the hierarchy (and crun, which looks for
# /sys/fs/cgroup/<controller>, does not either). hybrid_v1_unmount ends that
# process: the namespace, the mount and the empty hierarchy go with it, and
# the kernel hands the controller back to cgroup2.

HYBRID_UNIFIED=/sys/fs/cgroup/unified
HYBRID_HOLDER=""   # pid of the process holding the private mount namespace
HYBRID_DIR=""      # its mount points
HYBRID_CONTROLLERS=()

# hybrid_wait CONTROLLER on|off waits up to 5 s for CONTROLLER to be
# (on) or not be (off) a cgroup2 controller.
hybrid_wait() {
	local _
	for _ in $(seq 50); do
		if grep -qw "$1" "$HYBRID_UNIFIED/cgroup.controllers"; then
			[ "$2" = on ] && return 0
		else
			[ "$2" = off ] && return 0
		fi
		sleep 0.1
	done
	return 1
}

hybrid_v1_mount() {
	[ -r "$HYBRID_UNIFIED/cgroup.controllers" ] || return 0
	read -r -a HYBRID_CONTROLLERS <"$HYBRID_UNIFIED/cgroup.controllers" || true
	[ ${#HYBRID_CONTROLLERS[@]} -gt 0 ] || return 0
	HYBRID_DIR=$(mktemp -d /tmp/berth-v1cgroup.XXXXXX)
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare -m --propagation private sh -c '
		dir=$1; shift
		for c; do mkdir "$dir/$c" && mount -t cgroup -o "$c" cgroup "$dir/$c" || exit 1; done
		exec sleep infinity' sh "$HYBRID_DIR" "${HYBRID_CONTROLLERS[@]}" &
	HYBRID_HOLDER=$!
	local c
	for c in "${HYBRID_CONTROLLERS[@]}"; do
		if ! hybrid_wait "$c" off; then
			echo "# could not move $c off cgroup2 for crun" >&2
			hybrid_v1_unmount
			return 1
		fi
		echo "# $c: v1 hierarchy mounted in a private mount namespace for crun" >&2
	done
}

hybrid_v1_unmount() {
	[ -n "$HYBRID_HOLDER" ] || return 0
	kill "$HYBRID_HOLDER" 2>/dev/null || true
	wait "$HYBRID_HOLDER" 2>/dev/null || true
	local c
	for c in "${HYBRID_CONTROLLERS[@]}"; do
		hybrid_wait "$c" on ||
			echo "# warning: $c did not return to cgroup2 (a cgroup left in its v1 hierarchy?)" >&2
	done
	rm -rf "$HYBRID_DIR"
	HYBRID_HOLDER="" HYBRID_DIR="" HYBRID_CONTROLLERS=()
}
