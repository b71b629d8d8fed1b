package firewall

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNS is a network namespace made for one test, with a netlink handle in
// it. The test's cleanup closes both, which frees the namespace once no
// socket of the test lives in it.
type testNS struct {
	fd netns.NsHandle
	nl *netlink.Handle
}

func newTestNS(t testing.TB) *testNS {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := netns.New()
	restoreErr := netns.Set(orig)
	orig.Close()
	if restoreErr != nil {
		// The thread stays locked: it ends with this goroutine.
		t.Fatalf("back to the test's netns: %v", restoreErr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	n := &testNS{fd: ns, nl: nl}
	t.Cleanup(func() {
		nl.Close()
		ns.Close()
	})
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return n
}

// do runs fn on a thread that is in the namespace; sockets fn makes stay in it.
func (n *testNS) do(t testing.TB, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(n.fd); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	fn()
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the test's netns: %v", err) // the thread stays locked and ends
	}
	runtime.UnlockOSThread()
}

// sysctl writes a /proc/sys/net value as seen from the namespace (the
// net sysctls are those of the opening thread's namespace).
func (n *testNS) sysctl(t *testing.T, path, value string) {
	t.Helper()
	n.do(t, func() {
		if err := os.WriteFile("/proc/sys/net/"+path, []byte(value), 0o644); err != nil {
			t.Error(err)
		}
	})
}

func (n *testNS) readSysctl(t *testing.T, path string) string {
	t.Helper()
	var b []byte
	n.do(t, func() {
		var err error
		if b, err = os.ReadFile("/proc/sys/net/" + path); err != nil {
			t.Error(err)
		}
	})
	return string(b)
}

func linkName(t *testing.T, prefix string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// addAddr adds p to link; an IPv6 address without duplicate address
// detection, so that it is usable at once.
func addAddr(t *testing.T, nl *netlink.Handle, link netlink.Link, p netip.Prefix) {
	t.Helper()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := nl.AddrAdd(link, a); err != nil {
		t.Fatalf("address %s on %s: %v", p, link.Attrs().Name, err)
	}
}

// bridge makes a bridge with address gw (the gateway, e.g. 10.88.1.1/24).
func (n *testNS) bridge(t *testing.T, name string, gw netip.Prefix) {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := n.nl.LinkAdd(br); err != nil {
		t.Fatalf("bridge %s: %v", name, err)
	}
	addAddr(t, n.nl, br, gw)
	if err := n.nl.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
}

// connect makes a veth pair: hostName in n (on bridge master, if given) and
// eth0 in c with address addr and a default route through gw.
func (n *testNS) connect(t *testing.T, c *testNS, hostName, master string, hostAddr, addr netip.Prefix, gw netip.Addr) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostName}, PeerName: "eth0", PeerNamespace: netlink.NsFd(c.fd)}
	if err := n.nl.LinkAdd(v); err != nil {
		t.Fatalf("veth %s: %v", hostName, err)
	}
	host, err := n.nl.LinkByName(hostName)
	if err != nil {
		t.Fatal(err)
	}
	if master != "" {
		br, err := n.nl.LinkByName(master)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.nl.LinkSetMaster(host, br); err != nil {
			t.Fatal(err)
		}
	}
	if master != "" {
		// A container reaching its own published port through a host
		// address: with br_netfilter the DNATed frame leaves by the port it
		// came in, which a bridge does only in hairpin mode.
		if err := n.nl.LinkSetHairpin(host, true); err != nil {
			t.Fatal(err)
		}
	}
	if hostAddr.IsValid() {
		addAddr(t, n.nl, host, hostAddr)
	}
	if err := n.nl.LinkSetUp(host); err != nil {
		t.Fatal(err)
	}
	eth0, err := c.nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addAddr(t, c.nl, eth0, addr)
	if err := c.nl.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}
	if err := c.nl.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		t.Fatalf("default route via %s: %v", gw, err)
	}
	n.waitForwarding(t, hostName, master != "")
}

// waitForwarding waits until the kernel has seen the carrier of link name
// come up and, on a bridge port, has put the port in the forwarding state.
// Both happen after LinkSetUp returns, in the kernel's link-watch work,
// which runs late (by seconds) while other namespaces are being set up or
// torn down: until then the bridge drops every frame of the port, and a
// first neighbour discovery can fail.
func (n *testNS) waitForwarding(t *testing.T, name string, bridgePort bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		up, forwarding, err := n.linkState(t, name)
		if err != nil {
			t.Fatalf("state of %s: %v", name, err)
		}
		if up && (forwarding || !bridgePort) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: carrier up %v, forwarding %v after 20 s", name, up, forwarding)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// brStateForwarding is BR_STATE_FORWARDING of linux/if_bridge.h.
const brStateForwarding = 3

// linkState reports whether link name's operational state is up and, if it
// is a bridge port, whether the port is forwarding (from an AF_BRIDGE link
// dump, which carries the port state the link's own attributes lack).
func (n *testNS) linkState(t *testing.T, name string) (up, forwarding bool, err error) {
	t.Helper()
	link, err := n.nl.LinkByName(name)
	if err != nil {
		return false, false, err
	}
	up = link.Attrs().OperState == netlink.OperUp
	var msgs [][]byte
	n.do(t, func() {
		// A request without sockets opens one in the calling thread's
		// namespace: this one's.
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfInfomsg(unix.AF_BRIDGE))
		msgs, err = req.Execute(unix.NETLINK_ROUTE, 0)
	})
	if err != nil {
		return up, false, err
	}
	for _, m := range msgs {
		info := nl.DeserializeIfInfomsg(m)
		if int(info.Index) != link.Attrs().Index {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[info.Len():])
		if err != nil {
			return up, false, err
		}
		for _, a := range attrs {
			if a.Attr.Type&^unix.NLA_F_NESTED != unix.IFLA_PROTINFO {
				continue
			}
			port, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				return up, false, err
			}
			for _, p := range port {
				if p.Attr.Type == nl.IFLA_BRPORT_STATE && len(p.Value) > 0 {
					forwarding = p.Value[0] == brStateForwarding
				}
			}
		}
	}
	return up, forwarding, nil
}

// serve listens on TCP port of every IPv4 address in the namespace and
// answers every connection with the peer address it sees, one line.
func (n *testNS) serve(t *testing.T, port string) { n.serveOn(t, "tcp4", "0.0.0.0:"+port) }

// serve6 is serve for every IPv6 address (an IPv6-only socket).
func (n *testNS) serve6(t *testing.T, port string) { n.serveOn(t, "tcp6", "[::]:"+port) }

func (n *testNS) serveOn(t *testing.T, network, addr string) {
	t.Helper()
	var l net.Listener
	n.do(t, func() {
		var err error
		if l, err = net.Listen(network, addr); err != nil {
			t.Fatal(err)
		}
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(c.RemoteAddr().(*net.TCPAddr).IP.String() + "\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
}

// dial connects from the namespace and returns the source address the
// server saw.
func (n *testNS) dial(t *testing.T, addr string, timeout time.Duration) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	n.do(t, func() {
		d := net.Dialer{Timeout: timeout}
		c, err = d.Dial("tcp", addr)
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return line[:len(line)-1], nil
}

// reaches asserts that a connection from n to addr gets through and that
// the server sees it coming from wantSrc.
func (n *testNS) reaches(t *testing.T, addr, wantSrc string) {
	t.Helper()
	src, err := n.dial(t, addr, 10*time.Second)
	if err != nil {
		t.Errorf("connect to %s: %v", addr, err)
		return
	}
	if src != wantSrc {
		t.Errorf("connect to %s: server saw source %s, want %s", addr, src, wantSrc)
	}
}

// blocked asserts that a connection from n to addr gets no answer at all:
// the SYN is dropped (not refused, which would mean it got through).
func (n *testNS) blocked(t *testing.T, addr string) {
	t.Helper()
	src, err := n.dial(t, addr, 500*time.Millisecond)
	var ne net.Error
	switch {
	case err == nil:
		t.Errorf("connect to %s got through (server saw %s), want it dropped", addr, src)
	case !errors.As(err, &ne) || !ne.Timeout():
		t.Errorf("connect to %s: %v, want no answer (dropped)", addr, err)
	}
}

// serveUDP answers every datagram on UDP port of every IPv4 address with
// the source address it sees.
func (n *testNS) serveUDP(t *testing.T, port string) { n.serveUDPOn(t, "udp4", "0.0.0.0:"+port) }

// serveUDP6 is serveUDP for every IPv6 address.
func (n *testNS) serveUDP6(t *testing.T, port string) { n.serveUDPOn(t, "udp6", "[::]:"+port) }

func (n *testNS) serveUDPOn(t *testing.T, network, addr string) {
	t.Helper()
	var c net.PacketConn
	n.do(t, func() {
		var err error
		if c, err = net.ListenPacket(network, addr); err != nil {
			t.Fatal(err)
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo([]byte(from.(*net.UDPAddr).IP.String()), from)
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
}

// exchangeUDP sends a datagram from the namespace to addr and returns the
// answer: the source address the server saw.
func (n *testNS) exchangeUDP(t *testing.T, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	n.do(t, func() { c, err = net.Dial("udp", addr) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("?")); err != nil {
		return "", err
	}
	buf := make([]byte, 64)
	k, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}
