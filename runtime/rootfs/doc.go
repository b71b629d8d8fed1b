// Package rootfs turns an OCI bundle's root filesystem into a container's
// "/", as runtime-spec (config.md "root" and "mounts", config-linux.md
// devices, masked and read-only paths, rootfs propagation) describes and as
// runc does it.
//
// The container's init calls, inside its new mount namespace and on a locked
// OS thread:
//
//	Prepare      spec mounts, device nodes and /dev links inside the rootfs
//	(hooks)      createRuntime/createContainer hooks still see the host
//	Pivot        pivot_root into the rootfs (or MS_MOVE and chroot)
//	MountConsole the pty slave on /dev/console, when there is a terminal
//	Finalize     read-only and masked paths, read-only root, propagation
//
// Every mount target is resolved inside the rootfs (openat2 with
// RESOLVE_IN_ROOT, then mount(2) onto the /proc/self/fd link of the handle),
// so a symlink in an image cannot send a mount to the host. All kernel calls
// go through the Syscalls interface so the ordering and flag logic is tested
// without root against a recording fake.
package rootfs
