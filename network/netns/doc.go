// Package netns makes, pins, enters and removes Linux network namespaces
// without running any program. A namespace is kept alive by a pin: a bind
// mount of its nsfs file on an empty file, as `ip netns` does under
// /run/netns; berth pins each container's namespace at
// <exec_root>/netns/<container id>. Do runs a function inside a namespace on a
// locked OS thread, and Handle opens a netlink socket inside one.
package netns
