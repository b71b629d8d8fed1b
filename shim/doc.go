// Package shim is the engine's client of berth-shim, and the specification
// of the protocol berth-shim speaks (the program is in C: shim/c).
//
// A shim is one small process per container. The engine execs berth-shim
// detached (Start); the shim runs the OCI runtime's create, reports the
// container's pid (or the runtime's error) on a ready pipe, and then (a
// deferred shim, --deferred, reports ready before any create, and creates
// and starts the container with one `runtime run --detach` at the start
// request, whose answer carries the pid or the runtime's error):
// holds the container's stdio (pipes, or the pty master the runtime sends
// over a console socket), writes the json-file log, reaps the container as
// child subreaper, and serves requests on <dir>/shim.sock. When the
// container's init exits it records the exit in files in <dir> (exit,
// exited-at, oom), answers waiters and exits. Those files outlive the shim,
// so an engine that was down meanwhile reads them with ReadExit.
//
// The socket protocol is deliberately tiny (no HTTP): a client sends one
// JSON Request line and reads one JSON Response line. For attach and exec
// the connection then carries the process's I/O: client bytes go to the
// process's stdin; process output comes back raw for a tty and otherwise in
// Docker's multiplexed frames (an 8-byte header [stream, 0, 0, 0, size as
// big-endian uint32] followed by size bytes; stream 1 is stdout, 2 stderr).
package shim
