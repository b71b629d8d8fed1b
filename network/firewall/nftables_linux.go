package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The table's layout. A whole write puts all of it in place, empty chains
// included, so that what is in the kernel is a function of the Ruleset alone.
//
//	set bridges       ifname: every berth bridge
//	chain prerouting  nat, hook prerouting, priority dstnat (-100):
//	                  fib daddr type local jump ports
//	chain output      nat, hook output, priority -100: the same, for packets
//	                  the host sends itself (127.0.0.1:HostPort)
//	chain ports       one DNAT rule per published port, its comment naming it
//	                  (IPv4 or IPv6, as the port)
//	chain postrouting nat, hook postrouting, priority srcnat (100): masquerade
//	                  of outbound traffic (IPv4 and IPv6), of loopback-sourced
//	                  traffic DNATed into a bridge (IPv4 only: there is no
//	                  route_localnet for ::1), and of hairpin traffic (a
//	                  container reaching a published port of its own network
//	                  through a host address; both families)
//	chain forward     filter, hook forward, priority filter (0), policy
//	                  accept: drops only traffic to or from berth bridges;
//	                  its rules match interfaces and conntrack state, so
//	                  they hold for both families
//
// Only the ports chain depends on the published ports; everything else
// depends on the networks alone.
const (
	setBridges      = "bridges"
	chainPrerouting = "prerouting"
	chainOutput     = "output"
	chainPorts      = "ports"
	chainPostroute  = "postrouting"
	chainForward    = "forward"
)

// loopback is 127.0.0.0/8: connections to 127.0.0.1:HostPort come from it.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// Apply makes the Firewall's table hold rs, in one atomic batch, and touches
// nothing outside the table. An invalid rs (see Network and Port) is refused
// with errdefs.ErrInvalidArgument, a port published on ::1 with
// errdefs.ErrNotImplemented, a host port published twice with
// errdefs.ErrConflict, and the table is left as it was.
//
// The first Apply of a Firewall, and every Apply whose networks differ from
// the last one's, writes the table whole: it is deleted if present and
// created again with every set, chain and rule. When only the published
// ports changed, Apply adds and deletes just their rules; if the table is
// not there any more, it is written whole. The kernel waits for an RCU grace
// period (some 10 ms) in every batch that deletes anything, while a batch
// that only adds (a container with published ports starting) takes well
// under a millisecond.
func (f *Firewall) Apply(ctx context.Context, rs Ruleset) error {
	rs, err := validate(f.table, rs)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := f.conn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: f.table}
	if f.written && slices.Equal(f.networks, rs.Networks) {
		if err := f.updatePorts(c, t, rs.Ports); err == nil {
			return nil
		}
		// Someone else removed or changed the table: write it whole, on a
		// connection with nothing queued.
		if c, err = f.conn(); err != nil {
			return err
		}
	}
	f.written = false
	t = resetTable(c, f.table)
	if err := programNetworks(c, t, rs.Networks); err != nil {
		return fmt.Errorf("firewall table %s: %w", f.table, err)
	}
	ports := &nftables.Chain{Table: t, Name: chainPorts}
	applied := make(map[string]bool, len(rs.Ports))
	for _, p := range rs.Ports {
		addPort(c, ports, p)
		applied[portComment(p)] = true
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("apply firewall table %s: %w", f.table, err)
	}
	f.networks, f.ports, f.written = rs.Networks, applied, true
	return nil
}

// Remove deletes the Firewall's table and everything in it. A table that is
// not there is not an error.
func (f *Firewall) Remove(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := f.conn()
	if err != nil {
		return err
	}
	f.written = false
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: f.table}
	// Adding an existing table is a no-op, so the delete that follows in the
	// same batch always has a table to delete.
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("remove firewall table %s: %w", f.table, err)
	}
	return nil
}

// updatePorts makes the ports chain hold a rule for each of ports, in one
// batch. When ports only adds to what the Firewall applied last, the new
// rules are appended; otherwise the chain is listed, and rules are deleted
// and added as their comments say.
func (f *Firewall) updatePorts(c *nftables.Conn, t *nftables.Table, ports []Port) error {
	ch := &nftables.Chain{Table: t, Name: chainPorts}
	want := make(map[string]bool, len(ports))
	for _, p := range ports {
		want[portComment(p)] = true
	}
	have, changed := f.ports, false
	if !subset(f.ports, want) {
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return err
		}
		have = make(map[string]bool, len(rules))
		for _, r := range rules {
			name, ok := userdata.GetString(r.UserData, userdata.TypeComment)
			if ok && want[name] && !have[name] {
				have[name] = true
				continue
			}
			if err := c.DelRule(&nftables.Rule{Table: t, Chain: ch, Handle: r.Handle}); err != nil {
				return err
			}
			changed = true
		}
	}
	for _, p := range ports {
		if !have[portComment(p)] {
			addPort(c, ch, p)
			changed = true
		}
	}
	if !changed {
		// Nothing to do, if the table is still there. (A batch that only
		// re-adds the chain would do to check, but the kernel makes it wait
		// for an RCU grace period.)
		_, err := c.ListChain(t, chainPorts)
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	f.ports = want
	return nil
}

func subset(a, b map[string]bool) bool {
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// portComment names a port's rule: what it matches and where it sends.
func portComment(p Port) string {
	host := p.HostIP
	if !host.IsValid() {
		host = netip.IPv4Unspecified()
	}
	return fmt.Sprintf("%s %s to %s", p.Proto, netip.AddrPortFrom(host, p.HostPort), netip.AddrPortFrom(p.ContainerIP, p.ContainerPort))
}

// addPort queues the DNAT rule of p.
func addPort(c *nftables.Conn, ports *nftables.Chain, p Port) {
	family, daddr := ipv4(), []expr.Any(nil)
	if p.ContainerIP.Is6() {
		family = ipv6()
	}
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		daddr = addrMatch(daddrField(p.HostIP), netip.PrefixFrom(p.HostIP, p.HostIP.BitLen()))
	}
	c.AddRule(&nftables.Rule{Table: ports.Table, Chain: ports,
		Exprs:    slices.Concat(family, daddr, l4Dport(p.Proto, p.HostPort), dnat(p.ContainerIP, p.ContainerPort)),
		UserData: userdata.AppendString(nil, userdata.TypeComment, portComment(p))})
}

// batchBuffer is the size of both buffers of the netlink socket that applies
// a ruleset. The whole batch goes in one sendmsg, which must fit the send
// buffer (EMSGSIZE otherwise: a rule is a few hundred bytes). The kernel
// acknowledges every message of the batch (one per rule) and each small
// acknowledgement costs about a kilobyte of receive buffer until it is read,
// which happens only after the whole batch is sent: the default buffer
// (208 KiB) overflows at about 200 rules with ENOBUFS. The sizes are limits,
// not allocations.
const batchBuffer = 64 << 20

// forceBuffers sets SO_SNDBUFFORCE and SO_RCVBUFFORCE (CAP_NET_ADMIN, which
// nftables needs anyway), which net.core.[rw]mem_max do not cap.
func forceBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchBuffer),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchBuffer))
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("netlink socket buffers: %w", serr)
	}
	return nil
}

func (f *Firewall) conn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(forceBuffers)}
	if f.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(f.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables connection: %w", err)
	}
	return c, nil
}

// resetTable queues "add table; delete table; add table": the first add makes
// the delete valid whether or not the table existed, and all three commit
// together with what is queued after them.
func resetTable(c *nftables.Conn, name string) *nftables.Table {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: name}
	c.AddTable(t)
	c.DelTable(t)
	return c.AddTable(t)
}

// programNetworks queues the sets, chains and rules that depend on the
// networks alone into table t.
func programNetworks(c *nftables.Conn, t *nftables.Table, networks []Network) error {
	// Interface names are strings, kept in host byte order as nft keeps
	// them; the byte order note makes `nft list` print them as names.
	bridges := &nftables.Set{Table: t, Name: setBridges, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	elems := make([]nftables.SetElement, 0, len(networks))
	for _, n := range networks {
		elems = append(elems, nftables.SetElement{Key: ifname(n.Bridge)})
	}
	if err := c.AddSet(bridges, elems); err != nil {
		return fmt.Errorf("set %s: %w", setBridges, err)
	}

	accept := nftables.ChainPolicyAccept
	pre := c.AddChain(&nftables.Chain{Table: t, Name: chainPrerouting, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	out := c.AddChain(&nftables.Chain{Table: t, Name: chainOutput, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	c.AddChain(&nftables.Chain{Table: t, Name: chainPorts})
	post := c.AddChain(&nftables.Chain{Table: t, Name: chainPostroute, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	fwd := c.AddChain(&nftables.Chain{Table: t, Name: chainForward, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})

	add := func(ch *nftables.Chain, exprs ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(exprs...)})
	}

	// Only packets addressed to this host are DNATed, whether they arrive
	// (prerouting) or are sent by the host itself (output).
	add(pre, localDaddr(), jump(chainPorts))
	add(out, localDaddr(), jump(chainPorts))

	for _, n := range networks {
		subnets := [][]expr.Any{}
		for _, s := range []netip.Prefix{n.Subnet, n.Subnet6} {
			if s.IsValid() {
				subnets = append(subnets, slices.Concat(familyOf(s.Addr()), addrMatch(saddrField(s.Addr()), s)))
			}
		}
		if n.Masquerade {
			for _, from := range subnets {
				add(post, from, ifnameCmp(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), masquerade())
			}
		}
		if n.Internal {
			continue
		}
		// 127.0.0.1:HostPort DNATed into the bridge: the container must
		// answer to an address that routes back to the host.
		add(post, ipv4(), addrMatch(saddrField(loopback.Addr()), loopback), ifnameCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), masquerade())
		// Hairpin: a container reaching a published port of its own network
		// through a host address must get the answer through the host too,
		// not straight over the bridge (or from itself).
		for _, from := range subnets {
			add(post, from, ifnameCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), ctStatusDNAT(), masquerade())
		}
	}

	forwardRules(add, fwd, bridges, networks)
	return nil
}

// forwardRules queues the forward chain, in this order:
//  1. traffic between the ports of one bridge is accepted (seen here only
//     when br_netfilter passes bridged traffic to the inet hooks);
//  2. an internal network's bridge neither sends nor receives anything else;
//  3. replies of connections that were accepted are accepted;
//  4. new connections DNATed into a berth bridge (published ports) are
//     accepted, also from another berth bridge;
//  5. any other traffic between two berth bridges is dropped (isolation);
//  6. non-internal bridges may send anywhere;
//  7. anything else routed into a berth bridge is dropped.
func forwardRules(add func(*nftables.Chain, ...[]expr.Any), fwd *nftables.Chain, bridges *nftables.Set, networks []Network) {
	for _, n := range networks {
		add(fwd, ifnameCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), ifnameCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), verdict(expr.VerdictAccept))
	}
	for _, n := range networks {
		if n.Internal {
			add(fwd, ifnameCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), verdict(expr.VerdictDrop))
			add(fwd, ifnameCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), verdict(expr.VerdictDrop))
		}
	}
	add(fwd, inSet(expr.MetaKeyIIFNAME, bridges), ctStateEstablished(), verdict(expr.VerdictAccept))
	add(fwd, inSet(expr.MetaKeyOIFNAME, bridges), ctStateEstablished(), verdict(expr.VerdictAccept))
	add(fwd, inSet(expr.MetaKeyOIFNAME, bridges), ctStatusDNAT(), verdict(expr.VerdictAccept))
	add(fwd, inSet(expr.MetaKeyIIFNAME, bridges), inSet(expr.MetaKeyOIFNAME, bridges), verdict(expr.VerdictDrop))
	for _, n := range networks {
		if !n.Internal {
			add(fwd, ifnameCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, n.Bridge), verdict(expr.VerdictAccept))
		}
	}
	add(fwd, inSet(expr.MetaKeyOIFNAME, bridges), verdict(expr.VerdictDrop))
}

// ifname pads an interface name to IFNAMSIZ, as the kernel compares it.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func nativeUint32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

func bigUint16(v uint16) []byte {
	b := make([]byte, 2)
	binary.BigEndian.PutUint16(b, v)
	return b
}

// ifnameCmp: meta iifname/oifname ==/!= name.
func ifnameCmp(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

// inSet: meta iifname/oifname @set.
func inSet(key expr.MetaKey, s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}
}

// ipv4: meta nfproto ipv4, the guard an inet table needs before IPv4 header
// fields.
func ipv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// ipv6: meta nfproto ipv6, the guard before IPv6 header fields.
func ipv6() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
	}
}

// familyOf is the nfproto guard of a's family.
func familyOf(a netip.Addr) []expr.Any {
	if a.Is6() {
		return ipv6()
	}
	return ipv4()
}

// header is where an address lies in the network header: its offset and
// length.
type header struct{ offset, len uint32 }

// saddrField is the source address field of a's family: ip saddr at 12,
// ip6 saddr at 8.
func saddrField(a netip.Addr) header {
	if a.Is6() {
		return header{8, 16}
	}
	return header{12, 4}
}

// daddrField is the destination address field of a's family: ip daddr at
// 16, ip6 daddr at 24.
func daddrField(a netip.Addr) header {
	if a.Is6() {
		return header{24, 16}
	}
	return header{16, 4}
}

// addrMatch: ip/ip6 saddr/daddr (field) in prefix p, which must be of the
// field's family.
func addrMatch(field header, p netip.Prefix) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: field.offset, Len: field.len}
	addr := p.Masked().Addr().AsSlice()
	if p.Bits() == p.Addr().BitLen() {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr}}
	}
	mask := net.CIDRMask(p.Bits(), p.Addr().BitLen())
	return []expr.Any{
		load,
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: field.len, Mask: mask, Xor: make([]byte, field.len)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
	}
}

// l4Dport: meta l4proto proto th dport port. TCP, UDP and SCTP all carry
// the destination port at offset 2 of their header.
func l4Dport(proto string, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumbers[proto]}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: bigUint16(port)},
	}
}

// localDaddr: fib daddr type local.
func localDaddr() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeUint32(unix.RTN_LOCAL)},
	}
}

// ctStateEstablished: ct state established,related.
func ctStateEstablished() []expr.Any {
	return ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
}

// ctStatusDNAT: ct status dnat.
func ctStatusDNAT() []expr.Any {
	const ipsDstNAT = 1 << 5 // IPS_DST_NAT in linux/netfilter/nf_conntrack_common.h
	return ctBits(expr.CtKeySTATUS, ipsDstNAT)
}

func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeUint32(bits), Xor: nativeUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: nativeUint32(0)},
	}
}

// dnat: dnat ip to addr:port, or dnat ip6 to [addr]:port. Register 1 holds
// the 16 bytes of an IPv6 address.
func dnat(addr netip.Addr, port uint16) []expr.Any {
	family := uint32(unix.NFPROTO_IPV4)
	if addr.Is6() {
		family = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: addr.AsSlice()},
		&expr.Immediate{Register: 2, Data: bigUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: family, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

func masquerade() []expr.Any { return []expr.Any{&expr.Masq{}} }

func jump(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

func verdict(kind expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind}}
}
