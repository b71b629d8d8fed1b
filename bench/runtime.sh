#!/bin/bash
# bench/runtime.sh: start-up cost of OCI runtimes, side by side.
#
# For each runtime: N (default 100) sequential `RUNTIME run` of /bin/true on
# the busybox bundle of tests/fixtures, each with its own container id and a
# state root (--root) in a temp dir. Reports the total wall time, the time per
# run, and the peak RSS of one run (GNU time: the largest of the runtime's
# processes). With hyperfine installed, also its mean/stddev/min/max over N
# runs (one id reused: each run deletes its container before the next).
# A second table times the three commands an engine's shim runs for one
# container (the path of `berth run --rm`): create, start, and delete once
# the process has exited, each command timed alone (median of N). A third
# runs the runtimes' `run` interleaved, run by run (the order alternating),
# and gives the median, p10 and p90 of each: on a small VM whose speed
# drifts over minutes, the fairest comparison.
#
# usage: sudo bench/runtime.sh [-n N] [RUNTIME...]
#   RUNTIME: berth (bin/berth-runtime, or $BERTH_RUNTIME), runc, crun, or a
#   path to any runtime binary. Default: berth runc crun. Runtimes that are
#   not installed or built are skipped with a note.
#
# crun 1.8 refuses to run on a hybrid cgroup host while a controller
# (hugetlb here) sits on the cgroup2 mount; for crun's turn only, the script
# then mounts that controller's v1 hierarchy in a private mount namespace
# (bench/lib/hybrid-cgroups.sh), which gives it back when crun is done.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib/hybrid-cgroups.sh
. "$REPO/bench/lib/hybrid-cgroups.sh"
N=100

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while getopts "n:h" opt; do
	case $opt in
	n) N=$OPTARG ;;
	h) usage 0 ;;
	*) usage 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "runtime.sh: -n wants a positive number, got '$N'" >&2; exit 2; }
[ $# -gt 0 ] || set -- berth runc crun
[ "$(id -u)" = 0 ] || { echo "runtime.sh: run as root (the bundle is not rootless)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/berth-bench.XXXXXX)
USED=()      # "runtime-binary state-root" pairs to clean up

cleanup() {
	local pair bin root id
	for pair in "${USED[@]}"; do
		bin=${pair%% *} root=${pair#* }
		for id in $("$bin" --root "$root" list -q 2>/dev/null); do
			"$bin" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
		done
	done
	hybrid_v1_unmount
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_tools() {
	local missing=()
	[ -x /usr/bin/time ] || missing+=(time)
	command -v hyperfine >/dev/null || missing+=(hyperfine)
	[ ${#missing[@]} -eq 0 ] && return
	echo "# installing ${missing[*]}" >&2
	apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && apt-get install -y "${missing[@]}" >/dev/null 2>&1; } ||
		echo "# could not install ${missing[*]} (hyperfine is optional)" >&2
	[ -x /usr/bin/time ] || { echo "runtime.sh: GNU time (/usr/bin/time) is required" >&2; exit 1; }
}

resolve() {
	case $1 in
	berth) echo "${BERTH_RUNTIME:-$REPO/bin/berth-runtime}" ;;
	*/*) echo "$1" ;;
	*) command -v "$1" || echo "$1" ;;
	esac
}

version_of() { "$1" --version 2>/dev/null | head -1 | sed 's/^.*version //'; }

bench_one() {
	local name=$1 bin=$2 root=$TMP/state-$1 i start end fail=0 rss total ms hf=""
	mkdir -p "$root"
	USED+=("$bin $root")
	# One untimed run: page cache, and a clear error if the runtime cannot run at all.
	if ! "$bin" --root "$root" run --bundle "$TMP/bundle" "bench-$$-warm" >/dev/null 2>"$TMP/err"; then
		echo "| $name | $(version_of "$bin") | failed: $(head -c 200 "$TMP/err" | tr '\n|' ' /') | | | |"
		return
	fi
	start=$(date +%s%N)
	for ((i = 1; i <= N; i++)); do
		"$bin" --root "$root" run --bundle "$TMP/bundle" "bench-$$-$i" >/dev/null 2>&1 || fail=$((fail + 1))
	done
	end=$(date +%s%N)
	rss=$(/usr/bin/time -f %M "$bin" --root "$root" run --bundle "$TMP/bundle" "bench-$$-rss" 2>&1 >/dev/null | tail -1)
	total=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }')
	ms=$(awk -v ns=$((end - start)) -v n="$N" 'BEGIN { printf "%.1f", ns / 1e6 / n }')
	if command -v hyperfine >/dev/null; then
		hyperfine -N --warmup 3 --runs "$N" --export-json "$TMP/hf.json" \
			"$bin --root $root run --bundle $TMP/bundle bench-$$-hf" >/dev/null 2>&1 &&
			hf=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f ± %.1f (%.1f–%.1f)" % tuple(1000*r[k] for k in ("mean","stddev","min","max")))' "$TMP/hf.json")
	fi
	echo "| $name | $(version_of "$bin") | $total | $ms | $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') | ${hf:--} |$([ $fail -eq 0 ] || echo " $fail runs FAILED")"
}

# elapsed_us CMD...: runs CMD (output discarded) and prints its wall time in
# microseconds ($EPOCHREALTIME: no fork for the clock); fails as CMD does.
elapsed_us() {
	local t0=$EPOCHREALTIME t1
	"$@" >/dev/null 2>&1 || return 1
	t1=$EPOCHREALTIME
	echo $((${t1/./} - ${t0/./}))
}

median_ms() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 1000 }'; }

# lifecycle_one NAME BIN: create, start, wait until stopped, delete, N
# times; one row of median milliseconds per command.
lifecycle_one() {
	local name=$1 bin=$2 root=$TMP/life-$1 id="life-$$" i w f us fail=0
	mkdir -p "$root"
	USED+=("$bin $root")
	for f in create start delete; do : >"$TMP/$f"; done
	for ((i = 1; i <= N; i++)); do
		us=$(elapsed_us "$bin" --root "$root" create --bundle "$TMP/bundle" "$id") || { fail=$((fail + 1)); "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1; continue; }
		echo "$us" >>"$TMP/create"
		us=$(elapsed_us "$bin" --root "$root" start "$id") || fail=$((fail + 1))
		echo "${us:-0}" >>"$TMP/start"
		for ((w = 0; w < 1000; w++)); do
			"$bin" --root "$root" state "$id" 2>/dev/null | grep -q '"status": *"\(created\|running\)"' || break
		done
		us=$(elapsed_us "$bin" --root "$root" delete "$id") || { fail=$((fail + 1)); "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1; }
		echo "${us:-0}" >>"$TMP/delete"
	done
	local c s d
	c=$(median_ms <"$TMP/create") s=$(median_ms <"$TMP/start") d=$(median_ms <"$TMP/delete")
	echo "| $name | $c | $s | $d | $(awk -v c="$c" -v s="$s" -v d="$d" 'BEGIN { printf "%.1f", c + s + d }') |$([ $fail -eq 0 ] || echo " $fail FAILED")"
}

# interleaved: N rounds, each one `run` of every runtime present (the order
# reversed every other round); one row per runtime of median, p10, p90 ms.
interleaved() {
	local bins=() names=() rt bin i j k us order hybrid=0
	for rt in "${RUNTIMES[@]}"; do
		bin=$(resolve "$rt")
		[ -x "$bin" ] || continue
		bins+=("$bin") names+=("$(basename "$bin")")
		[ "$(basename "$bin")" = crun ] && hybrid=1
		mkdir -p "$TMP/il-${#bins[@]}"
		USED+=("$bin $TMP/il-${#bins[@]}")
		: >"$TMP/il-${#bins[@]}.ms"
	done
	[ $hybrid -eq 0 ] || hybrid_v1_mount
	for ((i = 1; i <= N; i++)); do
		order=$(seq 1 ${#bins[@]})
		[ $((i % 2)) -eq 0 ] && order=$(seq ${#bins[@]} -1 1)
		for j in $order; do
			k=$((j - 1))
			us=$(elapsed_us "${bins[$k]}" --root "$TMP/il-$j" run --bundle "$TMP/bundle" "il-$$") || us=FAILED
			echo "$us" >>"$TMP/il-$j.ms"
		done
	done
	[ $hybrid -eq 0 ] || hybrid_v1_unmount
	for ((j = 1; j <= ${#bins[@]}; j++)); do
		grep -v FAILED "$TMP/il-$j.ms" | sort -n | awk -v name="${names[$((j - 1))]}" -v fails="$(grep -c FAILED "$TMP/il-$j.ms")" '
			{ v[NR] = $1 }
			END { if (NR) printf "| %s | %.1f | %.1f | %.1f |%s\n", name, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 1000, v[int(NR / 10) + 1] / 1000, v[int(NR * 9 / 10) + (NR < 10)] / 1000, (fails > 0 ? " " fails " FAILED" : "") }'
	done
}

need_tools
echo "# building the busybox bundle (tests/fixtures/cmd/mkbundle)" >&2
# ociVersion 1.0.2: crun 1.8 rejects newer versions.
(cd "$REPO" && go run ./tests/fixtures/cmd/mkbundle -oci-version 1.0.2 "$TMP/bundle" -- /bin/true)

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(uname -sr); $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); $(free -m | awk '/^Mem:/ {print $2}') MiB RAM"
echo "# $N sequential 'run' of /bin/true per runtime"
echo "| runtime | version | total s | ms/run | peak RSS MiB | hyperfine ms (mean ± σ, min–max) |"
echo "|---|---|---|---|---|---|"
# each_runtime FUNC: FUNC NAME BIN for every runtime that is there.
each_runtime() {
	local rt bin name
	for rt in "${RUNTIMES[@]}"; do
		bin=$(resolve "$rt")
		[ -x "$bin" ] || continue
		name=$(basename "$bin")
		if [ "$name" = crun ]; then
			hybrid_v1_mount
			"$1" "$name" "$bin"
			hybrid_v1_unmount
		else
			"$1" "$name" "$bin"
		fi
	done
}

RUNTIMES=("$@")
for rt in "${RUNTIMES[@]}"; do
	bin=$(resolve "$rt")
	[ -x "$bin" ] || echo "| $rt | not installed/built ($bin) | | | | |"
done
each_runtime bench_one
echo
echo "# the shim's commands for one container, median ms of $N (start returns once the program runs)"
echo "| runtime | create | start | delete | sum |"
echo "|---|---|---|---|---|"
each_runtime lifecycle_one
echo
echo "# 'run' interleaved run by run, $N rounds: ms"
echo "| runtime | median | p10 | p90 |"
echo "|---|---|---|---|"
interleaved
