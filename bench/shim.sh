#!/bin/bash
# bench/shim.sh: idle memory of container monitors, side by side.
#
# Starts N (default 10) containers running busybox `sleep 1000` from the
# bundle of tests/fixtures, each under its own berth-shim, lets them settle
# (-w seconds, default 3) and reads every shim's /proc/<pid>/smaps_rollup.
# Then does the same with conmon (if installed) for the same containers. RSS
# counts the binary's text pages in every process that maps them; PSS shares
# them out among those processes, so with N monitors running PSS is the fair
# cost of one more container. Reports the mean per monitor (and min-max of
# RSS and PSS); -v also lists every process.
#
# usage: sudo bench/shim.sh [-n N] [-w SECONDS] [-r RUNTIME] [-v]
#   RUNTIME runs the containers of every monitor: berth (bin/berth-runtime, or
#   $BERTH_RUNTIME, the default), runc, or a path. berth-shim is
#   bin/berth-shim or $BERTH_SHIM (build both with `make`).
#
# Containers are killed and deleted through the runtime, and the temp dir
# removed, on exit, also on error or Ctrl-C.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=10
SETTLE=3
RUNTIME=berth
VERBOSE=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while getopts "n:w:r:vh" opt; do
	case $opt in
	n) N=$OPTARG ;;
	w) SETTLE=$OPTARG ;;
	r) RUNTIME=$OPTARG ;;
	v) VERBOSE=1 ;;
	h) usage 0 ;;
	*) usage 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "shim.sh: -n wants a positive number, got '$N'" >&2; exit 2; }
[[ $SETTLE =~ ^[0-9]+$ ]] || { echo "shim.sh: -w wants whole seconds, got '$SETTLE'" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "shim.sh: run as root (the bundle is not rootless)" >&2; exit 1; }

case $RUNTIME in
berth) RT=${BERTH_RUNTIME:-$REPO/bin/berth-runtime} ;;
*/*) RT=$RUNTIME ;;
*) RT=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac
SHIM=${BERTH_SHIM:-$REPO/bin/berth-shim}
for bin in "$RT" "$SHIM"; do
	[ -x "$bin" ] || { echo "shim.sh: $bin is not built (make)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "shim.sh: python3 is required (to send the shim its start request)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/berth-bench-shim.XXXXXX)
ROOT=$TMP/runtime-root # the runtime's state, shared by every container here
MONITORS=()            # pids of the monitors started, to wait for on cleanup

# gone PID: the process has exited (a zombie counts as gone).
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# wait_for SECONDS COMMAND...: poll COMMAND every 50 ms until it succeeds.
wait_for() {
	local limit=$(($1 * 20)) i
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

kill_containers() {
	local id pid
	for id in $("$RT" --root "$ROOT" list -q 2>/dev/null); do
		"$RT" --root "$ROOT" kill "$id" KILL >/dev/null 2>&1 || true
	done
	for pid in "${MONITORS[@]}"; do
		wait_for 10 gone "$pid" || echo "# warning: monitor $pid still runs" >&2
	done
	MONITORS=()
	for id in $("$RT" --root "$ROOT" list -q 2>/dev/null); do
		"$RT" --root "$ROOT" delete --force "$id" >/dev/null 2>&1 || true
	done
}

cleanup() {
	kill_containers
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shim_request SOCKET JSON: one request line, and the response on stdout.
shim_request() {
	python3 - "$1" "$2" <<-'EOF'
		import socket, sys
		s = socket.socket(socket.AF_UNIX)
		s.connect(sys.argv[1])
		s.sendall(sys.argv[2].encode() + b"\n")
		print(s.makefile().readline().strip())
	EOF
}

# start_shim I: a container under berth-shim; prints the shim's pid.
start_shim() {
	local id=bench-$$-shim-$1 dir=$TMP/shim-$1 ready resp
	mkdir -p "$dir"
	# The shim daemonizes; the substitution ends when it closes its ready fd.
	ready=$("$SHIM" --id "$id" --bundle "$TMP/bundle" --dir "$dir" --runtime "$RT" \
		--runtime-root "$ROOT" --log-path "$dir/json.log" --ready-fd 3 3>&1 >/dev/null 2>&1)
	[[ $ready == *'"pid"'* ]] || { echo "shim.sh: berth-shim $1: $ready $(cat "$dir/shim.log" 2>/dev/null)" >&2; return 1; }
	resp=$(shim_request "$dir/shim.sock" '{"op":"start"}')
	[[ $resp == *'"status":"running"'* ]] || { echo "shim.sh: start $id: $resp" >&2; return 1; }
	cat "$dir/shim.pid"
}

# start_conmon I: a container under conmon; prints conmon's pid.
start_conmon() {
	local id=bench-$$-conmon-$1 dir=$TMP/conmon-$1
	mkdir -p "$dir/exits" "$dir/sockets"
	# conmon forks and its parent returns at once: the container's pid file
	# says that the create is done.
	"$CONMON" --api-version 1 -c "$id" -u "$id" -n "$id" -r "$RT" -b "$TMP/bundle" \
		-p "$dir/ctr.pid" -P "$dir/conmon.pid" -l "k8s-file:$dir/ctr.log" \
		--exit-dir "$dir/exits" --socket-dir-path "$dir/sockets" \
		--runtime-arg --root --runtime-arg "$ROOT" --log-level error >"$dir/conmon.out" 2>&1
	wait_for 10 test -s "$dir/ctr.pid" || { echo "shim.sh: conmon $1: no container pid; $(cat "$dir/conmon.out")" >&2; return 1; }
	"$RT" --root "$ROOT" start "$id" || return 1
	cat "$dir/conmon.pid"
}

# measure NAME VERSION PID...: one table row from the smaps_rollup of PIDs.
measure() {
	local name=$1 version=$2 pid
	shift 2
	for pid in "$@"; do
		gone "$pid" && { echo "shim.sh: $name $pid exited while idle" >&2; return 1; }
		awk -v pid="$pid" -v th="$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")" \
			'/^(Rss|Pss|Pss_Anon|Pss_File):/ { v[$1] = $2 }
			END { print pid, v["Rss:"], v["Pss:"], v["Pss_Anon:"], v["Pss_File:"], th }' "/proc/$pid/smaps_rollup"
	done >"$TMP/$name.rows"
	if [ "$VERBOSE" = 1 ]; then
		awk -v name="$name" '{ printf "#   %s pid %d: RSS %d kB, PSS %d kB (anon %d, file %d), %d threads\n", name, $1, $2, $3, $4, $5, $6 }' "$TMP/$name.rows"
	fi
	awk -v name="$name" -v version="$version" '
		function mib(k) { return sprintf("%.2f", k / 1024) }
		NR == 1 { rmin = rmax = $2; pmin = pmax = $3 }
		{ rss += $2; pss += $3; anon += $4; file += $5; th += $6
		  if ($2 < rmin) rmin = $2; if ($2 > rmax) rmax = $2
		  if ($3 < pmin) pmin = $3; if ($3 > pmax) pmax = $3 }
		END { printf "| %s | %s | %d | %s (%s–%s) | %s (%s–%s) | %s | %s | %.0f |\n", name, version, NR,
			mib(rss / NR), mib(rmin), mib(rmax), mib(pss / NR), mib(pmin), mib(pmax),
			mib(anon / NR), mib(file / NR), th / NR }' "$TMP/$name.rows"
}

# run_monitor NAME VERSION STARTER: N containers, measured, then removed.
run_monitor() {
	local name=$1 version=$2 starter=$3 i pid pids=()
	for ((i = 1; i <= N; i++)); do
		pid=$($starter "$i") || { echo "| $name | $version | failed | | | | | |"; kill_containers; return; }
		pids+=("$pid")
		MONITORS+=("$pid")
	done
	sleep "$SETTLE"
	measure "$name" "$version" "${pids[@]}" || echo "| $name | $version | failed | | | | | |"
	kill_containers
}

echo "# building the busybox bundle (tests/fixtures/cmd/mkbundle)" >&2
# ociVersion 1.0.2: crun 1.8 rejects newer versions.
(cd "$REPO" && go run ./tests/fixtures/cmd/mkbundle -oci-version 1.0.2 "$TMP/bundle" -- sleep 1000)
mkdir -p "$ROOT"

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(uname -sr); $(nproc) CPUs; $(free -m | awk '/^Mem:/ {print $2}') MiB RAM"
echo "# $N idle containers (sleep 1000) per monitor, runtime $RT, measured after ${SETTLE}s; means per monitor, MiB"
echo "| monitor | version | N | RSS (min–max) | PSS (min–max) | PSS anon | PSS file | threads |"
echo "|---|---|---|---|---|---|---|---|"
if [ -n "${BERTH_SHIM:-}" ]; then
	shim_version="$(basename "$SHIM"), $(du -k "$SHIM" | cut -f1) kB"
else
	shim_version="$(cd "$REPO" && git log -1 --format=%h -- shim/c 2>/dev/null || echo dev), $(du -k "$SHIM" | cut -f1) kB"
fi
run_monitor berth-shim "$shim_version" start_shim
CONMON=$(command -v conmon || true)
if [ -n "$CONMON" ]; then
	run_monitor conmon "$("$CONMON" --version | sed -n 's/^conmon version //p')" start_conmon
else
	echo "| conmon | not installed (apt-get install -y conmon) | | | | | | |"
fi
