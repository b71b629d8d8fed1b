package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The runtime and the Go part of the container init talk over a socket pair
// with JSON messages, after the bootstrap lines of stage 0 (nsenter.c).
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
	Mode    initMode       `json:"mode"`
	ID      string         `json:"id"`
	Bundle  string         `json:"bundle"`
	Spec    *specs.Spec    `json:"spec"`
	Process *specs.Process `json:"process"`
	// Pid is the init's own pid in the runtime's PID namespace, for the
	// state that hooks and a seccomp agent receive.
	Pid          int  `json:"pid"`
	NoPivot      bool `json:"no_pivot,omitempty"`
	NoNewKeyring bool `json:"no_new_keyring,omitempty"`
	// UserNS: the container has its own user namespace.
	UserNS bool `json:"user_ns,omitempty"`
	// NewMountNS, NewUTSNS, NewCgroupNS: created for this container rather
	// than joined.
	NewCgroupNS bool `json:"new_cgroup_ns,omitempty"`
	// Descriptor numbers in the init; -1 when absent.
	FifoFD          int `json:"fifo_fd"`
	ConsoleSocketFD int `json:"console_socket_fd"`
	// SeccompAgentFD is a connection to linux.seccomp.listenerPath.
	SeccompAgentFD int `json:"seccomp_agent_fd"`
	// SeccompBPF is the seccomp filter's program (seccomp.EncodeProgram),
	// built by the runtime before the init starts, from its cache when it
	// can: the init only installs it.
	SeccompBPF []byte `json:"seccomp_bpf,omitempty"`
	// RootFD (exec only) is the container init's root directory, for a
	// container without a mount namespace of its own.
	RootFD int `json:"root_fd"`
	// PreserveFDs descriptors after stdio are passed to the user program.
	PreserveFDs int `json:"preserve_fds"`
}

const (
	msgHooks = "hooks"
	msgOK    = "ok"
	msgReady = "ready"
	msgError = "error"
)

type message struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
}
