//go:build linux && !amd64

package runtime

// trampolineELF has no machine code for this architecture: fastEligible
// keeps the fast init off.
func trampolineELF(fifo int) []byte { return nil }
