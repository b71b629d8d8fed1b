// Package runtime runs OCI bundles: it is the library behind berth-runtime,
// the runc-compatible command line. It knows nothing of images or the engine.
//
// A container moves through the states of the runtime specification:
// creating → created → running → stopped (and paused, a running container
// whose processes are frozen). Every command is a new process, so all that a
// later command needs is kept in the state directory <root>/<id>/:
//
//	state.json   the saved State (written atomically)
//	exec.fifo    exists while the container is "created"; start opens it
//
// The container's init is this same binary re-executed from a sealed memfd
// copy (see exeseal_linux.go). Stage 0 of init is C (package nsenter): it
// joins and creates namespaces before the Go runtime starts threads. The Go
// part (init_linux.go) then builds the root filesystem, switches credentials
// and waits on exec.fifo; start releases it and it execs the user program.
package runtime
