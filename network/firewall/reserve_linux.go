package firewall

import (
	"errors"
	"fmt"
	"net/netip"

	"berth.dev/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Reservation holds a host port: a socket bound to it, so that neither a
// second Reserve nor another program can bind it while the Reservation is
// open. The socket never accepts traffic for the container: published ports
// are DNATed before local delivery.
type Reservation struct {
	fd    int
	proto string
	addr  netip.AddrPort
}

// Reserve binds hostIP:port for proto ("tcp", "udp" or "sctp") so nobody else
// can take it. A zero hostIP means 0.0.0.0; an IPv6 hostIP is bound as
// IPv6 only. Port 0 lets the kernel pick a free port, which Port reports.
//
// An address and port already in use give an error wrapping
// errdefs.ErrConflict worded as docker's: "Bind for 0.0.0.0:8080 failed:
// port is already allocated". An address that is not local gives
// errdefs.ErrInvalidArgument.
//
// TCP and SCTP sockets are bound with SO_REUSEADDR, so that connections of
// an earlier program left in TIME_WAIT do not block the port, and put in the
// listening state with the smallest backlog, because Linux lets two
// SO_REUSEADDR sockets bind the same port as long as neither listens: a
// listening socket is what makes every later bind of the port fail. UDP
// sockets are bound without SO_REUSEADDR, which makes any later bind fail.
// Either socket drops every packet that reaches it.
func Reserve(proto string, hostIP netip.Addr, port uint16) (*Reservation, error) {
	if !hostIP.IsValid() {
		hostIP = netip.IPv4Unspecified()
	}
	hostIP = hostIP.Unmap()
	addr := netip.AddrPortFrom(hostIP, port)
	var typ, ipproto int
	switch proto {
	case "tcp":
		typ, ipproto = unix.SOCK_STREAM, unix.IPPROTO_TCP
	case "udp":
		typ, ipproto = unix.SOCK_DGRAM, unix.IPPROTO_UDP
	case "sctp":
		typ, ipproto = unix.SOCK_STREAM, unix.IPPROTO_SCTP
	default:
		return nil, fmt.Errorf("reserve %s/%s: unknown protocol: %w", addr, proto, errdefs.ErrInvalidArgument)
	}
	family := unix.AF_INET
	if hostIP.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, ipproto)
	if err != nil {
		return nil, fmt.Errorf("reserve %s/%s: socket: %w", addr, proto, err)
	}
	r := &Reservation{fd: fd, proto: proto, addr: addr}
	if err := r.bind(family, typ); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return r, nil
}

func (r *Reservation) bind(family, typ int) error {
	stream := typ == unix.SOCK_STREAM
	if stream {
		if err := unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("reserve %s/%s: SO_REUSEADDR: %w", r.addr, r.proto, err)
		}
	}
	// The socket only holds the port: a filter that drops every packet keeps
	// connections and datagrams that were not DNATed (the ruleset is not
	// applied yet) from queueing on it.
	dropAll := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &dropAll[0]}); err != nil {
		return fmt.Errorf("reserve %s/%s: SO_ATTACH_FILTER: %w", r.addr, r.proto, err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(r.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fmt.Errorf("reserve %s/%s: IPV6_V6ONLY: %w", r.addr, r.proto, err)
		}
		sa = &unix.SockaddrInet6{Port: int(r.addr.Port()), Addr: r.addr.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(r.addr.Port()), Addr: r.addr.Addr().As4()}
	}
	err := unix.Bind(r.fd, sa)
	if err == nil && stream {
		err = unix.Listen(r.fd, 0)
	}
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return allocatedError{r.addr}
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return fmt.Errorf("Bind for %s failed: %w: %w", r.addr, err, errdefs.ErrInvalidArgument)
	case err != nil:
		return fmt.Errorf("Bind for %s failed: %w", r.addr, err)
	}
	got, err := unix.Getsockname(r.fd)
	if err != nil {
		return fmt.Errorf("reserve %s/%s: getsockname: %w", r.addr, r.proto, err)
	}
	switch sa := got.(type) {
	case *unix.SockaddrInet4:
		r.addr = netip.AddrPortFrom(r.addr.Addr(), uint16(sa.Port))
	case *unix.SockaddrInet6:
		r.addr = netip.AddrPortFrom(r.addr.Addr(), uint16(sa.Port))
	}
	return nil
}

// allocatedError is docker's wording for a host port in use, in the
// conflict category.
type allocatedError struct{ addr netip.AddrPort }

func (e allocatedError) Error() string {
	return fmt.Sprintf("Bind for %s failed: port is already allocated", e.addr)
}

func (e allocatedError) Unwrap() error { return errdefs.ErrConflict }

// Port returns the reserved port: the one asked for, or the one the kernel
// picked for port 0.
func (r *Reservation) Port() uint16 { return r.addr.Port() }

// Close releases the port. Closing twice is an error.
func (r *Reservation) Close() error {
	if r.fd < 0 {
		return fmt.Errorf("reservation %s/%s: already closed: %w", r.addr, r.proto, errdefs.ErrFailedPrecondition)
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return fmt.Errorf("release %s/%s: %w", r.addr, r.proto, err)
	}
	return nil
}
