package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"berth.dev/network/netns"
)

// newNetns makes a fresh network namespace (lo up) pinned under a temp dir
// and removes it, and the shared bind netns.New makes of the dir, at cleanup.
func newNetns(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	path := filepath.Join(dir, testutil.UniqueName(t))
	t.Cleanup(func() {
		if err := netns.Remove(path); err != nil {
			t.Error(err)
		}
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := netns.New(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeUpstream is a resolver on 127.0.0.1 in the test's own namespace, on
// one port for UDP and TCP, that knows a few names of example.com and counts
// the queries it gets over each.
type fakeUpstream struct {
	addr          string
	udpQ, tcpQ    atomic.Int32
	bigAnswerSize int
}

const bigRecords = 60 // enough A records to overflow 512 bytes and more

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 { // a port free for UDP may be taken for TCP: try again
		var err error
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	u.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { u.serve(w, r, true) })},
		{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { u.serve(w, r, false) })},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

func (u *fakeUpstream) serve(w dns.ResponseWriter, r *dns.Msg, udp bool) {
	if udp {
		u.udpQ.Add(1)
	} else {
		u.tcpQ.Add(1)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	q := r.Question[0]
	a := func(ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}
	}
	switch {
	case q.Name == "example.com." && q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, a("192.0.2.7"))
	case q.Name == "big.example.com." && q.Qtype == dns.TypeA:
		for i := range bigRecords {
			m.Answer = append(m.Answer, a(fmt.Sprintf("198.51.100.%d", i+1)))
		}
	case q.Name == "broken.example.com.":
		m.Rcode = dns.RcodeServerFailure
	case q.Name == "10.2.0.192.in-addr.arpa." && q.Qtype == dns.TypePTR:
		m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "upstream.example.com."})
	default:
		m.Rcode = dns.RcodeNameError
	}
	if udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size) // as real resolvers do
	}
	w.WriteMsg(m)
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// query asks 127.0.0.11:53 from inside the namespace at path over network
// ("udp" or "tcp"); edns0 advertises a 4096-byte UDP buffer.
func query(t *testing.T, path, network, name string, qtype uint16, edns0 bool) (*dns.Msg, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns0 {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	var resp *dns.Msg
	err := netns.Do(path, func() error {
		var err error
		resp, _, err = c.Exchange(m, Address)
		return err
	})
	return resp, err
}

// mustQuery is query that fails the test on error or an unexpected rcode,
// and returns the answer's addresses or PTR names.
func mustQuery(t *testing.T, path, network, name string, qtype uint16, edns0 bool, rcode int) []string {
	t.Helper()
	resp, err := query(t, path, network, name, qtype, edns0)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", dns.TypeToString[qtype], name, network, err)
	}
	if resp.Rcode != rcode {
		t.Fatalf("%s %s over %s: rcode %s, want %s", dns.TypeToString[qtype], name, network, dns.RcodeToString[resp.Rcode], dns.RcodeToString[rcode])
	}
	var out []string
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.PTR:
			out = append(out, rr.Ptr)
		}
	}
	return out
}

// records are the engine's names per container, as the test's Lookup sees them.
var records = map[string]map[string][]netip.Addr{
	"c1": {
		"web":      {netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")},
		"db":       {netip.MustParseAddr("10.0.0.3")},
		"db.mynet": {netip.MustParseAddr("10.0.0.3")},
		"removed":  nil,
	},
	"c2": {
		"web": {netip.MustParseAddr("10.1.0.9")},
	},
}

// lookups records the names a Lookup was asked for.
type lookups struct {
	mu    sync.Mutex
	names []string
}

func (l *lookups) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.names)
}

func testServer(t *testing.T, upstreams []string) (*Server, *lookups) {
	asked := &lookups{}
	lookup := func(container, name string) ([]netip.Addr, bool) {
		asked.mu.Lock()
		asked.names = append(asked.names, name)
		asked.mu.Unlock()
		addrs, ok := records[container][name]
		return addrs, ok
	}
	reverse := func(container string, addr netip.Addr) (string, bool) {
		if container == "c1" && addr == netip.MustParseAddr("10.0.0.2") {
			return "web.mynet", true
		}
		return "", false
	}
	s := NewServer(lookup, reverse, upstreams)
	t.Cleanup(func() { s.Close() })
	return s, asked
}

func TestServe(t *testing.T) {
	testutil.RequiresRoot(t)
	up := startUpstream(t)
	s, asked := testServer(t, []string{closedPort(t), up.addr}) // the first upstream is down
	ns1, ns2 := newNetns(t), newNetns(t)
	if err := s.Serve("c1", ns1); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve("c2", ns2); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		path    string
		network string
		qname   string
		qtype   uint16
		edns0   bool
		rcode   int
		want    []string
	}{
		{"ours", ns1, "udp", "web.", dns.TypeA, false, dns.RcodeSuccess, []string{"10.0.0.2"}},
		{"upper case", ns1, "udp", "WeB.", dns.TypeA, false, dns.RcodeSuccess, []string{"10.0.0.2"}},
		// On the wire every name ends in the root label: "web" and "web."
		// are one query; Lookup must see it without the dot.
		{"with a dot", ns1, "udp", "DB.mynet.", dns.TypeA, false, dns.RcodeSuccess, []string{"10.0.0.3"}},
		{"aaaa", ns1, "udp", "web.", dns.TypeAAAA, false, dns.RcodeSuccess, []string{"fd00::2"}},
		{"aaaa empty", ns1, "udp", "db.", dns.TypeAAAA, false, dns.RcodeSuccess, nil},
		{"ours without addresses", ns1, "udp", "removed.", dns.TypeA, false, dns.RcodeNameError, nil},
		{"single label not ours", ns1, "udp", "nosuch.", dns.TypeA, false, dns.RcodeNameError, nil},
		{"per container", ns2, "udp", "web.", dns.TypeA, false, dns.RcodeSuccess, []string{"10.1.0.9"}},
		{"other container's name", ns2, "udp", "db.", dns.TypeA, false, dns.RcodeNameError, nil},
		{"ptr ours", ns1, "udp", "2.0.0.10.in-addr.arpa.", dns.TypePTR, false, dns.RcodeSuccess, []string{"web.mynet."}},
		{"ptr forwarded", ns1, "udp", "10.2.0.192.in-addr.arpa.", dns.TypePTR, false, dns.RcodeSuccess, []string{"upstream.example.com."}},
		{"forwarded", ns1, "udp", "example.com.", dns.TypeA, false, dns.RcodeSuccess, []string{"192.0.2.7"}},
		{"forwarded nxdomain", ns1, "udp", "nosuch.example.com.", dns.TypeA, false, dns.RcodeNameError, nil},
		{"forwarded servfail", ns1, "udp", "broken.example.com.", dns.TypeA, false, dns.RcodeServerFailure, nil},
		{"forwarded over tcp", ns1, "tcp", "example.com.", dns.TypeA, false, dns.RcodeSuccess, []string{"192.0.2.7"}},
		{"ours over tcp", ns2, "tcp", "web.", dns.TypeA, false, dns.RcodeSuccess, []string{"10.1.0.9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustQuery(t, tc.path, tc.network, tc.qname, tc.qtype, tc.edns0, tc.rcode)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, name := range asked.list() {
		if name != "web" && name != "db" && name != "db.mynet" && name != "removed" && name != "nosuch" &&
			name != "example.com" && name != "nosuch.example.com" && name != "broken.example.com" {
			t.Errorf("Lookup asked for %q: not lower case without trailing dot", name)
		}
	}
}

// TestTruncated: an answer too big for UDP is fetched upstream again over
// TCP; the container gets all of it when its buffer is big enough and a
// truncated answer (TC set) when not, and all of it over TCP.
func TestTruncated(t *testing.T) {
	testutil.RequiresRoot(t)
	up := startUpstream(t)
	s, _ := testServer(t, []string{up.addr})
	ns := newNetns(t)
	if err := s.Serve("c1", ns); err != nil {
		t.Fatal(err)
	}
	resp, err := query(t, ns, "udp", "big.example.com.", dns.TypeA, false)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Truncated || len(resp.Answer) >= bigRecords {
		t.Errorf("UDP without EDNS0: truncated %v with %d records, want TC and fewer than %d", resp.Truncated, len(resp.Answer), bigRecords)
	}
	if up.udpQ.Load() != 1 || up.tcpQ.Load() != 1 {
		t.Errorf("upstream got %d UDP and %d TCP queries, want 1 and 1 (the retry of a truncated answer)", up.udpQ.Load(), up.tcpQ.Load())
	}
	if got := mustQuery(t, ns, "udp", "big.example.com.", dns.TypeA, true, dns.RcodeSuccess); len(got) != bigRecords {
		t.Errorf("UDP with EDNS0: %d records, want %d", len(got), bigRecords)
	}
	if got := mustQuery(t, ns, "tcp", "big.example.com.", dns.TypeA, false, dns.RcodeSuccess); len(got) != bigRecords {
		t.Errorf("TCP: %d records, want %d", len(got), bigRecords)
	}
}

func TestUpstreamDown(t *testing.T) {
	testutil.RequiresRoot(t)
	up := startUpstream(t)
	s, _ := testServer(t, []string{closedPort(t)})
	ns := newNetns(t)
	if err := s.Serve("c1", ns); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		mustQuery(t, ns, network, "example.com.", dns.TypeA, false, dns.RcodeServerFailure)
	}
	s.SetUpstreams(nil)
	mustQuery(t, ns, "udp", "example.com.", dns.TypeA, false, dns.RcodeServerFailure)
	mustQuery(t, ns, "udp", "web.", dns.TypeA, false, dns.RcodeSuccess) // ours need no upstream
	s.SetUpstreams([]string{up.addr})
	mustQuery(t, ns, "udp", "example.com.", dns.TypeA, false, dns.RcodeSuccess)
}

// TestServeWithUpstreams: a container served with resolvers of its own
// (docker run --dns) forwards to them, not to the server's.
func TestServeWithUpstreams(t *testing.T) {
	testutil.RequiresRoot(t)
	own := startUpstream(t)
	s, _ := testServer(t, []string{closedPort(t)})
	mine, other := newNetns(t), newNetns(t)
	if err := s.Serve("c1", mine, WithUpstreams([]string{own.addr})); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve("c2", other); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, mine, "udp", "example.com.", dns.TypeA, false, dns.RcodeSuccess); len(got) != 1 {
		t.Errorf("own upstream: %v", got)
	}
	mustQuery(t, other, "udp", "example.com.", dns.TypeA, false, dns.RcodeServerFailure) // the server's is down
	if own.udpQ.Load() != 1 {
		t.Errorf("own upstream got %d queries, want 1", own.udpQ.Load())
	}
}

// TestStop: after Stop nothing listens at 127.0.0.11:53 in the namespace.
func TestStop(t *testing.T) {
	testutil.RequiresRoot(t)
	s, _ := testServer(t, nil)
	ns := newNetns(t)
	if err := s.Serve("c1", ns); err != nil {
		t.Fatal(err)
	}
	mustQuery(t, ns, "udp", "web.", dns.TypeA, false, dns.RcodeSuccess)
	s.Stop("c1")
	s.Stop("c1") // twice is fine
	for _, network := range []string{"udp", "tcp"} {
		if resp, err := query(t, ns, network, "web.", dns.TypeA, false); err == nil {
			t.Errorf("%s query after Stop answered: %v", network, resp)
		}
	}
	// Served again after Stop, in the same namespace.
	if err := s.Serve("c1", ns); err != nil {
		t.Fatal(err)
	}
	mustQuery(t, ns, "tcp", "web.", dns.TypeA, false, dns.RcodeSuccess)
}

// TestServeTwice: serving a container again replaces its sockets, in the
// same namespace or a new one, and one Stop closes what is served.
func TestServeTwice(t *testing.T) {
	testutil.RequiresRoot(t)
	s, _ := testServer(t, nil)
	ns1, ns2 := newNetns(t), newNetns(t)
	for _, ns := range []string{ns1, ns1, ns2} {
		if err := s.Serve("c1", ns); err != nil {
			t.Fatal(err)
		}
		mustQuery(t, ns, "udp", "web.", dns.TypeA, false, dns.RcodeSuccess)
	}
	if _, err := query(t, ns1, "udp", "web.", dns.TypeA, false); err == nil {
		t.Error("the old namespace still answers after the container moved")
	}
	s.Stop("c1")
	if _, err := query(t, ns2, "tcp", "web.", dns.TypeA, false); err == nil {
		t.Error("answers after Stop")
	}
}

func TestServeErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	s, _ := testServer(t, nil)
	if err := s.Serve("c1", filepath.Join(t.TempDir(), "missing")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing namespace: %v", err)
	}
	ns := newNetns(t)
	if err := s.Serve("c1", ns); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t, ns, "udp", "web.", dns.TypeA, false); err == nil {
		t.Error("answers after Close")
	}
	if err := s.Serve("c1", ns); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Serve after Close: %v", err)
	}
}
