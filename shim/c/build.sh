#!/bin/sh
# shim/c/build.sh OUT [asan|static]: builds berth-shim in C into OUT,
# dynamic against glibc only (its pages are shared with every other
# process). asan: with AddressSanitizer and UndefinedBehaviorSanitizer, for
# the tests. static: glibc linked in, for a system without it (the cgroup
# v2 test VM's initramfs).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUT [asan|static]" >&2; exit 2; }
out=$1
src=$(cd "$(dirname "$0")" && pwd)
case "${2:-}" in
"") flags="-O2 -g0" ;;
asan) flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" ;;
static) flags="-O2 -g0 -static" ;;
*) echo "$0: unknown variant '$2'" >&2; exit 2 ;;
esac
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086 # flags are words
exec ${CC:-cc} $flags -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fstack-protector-strong \
	-D_FORTIFY_SOURCE=2 -o "$out" "$src"/*.c
