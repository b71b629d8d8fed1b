#!/bin/bash
# conformance/runtime-tools.sh: run the OCI runtime-tools validation suite
# against an OCI runtime and count its TAP results.
#
# usage: sudo conformance/runtime-tools.sh [-t TEST[,TEST...]] [-T SECONDS] [-o FILE] [-k DIR] [RUNTIME]
#   RUNTIME  berth (bin/berth-runtime, the default), runc, crun, or a path
#   -t       run only these tests (names of validation/<name>, e.g. -t linux_ns_path)
#   -T       timeout per test program (default 180 s; then SIGTERM, SIGKILL 10 s later)
#   -o       results file (default ./runtime-tools-<runtime>.txt)
#   -k       keep each test's TAP output and stderr under DIR
#   -l       list the tests and exit
#
# The suite (github.com/opencontainers/runtime-tools at $RTT_VERSION) comes
# from the Go module proxy and is built in a temp dir: one program per
# validation/<name> directory, plus the static runtimetest that the tests
# copy into their bundles. Each program runs as the suite's Makefile runs it
# (`RUNTIME=<runtime> validation/<name>.t`), from a directory holding
# runtimetest and the suite's rootfs-<arch>.tar.gz, but here each one in a
# temp dir of its own (also its TMPDIR, where it makes its bundles), in a
# mount namespace of its own (unshare -m --propagation private: some tests
# leak mounts) and under a timeout. Containers a test leaves behind in the
# runtime's default state root are deleted after it, and so are the empty
# cgroups of the suite's fixed cgroupsPaths (testdir, cgrouptest) that the
# run created.
#
# Output: one line per test (TAP ok / not ok / skip counts, exit status) and
# the totals; the results file adds every failing assertion.
set -euo pipefail

RTT_MODULE=github.com/opencontainers/runtime-tools
RTT_VERSION=${RTT_VERSION:-v0.9.1-0.20250303011046-260e151b8552}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib/hybrid-cgroups.sh
. "$REPO/bench/lib/hybrid-cgroups.sh"

TESTS="" TIMEOUT=180 RESULTS="" KEEP="" LIST=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while getopts "t:T:o:k:lh" opt; do
	case $opt in
	t) TESTS=${OPTARG//,/ } ;;
	T) TIMEOUT=$OPTARG ;;
	o) RESULTS=$OPTARG ;;
	k) KEEP=$OPTARG ;;
	l) LIST=1 ;;
	h) usage 0 ;;
	*) usage 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage 2
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || { echo "runtime-tools.sh: -T wants seconds, got '$TIMEOUT'" >&2; exit 2; }

case ${1:-berth} in
berth) RUNTIME=${BERTH_RUNTIME:-$REPO/bin/berth-runtime} ;;
*/*) RUNTIME=$(realpath -m "$1") ;;
*) RUNTIME=$(command -v "$1" || echo "$1") ;;
esac
if [ -z "$LIST" ]; then
	[ "$(id -u)" = 0 ] || { echo "runtime-tools.sh: run as root" >&2; exit 1; }
	[ -x "$RUNTIME" ] || { echo "runtime-tools.sh: runtime $RUNTIME not found (build berth with make)" >&2; exit 1; }
fi
NAME=$(basename "$RUNTIME")
RESULTS=${RESULTS:-$PWD/runtime-tools-$NAME.txt}

WORK=$(mktemp -d /tmp/berth-rtt.XXXXXX)
# Traversable by all: user-namespace tests run as a mapped, unprivileged
# root that must reach the bundles below.
chmod 755 "$WORK"
cleanup() {
	hybrid_v1_unmount
	chmod -R u+w "$WORK" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# build fetches the suite through the Go module proxy (into the usual
# module cache) and builds a copy of it in the temp dir. The module zip has
# no vendored sources (only vendor/modules.txt), so its dependencies come
# from the proxy too.
build() {
	local src=$WORK/src arch
	export GOFLAGS=-mod=mod GOTOOLCHAIN=local
	echo "# fetching $RTT_MODULE@$RTT_VERSION" >&2
	(cd "$WORK" && go mod init berth.dev/conformance-tmp >/dev/null 2>&1 &&
		go mod download -json "$RTT_MODULE@$RTT_VERSION" >"$WORK/download.json")
	cp -r "$(sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p' "$WORK/download.json")" "$src"
	chmod -R u+w "$src"
	rm -rf "$src/vendor"
	mkdir -p "$WORK/bin"
	echo "# building the validation programs" >&2
	(cd "$src" && go build -o "$WORK/bin/" ./validation/...)
	(cd "$src" && CGO_ENABLED=0 go build -tags 'netgo osusergo' -o "$WORK/bin/runtimetest" ./cmd/runtimetest)
	arch=$(go env GOARCH)
	ROOTFS_TAR=rootfs-$arch.tar.gz
	if [ ! -f "$src/$ROOTFS_TAR" ]; then
		# Older/other module zips may lack the tarball: make one from busybox.
		echo "# $ROOTFS_TAR missing from the module: building it from busybox" >&2
		(cd "$REPO" && go run ./tests/fixtures/cmd/mkbundle "$WORK/fallback" -- /bin/true)
		tar -C "$WORK/fallback/rootfs" -czf "$src/$ROOTFS_TAR" .
	fi
	cp "$src/$ROOTFS_TAR" "$WORK/"
}

list_tests() { find "$WORK/bin" -maxdepth 1 -type f ! -name runtimetest -printf '%f\n' | sort; }

# containers prints the ids in the runtime's default state root.
containers() { "$RUNTIME" list -q 2>/dev/null | sort || true; }

# suite_cgroups lists the cgroups named as the suite's cgroup tests name
# theirs (cgroupsPath /cgrouptest and testdir/cgrouptest/container, the
# latter below the runtime's own cgroup), in every hierarchy. Runtimes leave
# them behind; those not there before the run are removed after each test.
suite_cgroups() {
	find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d \( -name testdir -o -name cgrouptest \) -prune 2>/dev/null | sort
}

remove_suite_cgroups() {
	local d
	suite_cgroups | comm -13 "$WORK/cgroups-before" - | while read -r d; do
		# rmdir only: a cgroup that still has processes stays, and is reported.
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		[ ! -d "$d" ] || echo "# warning: could not remove cgroup $d" >&2
	done
}

# run_test runs one validation program and prints its summary line.
run_test() {
	local t=$1 dir=$WORK/run/$1 rc=0 ok notok skip planned status id
	mkdir -p "$dir/tmp"
	# Hard links, not symlinks: the suite's CopyFile copies a symlink as one.
	ln "$WORK/bin/runtimetest" "$WORK/$ROOTFS_TAR" "$dir/" 2>/dev/null ||
		cp "$WORK/bin/runtimetest" "$WORK/$ROOTFS_TAR" "$dir/"
	containers >"$dir/before"
	(cd "$dir" && TMPDIR=$dir/tmp RUNTIME=$RUNTIME \
		timeout -k 10 "$TIMEOUT" unshare -m --propagation private "$WORK/bin/$t" \
		>"$dir/tap" 2>"$dir/stderr" </dev/null) || rc=$?
	for id in $(containers | comm -13 "$dir/before" -); do
		"$RUNTIME" delete --force "$id" >/dev/null 2>&1 || true
	done
	remove_suite_cgroups
	ok=$(grep -c '^ok ' "$dir/tap" || true)
	skip=$(grep -c -i '^ok [0-9]* # skip' "$dir/tap" || true)
	notok=$(grep -c '^not ok ' "$dir/tap" || true)
	planned=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$dir/tap" | tail -1)
	case $rc in
	0) status=exit-0 ;;
	124 | 137) status=TIMEOUT ;;
	*) status=exit-$rc ;;
	esac
	[ -n "$planned" ] && [ "$planned" != $((ok + notok)) ] && status="$status,plan-$planned"
	# The *_fail tests print nothing and exit 0 when the runtime rightly
	# refused the config: only output without a plan is suspect.
	[ -z "$planned" ] && [ -s "$dir/tap" ] && status="$status,no-plan"
	# Some tests (the hook ones) report a failure only as an "error"
	# diagnostic, without any assertion.
	[ $((ok + notok)) = 0 ] && grep -q '^ *"error":' "$dir/tap" && status="$status,error"
	echo "$status" >"$dir/status"
	printf '%-40s %6d %6d %5d  %s\n' "$t" $((ok - skip)) "$notok" "$skip" "$status"
	if [ -n "$KEEP" ]; then
		mkdir -p "$KEEP" && cp "$dir/tap" "$KEEP/$t.tap" && cp "$dir/stderr" "$KEEP/$t.stderr"
	fi
	rm -rf "$dir/tmp"
}

# failures prints the failing assertions of one test and, when the test did
# not end well (exit status, timeout, plan not met), the end of its stderr.
failures() {
	local t=$1 dir=$WORK/run/$1
	grep '^not ok ' "$dir/tap" | sed "s|^|$t: |" || true
	case $(cat "$dir/status") in
	exit-0) ;;
	*,error) echo "$t: [$(cat "$dir/status")] $(sed -n 's/^ *"error": //p' "$dir/tap" | head -1)" ;;
	*) echo "$t: [$(cat "$dir/status")] stderr: $(tail -c 600 "$dir/stderr" | tr '\n' ' ')" ;;
	esac
}

build
if [ -n "$LIST" ]; then list_tests; exit 0; fi
ALL=$(list_tests)
for t in $TESTS; do
	grep -qx "$t" <<<"$ALL" || { echo "runtime-tools.sh: no test named '$t' (see -l)" >&2; exit 2; }
done
[ -n "$TESTS" ] || TESTS=$ALL
if [ "$NAME" = crun ]; then hybrid_v1_mount; fi
suite_cgroups >"$WORK/cgroups-before"

{
	echo "# runtime-tools $RTT_VERSION against $RUNTIME ($("$RUNTIME" --version 2>/dev/null | head -1))"
	echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr), timeout ${TIMEOUT}s per test"
	printf '%-40s %6s %6s %5s  %s\n' test pass fail skip status
} | tee "$RESULTS"
total_ok=0 total_fail=0 total_skip=0 bad_tests=0
for t in $TESTS; do
	line=$(run_test "$t")
	echo "$line" | tee -a "$RESULTS"
	read -r _ p f s st <<<"$line"
	total_ok=$((total_ok + p)) total_fail=$((total_fail + f)) total_skip=$((total_skip + s))
	{ [ "$f" -gt 0 ] || [ "$st" != exit-0 ]; } && bad_tests=$((bad_tests + 1))
done
{
	echo "# total: pass $total_ok, fail $total_fail, skip $total_skip (TAP assertions); $bad_tests of $(wc -w <<<"$TESTS") tests with failures or a bad exit"
	echo
	echo "# failing assertions"
	for t in $TESTS; do failures "$t"; done
} >>"$RESULTS"
grep '^# total' "$RESULTS"
echo "# results: $RESULTS" >&2
