#!/bin/bash
# bench/containers.sh: whole-engine container benchmarks, side by side.
#
# Engines and image as bench/lib/engines.sh sets them up: one busybox image
# (busybox-static in an OCI layout made with umoci),
# pushes it to a docker-registry the script starts on 127.0.0.1:<free port>,
# and pulls it into every engine, each on its own temporary roots: berthd
# (--root/--exec-root/-H on a temp dir), podman (--root/--runroot, crun),
# dockerd (own data/exec roots and socket, --iptables=false --bridge=none,
# its own containerd) and containerd (own root/state/socket, runc via ctr).
# Measures: 1. run --rm --network none busybox true (median, p90);
# 2. 50 concurrent `sleep 60` starts, then rm -f of them; 3. commit of a
# 100 MB change (berth, docker); 4. monitor memory of 10 idle containers;
# 5. idle daemon RSS. Daemons are stopped by pid; temp dirs removed on exit.
#
# usage: sudo bench/containers.sh [-n N]     # N runs for 1. (default 20)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=20
while getopts "n:h" opt; do
	case $opt in
	n) N=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "containers.sh: run as root" >&2; exit 1; }

DOCKER_BRIDGE=0
source "$REPO/bench/lib/engines.sh"

# 1. run --rm true.
run_berth() { bt run --rm --network none "$IMG" true; }
run_podman() { pm run --rm --network none "$IMG" true; }
run_docker() { dk run --rm --network none "$IMG" true; }
run_ctr() { ct run --rm "$IMG" "bench-$1" true; }
declare -A MED
echo; echo "## 1. run --rm --network none busybox true (N=$N after 3 warm-ups)"; echo
echo "| engine | median ms | p90 ms |"; echo "|---|---|---|"
for e in berth podman docker ctr; do
	for i in 1 2 3; do "run_$e" "w$i" >/dev/null 2>&1 || true; done
	for i in $(seq "$N"); do t0=$(now); "run_$e" "r$i" >/dev/null 2>>"$TMP/err-$e" || { echo "run_$e failed:" >&2; tail -2 "$TMP/err-$e" >&2; exit 1; }; echo $((($(now) - t0) / 1000000)); done >"$TMP/run-$e"
	read -r med p90 < <(stats <"$TMP/run-$e"); MED[$e]=$med
	echo "| $e | $med | $p90 |"
done

# 2. 50 concurrent sleep 60, then rm -f.
echo; echo "## 2. 50 concurrent sleep 60: start until all running, then rm -f"; echo
echo "| engine | start s | rm -f s |"; echo "|---|---|---|"
for e in berth podman docker; do
	c=$([ $e = berth ] && echo bt || { [ $e = podman ] && echo pm || echo dk; })
	t0=$(now)
	# Wait for these runs only: a bare wait would wait for the daemons too.
	runs=()
	for i in $(seq 50); do $c run -d --network none --name "s$i" "$IMG" sleep 60 >/dev/null & runs+=($!); done
	wait "${runs[@]}"
	end=$((SECONDS + 120))
	until [ "$($c ps -q | wc -l)" -ge 50 ] || [ $SECONDS -ge $end ]; do sleep 0.05; done
	t1=$(now)
	$c rm -f $($c ps -aq) >/dev/null
	t2=$(now)
	printf '| %s | %.2f | %.2f |\n' $e "$(echo "($t1-$t0)/10^9" | bc -l)" "$(echo "($t2-$t1)/10^9" | bc -l)"
done

# 3. commit of 100 MB.
echo; echo "## 3. commit of a 100 MB change"; echo
echo "| engine | commit s |"; echo "|---|---|"
for e in berth docker; do
	c=$([ $e = berth ] && echo bt || echo dk)
	$c run --network none --name big "$IMG" dd if=/dev/urandom of=/big bs=1M count=100 >/dev/null 2>&1
	t0=$(now); $c commit big bench/big:1 >/dev/null; t1=$(now)
	$c rm -f big >/dev/null
	printf '| %s | %.2f |\n' $e "$(echo "($t1-$t0)/10^9" | bc -l)"
done

# 4. monitor memory, 10 idle containers.
echo; echo "## 4. monitor memory, 10 idle containers (mean per monitor)"; echo
echo "| monitor | RSS kB | PSS kB |"; echo "|---|---|---|"
ours() { # ours NAME: the processes called NAME whose command line names this run's temp dir
	local q cmd
	for q in $(pgrep -f -- "$1"); do
		cmd=$(tr '\0' ' ' <"/proc/$q/cmdline" 2>/dev/null) || continue
		case "${cmd%% *}" in *"$1") [[ $cmd == *"$TMP/"* ]] && echo "$q" ;; esac
	done
}
mon() { # mon NAME PIDS...
	local name=$1 r=0 p=0 n=0; shift
	for q in "$@"; do r=$((r + $(rss_kb "$q"))); p=$((p + $(pss_kb "$q"))); n=$((n + 1)); done
	[ $n -gt 0 ] && echo "| $name ($n) | $((r / n)) | $((p / n)) |" || echo "| $name | none found | |"
}
for e in berth podman docker; do
	c=$([ $e = berth ] && echo bt || { [ $e = podman ] && echo pm || echo dk; })
	for i in $(seq 10); do $c run -d --network none --name "m$i" "$IMG" sleep 600 >/dev/null; done
	sleep 3
	case $e in
	berth) mon berth-shim $(cat "$TMP"/r/s/*/shim.pid 2>/dev/null) ;;
	podman) mon conmon $(ours conmon) ;;
	docker) mon containerd-shim-runc-v2 $(ours containerd-shim-runc-v2) ;;
	esac
	$c rm -f $($c ps -aq) >/dev/null
done

# 5. idle daemon RSS.
sleep 2
echo; echo "## 5. idle daemon RSS (no containers)"; echo
dctd=$(pgrep -P "$DOCKERD" -x containerd || true)
echo "| daemon | RSS MiB |"; echo "|---|---|"
echo "| berthd | $(($(rss_kb "$BERTHD") / 1024)) |"
echo "| dockerd + its containerd | $((($(rss_kb "$DOCKERD") + $([ -n "$dctd" ] && rss_kb "$dctd" || echo 0)) / 1024)) |"

echo
p=${MED[podman]}; b=${MED[berth]}
if [ $((b * 4)) -le "$p" ]; then v=met; else v="not met"; fi
echo "goal run --rm <= 1/4 of podman+$PODMAN_RUNTIME: $v (berth $b ms, podman $p ms, target $((p / 4)) ms)"
