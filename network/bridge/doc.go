// Package bridge manages, over netlink, the Linux bridges of berth's bridge
// networks and the veth pairs that plug each container into them: the host
// end is a port of the bridge, the peer is created directly inside the
// container's network namespace with its final name, addresses (IPv4, IPv6
// or both) and MAC. It also sets the sysctls the bridge driver needs
// (ip_forward, IPv6 forwarding, and route_localnet per bridge). Every
// function acts in the network namespace of the calling thread (the host's,
// for berthd) and never runs a program.
package bridge
