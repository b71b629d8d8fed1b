// Package ipam manages the addresses of berth's networks: it picks a free
// subnet for a new network out of address pools (Docker's defaults unless the
// daemon is configured otherwise), checks subnets for overlap, and hands out
// the addresses of one subnet to containers with an Allocator whose state the
// engine stores as JSON with the network. Everything here is pure computation
// except HostRoutes, which reads the routing table over netlink.
package ipam

import (
	"fmt"
	"net/netip"

	"berth.dev/internal/errdefs"
)

// Pool is a block of addresses that network subnets are cut from: Base split
// into consecutive subnets of prefix length Size.
type Pool struct {
	Base netip.Prefix // e.g. 172.17.0.0/16, or 192.168.0.0/16 split into /20s
	Size int          // prefix length of the subnets cut from Base
}

// DefaultPools are Docker's default local address pools, tried in order:
// 172.17.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/20 .. 192.168.240.0/20.
// It is read-only: pass a copy to change it.
var DefaultPools = []Pool{
	{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
	{Base: netip.MustParsePrefix("172.18.0.0/16"), Size: 16},
	{Base: netip.MustParsePrefix("172.19.0.0/16"), Size: 16},
	{Base: netip.MustParsePrefix("172.20.0.0/14"), Size: 16},
	{Base: netip.MustParsePrefix("172.24.0.0/13"), Size: 16},
	{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20},
}

// errNoPool is Docker's message when every default subnet is taken.
const errNoPool = "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"

// PickSubnet returns the first subnet cut from pools (pools in order, subnets
// in address order) that overlaps none of inUse (the engine passes the other
// networks' subnets and the host's routes). A pool whose Size is not between
// its Base's length and the address length is an ErrInvalidArgument; no free
// subnet is an ErrUnavailable.
func PickSubnet(pools []Pool, inUse []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		base := p.Base.Masked()
		if !base.IsValid() || p.Size < base.Bits() || p.Size > base.Addr().BitLen() {
			return netip.Prefix{}, fmt.Errorf("%w: address pool %s cannot be split into /%d subnets", errdefs.ErrInvalidArgument, p.Base, p.Size)
		}
		for sub := netip.PrefixFrom(base.Addr(), p.Size); sub.IsValid() && base.Contains(sub.Addr()); {
			blocker, taken := firstOverlap(sub, inUse)
			if !taken {
				return sub, nil
			}
			// Skip every subnet the blocker covers: past the larger of the two.
			last := lastAddr(sub)
			if blocker.Bits() < sub.Bits() {
				last = lastAddr(blocker.Masked())
			}
			next := last.Next()
			if !next.IsValid() {
				break
			}
			sub = netip.PrefixFrom(next, p.Size)
		}
	}
	return netip.Prefix{}, fmt.Errorf("%w: %s", errdefs.ErrUnavailable, errNoPool)
}

// firstOverlap returns the first prefix of list that overlaps p.
func firstOverlap(p netip.Prefix, list []netip.Prefix) (netip.Prefix, bool) {
	for _, q := range list {
		if Overlaps(p, q) {
			return q, true
		}
	}
	return netip.Prefix{}, false
}

// Overlaps reports whether a and b share any address (one contains the
// other's first address). Prefixes of different families never overlap;
// host bits set in either are ignored.
func Overlaps(a, b netip.Prefix) bool {
	a, b = a.Masked(), b.Masked()
	if !a.IsValid() || !b.IsValid() || a.Addr().Is4() != b.Addr().Is4() {
		return false
	}
	return a.Overlaps(b)
}

// lastAddr is the highest address of the masked prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		bit := i * 8
		switch {
		case bit >= p.Bits():
			b[i] = 0xff
		case bit+8 > p.Bits():
			b[i] |= 0xff >> (p.Bits() - bit)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
