package firewall

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"berth.dev/internal/testutil"
)

// trafficLab is a host namespace with three bridges, one container on
// each, and an "external" namespace routed through the host:
//
//	ext 192.0.2.2 ──veth── host 192.0.2.1
//	host: bridge A 10.88.1.1/24 ── container ca 10.88.1.2
//	      bridge B 10.88.2.1/24 ── container cb 10.88.2.2
//	      bridge C 10.88.3.1/24 ── containers cc 10.88.3.2, cc2 10.88.3.3
//	                                (an internal network)
//
// Every container listens on TCP 8000 (ca on UDP 8000 too), ext on TCP 9000;
// each answers with the source address it sees.
type trafficLab struct {
	host, ext, ca, cb, cc *testNS
	cc2                   *testNS
	brA, brB, brC         string
	bx                    string // the host's link to ext
}

func newTrafficLab(t *testing.T) *trafficLab {
	l := &trafficLab{
		host: newTestNS(t), ext: newTestNS(t),
		ca: newTestNS(t), cb: newTestNS(t), cc: newTestNS(t), cc2: newTestNS(t),
		brA: linkName(t, "bta"), brB: linkName(t, "btb"), brC: linkName(t, "btc"), bx: linkName(t, "bx"),
	}
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	l.host.connect(t, l.ext, l.bx, "", p("192.0.2.1/24"), p("192.0.2.2/24"), a("192.0.2.1"))
	for _, c := range []struct {
		ns     *testNS
		br     string
		gw, ip string
	}{
		{l.ca, l.brA, "10.88.1.1", "10.88.1.2"},
		{l.cb, l.brB, "10.88.2.1", "10.88.2.2"},
		{l.cc, l.brC, "10.88.3.1", "10.88.3.2"},
		{l.cc2, l.brC, "", "10.88.3.3"},
	} {
		if c.gw == "" { // a second container on the bridge
			c.gw = "10.88.3.1"
		} else {
			l.host.bridge(t, c.br, p(c.gw+"/24"))
		}
		l.host.connect(t, c.ns, linkName(t, "bv"), c.br, netip.Prefix{}, p(c.ip+"/24"), a(c.gw))
		c.ns.serve(t, "8000")
	}
	l.ca.serveUDP(t, "8000")
	l.ext.serve(t, "9000")
	l.host.sysctl(t, "ipv4/ip_forward", "1")
	// network/bridge sets this on berth's bridges: 127.0.0.1 DNATed into A.
	l.host.sysctl(t, "ipv4/conf/"+l.brA+"/route_localnet", "1")
	return l
}

func TestSysctlIsPerNamespace(t *testing.T) {
	testutil.RequiresRoot(t)
	// A fresh namespace inherits the initial namespace's IPv4 settings:
	// write the opposite of what it has.
	a, b := newTestNS(t), newTestNS(t)
	before, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	old := b.readSysctl(t, "ipv4/ip_forward")
	flipped := map[string]string{"0\n": "1\n", "1\n": "0\n"}[old]
	a.sysctl(t, "ipv4/ip_forward", flipped)
	if got := a.readSysctl(t, "ipv4/ip_forward"); got != flipped {
		t.Fatalf("ip_forward in the namespace written = %q, want %q", got, flipped)
	}
	if got := b.readSysctl(t, "ipv4/ip_forward"); got != old {
		t.Errorf("ip_forward in another namespace = %q, want %q: the write leaked", got, old)
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(after) != string(before) {
		t.Errorf("ip_forward of the test's own namespace went from %q to %q", before, after)
	}
}

func TestTraffic(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Run("bridged traffic through netfilter", func(t *testing.T) { testTraffic(t, "1") })
	t.Run("bridged traffic not through netfilter", func(t *testing.T) { testTraffic(t, "0") })
}

// testTraffic runs the traffic checks with bridge-nf-call-iptables (the
// br_netfilter module's switch, per namespace) set to brNetfilter: when it
// is on, frames a bridge forwards between its ports pass the inet hooks.
func testTraffic(t *testing.T, brNetfilter string) {
	l := newTrafficLab(t)
	const brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat(brnf); err != nil {
		if brNetfilter == "1" {
			t.Skipf("no br_netfilter: %v", err)
		}
	} else {
		l.host.sysctl(t, "bridge/bridge-nf-call-iptables", brNetfilter)
	}
	ctx := context.Background()

	// Without berth's table everything is routed: the controls that show the
	// drops below are the firewall's doing.
	l.cb.reaches(t, "10.88.1.2:8000", "10.88.2.2")
	l.cc.reaches(t, "192.0.2.2:9000", "10.88.3.2")
	l.ext.reaches(t, "10.88.1.2:8000", "192.0.2.2")
	if t.Failed() {
		t.FailNow()
	}

	fw := New(testutil.UniqueName(t), WithNetNS(int(l.host.fd)))
	rs := Ruleset{
		Networks: []Network{
			{Bridge: l.brA, Subnet: netip.MustParsePrefix("10.88.1.0/24"), Masquerade: true},
			{Bridge: l.brB, Subnet: netip.MustParsePrefix("10.88.2.0/24"), Masquerade: true},
			{Bridge: l.brC, Subnet: netip.MustParsePrefix("10.88.3.0/24"), Internal: true},
		},
		Ports: []Port{
			{Proto: "tcp", HostPort: 18080, ContainerIP: netip.MustParseAddr("10.88.1.2"), ContainerPort: 8000, Bridge: l.brA},
			{Proto: "tcp", HostIP: netip.MustParseAddr("192.0.2.1"), HostPort: 18081, ContainerIP: netip.MustParseAddr("10.88.2.2"), ContainerPort: 8000, Bridge: l.brB},
			{Proto: "udp", HostPort: 18080, ContainerIP: netip.MustParseAddr("10.88.1.2"), ContainerPort: 8000, Bridge: l.brA},
		},
	}
	if err := fw.Apply(ctx, rs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Remove(ctx) })

	t.Run("published port from the host to a host address", func(t *testing.T) {
		l.host.reaches(t, "10.88.1.1:18080", "10.88.1.1")
		// A local socket connecting to a local address takes that address
		// as its source, and answers to it route back to the host.
		l.host.reaches(t, "192.0.2.1:18080", "192.0.2.1")
	})
	t.Run("published port from the host to 127.0.0.1", func(t *testing.T) {
		l.host.reaches(t, "127.0.0.1:18080", "10.88.1.1")
	})
	t.Run("published port from outside", func(t *testing.T) {
		l.ext.reaches(t, "192.0.2.1:18080", "192.0.2.2")
		l.ext.reaches(t, "192.0.2.1:18081", "192.0.2.2")
	})
	t.Run("published UDP port", func(t *testing.T) {
		for _, c := range []struct {
			from      *testNS
			addr, src string
		}{{l.ext, "192.0.2.1:18080", "192.0.2.2"}, {l.host, "127.0.0.1:18080", "10.88.1.1"}} {
			if src, err := c.from.exchangeUDP(t, c.addr); err != nil || src != c.src {
				t.Errorf("datagram to %s: answer %q, %v; want %s", c.addr, src, err, c.src)
			}
		}
	})
	t.Run("published port bound to one host address only", func(t *testing.T) {
		_, err := l.host.dial(t, "10.88.1.1:18081", 10*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to another host address on the port: %v, want refused by the host", err)
		}
	})
	t.Run("hairpin from the container to its own published port", func(t *testing.T) {
		l.ca.reaches(t, "10.88.1.1:18080", "10.88.1.1")
	})
	t.Run("published port from another berth network", func(t *testing.T) {
		// Masqueraded as B's outbound traffic, as docker does: it leaves
		// by another interface than B's bridge.
		l.cb.reaches(t, "192.0.2.1:18080", "10.88.1.1")
	})
	t.Run("outbound is masqueraded", func(t *testing.T) {
		l.ca.reaches(t, "192.0.2.2:9000", "192.0.2.1")
		l.cb.reaches(t, "192.0.2.2:9000", "192.0.2.1")
	})
	t.Run("networks are isolated from each other", func(t *testing.T) {
		l.cb.blocked(t, "10.88.1.2:8000")
		l.ca.blocked(t, "10.88.2.2:8000")
	})
	t.Run("containers of an internal network reach each other", func(t *testing.T) {
		l.cc2.reaches(t, "10.88.3.2:8000", "10.88.3.3")
	})
	t.Run("internal network has no way out or in", func(t *testing.T) {
		l.cc.blocked(t, "192.0.2.2:9000")
		l.ext.blocked(t, "10.88.3.2:8000")
		l.ca.blocked(t, "10.88.3.2:8000")
	})
	t.Run("nothing else is routed into a bridge", func(t *testing.T) {
		l.ext.blocked(t, "10.88.1.2:8000")
	})

	t.Run("ports changed without rewriting the table", func(t *testing.T) {
		changed := rs
		changed.Ports = []Port{rs.Ports[1],
			{Proto: "tcp", HostPort: 18082, ContainerIP: netip.MustParseAddr("10.88.1.2"), ContainerPort: 8000, Bridge: l.brA}}
		if err := fw.Apply(ctx, changed); err != nil {
			t.Fatal(err)
		}
		l.ext.reaches(t, "192.0.2.1:18082", "192.0.2.2")
		l.ext.reaches(t, "192.0.2.1:18081", "192.0.2.2")
		if _, err := l.ext.dial(t, "192.0.2.1:18080", 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to the unpublished port: %v, want refused by the host", err)
		}
	})

	if err := fw.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("routed again after Remove", func(t *testing.T) {
		l.ext.reaches(t, "10.88.1.2:8000", "192.0.2.2")
		l.cb.reaches(t, "10.88.1.2:8000", "10.88.2.2")
	})
}
