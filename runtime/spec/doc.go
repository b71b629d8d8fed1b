// Package spec reads, checks and generates OCI runtime bundle configurations
// (config.json, runtime-spec 1.x) for berth-runtime.
//
// Load reads a bundle's config.json, Validate rejects configurations the
// runtime cannot honour with an error naming the offending field, and Default
// returns the example configuration that `berth-runtime spec` prints.
// Capability names and seccomp profiles are checked by the packages that apply
// them, cgroup resources by the cgroups package.
package spec
