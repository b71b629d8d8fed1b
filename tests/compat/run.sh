#!/usr/bin/env bash
# Runs berth-runtime as the OCI runtime of Podman and of Docker (dockerd +
# containerd) and checks what a user of those engines observes: output, exit
# codes, terminals, exec, stop/kill, cgroup limits seen from the host, and
# that nothing is left behind. See tests/compat/README.md.
#
# Needs root and Debian's podman, docker.io and catatonit packages (installed
# with apt-get when missing). Uses no network: the image is a busybox rootfs
# built from tests/fixtures and imported, and containers run --network none.
# Every engine gets a private root under a new /tmp/berth-test-* directory,
# its own cgroup parent and, for Docker, its own daemon socket; all of it is
# removed on exit.
#
# Environment:
#   BERTH_COMPAT_RUNTIME  runtime binary to test (default: `make` here, then a
#                         frozen copy of bin/berth-runtime); /usr/sbin/runc
#                         runs the same checks against runc for comparison
#   BERTH_COMPAT_ENGINES  engines to test (default: "podman docker")
#   BERTH_COMPAT_RUN      regular expression: run only the matching checks
#   BERTH_COMPAT_LOGS     directory to copy the logs into on exit: every
#                         runtime command line the engines ran, with its exit
#                         status, and dockerd's debug log
#
# The last line printed is "N passed, N failed"; the exit status is non-zero
# when a check failed or the setup did.
set -uo pipefail
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
repo=$(cd "$(dirname "$0")/../.." && pwd)
engines=${BERTH_COMPAT_ENGINES:-podman docker}
run_pattern=${BERTH_COMPAT_RUN:-.}
image=localhost/berth-busybox:test

if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: needs root" >&2
	exit 1
fi
work=$(mktemp -d /tmp/berth-test-XXXXXXXX) || exit 1
name=$(basename "$work")
passed=0
failed=0
skipped=0
failed_names=()
# Host paths the engines create outside their private roots, removed on
# exit unless they were there before: dockerd's identity key, podman's
# blob info cache, the directory of containerd's shim sockets.
created_paths=()
for p in /etc/docker/key.json /var/lib/containers /run/containerd; do
	[ -e "$p" ] || created_paths+=("$p")
done

# shellcheck source=lib.sh
. "$repo/tests/compat/lib.sh"
# shellcheck source=checks.sh
. "$repo/tests/compat/checks.sh"

trap cleanup EXIT
trap 'exit 130' INT TERM
# The engines' processes start here: conmon writes a file named oom into
# its working directory when it sees an OOM kill.
cd "$work" || exit 1

main() {
	install_missing || return 1
	setup_runtime || return 1
	build_rootfs || return 1
	local engine
	for engine in $engines; do
		case $engine in
		podman) podman_checks ;;
		docker) docker_checks ;;
		*)
			echo "run.sh: unknown engine $engine in BERTH_COMPAT_ENGINES" >&2
			return 1
			;;
		esac
	done
}

main
status=$?
cleanup || status=1
trap - EXIT
[ $failed -eq 0 ] || echo "failed: ${failed_names[*]}"
[ $skipped -eq 0 ] || echo "$skipped skipped"
echo "$passed passed, $failed failed"
if [ $status -ne 0 ] || [ $failed -ne 0 ]; then
	exit 1
fi
