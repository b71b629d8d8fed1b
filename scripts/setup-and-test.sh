#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for berth's tests and runs them all.
# Needs root (the tests run real containers).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH=$PATH:/usr/local/go/bin

make all
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
# The end-to-end tests drive the binaries make just built.
export BERTH_BIN_DIR=$PWD/bin BERTH_RUNTIME_BINARY=$PWD/bin/berth-runtime BERTH_SHIM_BINARY=$PWD/bin/berth-shim
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
go test -count=1 -p 1 ./... 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -cP '^ok\s' "$log" || true)
failed=$(grep -cP '^FAIL\t' "$log" || true)
echo "packages: $passed passed, $failed failed"
# The cgroup and runtime tests again, in a VM that runs cgroup v2 only.
make test-cgroup2 || status=1
exit "$status"
