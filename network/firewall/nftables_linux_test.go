package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// tableState is what a test reads back of one table: rules per chain and
// the names in the bridges set.
type tableState struct {
	rules   map[string]int
	bridges []string
}

func readTable(t *testing.T, c *nftables.Conn, family nftables.TableFamily, name string) (tableState, bool) {
	t.Helper()
	tables, err := c.ListTablesOfFamily(family)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tables, func(tb *nftables.Table) bool { return tb.Name == name })
	if i < 0 {
		return tableState{}, false
	}
	tb := tables[i]
	chains, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		t.Fatal(err)
	}
	st := tableState{rules: map[string]int{}}
	for _, ch := range chains {
		if ch.Table.Name != name {
			continue
		}
		rules, err := c.GetRules(tb, ch)
		if err != nil {
			t.Fatal(err)
		}
		st.rules[ch.Name] = len(rules)
	}
	if s, err := c.GetSetByName(tb, setBridges); err == nil {
		elems, err := c.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range elems {
			st.bridges = append(st.bridges, string(bytes.TrimRight(e.Key, "\x00")))
		}
		slices.Sort(st.bridges)
	}
	return st, true
}

func (s tableState) String() string { return fmt.Sprintf("rules %v, bridges %v", s.rules, s.bridges) }

func (s tableState) equal(o tableState) bool {
	if len(s.rules) != len(o.rules) || !slices.Equal(s.bridges, o.bridges) {
		return false
	}
	for k, v := range s.rules {
		if n, ok := o.rules[k]; !ok || n != v {
			return false
		}
	}
	return true
}

func TestApplyReplacesOnlyItsTable(t *testing.T) {
	testutil.RequiresRoot(t)
	h := newTestNS(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(h.fd)))
	if err != nil {
		t.Fatal(err)
	}
	name := testutil.UniqueName(t)
	ctx := context.Background()

	// Another program's tables: one inet table with a rule, and an ip table
	// with the very name berth's table has in family inet.
	other := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: testutil.UniqueName(t)})
	oc := c.AddChain(&nftables.Chain{Table: other, Name: "input", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: other, Chain: oc, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	ipTable := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: name})
	c.AddChain(&nftables.Chain{Table: ipTable, Name: "keep"})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	othersIntact := func(t *testing.T) {
		t.Helper()
		if st, ok := readTable(t, c, nftables.TableFamilyINet, other.Name); !ok || !st.equal(tableState{rules: map[string]int{"input": 1}}) {
			t.Errorf("the other inet table: present %v, %v", ok, st)
		}
		if st, ok := readTable(t, c, nftables.TableFamilyIPv4, name); !ok || !st.equal(tableState{rules: map[string]int{"keep": 0}}) {
			t.Errorf("the ip table of the same name: present %v, %v", ok, st)
		}
	}

	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	steps := []struct {
		name string
		rs   Ruleset
		want tableState
	}{{
		name: "one masquerading network with a port, one internal",
		rs: Ruleset{
			Networks: []Network{
				{Bridge: "br-a", Subnet: p("10.88.1.0/24"), Masquerade: true},
				{Bridge: "br-b", Subnet: p("10.88.2.0/24"), Internal: true},
			},
			Ports: []Port{{Proto: "tcp", HostPort: 8080, ContainerIP: a("10.88.1.2"), ContainerPort: 80, Bridge: "br-a"}},
		},
		// postrouting: 1 masquerade + 2 (loopback, hairpin) for the
		// non-internal network; forward: 2 same-bridge accepts, 2 internal
		// drops, 2 established, 1 DNATed, 1 isolation, 1 outbound accept,
		// 1 final drop.
		want: tableState{rules: map[string]int{"prerouting": 1, "output": 1, "ports": 1, "postrouting": 3, "forward": 10},
			bridges: []string{"br-a", "br-b"}},
	}, {
		name: "applied again: three networks, three ports",
		rs: Ruleset{
			Networks: []Network{
				{Bridge: "br-a", Subnet: p("10.88.1.0/24"), Masquerade: true},
				{Bridge: "br-b", Subnet: p("10.88.2.0/24"), Masquerade: true},
				{Bridge: "br-c", Subnet: p("10.88.3.0/24")},
			},
			Ports: []Port{
				{Proto: "tcp", HostPort: 8080, ContainerIP: a("10.88.1.2"), ContainerPort: 80, Bridge: "br-a"},
				{Proto: "tcp", HostIP: a("127.0.0.1"), HostPort: 8443, ContainerIP: a("10.88.1.2"), ContainerPort: 443, Bridge: "br-a"},
				{Proto: "udp", HostPort: 5353, ContainerIP: a("10.88.3.7"), ContainerPort: 53, Bridge: "br-c"},
			},
		},
		// postrouting: 2 masquerades + 2 (loopback, hairpin) per network;
		// forward: 3 same-bridge, 2 established, 1 DNATed, 1 isolation, 3
		// outbound, 1 final.
		want: tableState{rules: map[string]int{"prerouting": 1, "output": 1, "ports": 3, "postrouting": 8, "forward": 11},
			bridges: []string{"br-a", "br-b", "br-c"}},
	}, {
		name: "dual stack: an IPv4 and IPv6 network with a port of each family, an internal IPv6-only one",
		rs: Ruleset{
			Networks: []Network{
				{Bridge: "br-a", Subnet: p("10.88.1.0/24"), Subnet6: p("fd00:88:1::/64"), Masquerade: true},
				{Bridge: "br-b", Subnet6: p("fd00:88:2::/64"), Internal: true},
			},
			Ports: []Port{
				{Proto: "tcp", HostPort: 8080, ContainerIP: a("10.88.1.2"), ContainerPort: 80, Bridge: "br-a"},
				{Proto: "tcp", HostIP: a("::"), HostPort: 8080, ContainerIP: a("fd00:88:1::2"), ContainerPort: 80, Bridge: "br-a"},
			},
		},
		// postrouting: a masquerade and a hairpin rule per family, and the
		// loopback rule (IPv4 only); forward: as in the first step.
		want: tableState{rules: map[string]int{"prerouting": 1, "output": 1, "ports": 2, "postrouting": 5, "forward": 10},
			bridges: []string{"br-a", "br-b"}},
	}, {
		name: "empty",
		rs:   Ruleset{},
		want: tableState{rules: map[string]int{"prerouting": 1, "output": 1, "ports": 0, "postrouting": 0, "forward": 5}},
	}}
	fw := New(name, WithNetNS(int(h.fd)))
	t.Cleanup(func() { fw.Remove(ctx) })
	for _, s := range steps {
		if err := fw.Apply(ctx, s.rs); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		st, ok := readTable(t, c, nftables.TableFamilyINet, name)
		if !ok || !st.equal(s.want) {
			t.Errorf("%s: table present %v, %v; want %v", s.name, ok, st, s.want)
		}
		othersIntact(t)
	}

	// A refused ruleset leaves the table as the last Apply made it.
	bad := Ruleset{Networks: []Network{{Bridge: "br-a", Subnet: p("fd00::/64")}}}
	if err := fw.Apply(ctx, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Apply of an IPv6 subnet as Subnet: %v, want ErrInvalidArgument", err)
	}
	if st, _ := readTable(t, c, nftables.TableFamilyINet, name); !st.equal(steps[len(steps)-1].want) {
		t.Errorf("after a refused Apply: %v", st)
	}

	for i := range 2 {
		if err := fw.Remove(ctx); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
		if st, ok := readTable(t, c, nftables.TableFamilyINet, name); ok {
			t.Errorf("after Remove #%d the table is there: %v", i+1, st)
		}
		othersIntact(t)
	}
}

// BenchmarkApply applies rulesets of n networks with m ports each, written
// whole each time; the engine's reference point is 10 networks and 100
// ports.
func BenchmarkApply(b *testing.B) {
	testutil.RequiresRoot(b)
	for _, size := range []struct{ networks, perNetwork int }{{1, 0}, {1, 1}, {10, 10}} {
		b.Run(fmt.Sprintf("%dnetworks-%dports", size.networks, size.networks*size.perNetwork), func(b *testing.B) {
			h := newTestNS(b)
			rs := manyPorts(size.networks, size.perNetwork)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				// A new Firewall writes whole.
				fw := New(testutil.UniqueName(b), WithNetNS(int(h.fd)))
				if err := fw.Apply(ctx, rs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyPort measures the change of one published port on top of
// 10 networks with 100 ports: what a container start (add) and stop
// (delete) cost.
func BenchmarkApplyPort(b *testing.B) {
	testutil.RequiresRoot(b)
	base := manyPorts(10, 10)
	more := base
	more.Ports = append(slices.Clone(base.Ports), Port{Proto: "tcp", HostPort: 30000,
		ContainerIP: netip.MustParseAddr("10.90.0.99"), ContainerPort: 80, Bridge: base.Networks[0].Bridge})
	for _, step := range []struct {
		name     string
		from, to Ruleset
	}{{"add", base, more}, {"delete", more, base}} {
		b.Run(step.name, func(b *testing.B) {
			h := newTestNS(b)
			fw := New(testutil.UniqueName(b), WithNetNS(int(h.fd)))
			ctx := context.Background()
			b.Cleanup(func() { fw.Remove(ctx) })
			for range b.N {
				b.StopTimer()
				if err := fw.Apply(ctx, step.from); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := fw.Apply(ctx, step.to); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// manyPorts is a ruleset of networks networks with perNetwork ports each.
func manyPorts(networks, perNetwork int) Ruleset {
	var rs Ruleset
	for n := range networks {
		br := fmt.Sprintf("br-many%d", n)
		rs.Networks = append(rs.Networks, Network{Bridge: br, Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 90, byte(n), 0}), 24), Masquerade: true})
		for i := range perNetwork {
			rs.Ports = append(rs.Ports, Port{Proto: "tcp", HostPort: uint16(20000 + n*perNetwork + i),
				ContainerIP: netip.AddrFrom4([4]byte{10, 90, byte(n), byte(2 + i%250)}), ContainerPort: uint16(80 + i), Bridge: br})
		}
	}
	return rs
}

// Regression: every rule of the batch is acknowledged, and a few hundred
// acknowledgements overflowed the netlink socket's default buffer (ENOBUFS).
func TestApplyManyPorts(t *testing.T) {
	testutil.RequiresRoot(t)
	h := newTestNS(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(h.fd)))
	if err != nil {
		t.Fatal(err)
	}
	fw := New(testutil.UniqueName(t), WithNetNS(int(h.fd)))
	ctx := context.Background()
	t.Cleanup(func() { fw.Remove(ctx) })
	if err := fw.Apply(ctx, manyPorts(20, 200)); err != nil {
		t.Fatal(err)
	}
	st, _ := readTable(t, c, nftables.TableFamilyINet, fw.Table())
	if st.rules["ports"] != 4000 || len(st.bridges) != 20 {
		t.Errorf("%v, want 4000 port rules and 20 bridges", st)
	}
}

// portRules returns the comments of the ports chain's rules, sorted, and the
// handle of the forward chain's first rule (a whole write changes it).
func portRules(t *testing.T, c *nftables.Conn, table string) ([]string, uint64) {
	t.Helper()
	tb := &nftables.Table{Family: nftables.TableFamilyINet, Name: table}
	rules, err := c.GetRules(tb, &nftables.Chain{Table: tb, Name: chainPorts})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rules {
		name, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		names = append(names, name)
	}
	slices.Sort(names)
	fwd, err := c.GetRules(tb, &nftables.Chain{Table: tb, Name: chainForward})
	if err != nil || len(fwd) == 0 {
		t.Fatalf("forward chain: %d rules, %v", len(fwd), err)
	}
	return names, fwd[0].Handle
}

func TestApplyChangesOnlyPorts(t *testing.T) {
	testutil.RequiresRoot(t)
	h := newTestNS(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(h.fd)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fw := New(testutil.UniqueName(t), WithNetNS(int(h.fd)))
	t.Cleanup(func() { fw.Remove(ctx) })
	a := netip.MustParseAddr
	nets := []Network{
		{Bridge: "br-b", Subnet: netip.MustParsePrefix("10.88.2.0/24"), Masquerade: true},
		{Bridge: "br-a", Subnet: netip.MustParsePrefix("10.88.1.0/24"), Masquerade: true},
	}
	p1 := Port{Proto: "tcp", HostPort: 8080, ContainerIP: a("10.88.1.2"), ContainerPort: 80, Bridge: "br-a"}
	p2 := Port{Proto: "udp", HostIP: a("127.0.0.1"), HostPort: 53, ContainerIP: a("10.88.2.2"), ContainerPort: 53, Bridge: "br-b"}
	p3 := Port{Proto: "tcp", HostPort: 8081, ContainerIP: a("10.88.1.3"), ContainerPort: 80, Bridge: "br-a"}
	// The same host port to another container is another rule.
	p1b := p1
	p1b.ContainerIP = a("10.88.1.9")

	if err := fw.Apply(ctx, Ruleset{Networks: nets, Ports: []Port{p1, p2}}); err != nil {
		t.Fatal(err)
	}
	_, first := portRules(t, c, fw.Table())

	steps := []struct {
		name  string
		nets  []Network
		ports []Port
		want  []string
		whole bool
	}{
		{"a port added, one removed", nets, []Port{p2, p3}, []string{"tcp 0.0.0.0:8081 to 10.88.1.3:80", "udp 127.0.0.1:53 to 10.88.2.2:53"}, false},
		{"networks in another order, a port retargeted", []Network{nets[1], nets[0]}, []Port{p1b, p2, p3},
			[]string{"tcp 0.0.0.0:8080 to 10.88.1.9:80", "tcp 0.0.0.0:8081 to 10.88.1.3:80", "udp 127.0.0.1:53 to 10.88.2.2:53"}, false},
		{"all ports gone", nets, nil, nil, false},
		{"a network gone", nets[:1], []Port{p2}, []string{"udp 127.0.0.1:53 to 10.88.2.2:53"}, true},
	}
	for _, s := range steps {
		if err := fw.Apply(ctx, Ruleset{Networks: s.nets, Ports: s.ports}); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, handle := portRules(t, c, fw.Table())
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: port rules %q, want %q", s.name, got, s.want)
		}
		if whole := handle != first; whole != s.whole {
			t.Errorf("%s: table written whole %v, want %v", s.name, whole, s.whole)
		}
		first = handle
	}

	// Someone else deletes the table: the next Apply writes it whole again.
	if err := New(fw.Table(), WithNetNS(int(h.fd))).Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fw.Apply(ctx, Ruleset{Networks: nets[:1], Ports: []Port{p2}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := portRules(t, c, fw.Table()); !slices.Equal(got, []string{"udp 127.0.0.1:53 to 10.88.2.2:53"}) {
		t.Errorf("after the table was deleted behind its back: port rules %q", got)
	}
	st, _ := readTable(t, c, nftables.TableFamilyINet, fw.Table())
	if want := (tableState{rules: map[string]int{"prerouting": 1, "output": 1, "ports": 1, "postrouting": 3, "forward": 7}, bridges: []string{"br-b"}}); !st.equal(want) {
		t.Errorf("after the table was deleted behind its back: %v, want %v", st, want)
	}
}
