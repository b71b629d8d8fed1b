package bridge

import (
	"net"
	"net/netip"
)

// MACFor derives a locally administered MAC from an IPv4 address as docker
// does: 02:42:<4 ip bytes>. For an IPv6 address the last four bytes stand in
// for the IPv4 ones.
func MACFor(ip netip.Addr) net.HardwareAddr {
	b := ip.Unmap().AsSlice()
	mac := net.HardwareAddr{0x02, 0x42, 0, 0, 0, 0}
	if len(b) >= 4 {
		copy(mac[2:], b[len(b)-4:])
	}
	return mac
}
