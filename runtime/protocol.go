package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The runtime and the Go part of the container init talk over a socket pair
// with frames of package wire, after the bootstrap lines of stage 0
// (nsenter.c).
//
//	runtime → init   initConfig
//	init → runtime   message{Type: msgHooks}   (create, when the spec has
//	                 prestart or createRuntime hooks: run them now)
//	runtime → init   message{Type: msgOK} or message{Type: msgError}
//	init → runtime   message{Type: msgReady}   (create: waiting on exec.fifo)
//	                 or message{Type: msgError}
//
// For exec there is no ready message: the socket is close-on-exec, so the
// runtime reading EOF means the process was executed.

type initMode string

const (
	modeCreate initMode = "create"
	modeExec   initMode = "exec"
)

type initConfig struct {
	Mode    initMode
	ID      string
	Bundle  string
	Spec    *specs.Spec
	Process *specs.Process
	// Pid is the init's own pid in the runtime's PID namespace, for the
	// state that hooks and a seccomp agent receive.
	Pid          int
	NoPivot      bool
	NoNewKeyring bool
	// UserNS: the container has its own user namespace.
	UserNS bool
	// NewMountNS, NewUTSNS, NewCgroupNS: created for this container rather
	// than joined.
	NewCgroupNS bool
	// Descriptor numbers in the init; -1 when absent.
	FifoFD          int
	ConsoleSocketFD int
	// SeccompAgentFD is a connection to linux.seccomp.listenerPath.
	SeccompAgentFD int
	// SeccompBPF is the seccomp filter's program (seccomp.EncodeProgram),
	// built by the runtime before the init starts, from its cache when it
	// can: the init only installs it.
	SeccompBPF []byte
	// RootFD (exec only) is the container init's root directory, for a
	// container without a mount namespace of its own.
	RootFD int
	// PreserveFDs descriptors after stdio are passed to the user program.
	PreserveFDs int
	// RootfsPrepared: the runtime did rootfs.Prepare (prepareRootfs).
	RootfsPrepared bool
}

const (
	msgHooks = "hooks"
	msgOK    = "ok"
	msgReady = "ready"
	msgError = "error"
)

type message struct {
	Type  string
	Error string
}
