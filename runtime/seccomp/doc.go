// Package seccomp turns the seccomp section of an OCI runtime specification
// (specs.LinuxSeccomp) into a BPF filter with libseccomp and loads it into
// the calling process, and reports what the runtime supports for
// `berth-runtime features`.
//
// Validate checks a profile before any process is made; Load builds and
// loads the filter in the container's init, right before execve. The filter
// is loaded with seccomp(2) by this package rather than by libseccomp, so
// that every flag the kernel knows can be used whatever libseccomp's
// version, and so that no_new_privs is left to the caller.
//
// The package needs cgo and libseccomp (>= 2.5 for SCMP_ACT_NOTIFY).
package seccomp
