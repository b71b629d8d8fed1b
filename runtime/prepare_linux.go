package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"

	"berth.dev/runtime/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rootfsConfig is the root filesystem setup of a container: the same in
// the init and in the runtime, which may do it instead (prepareRootfs).
func rootfsConfig(s *specs.Spec, cfg *initConfig) *rootfs.Config {
	return &rootfs.Config{
		Spec:     s,
		Rootfs:   s.Root.Path,
		Bundle:   cfg.Bundle,
		NoPivot:  cfg.NoPivot,
		UserNS:   cfg.UserNS,
		CgroupNS: cfg.NewCgroupNS,

		SharedMountNS: !hasNamespace(s, specs.MountNamespace),
	}
}

// prepareRootfs does rootfs.Prepare for the init from a thread of this
// process that enters the init's mount, network, IPC and cgroup namespaces,
// while the init's own Go runtime starts, on the other CPU: about a
// millisecond less before the init has its container. The procfs mount is
// made from the context the init opened in its PID namespace
// (nsenter.c), taken with pidfd_getfd(2). The thread is never handed back
// to the Go scheduler: it ends with its goroutine.
//
// It reports false, having done nothing, when it cannot: a kernel without
// pidfd_getfd (before 5.6), a procfs context the init could not open, or
// the goroutine landing on the main thread, which cannot end (left in the
// container's namespaces, it would show them as the process's in
// /proc/self; berth-runtime keeps its main goroutine there, so this does
// not happen).
func prepareRootfs(init *initProcess, rc *rootfs.Config) (bool, error) {
	type result struct {
		done bool
		err  error
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			goruntime.UnlockOSThread()
			done <- result{}
			return
		}
		ok, err := prepareInNamespaces(init, rc)
		done <- result{ok, err}
	}()
	r := <-done
	return r.done, r.err
}

// nsEntered are the namespaces the preparing thread enters, in this order.
var nsEntered = [...]struct {
	name string
	flag int
}{
	{"net", unix.CLONE_NEWNET},
	{"ipc", unix.CLONE_NEWIPC},
	{"cgroup", unix.CLONE_NEWCGROUP},
	{"mnt", unix.CLONE_NEWNS},
}

func prepareInNamespaces(init *initProcess, rc *rootfs.Config) (bool, error) {
	c := *rc
	if rootfs.NeedsProcFS(rc) {
		if init.procfsFD <= 0 {
			return false, nil
		}
		fs, err := takeFd(init.pid, init.procfsFD)
		if err != nil {
			return false, nil
		}
		defer unix.Close(fs)
		c.ProcFS = fs
	}
	proc := "/proc/" + strconv.Itoa(init.pid)
	// A thread shares its root and working directory with the process
	// until it unshares them; entering a mount namespace changes both.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return true, fmt.Errorf("unshare fs: %w", err)
	}
	for _, ns := range nsEntered {
		if err := enterNamespace(proc, ns.name, ns.flag); err != nil {
			return true, err
		}
	}
	c.ProcDir = proc
	return true, rootfs.Prepare(&c)
}

// enterNamespace moves the calling thread into the namespace name (flag,
// a CLONE_NEW* bit) of the process whose /proc directory is proc. The mount
// namespace comes last: after it, the host's paths are gone.
func enterNamespace(proc, name string, flag int) error {
	fd, err := unix.Open(proc+"/ns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: proc + "/ns/" + name, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("enter the init's %s namespace: %w", name, err)
	}
	return nil
}

// takeFd copies descriptor fd of process pid into this one.
func takeFd(pid, fd int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pidfd)
	return unix.PidfdGetfd(pidfd, fd, 0)
}
