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
	Name    string       // link name, e.g. "berth0" or "br-3f2a1c9d8e7b"
	Address netip.Prefix // gateway address with the subnet's length, e.g. 172.18.0.1/16
	MTU     int          // 0: 1500
}

// Ensure creates the bridge if it is missing, gives it Address (removing other
// v4 addresses it has is NOT wanted: just add if missing), sets MTU and brings
// it up. Idempotent. It also sets net.ipv4.conf.<name>.route_localnet=1 (so
// 127.0.0.1 DNAT to containers works) by writing /proc/sys (in the caller's
// namespace: the file is per-netns).
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
	if !cfg.Address.IsValid() {
		return fmt.Errorf("ensure bridge %s: invalid address %v: %w", cfg.Name, cfg.Address, errdefs.ErrInvalidArgument)
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
	if err := ensureAddr(h, link, cfg.Address); err != nil {
		return fmt.Errorf("ensure bridge %s: %w", cfg.Name, err)
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
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(addr)}); err != nil && !errors.Is(err, unix.EEXIST) {
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

// Endpoint describes a container's interface on a bridge.
type Endpoint struct {
	Bridge  string           // host bridge to plug into
	HostIf  string           // host end's name (engine picks e.g. "bv1a2b3c4d5e"), <= 15 bytes
	NetNS   string           // path of the pinned netns (netns.New) of the container
	IfName  string           // name inside, "eth0", "eth1"...
	Address netip.Prefix     // container address with the subnet length
	Gateway netip.Addr       // zero: no default route (second networks, internal networks keep it)
	MAC     net.HardwareAddr // nil: MACFor(Address.Addr())
	MTU     int              // 0: 1500
}

// Attach makes a veth pair, plugs the host end into the bridge and brings it
// up, moves the peer into the namespace, renames it IfName, sets MTU, MAC and
// address, brings it up and adds the default route via Gateway when set. On
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
	if err := ep.check(); err != nil {
		return fmt.Errorf("attach %s: %w", ep.HostIf, err)
	}
	mac := ep.MAC
	if mac == nil {
		mac = MACFor(ep.Address.Addr())
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

// configurePeer gives the peer, already in the namespace, its address, brings
// it up and adds the default route.
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
	addr := &netlink.Addr{IPNet: ipNet(ep.Address)}
	if !ep.Address.Addr().Unmap().Is4() {
		// No duplicate address detection: the address is ours by
		// allocation, and DAD would keep it unusable for a second or two.
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(peer, addr); err != nil {
		return fmt.Errorf("add address %s: %w", ep.Address, err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	if ep.Gateway.IsValid() {
		route := &netlink.Route{
			LinkIndex: peer.Attrs().Index,
			Gw:        net.IP(ep.Gateway.Unmap().AsSlice()),
		}
		if err := h.RouteAdd(route); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("a default route exists: %w: %w", err, errdefs.ErrConflict)
			}
			return fmt.Errorf("add default route via %s: %w", ep.Gateway, err)
		}
	}
	return nil
}

// check validates what Attach is given before anything is made.
func (ep Endpoint) check() error {
	for _, n := range []string{ep.Bridge, ep.HostIf, ep.IfName} {
		if err := checkName(n); err != nil {
			return err
		}
	}
	if ep.NetNS == "" {
		return fmt.Errorf("no netns path: %w", errdefs.ErrInvalidArgument)
	}
	if !ep.Address.IsValid() {
		return fmt.Errorf("invalid address %v: %w", ep.Address, errdefs.ErrInvalidArgument)
	}
	if ep.Gateway.IsValid() && ep.Gateway.Unmap().Is4() != ep.Address.Addr().Unmap().Is4() {
		return fmt.Errorf("gateway %s and address %s differ in family: %w", ep.Gateway, ep.Address, errdefs.ErrInvalidArgument)
	}
	if ep.MAC != nil && len(ep.MAC) != 6 {
		return fmt.Errorf("MAC %s is not 6 bytes: %w", ep.MAC, errdefs.ErrInvalidArgument)
	}
	if ep.MTU < 0 {
		return fmt.Errorf("MTU %d: %w", ep.MTU, errdefs.ErrInvalidArgument)
	}
	return nil
}

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
	const path = "/proc/sys/net/ipv4/ip_forward"
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
