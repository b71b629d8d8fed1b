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
		// forward: 2 same-bridge accepts, 2 internal drops, 2 established,
		// 1 port, 1 isolation, 1 outbound accept, 1 final drop.
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
		// postrouting: 2 masquerades + 2 for each of the 2 networks with ports;
		// forward: 3 same-bridge, 2 established, 3 ports, 1 isolation, 3
		// outbound, 1 final.
		want: tableState{rules: map[string]int{"prerouting": 1, "output": 1, "ports": 3, "postrouting": 6, "forward": 13},
			bridges: []string{"br-a", "br-b", "br-c"}},
	}, {
		name: "empty",
		rs:   Ruleset{},
		want: tableState{rules: map[string]int{"prerouting": 1, "output": 1, "ports": 0, "postrouting": 0, "forward": 4}},
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
	if err := fw.Apply(ctx, bad); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("Apply of an IPv6 network: %v, want ErrNotImplemented", err)
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

// BenchmarkApply applies rulesets of n networks with m ports each; the
// engine's reference point is 10 networks and 100 ports.
func BenchmarkApply(b *testing.B) {
	testutil.RequiresRoot(b)
	for _, size := range []struct{ networks, perNetwork int }{{1, 0}, {1, 1}, {10, 10}} {
		b.Run(fmt.Sprintf("%dnetworks-%dports", size.networks, size.networks*size.perNetwork), func(b *testing.B) {
			h := newTestNS(b)
			rs := manyPorts(size.networks, size.perNetwork)
			fw := New(testutil.UniqueName(b), WithNetNS(int(h.fd)))
			ctx := context.Background()
			b.Cleanup(func() { fw.Remove(ctx) })
			b.ResetTimer()
			for range b.N {
				if err := fw.Apply(ctx, rs); err != nil {
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
