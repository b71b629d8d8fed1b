#!/bin/sh
# shim/c/build.sh OUT [asan]: builds berth-shim in C (dynamic against
# glibc only) into OUT; with "asan" as the second argument, a build with
# AddressSanitizer and UndefinedBehaviorSanitizer for the tests.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUT [asan]" >&2; exit 2; }
out=$1
src=$(cd "$(dirname "$0")" && pwd)
flags="-O2 -g0"
if [ "${2:-}" = asan ]; then
	flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
fi
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086 # flags are words
exec ${CC:-cc} $flags -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fstack-protector-strong \
	-D_FORTIFY_SOURCE=2 -o "$out" "$src"/*.c
