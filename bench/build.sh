#!/bin/bash
# bench/build.sh: a small Dockerfile built side by side.
#
# The issue's build: a busybox base (the image of bench/lib/engines.sh), a
# RUN, a COPY, ENV, WORKDIR and CMD; built with --no-cache by berth,
# `DOCKER_BUILDKIT=0 docker build` (dockerd's classic builder) and
# `podman build`, then rebuilt with every step cached. N builds of each
# after one warm-up; medians reported. Engines as bench/lib/engines.sh sets
# them up (temporary roots, stopped and removed on exit).
#
# usage: sudo bench/build.sh [-n N]     # default N = 10
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=10
while getopts "n:h" opt; do
	case $opt in
	n) N=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root" >&2; exit 1; }

DOCKER_BRIDGE=0
source "$REPO/bench/lib/engines.sh"

CTX=$TMP/ctx
mkdir -p "$CTX"
head -c 65536 /dev/urandom >"$CTX/data.bin"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $IMG
RUN echo built > /built.txt
COPY data.bin /srv/data.bin
ENV APP_MODE=bench
WORKDIR /srv
CMD ["cat", "/built.txt"]
DOCKERFILE

build_berth() { bt build -q "$@" -t bench/app "$CTX"; }
build_docker() { DOCKER_BUILDKIT=0 dk build -q "$@" -t bench/app "$CTX"; }
build_podman() { pm build -q "$@" --network none -t bench/app "$CTX"; }

declare -A NOCACHE CACHED
echo; echo "## build of a small Dockerfile (N=$N, medians)"; echo
echo "| engine | --no-cache ms | cached ms |"; echo "|---|---|---|"
for e in berth docker podman; do
	"build_$e" --no-cache >/dev/null 2>>"$TMP/err-$e" || { tail -3 "$TMP/err-$e" >&2; exit 1; }
	: >"$TMP/nc-$e"; : >"$TMP/c-$e"
	for i in $(seq "$N"); do
		t0=$(now); "build_$e" --no-cache >/dev/null 2>>"$TMP/err-$e"; t1=$(now)
		"build_$e" >/dev/null 2>>"$TMP/err-$e"; t2=$(now)
		echo $(((t1 - t0) / 1000000)) >>"$TMP/nc-$e"
		echo $(((t2 - t1) / 1000000)) >>"$TMP/c-$e"
	done
	read -r nc _ < <(stats <"$TMP/nc-$e")
	read -r c _ < <(stats <"$TMP/c-$e")
	NOCACHE[$e]=$nc; CACHED[$e]=$c
	echo "| $e | $nc | $c |"
done

echo
b=${NOCACHE[berth]}; d=${NOCACHE[docker]}
if [ $((b * 4)) -le "$d" ]; then v=met; else v="not met"; fi
echo "goal --no-cache <= 1/4 of docker's classic builder: $v (berth $b ms, docker $d ms, target $((d / 4)) ms)"
c=${CACHED[berth]}
if [ "$c" -lt 100 ]; then v=met; else v="not met"; fi
echo "goal cached rebuild < 100 ms: $v (berth $c ms)"
