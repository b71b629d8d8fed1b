// Package ocispec turns an image config and the options of `docker run` into
// the OCI runtime configuration (config.json) of a container, with Docker's
// defaults: its capability set, masked and read-only kernel paths, default
// mounts and device rules, the default seccomp profile of
// github.com/moby/profiles/seccomp, private namespaces (cgroup namespace
// private on cgroup v2, the host's on v1), and the user of the image or of
// -u resolved inside the container's rootfs.
//
// Generate is the whole job; HostsFile and ResolvConf produce the contents
// of the /etc/hosts and /etc/resolv.conf files the engine writes next to the
// container and passes back in RunOptions to be bind-mounted.
//
// The package does not touch the host beyond reading: the container's
// /etc/passwd and /etc/group (always resolved inside the rootfs), device
// nodes named by --device, and a few kernel facts (cgroup version, number of
// CPUs, which security modules are enabled, the last capability).
package ocispec
