package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/network/netns"
)

// defaultMTU is the MTU of bridges and veths when none is asked for.
const defaultMTU = 1500

// Config describes a bridge.
type Config struct {
	Name string // link name, e.g. "berth0" or "br-3f2a1c9d8e7b"
	// Address is the IPv4 gateway address with the subnet's length, e.g.
	// 172.18.0.1/16. Zero for an IPv6-only bridge; an IPv6 address here is
	// taken as Address6 when Address6 is zero.
	Address netip.Prefix
	// Address6 is the IPv6 gateway address with the subnet's length, e.g.
	// fd00:1::1/64; zero: none.
	Address6 netip.Prefix
	MTU      int // 0: 1500
}

// addresses returns the bridge's v4 and v6 addresses, an IPv6 Address moved
// to Address6 when that is zero.
func (cfg Config) addresses() (v4, v6 netip.Prefix, err error) {
	return splitFamilies(cfg.Address, cfg.Address6)
}

// Ensure creates the bridge if it is missing, gives it Address and Address6
// (at least one of them must be set; other addresses it has are kept: each
// is just added if missing), sets MTU and brings it up. Idempotent. It also
// sets net.ipv4.conf.<name>.route_localnet=1 (so 127.0.0.1 DNAT to
// containers works) by writing /proc/sys (in the caller's namespace: the
// file is per-netns). Address6 is added without duplicate address detection
// (IFA_F_NODAD): a bridge has no carrier until a port joins, and until DAD
// completes the gateway could not answer.
//
// A new bridge gets a random locally administered MAC address of its own: a
// bridge without one takes the lowest MAC among its ports, so the gateway's
// address would change under the containers' ARP caches as they come and go.
// A link of that name that is no bridge: ErrConflict.
func Ensure(ctx context.Context, cfg Config) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkName(cfg.Name); err != nil {
		return fmt.Errorf("ensure bridge: %w", err)
	}
	v4, v6, err := cfg.addresses()
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	mtu := mtuOr(cfg.MTU)
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("ensure bridge %s: netlink: %w", cfg.Name, err)
	}
	defer h.Close()

	link, err := ensureLink(h, cfg.Name, mtu)
	if err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	for _, addr := range []netip.Prefix{v4, v6} {
		if !addr.IsValid() {
			continue
		}
		if err := ensureAddr(h, link, addr); err != nil {
			return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
		}
	}
	if link.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("ensure bridge %s: set mtu %d: %w", cfg.Name, mtu, err)
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("ensure bridge %s: set up: %w", cfg.Name, err)
		}
	}
	sysctl := filepath.Join("/proc/sys/net/ipv4/conf", cfg.Name, "route_localnet")
	if err := os.WriteFile(sysctl, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
	}
	return nil
}

// ensureLink returns the bridge called name, creating it (down, with mtu
// and a random MAC) if missing.
func ensureLink(h *netlink.Handle, name string, mtu int) (netlink.Link, error) {
	link, err := h.LinkByName(name)
	if err == nil {
		if _, ok := link.(*netlink.Bridge); !ok {
			return nil, fmt.Errorf("link exists and is a %s, not a bridge: %w", link.Type(), errdefs.ErrConflict)
		}
		return link, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("look up: %w", err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = mtu
	attrs.HardwareAddr, err = randomMAC()
	if err != nil {
		return nil, err
	}
	err = h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: a concurrent Ensure won
		return nil, fmt.Errorf("create: %w", err)
	}
	link, err = h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up after create: %w", err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("link exists and is a %s, not a bridge: %w", link.Type(), errdefs.ErrConflict)
	}
	return link, nil
}

// ensureAddr adds addr to link unless the link has it already (with any
// prefix length: the address is what the gateway answers on).
func ensureAddr(h *netlink.Handle, link netlink.Link, addr netip.Prefix) error {
	family := netlink.FAMILY_V4
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		family = netlink.FAMILY_V6
	}
	have, err := h.AddrList(link, family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) { // a partial list: AddrAdd settles it
		return fmt.Errorf("list addresses: %w", err)
	}
	ip := net.IP(addr.Addr().Unmap().AsSlice())
	for _, a := range have {
		if a.IP.Equal(ip) {
			return nil
		}
	}
	if err := h.AddrAdd(link, linkAddr(addr)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %s: %w", addr, err)
	}
	return nil
}

// Delete removes the bridge; a missing one is not an error. Ports still
// plugged in are released by the kernel (their veths stay).
func Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return deleteLink(name, "bridge")
}

// Endpoint describes a container's interface on a bridge. It has an IPv4
// address, an IPv6 address or both.
type Endpoint struct {
	Bridge string // host bridge to plug into
	HostIf string // host end's name (engine picks e.g. "bv1a2b3c4d5e"), <= 15 bytes
	NetNS  string // path of the pinned netns (netns.New) of the container
	IfName string // name inside, "eth0", "eth1"...
	// Address is the container's IPv4 address with the subnet length; zero
	// for an IPv6-only endpoint. An IPv6 address here (with an IPv6 Gateway)
	// is taken as Address6 (and Gateway6) when Address6 is zero.
	Address netip.Prefix
	// Gateway is the IPv4 default route's gateway; zero: no v4 default route
	// (second networks, internal networks keep it).
	Gateway netip.Addr
	// Address6 is the container's IPv6 address with the subnet length; zero:
	// none.
	Address6 netip.Prefix
	// Gateway6 is the IPv6 default route's gateway; zero: no v6 default
	// route.
	Gateway6 netip.Addr
	MAC      net.HardwareAddr // nil: MACFor(Address.Addr()), or of Address6 when Address is zero
	MTU      int              // 0: 1500
}

// Attach makes a veth pair, plugs the host end into the bridge and brings it
// up, moves the peer into the namespace, renames it IfName, sets MTU, MAC and
// addresses (Address6 without duplicate address detection, so it is usable at
// once), brings it up and adds the default routes via Gateway and Gateway6
// when set. On
// error the pair is removed (nothing half-made). HostIf existing already:
// ErrAlreadyExists.
//
// The peer is created inside the namespace with its final name, MTU and MAC in
// the same request that makes the pair, so it never appears on the host and
// needs no move or rename. Errors: a missing bridge or namespace ErrNotFound;
// IfName taken inside the namespace ErrAlreadyExists; bad names or addresses
// ErrInvalidArgument; a default route already present in the namespace
// ErrConflict (give Gateway for one network only). The host end gets a
// kernel-chosen MAC; the caller's thread must be in the host's namespace.
func Attach(ctx context.Context, ep Endpoint) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	ep, err = ep.normalized()
	if err != nil {
		return fmt.Errorf("attach %s: %w", ep.HostIf, err)
	}
	mac := ep.MAC
	if mac == nil && ep.Address.IsValid() {
		mac = MACFor(ep.Address.Addr())
	} else if mac == nil {
		mac = MACFor(ep.Address6.Addr())
	}
	mtu := mtuOr(ep.MTU)

	ns, err := os.Open(ep.NetNS)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		}
		return fmt.Errorf("attach %s: netns: %w", ep.HostIf, err)
	}
	defer ns.Close()

	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("attach %s: netlink: %w", ep.HostIf, err)
	}
	defer h.Close()
	br, err := h.LinkByName(ep.Bridge)
	if err != nil {
		if isNotFound(err) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		}
		return fmt.Errorf("attach %s: bridge %s: %w", ep.HostIf, ep.Bridge, err)
	}

	spec := vethSpec{
		name: ep.HostIf, master: br.Attrs().Index, mtu: mtu,
		peer: ep.IfName, mac: mac, peerNS: int(ns.Fd()),
	}
	if err := createVeth(spec); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("attach %s: %w", ep.HostIf, existing(h, ep))
		}
		return fmt.Errorf("attach %s: create veth: %w", ep.HostIf, err)
	}
	defer func() {
		if err != nil {
			// Deleting one end deletes both, wherever the peer is.
			if derr := deleteLink(ep.HostIf, "veth"); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	// Hairpin mode lets a frame leave by the port it came in on: a
	// container reaching its own published port through a host address
	// comes back to itself that way once DNATed.
	host, err := h.LinkByName(ep.HostIf)
	if err == nil {
		err = h.LinkSetHairpin(host, true)
	}
	if err != nil {
		return fmt.Errorf("attach %s: hairpin mode: %w", ep.HostIf, err)
	}
	if err := configurePeer(ep); err != nil {
		return fmt.Errorf("attach %s: %s in %s: %w", ep.HostIf, ep.IfName, ep.NetNS, err)
	}
	return nil
}

// existing tells which name made a veth creation fail with EEXIST.
func existing(h *netlink.Handle, ep Endpoint) error {
	if _, err := h.LinkByName(ep.HostIf); err == nil {
		return fmt.Errorf("host interface %s: %w", ep.HostIf, errdefs.ErrAlreadyExists)
	}
	return fmt.Errorf("interface %s in %s: %w", ep.IfName, ep.NetNS, errdefs.ErrAlreadyExists)
}

// configurePeer gives the peer, already in the namespace, its addresses,
// brings it up and adds the default routes.
func configurePeer(ep Endpoint) error {
	h, err := netns.Handle(ep.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	peer, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("look up: %w", err)
	}
	for _, a := range []netip.Prefix{ep.Address, ep.Address6} {
		if !a.IsValid() {
			continue
		}
		if err := h.AddrAdd(peer, linkAddr(a)); err != nil {
			return fmt.Errorf("add address %s: %w", a, err)
		}
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	for _, gw := range []netip.Addr{ep.Gateway, ep.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.IP(gw.Unmap().AsSlice())}
		if err := h.RouteAdd(route); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("a default route exists: %w: %w", err, errdefs.ErrConflict)
			}
			return fmt.Errorf("add default route via %s: %w", gw, err)
		}
	}
	return nil
}

// linkAddr is addr as an interface address: an IPv6 one without duplicate
// address detection, because the address is ours by allocation and DAD would
// keep it unusable for a second or two.
func linkAddr(addr netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: ipNet(addr)}
	if !addr.Addr().Unmap().Is4() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// normalized validates what Attach is given before anything is made, and
// returns it with an IPv6 Address and Gateway moved to Address6 and Gateway6.
func (ep Endpoint) normalized() (Endpoint, error) {
	for _, n := range []string{ep.Bridge, ep.HostIf, ep.IfName} {
		if err := checkName(n); err != nil {
			return ep, err
		}
	}
	if ep.NetNS == "" {
		return ep, fmt.Errorf("no netns path: %w", errdefs.ErrInvalidArgument)
	}
	moved := ep.Address.IsValid() && !isIPv4(ep.Address.Addr()) && !ep.Address6.IsValid()
	var err error
	if ep.Address, ep.Address6, err = splitFamilies(ep.Address, ep.Address6); err != nil {
		return ep, err
	}
	if moved && ep.Gateway.IsValid() && !isIPv4(ep.Gateway) && !ep.Gateway6.IsValid() {
		ep.Gateway, ep.Gateway6 = netip.Addr{}, ep.Gateway
	}
	switch {
	case ep.Gateway.IsValid() && !isIPv4(ep.Gateway):
		return ep, fmt.Errorf("gateway %s is not IPv4 (an IPv6 one is Gateway6): %w", ep.Gateway, errdefs.ErrInvalidArgument)
	case ep.Gateway.IsValid() && !ep.Address.IsValid():
		return ep, fmt.Errorf("gateway %s without an IPv4 address: %w", ep.Gateway, errdefs.ErrInvalidArgument)
	case ep.Gateway6.IsValid() && isIPv4(ep.Gateway6):
		return ep, fmt.Errorf("IPv6 gateway %s is IPv4: %w", ep.Gateway6, errdefs.ErrInvalidArgument)
	case ep.Gateway6.IsValid() && !ep.Address6.IsValid():
		return ep, fmt.Errorf("IPv6 gateway %s without an IPv6 address: %w", ep.Gateway6, errdefs.ErrInvalidArgument)
	}
	if ep.MAC != nil && len(ep.MAC) != 6 {
		return ep, fmt.Errorf("MAC %s is not 6 bytes: %w", ep.MAC, errdefs.ErrInvalidArgument)
	}
	if ep.MTU < 0 {
		return ep, fmt.Errorf("MTU %d: %w", ep.MTU, errdefs.ErrInvalidArgument)
	}
	return ep, nil
}

// splitFamilies checks an IPv4 and an IPv6 address given as Address and
// Address6, at least one of them set, and moves an IPv6 Address to Address6
// when Address6 is zero.
func splitFamilies(v4, v6 netip.Prefix) (netip.Prefix, netip.Prefix, error) {
	if v6.IsValid() && isIPv4(v6.Addr()) {
		return v4, v6, fmt.Errorf("IPv6 address %s is IPv4: %w", v6, errdefs.ErrInvalidArgument)
	}
	if v4.IsValid() && !isIPv4(v4.Addr()) {
		if v6.IsValid() {
			return v4, v6, fmt.Errorf("IPv4 address %s is IPv6: %w", v4, errdefs.ErrInvalidArgument)
		}
		v4, v6 = netip.Prefix{}, v4
	}
	if !v4.IsValid() && !v6.IsValid() {
		return v4, v6, fmt.Errorf("no valid address: %w", errdefs.ErrInvalidArgument)
	}
	return v4, v6, nil
}

// isIPv4 says whether a is an IPv4 address, plain or mapped into IPv6.
func isIPv4(a netip.Addr) bool { return a.Unmap().Is4() }

// Detach removes the pair by deleting its host end; missing is not an error.
//
// It is slow: the kernel waits for RCU grace periods before it lets the
// request return (15-20 ms here). A container whose namespace goes away needs
// no Detach: once the last pin, process and socket let go of the namespace
// the kernel deletes the pair itself, after netns.Remove has returned. Detach
// is for disconnecting a namespace that lives on, and for pairs whose
// namespace is gone or held elsewhere (reconciliation).
func Detach(ctx context.Context, hostIf string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return deleteLink(hostIf, "veth")
}

// deleteLink deletes the link called name; kind only words the error.
func deleteLink(name, kind string) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("delete %s %s: netlink: %w", kind, name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("delete %s %s: look up: %w", kind, name, err)
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s %s: %w", kind, name, err)
	}
	return nil
}

// Addrs returns the IPv4 addresses, with their prefix lengths, of the
// bridge called name: none when there is no such link. A link of that
// name that is no bridge: ErrConflict.
func Addrs(ctx context.Context, name string) ([]netip.Prefix, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: netlink: %w", name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("addresses of %s: link is a %s, not a bridge: %w", name, link.Type(), errdefs.ErrConflict)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		ones, _ := a.IPNet.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// Links lists host link names that start with prefix (for reconciliation
// after a crash), sorted.
func Links(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("list links: netlink: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 3; try++ {
		links, err = h.LinkList() // links changed during the dump
	}
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var names []string
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// EnableForwarding sets net.ipv4.ip_forward=1 if it is 0 and says whether it
// changed it (the engine logs what it changed on the host).
func EnableForwarding() (changed bool, err error) {
	return enableSysctl("/proc/sys/net/ipv4/ip_forward")
}

// enableSysctl writes 1 to the sysctl file at path if it holds 0 and says
// whether it did.
func enableSysctl(path string) (changed bool, err error) {
	cur, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("enable forwarding: %w", err)
	}
	if string(bytes.TrimSpace(cur)) == "1" {
		return false, nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return false, fmt.Errorf("enable forwarding: %w", err)
	}
	return true, nil
}

// EnableForwarding6 sets net.ipv6.conf.all.forwarding=1 if it is 0 and says
// whether it changed it. The engine calls it only when an IPv6 network
// exists: with forwarding on, the host stops taking router advertisements on
// interfaces whose accept_ra is 1 (the default), which may take away a
// default route it learnt that way.
func EnableForwarding6() (changed bool, err error) {
	return enableSysctl("/proc/sys/net/ipv6/conf/all/forwarding")
}

// checkName validates a Linux interface name.
func checkName(name string) error {
	if name == "" || len(name) >= unix.IFNAMSIZ || name == "." || name == ".." ||
		strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("interface name %q: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

func mtuOr(mtu int) int {
	if mtu == 0 {
		return defaultMTU
	}
	return mtu
}

func ipNet(p netip.Prefix) *net.IPNet {
	addr := p.Addr().Unmap()
	bits := p.Bits()
	if p.Addr().Is4In6() {
		bits -= 96
	}
	return &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(bits, addr.BitLen())}
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// randomMAC returns a random unicast, locally administered MAC address.
func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("random MAC: %w", err)
	}
	mac[0] = mac[0]&^0x01 | 0x02
	return mac, nil
}
