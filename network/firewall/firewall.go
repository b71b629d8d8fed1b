// Package firewall programs the packet filter for berth's networks: one
// nftables table (family inet) that berth owns wholly, holding the NAT for
// outbound traffic (masquerade), the DNAT of published ports, and the forward
// rules that isolate berth's bridges from each other and from the host's
// routing. It never reads or changes any other table.
//
// The firewall is declarative: the engine computes a Ruleset from its state
// (networks and published ports) and Apply replaces the whole table with it in
// one atomic netlink batch, so a crash never leaves half a ruleset and
// reconciliation after a crash is simply Apply of the current state.
//
// The package also reserves host ports (Reserve) so that a published port
// cannot be taken by a second container or another program while its
// container runs.
package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"berth.dev/internal/errdefs"
)

// Network is one berth bridge network as the firewall sees it.
type Network struct {
	// Bridge is the bridge link's name in the host's network namespace.
	Bridge string
	// Subnet is the network's IPv4 subnet; zero for an IPv6-only network.
	Subnet netip.Prefix
	// Subnet6 is the network's IPv6 subnet; zero: IPv4 only. At least one
	// of Subnet and Subnet6 is set.
	Subnet6 netip.Prefix
	// Internal networks carry no traffic in or out of the bridge, only
	// between its own ports. Internal takes precedence over Masquerade, and
	// an internal network cannot have published ports.
	Internal bool
	// Masquerade NATs traffic from Subnet and Subnet6 that leaves the host
	// by any interface other than Bridge to that interface's address.
	Masquerade bool
}

// Port is one published port: traffic addressed to this host at
// HostIP:HostPort (any local address of HostIP's family when HostIP is zero
// or unspecified) is forwarded to ContainerIP:ContainerPort on Bridge.
//
// A Port is of one family: HostIP zero or IPv4 with an IPv4 ContainerIP, or
// HostIP IPv6 (:: for every local IPv6 address) with an IPv6 ContainerIP.
// A container published on both families takes two Ports, one with HostIP
// zero and one with HostIP ::. HostIP ::1 is refused with
// errdefs.ErrNotImplemented: IPv6 has no route_localnet, so the kernel will
// not route a packet from ::1 into a bridge.
type Port struct {
	Proto         string     // "tcp", "udp" or "sctp"
	HostIP        netip.Addr // zero or 0.0.0.0: every local IPv4 address; ::, every local IPv6 address
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
	Bridge        string // the bridge of the container's network; one of Ruleset.Networks
}

// Ruleset is the firewall's whole desired state.
type Ruleset struct {
	Networks []Network
	Ports    []Port
}

// Firewall applies Rulesets to one nftables table of family inet.
//
// Each Apply or Remove is atomic and they are serialized; callers that
// compute rulesets concurrently must still make sure that the last ruleset
// applied is the current one.
type Firewall struct {
	table string
	netns int // network namespace fd; 0: the calling thread's

	mu       sync.Mutex
	written  bool            // the table was written whole by this Firewall...
	networks []Network       // ...with these networks
	ports    map[string]bool // comments of the port rules applied last
}

// Option configures a Firewall.
type Option func(*Firewall)

// WithNetNS makes the Firewall act in the network namespace that fd refers
// to instead of the calling thread's. The fd must stay open while the
// Firewall is used. Meant for tests.
func WithNetNS(fd int) Option {
	return func(f *Firewall) { f.netns = fd }
}

// New returns a Firewall for the inet table named table ("berth" for the
// engine). Nothing is touched until Apply or Remove.
func New(table string, opts ...Option) *Firewall {
	f := &Firewall{table: table}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Table returns the name of the nftables table the Firewall owns.
func (f *Firewall) Table() string { return f.table }

// maxIfname is the longest interface name the kernel accepts (IFNAMSIZ-1).
const maxIfname = 15

// protoNumbers maps the protocols a Port may name to their IP protocol numbers.
var protoNumbers = map[string]byte{"tcp": 6, "udp": 17, "sctp": 132}

// validate checks rs and returns it with subnets masked and unspecified host
// addresses made zero.
func validate(table string, rs Ruleset) (Ruleset, error) {
	if table == "" || len(table) > 255 {
		return Ruleset{}, fmt.Errorf("firewall table name %q: %w", table, errdefs.ErrInvalidArgument)
	}
	out := Ruleset{Networks: make([]Network, 0, len(rs.Networks)), Ports: make([]Port, 0, len(rs.Ports))}
	nets := make(map[string]Network, len(rs.Networks))
	for _, n := range rs.Networks {
		if n.Bridge == "" || len(n.Bridge) > maxIfname {
			return Ruleset{}, fmt.Errorf("network bridge name %q: %w", n.Bridge, errdefs.ErrInvalidArgument)
		}
		if _, dup := nets[n.Bridge]; dup {
			return Ruleset{}, fmt.Errorf("bridge %s given twice: %w", n.Bridge, errdefs.ErrInvalidArgument)
		}
		if !n.Subnet.IsValid() && !n.Subnet6.IsValid() {
			return Ruleset{}, fmt.Errorf("network on %s: no subnet: %w", n.Bridge, errdefs.ErrInvalidArgument)
		}
		if n.Subnet.IsValid() && !n.Subnet.Addr().Is4() {
			return Ruleset{}, fmt.Errorf("network on %s: subnet %s is not IPv4 (an IPv6 one is Subnet6): %w", n.Bridge, n.Subnet, errdefs.ErrInvalidArgument)
		}
		if n.Subnet6.IsValid() && (!n.Subnet6.Addr().Is6() || n.Subnet6.Addr().Is4In6()) {
			return Ruleset{}, fmt.Errorf("network on %s: IPv6 subnet %s is not IPv6: %w", n.Bridge, n.Subnet6, errdefs.ErrInvalidArgument)
		}
		n.Subnet, n.Subnet6 = n.Subnet.Masked(), n.Subnet6.Masked()
		if n.Internal {
			n.Masquerade = false
		}
		nets[n.Bridge] = n
		out.Networks = append(out.Networks, n)
	}
	type portKey struct {
		proto string
		ip    netip.Addr
		port  uint16
	}
	seen := make(map[portKey]bool, len(rs.Ports))
	for _, p := range rs.Ports {
		if _, ok := protoNumbers[p.Proto]; !ok {
			return Ruleset{}, fmt.Errorf("published port %d: protocol %q: %w", p.HostPort, p.Proto, errdefs.ErrInvalidArgument)
		}
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return Ruleset{}, fmt.Errorf("published port %d/%s to %d: port 0: %w", p.HostPort, p.Proto, p.ContainerPort, errdefs.ErrInvalidArgument)
		}
		var err error
		if p, err = portFamily(p); err != nil {
			return Ruleset{}, err
		}
		n, ok := nets[p.Bridge]
		if !ok {
			return Ruleset{}, fmt.Errorf("published port %d/%s: bridge %q is not one of the ruleset's networks: %w", p.HostPort, p.Proto, p.Bridge, errdefs.ErrInvalidArgument)
		}
		if n.Internal {
			return Ruleset{}, fmt.Errorf("published port %d/%s: network on %s is internal: %w", p.HostPort, p.Proto, p.Bridge, errdefs.ErrInvalidArgument)
		}
		k := portKey{p.Proto, p.HostIP, p.HostPort}
		if seen[k] {
			return Ruleset{}, fmt.Errorf("host port %d/%s published twice: %w", p.HostPort, p.Proto, errdefs.ErrConflict)
		}
		seen[k] = true
		out.Ports = append(out.Ports, p)
	}
	// Networks in a stable order, so that a ruleset with the same networks
	// is recognized as such.
	slices.SortFunc(out.Networks, func(a, b Network) int { return strings.Compare(a.Bridge, b.Bridge) })
	return out, nil
}

// portFamily checks that p's addresses are of one family and returns it with
// an IPv4 host address 0.0.0.0 made zero and IPv4-mapped addresses unmapped.
func portFamily(p Port) (Port, error) {
	p.HostIP, p.ContainerIP = p.HostIP.Unmap(), p.ContainerIP.Unmap()
	if p.HostIP.Is4() && p.HostIP.IsUnspecified() {
		p.HostIP = netip.Addr{}
	}
	if p.HostIP == netip.IPv6Loopback() {
		return p, fmt.Errorf("published port %d/%s on ::1: IPv6 loopback cannot be forwarded to a container (no route_localnet for IPv6): %w",
			p.HostPort, p.Proto, errdefs.ErrNotImplemented)
	}
	v6 := p.HostIP.Is6()
	switch {
	case !p.ContainerIP.IsValid():
		return p, fmt.Errorf("published port %d/%s: no container address: %w", p.HostPort, p.Proto, errdefs.ErrInvalidArgument)
	case v6 != p.ContainerIP.Is6():
		host := "0.0.0.0"
		if p.HostIP.IsValid() {
			host = p.HostIP.String()
		}
		return p, fmt.Errorf("published port %d/%s: host address %s and container address %s differ in family: %w",
			p.HostPort, p.Proto, host, p.ContainerIP, errdefs.ErrInvalidArgument)
	}
	return p, nil
}
