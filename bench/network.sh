#!/bin/bash
# bench/network.sh: what a container's network costs, side by side.
#
# The extra time of `run --rm busybox true` on each engine's default bridge
# network over the same run with --network none: berth (berth0-like bridge
# of its own, veth, address, embedded DNS), docker (docker0, --iptables=false
# as this machine's dockerd is always started) and podman (its CNI bridge).
# Then the same with one published port (-p 8080). Engines and image as
# bench/lib/engines.sh sets them up. N runs of each after 3 warm-ups,
# alternating none/bridge so drift hits both alike; medians reported.
#
# usage: sudo bench/network.sh [-n N]     # default N = 20
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=20
while getopts "n:h" opt; do
	case $opt in
	n) N=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "network.sh: run as root" >&2; exit 1; }

DOCKER_BRIDGE=1
source "$REPO/bench/lib/engines.sh"

cli() { case $1 in berth) echo bt ;; podman) echo pm ;; docker) echo dk ;; esac; }
declare -A EXTRA
echo; echo "## run --rm busybox true: default bridge against --network none (N=$N, medians)"; echo
echo "| engine | none ms | bridge ms | extra ms | bridge -p 8080 ms | extra ms |"; echo "|---|---|---|---|---|---|"
for e in berth docker podman; do
	c=$(cli $e)
	for i in 1 2 3; do
		$c run --rm --network none "$IMG" true >/dev/null 2>&1 || true
		$c run --rm "$IMG" true >/dev/null 2>&1 || true
	done
	: >"$TMP/none-$e"; : >"$TMP/br-$e"; : >"$TMP/port-$e"
	for i in $(seq "$N"); do
		t0=$(now); $c run --rm --network none "$IMG" true >/dev/null 2>>"$TMP/err-$e" || { tail -2 "$TMP/err-$e" >&2; exit 1; }
		t1=$(now); $c run --rm "$IMG" true >/dev/null 2>>"$TMP/err-$e" || { tail -2 "$TMP/err-$e" >&2; exit 1; }
		t2=$(now); $c run --rm -p 8080 "$IMG" true >/dev/null 2>>"$TMP/err-$e" || { tail -2 "$TMP/err-$e" >&2; exit 1; }
		t3=$(now)
		echo $(((t1 - t0) / 1000000)) >>"$TMP/none-$e"
		echo $(((t2 - t1) / 1000000)) >>"$TMP/br-$e"
		echo $(((t3 - t2) / 1000000)) >>"$TMP/port-$e"
	done
	read -r none _ < <(stats <"$TMP/none-$e")
	read -r br _ < <(stats <"$TMP/br-$e")
	read -r port _ < <(stats <"$TMP/port-$e")
	EXTRA[$e]=$((br - none))
	echo "| $e | $none | $br | $((br - none)) | $port | $((port - none)) |"
done

echo
b=${EXTRA[berth]}; d=${EXTRA[docker]}; p=${EXTRA[podman]}
least=$((d < p ? d : p))
if [ $((b * 4)) -le "$least" ]; then v=met; else v="not met"; fi
echo "goal: berth's extra cost <= 1/4 of docker's and podman's: $v (berth $b ms, docker $d ms, podman $p ms, target $((least / 4)) ms)"
