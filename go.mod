module berth.dev

go 1.26.0

require (
	github.com/cilium/ebpf v0.20.0
	github.com/opencontainers/runtime-spec v1.3.0
	github.com/seccomp/libseccomp-golang v0.11.1
	golang.org/x/sys v0.50.0
)
