// Package network gathers the pieces of berth's Docker-style container
// networking; the engine (engine/networks_linux.go) composes them. Each
// subpackage does one job and acts on the network namespace of the calling
// thread unless it takes a namespace path: netns makes, pins, enters and
// removes network namespaces; bridge manages bridges and the veth pairs that
// plug containers into them (netlink); firewall owns berth's nftables table
// (masquerade, published ports, isolation) and host port reservations; ipam
// hands out subnets and addresses; dns is the embedded DNS server that answers
// at 127.0.0.11 inside each container's namespace.
package network
