package spec

import (
	"fmt"
	"os/exec"
	"syscall"
	"testing"

	"berth.dev/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestValidateNetSysctlJoinedNamespace joins the network namespace of a
// process started in a new one: net.* sysctls are then the container's own.
func TestValidateNetSysctlJoinedNamespace(t *testing.T) {
	testutil.RequiresRoot(t)
	sleeper := exec.Command("/bin/sleep", "60")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := sleeper.Start(); err != nil {
		t.Fatalf("start a process in a new network namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})
	s := validSpec(t, false)
	setNSPath(s, specs.NetworkNamespace, fmt.Sprintf("/proc/%d/ns/net", sleeper.Process.Pid))
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	if err := Validate(s, true); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
	setNSPath(s, specs.IPCNamespace, fmt.Sprintf("/proc/%d/ns/net", sleeper.Process.Pid))
	if err := Validate(s, true); err == nil {
		t.Error("Validate accepted a network namespace file as the ipc namespace")
	}
}
