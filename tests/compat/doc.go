// Package compat proves berth-runtime works as the OCI runtime of Podman
// and Docker: run.sh drives both engines with berth-runtime and checks what
// their users observe (see README.md). The Go test runs that script when
// BERTH_COMPAT=1 is set; it is slow and installs packages, so a normal
// test run skips it.
package compat
