package firewall

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"berth.dev/internal/errdefs"
)

func TestValidate(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	netA := Network{Bridge: "br-a", Subnet: p("10.88.1.0/24"), Masquerade: true}
	netI := Network{Bridge: "br-i", Subnet: p("10.88.9.0/24"), Internal: true}
	port := Port{Proto: "tcp", HostPort: 8080, ContainerIP: a("10.88.1.2"), ContainerPort: 80, Bridge: "br-a"}
	with := func(change func(*Port)) Port {
		q := port
		change(&q)
		return q
	}
	net6 := Network{Bridge: "br-6", Subnet: p("10.88.6.0/24"), Subnet6: p("fd00:88:6::/64"), Masquerade: true}
	port6 := Port{Proto: "tcp", HostIP: a("::"), HostPort: 8080, ContainerIP: a("fd00:88:6::2"), ContainerPort: 80, Bridge: "br-6"}
	with6 := func(change func(*Port)) Port {
		q := port6
		change(&q)
		return q
	}
	for _, tc := range []struct {
		name string
		rs   Ruleset
		want error
	}{
		{"valid", Ruleset{Networks: []Network{netA, netI}, Ports: []Port{port, with(func(q *Port) { q.Proto = "udp" })}}, nil},
		{"empty", Ruleset{}, nil},
		{"host 0.0.0.0 and zero are one address", Ruleset{Networks: []Network{netA}, Ports: []Port{port, with(func(q *Port) { q.HostIP = a("0.0.0.0") })}}, errdefs.ErrConflict},
		{"two host addresses on one port", Ruleset{Networks: []Network{netA}, Ports: []Port{port, with(func(q *Port) { q.HostIP = a("127.0.0.1") })}}, nil},
		{"bridge name too long", Ruleset{Networks: []Network{{Bridge: "br-0123456789abc", Subnet: p("10.0.0.0/8")}}}, errdefs.ErrInvalidArgument},
		{"bridge twice", Ruleset{Networks: []Network{netA, netA}}, errdefs.ErrInvalidArgument},
		{"no subnet", Ruleset{Networks: []Network{{Bridge: "br-a"}}}, errdefs.ErrInvalidArgument},
		{"IPv6 subnet in Subnet", Ruleset{Networks: []Network{{Bridge: "br-a", Subnet: p("fd00::/64")}}}, errdefs.ErrInvalidArgument},
		{"IPv4 subnet in Subnet6", Ruleset{Networks: []Network{{Bridge: "br-a", Subnet6: p("10.88.1.0/24")}}}, errdefs.ErrInvalidArgument},
		{"IPv4-mapped subnet in Subnet6", Ruleset{Networks: []Network{{Bridge: "br-a", Subnet6: p("::ffff:10.88.1.0/120")}}}, errdefs.ErrInvalidArgument},
		{"IPv6 only", Ruleset{Networks: []Network{{Bridge: "br-6", Subnet6: p("fd00:88:6::/64"), Masquerade: true}}, Ports: []Port{port6}}, nil},
		{"IPv6 host address", Ruleset{Networks: []Network{net6}, Ports: []Port{with6(func(q *Port) { q.HostIP = a("fd00:1::1") })}}, nil},
		{"IPv4 and IPv6 on one port", Ruleset{Networks: []Network{net6}, Ports: []Port{port6, with(func(q *Port) { q.Bridge = "br-6" })}}, nil},
		{"IPv6 unspecified twice", Ruleset{Networks: []Network{net6}, Ports: []Port{port6, with6(func(q *Port) { q.ContainerIP = a("fd00:88:6::3") })}}, errdefs.ErrConflict},
		{"IPv6 loopback", Ruleset{Networks: []Network{net6}, Ports: []Port{with6(func(q *Port) { q.HostIP = a("::1") })}}, errdefs.ErrNotImplemented},
		{"IPv6 loopback to IPv4", Ruleset{Networks: []Network{netA}, Ports: []Port{with(func(q *Port) { q.HostIP = a("::1") })}}, errdefs.ErrNotImplemented},
		{"IPv6 host, IPv4 container", Ruleset{Networks: []Network{netA}, Ports: []Port{with(func(q *Port) { q.HostIP = a("::") })}}, errdefs.ErrInvalidArgument},
		{"zero host, IPv6 container", Ruleset{Networks: []Network{net6}, Ports: []Port{with6(func(q *Port) { q.HostIP = netip.Addr{} })}}, errdefs.ErrInvalidArgument},
		{"IPv4 host, IPv6 container", Ruleset{Networks: []Network{net6}, Ports: []Port{with6(func(q *Port) { q.HostIP = a("127.0.0.1") })}}, errdefs.ErrInvalidArgument},
		{"IPv6 port on an internal network", Ruleset{Networks: []Network{netI}, Ports: []Port{with6(func(q *Port) { q.Bridge = "br-i" })}}, errdefs.ErrInvalidArgument},
		{"unknown protocol", Ruleset{Networks: []Network{netA}, Ports: []Port{with(func(q *Port) { q.Proto = "icmp" })}}, errdefs.ErrInvalidArgument},
		{"host port 0", Ruleset{Networks: []Network{netA}, Ports: []Port{with(func(q *Port) { q.HostPort = 0 })}}, errdefs.ErrInvalidArgument},
		{"container port 0", Ruleset{Networks: []Network{netA}, Ports: []Port{with(func(q *Port) { q.ContainerPort = 0 })}}, errdefs.ErrInvalidArgument},
		{"no container address", Ruleset{Networks: []Network{netA}, Ports: []Port{with(func(q *Port) { q.ContainerIP = netip.Addr{} })}}, errdefs.ErrInvalidArgument},
		{"unknown bridge", Ruleset{Networks: []Network{netA}, Ports: []Port{with(func(q *Port) { q.Bridge = "br-x" })}}, errdefs.ErrInvalidArgument},
		{"port on an internal network", Ruleset{Networks: []Network{netA, netI}, Ports: []Port{with(func(q *Port) { q.Bridge = "br-i" })}}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := validate("berth", tc.rs)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("validate: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidateNormalizes(t *testing.T) {
	rs, err := validate("berth", Ruleset{
		Networks: []Network{
			{Bridge: "br-b", Subnet: netip.MustParsePrefix("10.88.2.7/24"), Internal: true, Masquerade: true},
			{Bridge: "br-a", Subnet: netip.MustParsePrefix("10.88.1.0/24"), Subnet6: netip.MustParsePrefix("fd00:88:1::9/64")},
		},
		Ports: []Port{
			{Proto: "tcp", HostIP: netip.MustParseAddr("::ffff:0.0.0.0"), HostPort: 1, ContainerIP: netip.MustParseAddr("::ffff:10.88.1.2"), ContainerPort: 2, Bridge: "br-a"},
			{Proto: "tcp", HostIP: netip.MustParseAddr("::"), HostPort: 1, ContainerIP: netip.MustParseAddr("fd00:88:1::2"), ContainerPort: 2, Bridge: "br-a"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Networks[0].Bridge != "br-a" || rs.Networks[0].Subnet6.String() != "fd00:88:1::/64" ||
		rs.Networks[1].Subnet.String() != "10.88.2.0/24" || rs.Networks[1].Masquerade {
		t.Errorf("networks %+v: want sorted by bridge, subnets masked, no masquerade on internal", rs.Networks)
	}
	if p := rs.Ports[0]; p.HostIP.IsValid() || p.ContainerIP != netip.MustParseAddr("10.88.1.2") {
		t.Errorf("port %+v: want host address zero, container address unmapped", p)
	}
	if p := rs.Ports[1]; p.HostIP != netip.IPv6Unspecified() {
		t.Errorf("port %+v: want host address :: kept (it is not the IPv4 zero)", p)
	}
}

// A refused ruleset is refused before anything is touched, root or not.
func TestApplyRefusesBeforeTouching(t *testing.T) {
	fw := New("")
	if err := fw.Apply(context.Background(), Ruleset{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Apply with an empty table name: %v, want ErrInvalidArgument", err)
	}
}
