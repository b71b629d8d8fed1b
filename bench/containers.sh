#!/bin/bash
# bench/containers.sh: whole-engine container benchmarks, side by side.
#
# Builds one busybox image (busybox-static in an OCI layout made with umoci),
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

TMP=$(mktemp -d /tmp/bc.XXXX) # short: berth-shim's socket path must fit in 108 bytes
PIDS=()
cleanup() {
	set +e
	[ -S "$TMP/b/sock" ] && DOCKER_HOST=unix://$TMP/b/sock "$REPO/bin/berth" rm -f $(DOCKER_HOST=unix://$TMP/b/sock "$REPO/bin/berth" ps -aq) >/dev/null 2>&1
	[ -S "$TMP/d/sock" ] && docker -H "unix://$TMP/d/sock" rm -f $(docker -H "unix://$TMP/d/sock" ps -aq) >/dev/null 2>&1
	pm system reset -f >/dev/null 2>&1
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	grep " $TMP" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

now() { date +%s%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { local end=$((SECONDS + $1)); shift; until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done; }
stats() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.9+0.999)]; printf "%.0f %.0f\n", m, p}'; }
rss_kb() { awk '/^Rss:/{s+=$2} END{print s+0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/{s+=$2} END{print s+0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

bt() { DOCKER_HOST=unix://$TMP/b/sock "$REPO/bin/berth" "$@"; }
# podman's default limits (NOFILE and NPROC of 1048576) are above this
# VM's hard limits, which the runtime cannot raise without
# CAP_SYS_RESOURCE: runs get explicit ones. crun refuses a hybrid cgroup
# host ("cgroups in hybrid mode not supported"); podman then runs runc.
PODMAN_RUNTIME=crun
pm() {
	local a=(podman --root "$TMP/p/root" --runroot "$TMP/p/run" --storage-driver overlay --runtime "$PODMAN_RUNTIME")
	if [ "$1" = run ]; then shift; "${a[@]}" run --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@"; else "${a[@]}" "$@"; fi
}
dk() { docker -H "unix://$TMP/d/sock" "$@"; }
ct() { ctr -a "$TMP/c/sock" "$@"; }

# The image.
mkdir -p "$TMP/rootfs/bin" "$TMP/b" "$TMP/p" "$TMP/d" "$TMP/c"
cp /bin/busybox "$TMP/rootfs/bin/busybox"
for a in sh true sleep dd; do ln -s busybox "$TMP/rootfs/bin/$a"; done
umoci init --layout "$TMP/oci" >/dev/null
umoci new --image "$TMP/oci:bb" >/dev/null
umoci insert --image "$TMP/oci:bb" "$TMP/rootfs" / >/dev/null
port=$(free_port)
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\nlog:\n  level: error\n' "$TMP/reg" "$port" >"$TMP/reg.yml"
docker-registry serve "$TMP/reg.yml" >"$TMP/reg.log" 2>&1 & PIDS+=($!)
wait_for 10 curl -sf "http://127.0.0.1:$port/v2/"
IMG=127.0.0.1:$port/bench/busybox:latest
skopeo copy -q --dest-tls-verify=false "oci:$TMP/oci:bb" "docker://$IMG"

# The daemons.
: >"$TMP/b/berth.toml" # 127.0.0.0/8 is an insecure registry by default
"$REPO/bin/berthd" --config "$TMP/b/berth.toml" --root "$TMP/b/root" --exec-root "$TMP/r" -H "unix://$TMP/b/sock" >"$TMP/b/log" 2>&1 & BERTHD=$!; PIDS+=($BERTHD)
printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"$TMP/c/config.toml"
containerd --config "$TMP/c/config.toml" --root "$TMP/c/root" --state "$TMP/c/state" --address "$TMP/c/sock" >"$TMP/c/log" 2>&1 & PIDS+=($!)
echo '{}' >"$TMP/d/daemon.json" # 127.0.0.0/8 is insecure by default
dockerd --config-file "$TMP/d/daemon.json" --iptables=false --ip6tables=false --bridge=none -H "unix://$TMP/d/sock" \
	--data-root "$TMP/d/data" --exec-root "$TMP/d/exec" --pidfile "$TMP/d/pid" >"$TMP/d/log" 2>&1 & DOCKERD=$!; PIDS+=($DOCKERD)
wait_for 20 curl -sf --unix-socket "$TMP/b/sock" http://x/_ping || { echo "berthd did not start" >&2; exit 1; }
wait_for 20 ct version || { echo "containerd did not start" >&2; exit 1; }
wait_for 30 dk version || { echo "dockerd did not start" >&2; exit 1; }
bt pull -q "$IMG" >/dev/null
pm pull -q --tls-verify=false "$IMG" >/dev/null
if ! pm run --rm --network none "$IMG" true >/dev/null 2>&1; then
	PODMAN_RUNTIME=runc
	echo "note: crun cannot run containers on this host (hybrid cgroups); podman uses runc" >&2
fi
dk pull -q "$IMG" >/dev/null
ct images pull --plain-http "$IMG" >/dev/null

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
