#!/bin/bash
# bench/pull.sh: pull + unpack of a Debian bookworm minbase image from a
# local registry, side by side.
#
# The image is built here: a debootstrap --variant=minbase rootfs (cached in
# /var/cache/berth-bench, without apt's package lists and archives), one gzip
# layer made by umoci, pushed by skopeo to Debian's docker-registry started
# on a free loopback port for the run. Each tool then pulls it N times (default
# 3), every time into an empty store of its own, and the wall time of each
# pull is reported (mean, min, max):
#
#   berth    bin/berthd on a fresh root, pulled with `docker pull` against it
#            (or bin/berth pull when the berth CLI is built)
#   ctr      containerd (Debian) on a fresh root, `ctr images pull --plain-http`
#            (fetch and unpack into its overlayfs snapshotter)
#   podman   `podman --root <fresh> pull --tls-verify=false`
#   docker   dockerd (Debian) on a fresh data root, `docker pull`
#   skopeo   `skopeo copy` into an OCI layout: fetch only, no unpack
#   tar      `tar xzf` of the layer blob into an empty directory: unpack only
#
# Daemons are started before the clock starts and stopped after it; all
# state lives under one temp dir that is removed on exit.
#
# That dir is a fresh ext4 filesystem (on a loop device over a sparse file
# in /var/tmp), so that what the host's filesystem went through in the
# minutes before does not count: without a journal, ext4 skips the inodes
# freed in the last one to five minutes when it allocates, and after a
# large delete (a test suite's, an earlier run's cleanup) file creation
# was up to four times as slow here. -H keeps the temp dir on the host's
# filesystem instead.
#
# usage: sudo bench/pull.sh [-n N] [-H] [TOOL...]     (default: every tool above)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=3
HOSTFS=0
CACHE=/var/cache/berth-bench

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while getopts "n:Hh" opt; do
	case $opt in
	n) N=$OPTARG ;;
	H) HOSTFS=1 ;;
	h) usage 0 ;;
	*) usage 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "pull.sh: -n wants a positive number, got '$N'" >&2; exit 2; }
[ $# -gt 0 ] || set -- berth ctr podman docker skopeo tar
[ "$(id -u)" = 0 ] || { echo "pull.sh: run as root" >&2; exit 1; }

TMP=$(mktemp -d /tmp/bp.XXXX) # short: berthd refuses an exec root its shim sockets would not fit under
PIDS=()
FSIMG="" LOOPDEV=""
# berthd's network names (its default bridge, veth prefix, nftables table)
# are this run's own, removed on exit: with the defaults every run would
# leave a berth0 bridge with one more subnet on it.
BERTH_NET=bp$(head -c2 /dev/urandom | od -An -tx1 | tr -d ' \n')
cleanup() {
	local pid l
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	for l in $(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$BERTH_NET"); do
		ip link del "$l" 2>/dev/null || true
	done
	nft delete table inet "berth_bench_$BERTH_NET" 2>/dev/null || true
	# Stores hold overlay mounts (containerd, podman, dockerd, berthd).
	# (grep finds nothing when nothing is mounted: under pipefail that must
	# not end the cleanup before the rm.)
	{ grep -o " ${TMP}[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$TMP"
	if [ -n "$LOOPDEV" ]; then losetup -d "$LOOPDEV" 2>/dev/null || true; fi
	if [ -n "$FSIMG" ]; then rm -f "$FSIMG"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$HOSTFS" = 0 ]; then
	FSIMG=$(mktemp /var/tmp/bp-fs.XXXX)
	truncate -s 16G "$FSIMG"
	mkfs.ext4 -q -F "$FSIMG"
	LOOPDEV=$(losetup --direct-io=on -f --show "$FSIMG")
	mount "$LOOPDEV" "$TMP"
	chmod 700 "$TMP"
fi

need() { command -v "$1" >/dev/null || { echo "pull.sh: $1 is missing (apt-get install $2)" >&2; exit 1; }; }
need debootstrap debootstrap
need umoci umoci
need skopeo skopeo
need docker-registry docker-registry

now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}

# The image: cached rootfs, then an OCI layout with one gzip layer.
if [ ! -f "$CACHE/rootfs.done" ]; then
	echo "# debootstrap --variant=minbase bookworm into $CACHE/rootfs (once)" >&2
	rm -rf "$CACHE/rootfs" && mkdir -p "$CACHE"
	debootstrap --variant=minbase bookworm "$CACHE/rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1
	rm -rf "$CACHE"/rootfs/var/cache/apt/archives/*.deb "$CACHE"/rootfs/var/lib/apt/lists/*_Packages "$CACHE"/rootfs/var/lib/apt/lists/*_InRelease
	touch "$CACHE/rootfs.done"
fi
umoci init --layout "$TMP/oci" >/dev/null
umoci new --image "$TMP/oci:bookworm" >/dev/null
umoci insert --image "$TMP/oci:bookworm" "$CACHE/rootfs" / >/dev/null
layer=$(python3 - "$TMP/oci" <<'EOF'
import json, sys
d = sys.argv[1]
idx = json.load(open(d + "/index.json"))
m = idx["manifests"][0]["digest"].split(":")[1]
man = json.load(open(d + "/blobs/sha256/" + m))
print(d + "/blobs/sha256/" + man["layers"][0]["digest"].split(":")[1])
EOF
)

port=$(free_port)
mkdir -p "$TMP/registry"
cat >"$TMP/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $TMP/registry
http:
  addr: 127.0.0.1:$port
log:
  level: error
EOF
docker-registry serve "$TMP/registry.yml" >"$TMP/registry.log" 2>&1 &
PIDS+=($!)
wait_for 10 curl -sf "http://127.0.0.1:$port/v2/" || { echo "pull.sh: registry did not start" >&2; exit 1; }
REF=127.0.0.1:$port/bench/debian:bookworm
skopeo copy -q --dest-tls-verify=false "oci:$TMP/oci:bookworm" "docker://$REF"
printf '# image %s: layer %s MB compressed, rootfs %s unpacked\n' "$REF" \
	"$(($(stat -c %s "$layer") / 1000000))" "$(du -sh "$CACHE/rootfs" | cut -f1)" >&2

# Each pull_<tool> RUN prints the seconds one pull took.
pull_tar() {
	mkdir -p "$TMP/tar-$1"
	local t0; t0=$(now)
	tar -xzf "$layer" -C "$TMP/tar-$1"
	echo "$(now) - $t0" | bc
}
pull_skopeo() {
	local t0; t0=$(now)
	skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$TMP/skopeo-$1:bookworm"
	echo "$(now) - $t0" | bc
}
pull_podman() {
	local t0; t0=$(now)
	podman --root "$TMP/podman-$1/root" --runroot "$TMP/podman-$1/run" --storage-driver overlay \
		pull -q --tls-verify=false "$REF" >/dev/null
	echo "$(now) - $t0" | bc
	podman --root "$TMP/podman-$1/root" --runroot "$TMP/podman-$1/run" --storage-driver overlay system reset -f >/dev/null 2>&1 || true
}
pull_ctr() {
	local d=$TMP/ctr-$1 pid t0
	mkdir -p "$d"
	printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"$d/config.toml"
	containerd --config "$d/config.toml" --root "$d/root" --state "$d/state" --address "$d/sock" >"$d/log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_for 20 ctr -a "$d/sock" version
	t0=$(now)
	ctr -a "$d/sock" images pull --plain-http "$REF" >/dev/null
	echo "$(now) - $t0" | bc
	kill "$pid"; wait "$pid" 2>/dev/null || true
}
pull_docker() {
	local d=$TMP/docker-$1 pid t0
	mkdir -p "$d"
	dockerd --iptables=false --ip6tables=false --bridge=none -H "unix://$d/sock" --data-root "$d/data" \
		--exec-root "$d/exec" --pidfile "$d/pid" --containerd-namespace "berth-bench-$1" >"$d/log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_for 30 docker -H "unix://$d/sock" version
	t0=$(now)
	docker -H "unix://$d/sock" pull -q "$REF" >/dev/null
	echo "$(now) - $t0" | bc
	kill "$pid"; wait "$pid" 2>/dev/null || true
}
pull_berth() {
	local d=$TMP/berth-$1 pid t0
	[ -x "$REPO/bin/berthd" ] || { echo "pull.sh: build berth first (make)" >&2; return 1; }
	mkdir -p "$d"
	printf '[network]\nbridge = "%s-0"\nlink_prefix = "%s"\nnftables_table = "berth_bench_%s"\n' "$BERTH_NET" "$BERTH_NET" "$BERTH_NET" >"$d/berth.toml"
	"$REPO/bin/berthd" --config "$d/berth.toml" --root "$d/root" --exec-root "$d/run" -H "unix://$d/sock" >"$d/log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_for 20 curl -sf --unix-socket "$d/sock" http://berth/_ping
	t0=$(now)
	if [ -x "$REPO/bin/berth" ]; then
		DOCKER_HOST=unix://$d/sock "$REPO/bin/berth" pull -q "$REF" >/dev/null || { tail -3 "$d/log" >&2; return 1; }
	else
		docker -H "unix://$d/sock" pull -q "$REF" >/dev/null || { tail -3 "$d/log" >&2; return 1; }
	fi
	echo "$(now) - $t0" | bc
	kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "| tool | mean s | min s | max s | runs |"
echo "|---|---|---|---|---|"
for tool in "$@"; do
	if ! declare -F "pull_$tool" >/dev/null; then
		echo "pull.sh: unknown tool $tool" >&2
		continue
	fi
	times=()
	for i in $(seq 1 "$N"); do
		sync
		echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
		if ! t=$("pull_$tool" "$i" 2>"$TMP/err-$tool"); then
			echo "| $tool | failed: $(tail -1 "$TMP/err-$tool") | | | |"
			continue 2
		fi
		times+=("$t")
	done
	echo "# $tool: ${times[*]}" >&2
	printf '%s\n' "${times[@]}" | awk -v tool="$tool" -v n="$N" '
		{ s += $1; if (NR == 1 || $1 < min) min = $1; if ($1 > max) max = $1 }
		END { printf "| %s | %.2f | %.2f | %.2f | %d |\n", tool, s / NR, min, max, n }'
done
