package ipam

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HostRoutes returns the IPv4 destination prefixes of the routes of every
// routing table (main, local and policy-routing ones such as a VPN's) in the
// calling thread's network namespace, without default routes (0.0.0.0/0):
// the subnets a new network must not overlap, for PickSubnet's inUse.
func HostRoutes() ([]netip.Prefix, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_UNSPEC}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	out := make([]netip.Prefix, 0, len(routes))
	for _, r := range routes {
		if r.Dst == nil {
			continue // a default route
		}
		ones, bits := r.Dst.Mask.Size()
		addr, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok || bits != 32 || ones == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(addr.Unmap(), ones).Masked())
	}
	return out, nil
}
