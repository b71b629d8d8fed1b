# bench/lib/engines.sh: the engines side by side, for the bench scripts.
#
# Sourced after REPO is set. Builds one busybox image (busybox-static in an
# OCI layout made with umoci), pushes it to a docker-registry started on
# 127.0.0.1:<free port>, starts berthd, containerd and dockerd on temporary
# roots and pulls the image into berth, podman, docker and containerd ($IMG).
# berthd gets network names of its own (bridge, link prefix, nftables
# table), removed on exit. With DOCKER_BRIDGE=1 dockerd keeps its default
# bridge (docker0, made and removed here if missing; still --iptables=false),
# else it runs with --bridge=none. Defines bt, pm, dk, ct (the engines'
# CLIs), now, stats, rss_kb, pss_kb, wait_for. Daemons are stopped by pid;
# containers, mounts, links, temp dirs and the engines' cgroup parents this
# run made are removed on exit.
TMP=$(mktemp -d /tmp/bc.XXXX) # short: berth-shim's socket path must fit in 108 bytes
PIDS=()
cleanup() {
	set +e
	[ -S "$TMP/b/sock" ] && DOCKER_HOST=unix://$TMP/b/sock "$REPO/bin/berth" rm -f $(DOCKER_HOST=unix://$TMP/b/sock "$REPO/bin/berth" ps -aq) >/dev/null 2>&1
	[ -S "$TMP/d/sock" ] && docker -H "unix://$TMP/d/sock" rm -f $(docker -H "unix://$TMP/d/sock" ps -aq) >/dev/null 2>&1
	pm system reset -f >/dev/null 2>&1
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${BERTH_NET:-}" ] && { for l in $(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$BERTH_NET"); do ip link del "$l"; done; nft delete table inet "berth_bench_$BERTH_NET"; } 2>/dev/null
	[ -n "${MADE_DOCKER0:-}" ] && ip link del docker0 2>/dev/null
	# What podman's CNI plugins made for its bridge network and left: its
	# bridge, its address state, and the iptables-nft tables they added
	# (only those that were not there before this run).
	[ -n "${MADE_CNI0:-}" ] && ip link del cni-podman0 2>/dev/null
	[ -n "${MADE_CNI_STATE:-}" ] && rm -rf /var/lib/cni/networks/podman
	for t in "ip nat" "ip filter" "ip6 nat" "ip6 filter"; do
		grep -qx "table $t" <<<"$TABLES_BEFORE" || nft delete table $t 2>/dev/null
	done
	grep " $TMP" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	# The engines' cgroup parents (berthd's berth, dockerd's docker,
	# containerd's default, podman's libpod_parent), if this run made
	# them and they are empty now.
	local d
	for d in $(find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d \( -name berth -o -name docker -o -name default -o -name libpod_parent \) 2>/dev/null | sort -r); do
		grep -qxF "$d" <<<"$CGROUPS_BEFORE" && continue
		find "$d" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
	hybrid_v1_unmount
	rm -rf "$TMP"
}
# shellcheck source=hybrid-cgroups.sh
. "$REPO/bench/lib/hybrid-cgroups.sh"
TABLES_BEFORE=$(nft list tables 2>/dev/null || true)
CGROUPS_BEFORE=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d \( -name berth -o -name docker -o -name default -o -name libpod_parent \) 2>/dev/null || true)
ip link show cni-podman0 >/dev/null 2>&1 || MADE_CNI0=1
[ -e /var/lib/cni/networks/podman ] || MADE_CNI_STATE=1
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
# host while a controller sits on the cgroup2 mount ("cgroups in hybrid mode
# not supported"): then that controller gets a v1 hierarchy of its own,
# hidden in a private mount namespace (lib/hybrid-cgroups.sh, as runtime.sh
# does for crun), for the whole run; podman runs runc only if crun still
# refuses.
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
# 127.0.0.0/8 is an insecure registry by default; network names of its own.
BERTH_NET=bb$(head -c2 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '[network]\nbridge = "%s-0"\nlink_prefix = "%s"\nnftables_table = "berth_bench_%s"\n' "$BERTH_NET" "$BERTH_NET" "$BERTH_NET" >"$TMP/b/berth.toml"
"$REPO/bin/berthd" --config "$TMP/b/berth.toml" --root "$TMP/b/root" --exec-root "$TMP/r" -H "unix://$TMP/b/sock" >"$TMP/b/log" 2>&1 & BERTHD=$!; PIDS+=($BERTHD)
printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"$TMP/c/config.toml"
containerd --config "$TMP/c/config.toml" --root "$TMP/c/root" --state "$TMP/c/state" --address "$TMP/c/sock" >"$TMP/c/log" 2>&1 & PIDS+=($!)
echo '{}' >"$TMP/d/daemon.json" # 127.0.0.0/8 is insecure by default
DOCKERD_NET=(--bridge=none)
if [ "${DOCKER_BRIDGE:-}" = 1 ]; then
	DOCKERD_NET=()
	ip link show docker0 >/dev/null 2>&1 || MADE_DOCKER0=1
fi
dockerd --config-file "$TMP/d/daemon.json" --iptables=false --ip6tables=false "${DOCKERD_NET[@]}" -H "unix://$TMP/d/sock" \
	--data-root "$TMP/d/data" --exec-root "$TMP/d/exec" --pidfile "$TMP/d/pid" >"$TMP/d/log" 2>&1 & DOCKERD=$!; PIDS+=($DOCKERD)
wait_for 20 curl -sf --unix-socket "$TMP/b/sock" http://x/_ping || { echo "berthd did not start" >&2; exit 1; }
wait_for 20 ct version || { echo "containerd did not start" >&2; exit 1; }
wait_for 30 dk version || { echo "dockerd did not start" >&2; exit 1; }
bt pull -q "$IMG" >/dev/null
pm pull -q --tls-verify=false "$IMG" >/dev/null
if ! pm run --rm --network none "$IMG" true >/dev/null 2>&1; then
	hybrid_v1_mount || true
	if pm run --rm --network none "$IMG" true >/dev/null 2>&1; then
		echo "note: cgroup2's controllers (${HYBRID_CONTROLLERS[*]}) moved to hidden v1 hierarchies for crun" >&2
	else
		hybrid_v1_unmount
		PODMAN_RUNTIME=runc
		echo "note: crun cannot run containers on this host (hybrid cgroups); podman uses runc" >&2
	fi
fi
dk pull -q "$IMG" >/dev/null
ct images pull --plain-http "$IMG" >/dev/null

