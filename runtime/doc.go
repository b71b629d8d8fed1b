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
// The common container's init is a child the runtime starts itself with
// vfork (sharing its memory, on the forking goroutine's stack) that makes
// only raw system calls, then executes a tiny sealed trampoline that waits
// for start (fast_linux.go, fastchild_linux.go, fastfork_amd64.go,
// trampoline_amd64.go). Every other container's init, described below, is
// this same binary re-executed from a sealed copy
// (see exeseal_linux.go). Stage 0 of init is C (package nsenter): it joins
// and creates namespaces before the Go runtime starts threads, joins the
// cgroup (on v1 after making the namespaces, while the runtime creates the
// cgroup), and forks the init. The Go part (init_linux.go) switches root,
// credentials and the rest of the process's attributes and waits on
// exec.fifo; start releases it and it execs the user program.
//
// While the init's Go runtime starts, the runtime builds the container's
// root filesystem from one of its own threads that has entered the init's
// namespaces (prepare_linux.go), mounting procfs from a context the init
// opened in its PID namespace; where it cannot (a user namespace, no mount
// namespace of its own, an old kernel), the init does it. The runtime and
// the init talk in frames of package wire.
package runtime
