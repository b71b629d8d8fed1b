package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// LibseccompVersionAnnotation is the features annotation runc uses for the
// version of libseccomp it is linked with; LibseccompVersion gives its value.
const LibseccompVersionAnnotation = "io.github.seccomp.libseccomp.version"

// Features returns the seccomp part of the runtime's features document:
// every action, operator and flag Load knows, the architectures the linked
// libseccomp can put in a filter on this host (those of the native byte
// order), and the flags the running kernel accepts.
func Features() features.Seccomp {
	enabled := true
	f := features.Seccomp{Enabled: &enabled, Archs: []string{}, SupportedFlags: []string{}}
	for _, a := range actions() {
		f.Actions = append(f.Actions, string(a))
	}
	for _, op := range operators() {
		f.Operators = append(f.Operators, string(op))
	}
	for _, a := range supportedArchs() {
		f.Archs = append(f.Archs, string(a))
	}
	for _, fl := range flags() {
		f.KnownFlags = append(f.KnownFlags, string(fl))
		bit, _ := lookupFlag(fl)
		if kernelAcceptsFlags(probeFlags(bit)) {
			f.SupportedFlags = append(f.SupportedFlags, string(fl))
		}
	}
	return f
}

// LibseccompVersion returns the version of the libseccomp the runtime
// runs with, as "major.minor.micro".
func LibseccompVersion() string {
	maj, min, mic := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", maj, min, mic)
}

// supportedArchs returns the architectures of the specification that the
// linked libseccomp can put in a filter of the native architecture: it
// tries each on a scratch filter.
func supportedArchs() []specs.Arch {
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return nil
	}
	defer f.Release()
	var out []specs.Arch
	for _, a := range archs() {
		sa, _ := lookupArch(a)
		if f.AddArch(sa) == nil {
			out = append(out, a)
		}
	}
	return out
}
