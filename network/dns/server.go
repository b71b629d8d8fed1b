// Package dns is berth's embedded DNS server, Docker's 127.0.0.11: every
// container on a berth network has "nameserver 127.0.0.11" in its
// resolv.conf, and berthd listens on that address inside the container's
// network namespace. The names of containers on the container's networks are
// answered from the engine's records (Lookup, ReverseLookup); other names are
// forwarded to the host's resolvers. The sockets are made inside the
// container's namespace but served from berthd's own goroutines in the host
// namespace, so forwarding reaches resolvers the container cannot (even
// 127.0.0.53, systemd-resolved's stub).
package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"berth.dev/internal/errdefs"
	"berth.dev/network/netns"
)

// Address is where the server answers inside each container's namespace.
const Address = "127.0.0.11:53"

// forwardTimeout bounds one exchange with one upstream resolver.
const forwardTimeout = 2 * time.Second

// ttl is the time to live of the engine's answers, Docker's.
const ttl = 600

// Lookup answers a name asked by a container (the ID given to Serve). name is
// in lower case and without the trailing dot. ours reports whether the engine
// owns the name: true, answer with addrs (the name does not exist when addrs
// is empty; it has no records of the asked type when none is of its family);
// false, the query is forwarded (names with a dot) or answered NXDOMAIN
// (single labels are never sent upstream).
type Lookup func(container, name string) (addrs []netip.Addr, ours bool)

// ReverseLookup answers a PTR query of a container for addr with the name
// (without trailing dot) that owns it; ours false: the query is forwarded.
type ReverseLookup func(container string, addr netip.Addr) (name string, ours bool)

// Server serves the embedded DNS of any number of containers. Its methods
// are safe for concurrent use. Each served container costs two sockets and
// two serving goroutines (UDP and TCP); each query in flight costs one more.
type Server struct {
	lookup    Lookup
	reverse   ReverseLookup
	upstreams atomic.Pointer[[]string]
	udp, tcp  *dns.Client

	mu        sync.Mutex // serialises Serve, Stop and Close
	endpoints map[string]*endpoint
	closed    bool
}

// endpoint is one container's pair of servers.
type endpoint struct{ udp, tcp *dns.Server }

// NewServer returns a Server that answers with lookup and reverse (either may
// be nil: nothing is ours) and forwards other queries to upstreams
// ("ip:port", tried in order). lookup and reverse are called from many
// goroutines at once and must not block on the caller of Serve or Stop.
func NewServer(lookup Lookup, reverse ReverseLookup, upstreams []string) *Server {
	s := &Server{
		lookup:    lookup,
		reverse:   reverse,
		udp:       &dns.Client{Net: "udp", Timeout: forwardTimeout, UDPSize: dns.DefaultMsgSize},
		tcp:       &dns.Client{Net: "tcp", Timeout: forwardTimeout},
		endpoints: make(map[string]*endpoint),
	}
	s.SetUpstreams(upstreams)
	return s
}

// SetUpstreams replaces the resolvers that foreign names are forwarded to
// (queries in flight keep the old list). None: such queries get SERVFAIL.
func (s *Server) SetUpstreams(upstreams []string) {
	u := append([]string(nil), upstreams...)
	s.upstreams.Store(&u)
}

// Serve opens UDP and TCP sockets on 127.0.0.11:53 inside the network
// namespace at netnsPath (a pinned namespace file or /proc/<pid>/ns/net, its
// loopback up) and answers the queries that arrive there for container until
// Stop or Close. Serving a container again replaces its old sockets (the old
// ones are closed first, so the new namespace may be the same one). A
// namespace path that does not exist: ErrNotFound; after Close:
// ErrFailedPrecondition.
func (s *Server) Serve(container, netnsPath string, opts ...ServeOption) error {
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: dns server for %s: server closed", errdefs.ErrFailedPrecondition, container)
	}
	if old := s.endpoints[container]; old != nil {
		delete(s.endpoints, container)
		old.shutdown()
	}
	var pc net.PacketConn
	var ln net.Listener
	err := netns.Do(netnsPath, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", Address); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", Address); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dns server for %s in %s: %w", container, netnsPath, err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) { s.answer(container, o.upstreams, w, req) })
	ep := &endpoint{
		udp: &dns.Server{PacketConn: pc, Handler: h},
		tcp: &dns.Server{Listener: ln, Handler: h},
	}
	if err := ep.start(); err != nil {
		return fmt.Errorf("dns server for %s: %w", container, err)
	}
	s.endpoints[container] = ep
	return nil
}

// ServeOption changes how Serve answers one container.
type ServeOption func(*serveOptions)

type serveOptions struct{ upstreams []string }

// WithUpstreams forwards the container's foreign names to these resolvers
// ("ip:port") instead of the server's (docker run --dns on a network with
// the embedded server).
func WithUpstreams(upstreams []string) ServeOption {
	u := append([]string{}, upstreams...)
	return func(o *serveOptions) { o.upstreams = u }
}

// start runs both servers and returns once both listen (so that a shutdown
// right after finds them started), or with the first one's error.
func (ep *endpoint) start() error {
	started := make(chan struct{}, 2)
	failed := make(chan error, 2)
	for _, srv := range []*dns.Server{ep.udp, ep.tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
			}
		}()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-failed:
			ep.shutdown()
			ep.udp.PacketConn.Close()
			ep.tcp.Listener.Close()
			return err
		}
	}
	return nil
}

// shutdown closes both sockets at once. Queries in flight finish on their
// own goroutines; their replies are lost.
func (ep *endpoint) shutdown() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // do not wait for forwarded queries
	ep.udp.ShutdownContext(ctx)
	ep.tcp.ShutdownContext(ctx)
}

// Stop closes container's sockets; a container not served is no error.
func (s *Server) Stop(container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep := s.endpoints[container]; ep != nil {
		delete(s.endpoints, container)
		ep.shutdown()
	}
}

// Close stops serving every container; Serve fails afterwards.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c, ep := range s.endpoints {
		delete(s.endpoints, c)
		ep.shutdown()
	}
	return nil
}
