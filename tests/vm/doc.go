// Package vm holds the cgroup v2 test VM (run.sh, init; see README.md) and
// its own tests: the runtime's cgroup v2 behaviour observed from the host,
// the v2 counterparts of checks that tests/runtime makes on v1 paths. They
// skip unless the host runs cgroup v2 only, as the VM does.
package vm
