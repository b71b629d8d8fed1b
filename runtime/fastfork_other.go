//go:build linux && !amd64

package runtime

import "syscall"

// forkFast exists on amd64 only; fastEligible keeps the fast init off
// elsewhere.
func forkFast(a *fastArgs, ca *cloneArgs) (pid uintptr, err syscall.Errno) {
	return 0, syscall.ENOSYS
}
