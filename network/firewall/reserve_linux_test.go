package firewall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"golang.org/x/sys/unix"
)

// reserve calls Reserve in the namespace and closes what it got at cleanup.
func (n *testNS) reserve(t *testing.T, proto, addr string, port uint16) (*Reservation, error) {
	t.Helper()
	var ip netip.Addr
	if addr != "" {
		ip = netip.MustParseAddr(addr)
	}
	var r *Reservation
	var err error
	n.do(t, func() { r, err = Reserve(proto, ip, port) })
	if err == nil {
		t.Cleanup(func() { r.Close() })
	}
	return r, err
}

func TestReserveConflicts(t *testing.T) {
	testutil.RequiresRoot(t)
	type bind struct{ proto, addr string }
	for _, tc := range []struct {
		name          string
		first, second bind
		conflict      bool
		wording       string
	}{
		{"tcp twice", bind{"tcp", ""}, bind{"tcp", ""}, true, "Bind for 0.0.0.0:8080 failed: port is already allocated"},
		{"udp twice", bind{"udp", "0.0.0.0"}, bind{"udp", ""}, true, "Bind for 0.0.0.0:8080 failed: port is already allocated"},
		{"all addresses, then one", bind{"tcp", ""}, bind{"tcp", "127.0.0.1"}, true, "Bind for 127.0.0.1:8080 failed: port is already allocated"},
		{"one address, then all", bind{"udp", "127.0.0.1"}, bind{"udp", ""}, true, ""},
		{"tcp and udp", bind{"tcp", ""}, bind{"udp", ""}, false, ""},
		{"two addresses", bind{"tcp", "127.0.0.1"}, bind{"tcp", "127.0.0.2"}, false, ""},
		{"IPv6 and IPv4", bind{"tcp", "::"}, bind{"tcp", ""}, false, ""},
		// A port published on both families holds both at once.
		{"IPv4 and IPv6", bind{"tcp", ""}, bind{"tcp", "::"}, false, ""},
		{"IPv4 and IPv6, udp", bind{"udp", "0.0.0.0"}, bind{"udp", "::"}, false, ""},
		{"IPv6 and IPv4, udp", bind{"udp", "::"}, bind{"udp", ""}, false, ""},
		{"IPv6 all addresses, then one", bind{"tcp", "::"}, bind{"tcp", "::1"}, true, "Bind for [::1]:8080 failed: port is already allocated"},
		{"IPv6 twice", bind{"tcp", "::"}, bind{"tcp", "::"}, true, "Bind for [::]:8080 failed: port is already allocated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNS(t)
			if _, err := n.reserve(t, tc.first.proto, tc.first.addr, 8080); err != nil {
				t.Fatal(err)
			}
			_, err := n.reserve(t, tc.second.proto, tc.second.addr, 8080)
			switch {
			case !tc.conflict && err != nil:
				t.Errorf("second Reserve: %v, want no conflict", err)
			case tc.conflict && !errors.Is(err, errdefs.ErrConflict):
				t.Errorf("second Reserve: %v, want ErrConflict", err)
			case tc.wording != "" && err.Error() != tc.wording:
				t.Errorf("second Reserve: %q, want %q", err, tc.wording)
			}
		})
	}
}

// Another program that binds the port, before or after Reserve, conflicts
// with it; Go's listeners set SO_REUSEADDR on TCP, as most servers do.
func TestReserveConflictsWithOtherPrograms(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			n := newTestNS(t)
			listen := func(addr string) error {
				var err error
				n.do(t, func() {
					if proto == "tcp" {
						var l net.Listener
						if l, err = net.Listen("tcp4", addr); err == nil {
							l.Close()
						}
					} else {
						var c net.PacketConn
						if c, err = net.ListenPacket("udp4", addr); err == nil {
							c.Close()
						}
					}
				})
				return err
			}
			r, err := n.reserve(t, proto, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.Port() == 0 {
				t.Fatal("Reserve of port 0: Port() = 0, want the port the kernel picked")
			}
			addr := fmt.Sprintf("127.0.0.1:%d", r.Port())
			if err := listen(addr); !errors.Is(err, unix.EADDRINUSE) {
				t.Errorf("listen on the reserved %s: %v, want address in use", addr, err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := listen(addr); err != nil {
				t.Errorf("listen on %s after Close: %v", addr, err)
			}
			if err := r.Close(); !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("second Close: %v, want ErrFailedPrecondition", err)
			}

			// A program holding the port first.
			var l interface{ Close() error }
			n.do(t, func() {
				if proto == "tcp" {
					l, err = net.Listen("tcp4", "0.0.0.0:8081")
				} else {
					l, err = net.ListenPacket("udp4", "0.0.0.0:8081")
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, err := n.reserve(t, proto, "", 8081); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("Reserve of a port a program listens on: %v, want ErrConflict", err)
			}
		})
	}
}

// tcpStates counts the sockets of the namespace's /proc/thread-self/net/tcp
// on port in state (hex, as the kernel writes it: 06 is TIME_WAIT).
func (n *testNS) tcpStates(t *testing.T, port uint16, state string) int {
	t.Helper()
	var b []byte
	n.do(t, func() {
		var err error
		// /proc/self/net would be the main thread's namespace.
		if b, err = os.ReadFile("/proc/thread-self/net/tcp"); err != nil {
			t.Fatal(err)
		}
	})
	count := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) && f[3] == state {
			count++
		}
	}
	return count
}

// A connection of an earlier server left in TIME_WAIT does not keep the
// port from being reserved, and the reservation still conflicts.
func TestReserveAfterTimeWait(t *testing.T) {
	testutil.RequiresRoot(t)
	n := newTestNS(t)
	var l net.Listener
	var c net.Conn
	var err error
	n.do(t, func() {
		if l, err = net.Listen("tcp4", "127.0.0.1:8082"); err == nil {
			c, err = net.Dial("tcp4", "127.0.0.1:8082")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The server closes first: its side of the connection waits.
	s.Close()
	c.Read(make([]byte, 1))
	c.Close()
	l.Close()
	if got := n.tcpStates(t, 8082, "06"); got != 1 {
		t.Fatalf("%d connections in TIME_WAIT on the port, want 1", got)
	}
	if _, err := n.reserve(t, "tcp", "", 8082); err != nil {
		t.Fatalf("Reserve with a connection in TIME_WAIT: %v", err)
	}
	if _, err := n.reserve(t, "tcp", "", 8082); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second Reserve: %v, want ErrConflict", err)
	}
}

func TestReserveRefuses(t *testing.T) {
	testutil.RequiresRoot(t)
	n := newTestNS(t)
	if _, err := n.reserve(t, "tcp", "192.0.2.77", 8080); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Reserve of an address not on the host: %v, want ErrInvalidArgument", err)
	}
	if _, err := n.reserve(t, "icmp", "", 8080); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Reserve for icmp: %v, want ErrInvalidArgument", err)
	}
}

func TestReserveSCTP(t *testing.T) {
	testutil.RequiresRoot(t)
	n := newTestNS(t)
	_, err := n.reserve(t, "sctp", "", 8080)
	if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ESOCKTNOSUPPORT) {
		t.Skipf("no SCTP in this kernel: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.reserve(t, "sctp", "", 8080); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second Reserve: %v, want ErrConflict", err)
	}
}

// The reserved port takes no connection itself: without the DNAT of a
// published port, a connection gets no answer instead of waiting in a
// backlog nobody accepts from.
func TestReservationTakesNoTraffic(t *testing.T) {
	testutil.RequiresRoot(t)
	n := newTestNS(t)
	r, err := n.reserve(t, "tcp", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var err2 error
	n.do(t, func() {
		d := net.Dialer{Timeout: 500 * time.Millisecond}
		var c net.Conn
		if c, err2 = d.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", r.Port())); err2 == nil {
			c.Close()
		}
	})
	var ne net.Error
	if !errors.As(err2, &ne) || !ne.Timeout() {
		t.Errorf("connect to the reserved port: %v, want no answer", err2)
	}
}
