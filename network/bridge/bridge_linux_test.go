package bridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"berth.dev/network/bridge"
	"berth.dev/network/netns"
)

// world is a fresh "host" network namespace standing in for the host, with
// a directory for the pins of the "container" namespaces the test makes.
// Everything the test creates lives in these namespaces and goes with them.
type world struct {
	dir  string
	host string
	tag  string // short random hex for link names
}

func newWorld(t testing.TB) *world {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := filepath.Join(t.TempDir(), "netns")
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	w := &world{dir: dir, host: filepath.Join(dir, "host"), tag: hex.EncodeToString(b[:])}
	if err := netns.New(w.host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netns.Remove(w.host); err != nil {
			t.Error(err)
		}
	})
	return w
}

// container makes a "container" namespace and returns its pin.
func (w *world) container(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(w.dir, name)
	if err := netns.New(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netns.Remove(path); err != nil {
			t.Error(err)
		}
	})
	return path
}

// inHost runs fn in the host namespace and fails the test on its error.
func (w *world) inHost(t testing.TB, fn func() error) {
	t.Helper()
	if err := netns.Do(w.host, fn); err != nil {
		t.Fatal(err)
	}
}

// handle opens a netlink handle in the namespace at path.
func handle(t testing.TB, path string) *netlink.Handle {
	t.Helper()
	h, err := netns.Handle(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func linkNames(t testing.TB, h *netlink.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

func sysctl(t testing.TB, ns, name string) string {
	t.Helper()
	var v []byte
	err := netns.Do(ns, func() error {
		var err error
		v, err = os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(v))
}

func TestEnsure(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	name := "br" + w.tag
	cfg := bridge.Config{Name: name, Address: netip.MustParsePrefix("10.210.0.1/24"), MTU: 1400}
	for i := 0; i < 2; i++ {
		w.inHost(t, func() error { return bridge.Ensure(ctx, cfg) })
	}

	h := handle(t, w.host)
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		t.Errorf("link is a %s, want a bridge", link.Type())
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Error("bridge is down")
	}
	if got := link.Attrs().MTU; got != 1400 {
		t.Errorf("MTU %d, want 1400", got)
	}
	if mac := link.Attrs().HardwareAddr; mac[0]&0x03 != 0x02 {
		t.Errorf("bridge MAC %s is not unicast and locally administered", mac)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.210.0.1/24" {
		t.Errorf("addresses %v, want only 10.210.0.1/24", addrs)
	}
	if v := sysctl(t, w.host, "net.ipv4.conf."+name+".route_localnet"); v != "1" {
		t.Errorf("route_localnet %s, want 1", v)
	}

	// A bridge brought down and given another MTU and a second address by
	// someone else is brought back, the other address kept.
	if err := h.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 211, 0, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	cfg.MTU = 0
	w.inHost(t, func() error { return bridge.Ensure(ctx, cfg) })
	link, err = h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 || link.Attrs().MTU != 1500 {
		t.Errorf("after Ensure: flags %v, MTU %d; want up, 1500", link.Attrs().Flags, link.Attrs().MTU)
	}
	if addrs, _ = h.AddrList(link, netlink.FAMILY_V4); len(addrs) != 2 {
		t.Errorf("addresses %v, want both", addrs)
	}

	w.inHost(t, func() error { return bridge.Delete(ctx, name) })
	if _, err := h.LinkByName(name); err == nil {
		t.Error("bridge still there after Delete")
	}
	w.inHost(t, func() error { return bridge.Delete(ctx, name) })
}

// otherLink makes a link called name (and its peer name+"p") that is no
// bridge: a veth pair (this kernel may lack the dummy driver).
func otherLink(t testing.TB, h *netlink.Handle, name string) netlink.LinkAttrs {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	veth := netlink.NewVeth(attrs)
	veth.PeerName = name + "p"
	if err := h.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	return attrs
}

func TestEnsureErrors(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	h := handle(t, w.host)
	dummy := otherLink(t, h, "dm"+w.tag)
	addr := netip.MustParsePrefix("10.210.0.1/24")
	for _, tc := range []struct {
		cfg  bridge.Config
		want error
	}{
		{bridge.Config{Name: dummy.Name, Address: addr}, errdefs.ErrConflict},
		{bridge.Config{Name: "", Address: addr}, errdefs.ErrInvalidArgument},
		{bridge.Config{Name: "a-name-too-long-for-linux", Address: addr}, errdefs.ErrInvalidArgument},
		{bridge.Config{Name: "br" + w.tag}, errdefs.ErrInvalidArgument},
	} {
		err := netns.Do(w.host, func() error { return bridge.Ensure(ctx, tc.cfg) })
		if !errors.Is(err, tc.want) {
			t.Errorf("Ensure(%+v): %v, want %v", tc.cfg, err, tc.want)
		}
	}
	if got := linkNames(t, h); !slices.Equal(got, []string{dummy.Name, dummy.Name + "p", "lo"}) {
		t.Errorf("host links %v after failed Ensures", got)
	}
}

// net1 is the bridge network most tests use.
type net1 struct {
	w      *world
	bridge string
	gw     netip.Addr
}

func newNet(t testing.TB) *net1 {
	t.Helper()
	w := newWorld(t)
	n := &net1{w: w, bridge: "br" + w.tag, gw: netip.MustParseAddr("10.210.0.1")}
	w.inHost(t, func() error {
		return bridge.Ensure(context.Background(), bridge.Config{Name: n.bridge, Address: netip.PrefixFrom(n.gw, 24)})
	})
	return n
}

func (n *net1) endpoint(ns, hostIf string, host byte) bridge.Endpoint {
	return bridge.Endpoint{
		Bridge:  n.bridge,
		HostIf:  hostIf,
		NetNS:   ns,
		IfName:  "eth0",
		Address: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 210, 0, host}), 24),
		Gateway: n.gw,
	}
}

func (n *net1) attach(t testing.TB, ep bridge.Endpoint) {
	t.Helper()
	n.w.inHost(t, func() error { return bridge.Attach(context.Background(), ep) })
}

// listen opens a TCP listener on addr inside the namespace ns; it answers
// each connection with the namespace's name.
func listen(t *testing.T, ns, addr, name string) string {
	t.Helper()
	var l net.Listener
	err := netns.Do(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, name)
			c.Close()
		}
	}()
	return l.Addr().String()
}

// dial connects from inside the namespace ns to addr and returns what the
// listener says.
func dial(ns, addr string) (string, error) {
	var got []byte
	err := netns.Do(ns, func() error {
		// The timeout only keeps a broken setup from hanging the test.
		c, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = io.ReadAll(c)
		return err
	})
	return string(got), err
}

func TestAttach(t *testing.T) {
	n := newNet(t)
	a, b := n.w.container(t, "a"), n.w.container(t, "b")
	epA := n.endpoint(a, "va"+n.w.tag, 2)
	epA.MTU = 1400
	epB := n.endpoint(b, "vb"+n.w.tag, 3)
	epB.MAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0xbe, 0xef}
	epB.MTU = 1400

	hh := handle(t, n.w.host)
	br, err := hh.LinkByName(n.bridge)
	if err != nil {
		t.Fatal(err)
	}
	brMAC := br.Attrs().HardwareAddr.String()
	n.attach(t, epA)
	n.attach(t, epB)

	for _, tc := range []struct {
		ep  bridge.Endpoint
		mac string
	}{
		{epA, "02:42:0a:d2:00:02"},
		{epB, "02:00:00:00:be:ef"},
	} {
		h := handle(t, tc.ep.NetNS)
		if got := linkNames(t, h); !slices.Equal(got, []string{"eth0", "lo"}) {
			t.Errorf("links in %s: %v, want eth0 and lo", tc.ep.NetNS, got)
		}
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if eth0.Attrs().Flags&net.FlagUp == 0 || eth0.Attrs().MTU != 1400 || eth0.Attrs().HardwareAddr.String() != tc.mac {
			t.Errorf("eth0 in %s: flags %v, MTU %d, MAC %s; want up, 1400, %s", tc.ep.NetNS,
				eth0.Attrs().Flags, eth0.Attrs().MTU, eth0.Attrs().HardwareAddr, tc.mac)
		}
		addrs, err := h.AddrList(eth0, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != tc.ep.Address.String() {
			t.Errorf("eth0 addresses %v, want %s", addrs, tc.ep.Address)
		}
		routes, err := h.RouteList(eth0, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == n.gw.String()
		}) {
			t.Errorf("no default route via %s in %v", n.gw, routes)
		}

		host, err := hh.LinkByName(tc.ep.HostIf)
		if err != nil {
			t.Fatal(err)
		}
		if host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().Flags&net.FlagUp == 0 || host.Attrs().MTU != 1400 {
			t.Errorf("host end %s: master %d, flags %v, MTU %d; want bridge %d, up, 1400", tc.ep.HostIf,
				host.Attrs().MasterIndex, host.Attrs().Flags, host.Attrs().MTU, br.Attrs().Index)
		}
		if pi, err := hh.LinkGetProtinfo(host); err != nil || !pi.Hairpin {
			t.Errorf("host end %s: hairpin mode off (%+v, %v): a container could not reach its own published port", tc.ep.HostIf, pi, err)
		}
	}
	if br, err = hh.LinkByName(n.bridge); err != nil || br.Attrs().HardwareAddr.String() != brMAC {
		t.Errorf("bridge MAC changed when ports were added: %s, want %s (err %v)", br.Attrs().HardwareAddr, brMAC, err)
	}

	// Traffic: container to container over the bridge, container to the
	// gateway, and container to an address beyond the gateway (on the host's
	// lo), which only the default route reaches.
	lo, err := hh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := hh.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(192, 0, 2, 1), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, listenNS, listenAddr, name string
	}{
		{a, b, "10.210.0.3:0", "b"},
		{b, a, "10.210.0.2:0", "a"},
		{a, n.w.host, "10.210.0.1:0", "gateway"},
		{b, n.w.host, "192.0.2.1:0", "beyond"},
	} {
		addr := listen(t, tc.listenNS, tc.listenAddr, tc.name)
		got, err := dial(tc.from, addr)
		if err != nil || got != tc.name {
			t.Errorf("dial %s from %s: %q, %v; want %q", addr, tc.from, got, err, tc.name)
		}
	}
}

// TestAttachIPv6: a v6-only endpoint's address is usable at once (no
// duplicate address detection holds it back), given as Address6 and
// Gateway6 or as Address and Gateway.
func TestAttachIPv6(t *testing.T) {
	t.Run("Address6", func(t *testing.T) { testAttachIPv6(t, true) })
	t.Run("IPv6 in Address", func(t *testing.T) { testAttachIPv6(t, false) })
}

func testAttachIPv6(t *testing.T, address6 bool) {
	w := newWorld(t)
	name := "br" + w.tag
	gw := netip.MustParseAddr("fd00:b::1")
	w.inHost(t, func() error {
		return bridge.Ensure(context.Background(), bridge.Config{Name: name, Address: netip.PrefixFrom(gw, 64)})
	})
	var ns []string
	for i, c := range []string{"a", "b"} {
		path := w.container(t, c)
		ns = append(ns, path)
		ep := bridge.Endpoint{
			Bridge: name, HostIf: "v" + c + w.tag, NetNS: path, IfName: "eth0",
			Address: netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 0xb, 15: byte(2 + i)}), 64),
			Gateway: gw,
		}
		if address6 {
			ep.Address6, ep.Gateway6, ep.Address, ep.Gateway = ep.Address, ep.Gateway, netip.Prefix{}, netip.Addr{}
		}
		want := ep.Address
		if address6 {
			want = ep.Address6
		}
		w.inHost(t, func() error { return bridge.Attach(context.Background(), ep) })
		h := handle(t, path)
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if got := eth0.Attrs().HardwareAddr.String(); got != fmt.Sprintf("02:42:00:00:00:%02x", 2+i) {
			t.Errorf("MAC %s", got)
		}
		addrs, err := h.AddrList(eth0, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
			return a.IPNet.String() == want.String() && a.Flags&unix.IFA_F_TENTATIVE == 0
		}) {
			t.Errorf("addresses %v, want %s and not tentative", addrs, want)
		}
		if v4, err := h.AddrList(eth0, netlink.FAMILY_V4); err != nil || len(v4) != 0 {
			t.Errorf("IPv4 addresses %v (%v), want none", v4, err)
		}
		routes, err := h.RouteList(eth0, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool { return r.Gw.String() == gw.String() }) {
			t.Errorf("no route via %s in %v", gw, routes)
		}
	}
	addr := listen(t, ns[1], "[fd00:b::3]:0", "b")
	if got, err := dial(ns[0], addr); err != nil || got != "b" {
		t.Errorf("dial %s: %q, %v", addr, got, err)
	}
}

func TestAttachWithoutGateway(t *testing.T) {
	n := newNet(t)
	c := n.w.container(t, "c")
	ep := n.endpoint(c, "vc"+n.w.tag, 2)
	ep.Gateway = netip.Addr{}
	n.attach(t, ep)
	h := handle(t, c)
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Gw != nil {
			t.Errorf("route %v with a gateway, want none", r)
		}
	}
	// A second network on the same container: eth1 with its own default
	// route would clash, without one it joins.
	ep2 := n.endpoint(c, "vd"+n.w.tag, 3)
	ep2.IfName = "eth1"
	n.attach(t, ep2)
	if got := linkNames(t, h); !slices.Equal(got, []string{"eth0", "eth1", "lo"}) {
		t.Errorf("links %v, want eth0, eth1, lo", got)
	}
}

// TestAttachFails: each failed Attach leaves no host link and nothing new in
// the container's namespace.
func TestAttachFails(t *testing.T) {
	n := newNet(t)
	ctx := context.Background()
	c := n.w.container(t, "c")
	taken := n.endpoint(c, "vt"+n.w.tag, 2) // eth0 with the default routes
	taken.Address6, taken.Gateway6 = netip.MustParsePrefix("fd00::2/64"), netip.MustParseAddr("fd00::1")
	n.attach(t, taken)
	// A host link that is in the way.
	hh := handle(t, n.w.host)
	dummy := otherLink(t, hh, "vx"+n.w.tag)

	eth1 := func(mod func(*bridge.Endpoint)) bridge.Endpoint {
		ep := n.endpoint(c, "vn"+n.w.tag, 3)
		ep.IfName = "eth1"
		ep.Gateway = netip.Addr{}
		mod(&ep)
		return ep
	}
	for _, tc := range []struct {
		name string
		ep   bridge.Endpoint
		want error
	}{
		{"missing netns", eth1(func(ep *bridge.Endpoint) { ep.NetNS = filepath.Join(n.w.dir, "missing") }), errdefs.ErrNotFound},
		{"netns path no namespace", eth1(func(ep *bridge.Endpoint) { ep.NetNS = n.w.dir }), nil},
		{"missing bridge", eth1(func(ep *bridge.Endpoint) { ep.Bridge = "nobr" + n.w.tag }), errdefs.ErrNotFound},
		{"name taken inside", eth1(func(ep *bridge.Endpoint) { ep.IfName = "eth0" }), errdefs.ErrAlreadyExists},
		{"host name taken", eth1(func(ep *bridge.Endpoint) { ep.HostIf = dummy.Name }), errdefs.ErrAlreadyExists},
		{"second default route", eth1(func(ep *bridge.Endpoint) { ep.Gateway = n.gw }), errdefs.ErrConflict},
		{"host name too long", eth1(func(ep *bridge.Endpoint) { ep.HostIf = "veth-name-too-long" }), errdefs.ErrInvalidArgument},
		{"no address", eth1(func(ep *bridge.Endpoint) { ep.Address = netip.Prefix{} }), errdefs.ErrInvalidArgument},
		{"gateway family", eth1(func(ep *bridge.Endpoint) { ep.Gateway = netip.MustParseAddr("fd00::1") }), errdefs.ErrInvalidArgument},
		{"IPv6 gateway without IPv6 address", eth1(func(ep *bridge.Endpoint) { ep.Gateway6 = netip.MustParseAddr("fd00::1") }), errdefs.ErrInvalidArgument},
		{"IPv6 gateway family", eth1(func(ep *bridge.Endpoint) {
			ep.Address6, ep.Gateway6 = netip.MustParsePrefix("fd00::3/64"), n.gw
		}), errdefs.ErrInvalidArgument},
		{"IPv4 Address6", eth1(func(ep *bridge.Endpoint) { ep.Address6 = netip.MustParsePrefix("10.210.0.9/24") }), errdefs.ErrInvalidArgument},
		{"IPv6 in both Address and Address6", eth1(func(ep *bridge.Endpoint) {
			ep.Address, ep.Address6 = netip.MustParsePrefix("fd00::3/64"), netip.MustParsePrefix("fd00::4/64")
		}), errdefs.ErrInvalidArgument},
		{"second IPv6 default route", eth1(func(ep *bridge.Endpoint) {
			ep.Address6, ep.Gateway6 = netip.MustParsePrefix("fd00::3/64"), netip.MustParseAddr("fd00::1")
		}), errdefs.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := netns.Do(n.w.host, func() error { return bridge.Attach(ctx, tc.ep) })
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Attach: %v, want %v", err, tc.want)
			}
			t.Log(err)
			want := []string{"br" + n.w.tag, "lo", taken.HostIf, dummy.Name, dummy.Name + "p"}
			slices.Sort(want)
			if got := linkNames(t, hh); !slices.Equal(got, want) {
				t.Errorf("host links %v, want %v", got, want)
			}
			if got := linkNames(t, handle(t, c)); !slices.Equal(got, []string{"eth0", "lo"}) {
				t.Errorf("container links %v, want eth0, lo", got)
			}
		})
	}
}

func TestDetach(t *testing.T) {
	n := newNet(t)
	ctx := context.Background()
	c := n.w.container(t, "c")
	ep := n.endpoint(c, "vc"+n.w.tag, 2)
	n.attach(t, ep)
	for i := 0; i < 2; i++ { // the second finds nothing, which is fine
		n.w.inHost(t, func() error { return bridge.Detach(ctx, ep.HostIf) })
	}
	if got := linkNames(t, handle(t, n.w.host)); !slices.Equal(got, []string{n.bridge, "lo"}) {
		t.Errorf("host links %v after Detach", got)
	}
	if got := linkNames(t, handle(t, c)); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("container links %v after Detach", got)
	}
	// The same names can be used again.
	n.attach(t, ep)
}

// TestRemoveNetNSRemovesPair: removing a container's namespace pin (with
// nothing else holding the namespace) deletes the pair without Detach; the
// kernel does it after Remove returns, so the test waits for the host end's
// RTM_DELLINK.
func TestRemoveNetNSRemovesPair(t *testing.T) {
	n := newNet(t)
	path := filepath.Join(n.w.dir, "c")
	if err := netns.New(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Remove(path) })
	ep := n.endpoint(path, "vc"+n.w.tag, 2)
	n.attach(t, ep)

	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	n.w.inHost(t, func() error { return netlink.LinkSubscribe(updates, done) })
	if err := netns.Remove(path); err != nil {
		t.Fatal(err)
	}
	for u := range updates {
		if u.Header.Type == unix.RTM_DELLINK && u.Attrs().Name == ep.HostIf {
			break
		}
	}
	if got := linkNames(t, handle(t, n.w.host)); !slices.Equal(got, []string{n.bridge, "lo"}) {
		t.Errorf("host links %v after the namespace went", got)
	}
}

func TestLinks(t *testing.T) {
	n := newNet(t)
	ctx := context.Background()
	prefix := "bv" + n.w.tag
	var want []string
	for i, name := range []string{"c", "a", "b"} {
		ns := n.w.container(t, name)
		ep := n.endpoint(ns, prefix+name, byte(2+i))
		n.attach(t, ep)
		want = append(want, ep.HostIf)
	}
	slices.Sort(want)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{prefix, want},
		{prefix + "b", want[1:2]},
		{"br" + n.w.tag, []string{n.bridge}},
		{"zz", nil},
	} {
		var got []string
		n.w.inHost(t, func() error {
			var err error
			got, err = bridge.Links(ctx, tc.prefix)
			return err
		})
		if !slices.Equal(got, tc.want) {
			t.Errorf("Links(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
	}
}

func TestMACFor(t *testing.T) {
	for _, tc := range []struct{ ip, mac string }{
		{"172.17.0.2", "02:42:ac:11:00:02"},
		{"10.0.0.1", "02:42:0a:00:00:01"},
		{"255.255.255.254", "02:42:ff:ff:ff:fe"},
		{"::ffff:172.18.0.5", "02:42:ac:12:00:05"},
		{"fd00::a:b0c:d", "02:42:0b:0c:00:0d"},
	} {
		if got := bridge.MACFor(netip.MustParseAddr(tc.ip)).String(); got != tc.mac {
			t.Errorf("MACFor(%s) = %s, want %s", tc.ip, got, tc.mac)
		}
	}
}

func TestEnableForwarding(t *testing.T) {
	w := newWorld(t)
	// A new namespace may inherit the host's value: start from 0.
	w.inHost(t, func() error { return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644) })
	for _, want := range []bool{true, false} {
		var changed bool
		w.inHost(t, func() error {
			var err error
			changed, err = bridge.EnableForwarding()
			return err
		})
		if changed != want {
			t.Errorf("EnableForwarding changed %v, want %v", changed, want)
		}
	}
	if v := sysctl(t, w.host, "net.ipv4.ip_forward"); v != "1" {
		t.Errorf("ip_forward %s, want 1", v)
	}
}

func BenchmarkAttachDetach(b *testing.B) {
	n := newNet(b)
	c := n.w.container(b, "c")
	ep := n.endpoint(c, "vb"+n.w.tag, 2)
	ctx := context.Background()
	b.ResetTimer()
	err := netns.Do(n.w.host, func() error {
		for i := 0; i < b.N; i++ {
			if err := bridge.Attach(ctx, ep); err != nil {
				return err
			}
			if err := bridge.Detach(ctx, ep.HostIf); err != nil {
				return fmt.Errorf("detach: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAttach times Attach alone: the Detach after each (about 20 ms of
// kernel work, most of it waiting for RCU) is left out of the figure.
func BenchmarkAttach(b *testing.B) {
	n := newNet(b)
	c := n.w.container(b, "c")
	ep := n.endpoint(c, "vb"+n.w.tag, 2)
	ctx := context.Background()
	b.ResetTimer()
	err := netns.Do(n.w.host, func() error {
		for i := 0; i < b.N; i++ {
			if err := bridge.Attach(ctx, ep); err != nil {
				return err
			}
			b.StopTimer()
			if err := bridge.Detach(ctx, ep.HostIf); err != nil {
				return fmt.Errorf("detach: %w", err)
			}
			b.StartTimer()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func TestEnsureDualStack(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	name := "br" + w.tag
	cfg := bridge.Config{Name: name, Address: netip.MustParsePrefix("10.210.0.1/24"), Address6: netip.MustParsePrefix("fd00:d::1/64")}
	for i := 0; i < 2; i++ {
		w.inHost(t, func() error { return bridge.Ensure(ctx, cfg) })
	}
	h := handle(t, w.host)
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		family int
		want   string
	}{{netlink.FAMILY_V4, "10.210.0.1/24"}, {netlink.FAMILY_V6, "fd00:d::1/64"}} {
		addrs, err := h.AddrList(link, tc.family)
		if err != nil {
			t.Fatal(err)
		}
		// A bridge without ports has no carrier: an address under DAD
		// would stay tentative until one joins.
		n := 0
		for _, a := range addrs {
			if a.IPNet.String() == tc.want && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				n++
			}
		}
		if n != 1 {
			t.Errorf("addresses %v, want %s once and not tentative", addrs, tc.want)
		}
	}

	for _, bad := range []bridge.Config{
		{Name: name, Address6: netip.MustParsePrefix("10.210.0.1/24")},
		{Name: name, Address: netip.MustParsePrefix("fd00:e::1/64"), Address6: netip.MustParsePrefix("fd00:d::1/64")},
	} {
		if err := netns.Do(w.host, func() error { return bridge.Ensure(ctx, bad) }); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Ensure(%+v): %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// TestAttachDualStack: an endpoint with both an IPv4 and an IPv6 address
// and both default routes, and traffic of both families between two
// containers, to the gateway and beyond it.
func TestAttachDualStack(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	name := "br" + w.tag
	gw4, gw6 := netip.MustParseAddr("10.210.0.1"), netip.MustParseAddr("fd00:d::1")
	w.inHost(t, func() error {
		return bridge.Ensure(ctx, bridge.Config{Name: name, Address: netip.PrefixFrom(gw4, 24), Address6: netip.PrefixFrom(gw6, 64)})
	})
	var ns []string
	for i, c := range []string{"a", "b"} {
		path := w.container(t, c)
		ns = append(ns, path)
		ep := bridge.Endpoint{
			Bridge: name, HostIf: "v" + c + w.tag, NetNS: path, IfName: "eth0",
			Address:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 210, 0, byte(2 + i)}), 24),
			Gateway:  gw4,
			Address6: netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 0xd, 15: byte(2 + i)}), 64),
			Gateway6: gw6,
		}
		w.inHost(t, func() error { return bridge.Attach(ctx, ep) })
		h := handle(t, path)
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := eth0.Attrs().HardwareAddr.String(), bridge.MACFor(ep.Address.Addr()).String(); got != want {
			t.Errorf("MAC %s, want %s (of the IPv4 address)", got, want)
		}
		for _, fam := range []struct {
			family int
			addr   netip.Prefix
			gw     netip.Addr
		}{{netlink.FAMILY_V4, ep.Address, gw4}, {netlink.FAMILY_V6, ep.Address6, gw6}} {
			addrs, err := h.AddrList(eth0, fam.family)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
				return a.IPNet.String() == fam.addr.String() && a.Flags&unix.IFA_F_TENTATIVE == 0
			}) {
				t.Errorf("addresses %v, want %s and not tentative", addrs, fam.addr)
			}
			routes, err := h.RouteList(eth0, fam.family)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
				return (r.Dst == nil || r.Dst.IP.IsUnspecified() && r.Dst.Mask[0] == 0) && r.Gw.String() == fam.gw.String()
			}) {
				t.Errorf("no default route via %s in %v", fam.gw, routes)
			}
		}
	}

	// Addresses beyond the gateway, on the host's lo: only the default
	// routes reach them.
	hh := handle(t, w.host)
	lo, err := hh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.1/32", "2001:db8::1/128"} {
		if err := hh.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(t, a), Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		from, listenNS, listenAddr, name string
	}{
		{ns[0], ns[1], "10.210.0.3:0", "b4"},
		{ns[0], ns[1], "[fd00:d::3]:0", "b6"},
		{ns[1], ns[0], "[fd00:d::2]:0", "a6"},
		{ns[0], w.host, "[fd00:d::1]:0", "gateway6"},
		{ns[1], w.host, "10.210.0.1:0", "gateway4"},
		{ns[1], w.host, "[2001:db8::1]:0", "beyond6"},
		{ns[0], w.host, "192.0.2.1:0", "beyond4"},
	} {
		addr := listen(t, tc.listenNS, tc.listenAddr, tc.name)
		got, err := dial(tc.from, addr)
		if err != nil || got != tc.name {
			t.Errorf("dial %s from %s: %q, %v; want %q", addr, tc.from, got, err, tc.name)
		}
	}
}

func ipNet(t testing.TB, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnableForwarding6(t *testing.T) {
	w := newWorld(t)
	const path = "/proc/sys/net/ipv6/conf/all/forwarding"
	w.inHost(t, func() error { return os.WriteFile(path, []byte("0"), 0o644) })
	for _, want := range []bool{true, false} {
		var changed bool
		w.inHost(t, func() error {
			var err error
			changed, err = bridge.EnableForwarding6()
			return err
		})
		if changed != want {
			t.Errorf("EnableForwarding6 changed %v, want %v", changed, want)
		}
	}
	if v := sysctl(t, w.host, "net.ipv6.conf.all.forwarding"); v != "1" {
		t.Errorf("net.ipv6.conf.all.forwarding %s, want 1", v)
	}
}
