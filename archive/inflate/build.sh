#!/bin/sh
# archive/inflate/build.sh OUT: builds berth-inflate into OUT, dynamic
# against glibc and ISA-L's libisal (Debian's libisal-dev to build, libisal2
# to run).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
src=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
if ! echo '#include <isa-l/igzip_lib.h>' | $cc -E -x c - >/dev/null 2>&1; then
	echo "berth-inflate not built: ISA-L's headers are missing (apt-get install libisal-dev);" \
		"berthd inflates gzip layers with igzip or its own decoder" >&2
	exit 0
fi
mkdir -p "$(dirname "$1")"
exec $cc -O2 -g0 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fstack-protector-strong \
	-D_FORTIFY_SOURCE=2 -o "$1" "$src"/inflate.c -lisal
