package firewall

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"berth.dev/internal/testutil"
)

// addIPv6 makes the lab dual-stack:
//
//	ext fd00:192::2 ──veth── host fd00:192::1
//	host: bridge A fd00:88:1::1/64 ── container ca fd00:88:1::2
//	      bridge B fd00:88:2::1/64 ── container cb fd00:88:2::2
//	      bridge C fd00:88:3::1/64 ── containers cc fd00:88:3::2, cc2 fd00:88:3::3
//
// with IPv6 default routes through the host, IPv6 forwarding on in the
// host, and the same servers listening on IPv6 (ca on UDP 8000 too).
func (l *trafficLab) addIPv6(t *testing.T) {
	t.Helper()
	p := netip.MustParsePrefix
	l.host.addrOn(t, l.bx, p("fd00:192::1/64"))
	l.ext.addrOn(t, "eth0", p("fd00:192::2/64"))
	l.ext.defaultRoute(t, netip.MustParseAddr("fd00:192::1"))
	for _, c := range []struct {
		ns        *testNS
		br        string
		gw, ip    string
		gwPresent bool
	}{
		{l.ca, l.brA, "fd00:88:1::1", "fd00:88:1::2", false},
		{l.cb, l.brB, "fd00:88:2::1", "fd00:88:2::2", false},
		{l.cc, l.brC, "fd00:88:3::1", "fd00:88:3::2", false},
		{l.cc2, l.brC, "fd00:88:3::1", "fd00:88:3::3", true},
	} {
		if !c.gwPresent {
			l.host.addrOn(t, c.br, p(c.gw+"/64"))
		}
		c.ns.addrOn(t, "eth0", p(c.ip+"/64"))
		c.ns.defaultRoute(t, netip.MustParseAddr(c.gw))
		c.ns.serve6(t, "8000")
	}
	l.ca.serveUDP6(t, "8000")
	l.ext.serve6(t, "9000")
	l.host.sysctl(t, "ipv6/conf/all/forwarding", "1")
}

// addrOn adds p to the link called name.
func (n *testNS) addrOn(t *testing.T, name string, p netip.Prefix) {
	t.Helper()
	link, err := n.nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addAddr(t, n.nl, link, p)
}

// defaultRoute adds a default route through gw, which must be on a
// connected prefix.
func (n *testNS) defaultRoute(t *testing.T, gw netip.Addr) {
	t.Helper()
	if err := n.nl.RouteAdd(&netlink.Route{Gw: gw.AsSlice()}); err != nil {
		t.Fatalf("default route via %s: %v", gw, err)
	}
}

func TestTrafficIPv6(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Run("bridged traffic through netfilter", func(t *testing.T) { testTrafficIPv6(t, "1") })
	t.Run("bridged traffic not through netfilter", func(t *testing.T) { testTrafficIPv6(t, "0") })
}

// testTrafficIPv6 runs the IPv6 traffic checks on dual-stack networks, with
// bridged frames passing the inet hooks (bridge-nf-call-ip6tables) or not.
func testTrafficIPv6(t *testing.T, brNetfilter string) {
	l := newTrafficLab(t)
	l.addIPv6(t)
	const brnf = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
	if _, err := os.Stat(brnf); err != nil {
		if brNetfilter == "1" {
			t.Skipf("no br_netfilter: %v", err)
		}
	} else {
		l.host.sysctl(t, "bridge/bridge-nf-call-ip6tables", brNetfilter)
		l.host.sysctl(t, "bridge/bridge-nf-call-iptables", brNetfilter)
	}
	ctx := context.Background()

	// Without berth's table everything is routed.
	l.cb.reaches(t, "[fd00:88:1::2]:8000", "fd00:88:2::2")
	l.cc.reaches(t, "[fd00:192::2]:9000", "fd00:88:3::2")
	l.ext.reaches(t, "[fd00:88:1::2]:8000", "fd00:192::2")
	if t.Failed() {
		t.FailNow()
	}

	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	fw := New(testutil.UniqueName(t), WithNetNS(int(l.host.fd)))
	rs := Ruleset{
		Networks: []Network{
			{Bridge: l.brA, Subnet: p("10.88.1.0/24"), Subnet6: p("fd00:88:1::/64"), Masquerade: true},
			{Bridge: l.brB, Subnet: p("10.88.2.0/24"), Subnet6: p("fd00:88:2::/64"), Masquerade: true},
			{Bridge: l.brC, Subnet: p("10.88.3.0/24"), Subnet6: p("fd00:88:3::/64"), Internal: true},
		},
		Ports: []Port{
			// One container port published on both families, as the
			// engine does: HostIP zero for IPv4, :: for IPv6.
			{Proto: "tcp", HostPort: 18080, ContainerIP: a("10.88.1.2"), ContainerPort: 8000, Bridge: l.brA},
			{Proto: "tcp", HostIP: a("::"), HostPort: 18080, ContainerIP: a("fd00:88:1::2"), ContainerPort: 8000, Bridge: l.brA},
			{Proto: "tcp", HostIP: a("fd00:192::1"), HostPort: 18081, ContainerIP: a("fd00:88:2::2"), ContainerPort: 8000, Bridge: l.brB},
			{Proto: "udp", HostIP: a("::"), HostPort: 18080, ContainerIP: a("fd00:88:1::2"), ContainerPort: 8000, Bridge: l.brA},
		},
	}
	if err := fw.Apply(ctx, rs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Remove(ctx) })

	t.Run("published port from outside on both families", func(t *testing.T) {
		l.ext.reaches(t, "[fd00:192::1]:18080", "fd00:192::2")
		l.ext.reaches(t, "192.0.2.1:18080", "192.0.2.2")
		l.ext.reaches(t, "[fd00:192::1]:18081", "fd00:192::2")
	})
	t.Run("published UDP port from outside", func(t *testing.T) {
		if src, err := l.ext.exchangeUDP(t, "[fd00:192::1]:18080"); err != nil || src != "fd00:192::2" {
			t.Errorf("datagram: answer %q, %v; want fd00:192::2", src, err)
		}
	})
	t.Run("published port from the host to a host address", func(t *testing.T) {
		l.host.reaches(t, "[fd00:88:1::1]:18080", "fd00:88:1::1")
		l.host.reaches(t, "[fd00:192::1]:18080", "fd00:192::1")
	})
	t.Run("published port bound to one host address only", func(t *testing.T) {
		_, err := l.ext.dial(t, "[fd00:88:1::1]:18081", 10*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to another host address on the port: %v, want refused by the host", err)
		}
	})
	t.Run("hairpin from the container to its own published port", func(t *testing.T) {
		l.ca.reaches(t, "[fd00:88:1::1]:18080", "fd00:88:1::1")
	})
	t.Run("published port from another berth network", func(t *testing.T) {
		l.cb.reaches(t, "[fd00:192::1]:18080", "fd00:88:1::1")
	})
	t.Run("outbound is masqueraded", func(t *testing.T) {
		l.ca.reaches(t, "[fd00:192::2]:9000", "fd00:192::1")
		l.cb.reaches(t, "[fd00:192::2]:9000", "fd00:192::1")
	})
	t.Run("networks are isolated from each other", func(t *testing.T) {
		l.cb.blocked(t, "[fd00:88:1::2]:8000")
		l.ca.blocked(t, "[fd00:88:2::2]:8000")
	})
	t.Run("containers of an internal network reach each other", func(t *testing.T) {
		l.cc2.reaches(t, "[fd00:88:3::2]:8000", "fd00:88:3::3")
	})
	t.Run("internal network has no way out or in", func(t *testing.T) {
		l.cc.blocked(t, "[fd00:192::2]:9000")
		l.ext.blocked(t, "[fd00:88:3::2]:8000")
		l.ca.blocked(t, "[fd00:88:3::2]:8000")
	})
	t.Run("nothing else is routed into a bridge", func(t *testing.T) {
		l.ext.blocked(t, "[fd00:88:1::2]:8000")
	})

	if err := fw.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("routed again after Remove", func(t *testing.T) {
		l.ext.reaches(t, "[fd00:88:1::2]:8000", "fd00:192::2")
		l.cb.reaches(t, "[fd00:88:1::2]:8000", "fd00:88:2::2")
	})
}
