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
	// Subnet is the network's IPv4 subnet. IPv6 subnets are refused with
	// errdefs.ErrNotImplemented for now.
	Subnet netip.Prefix
	// Internal networks carry no traffic in or out of the bridge, only
	// between its own ports. Internal takes precedence over Masquerade, and
	// an internal network cannot have published ports.
	Internal bool
	// Masquerade NATs traffic from Subnet that leaves the host by any
	// interface other than Bridge to that interface's address.
	Masquerade bool
}

// Port is one published port: traffic addressed to this host at
// HostIP:HostPort (any local address when HostIP is zero or unspecified) is
// forwarded to ContainerIP:ContainerPort on Bridge.
type Port struct {
	Proto         string     // "tcp", "udp" or "sctp"
	HostIP        netip.Addr // zero or 0.0.0.0: every local IPv4 address
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
		if !n.Subnet.IsValid() {
			return Ruleset{}, fmt.Errorf("network on %s: no subnet: %w", n.Bridge, errdefs.ErrInvalidArgument)
		}
		if !n.Subnet.Addr().Is4() {
			return Ruleset{}, fmt.Errorf("network on %s: subnet %s: IPv6 firewall rules: %w", n.Bridge, n.Subnet, errdefs.ErrNotImplemented)
		}
		n.Subnet = n.Subnet.Masked()
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
		if p.HostIP.IsValid() && p.HostIP.Unmap().Is4() && p.HostIP.Unmap().IsUnspecified() {
			p.HostIP = netip.Addr{}
		}
		if p.HostIP.IsValid() {
			p.HostIP = p.HostIP.Unmap()
			if !p.HostIP.Is4() {
				return Ruleset{}, fmt.Errorf("published port %s: IPv6 host address: %w", netip.AddrPortFrom(p.HostIP, p.HostPort), errdefs.ErrNotImplemented)
			}
		}
		p.ContainerIP = p.ContainerIP.Unmap()
		if !p.ContainerIP.Is4() {
			return Ruleset{}, fmt.Errorf("published port %d/%s: container address %s is not IPv4: %w", p.HostPort, p.Proto, p.ContainerIP, errdefs.ErrInvalidArgument)
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
