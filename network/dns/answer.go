package dns

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// answer replies to one query of container; upstreams, when not nil, are
// the container's own resolvers (else the server's).
func (s *Server) answer(container string, upstreams []string, w dns.ResponseWriter, req *dns.Msg) {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		reply := new(dns.Msg)
		reply.SetRcode(req, dns.RcodeNotImplemented)
		if len(req.Question) != 1 {
			reply.SetRcode(req, dns.RcodeFormatError)
		}
		w.WriteMsg(reply)
		return
	}
	_, isUDP := w.LocalAddr().(*net.UDPAddr)
	if reply := s.local(container, req); reply != nil {
		write(w, req, reply, isUDP)
		return
	}
	if upstreams == nil {
		upstreams = *s.upstreams.Load()
	}
	write(w, req, s.forward(req, upstreams, isUDP), isUDP)
}

// write sends reply, truncated to what a UDP client can take.
func write(w dns.ResponseWriter, req, reply *dns.Msg, isUDP bool) {
	if isUDP {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		reply.Truncate(size)
	}
	w.WriteMsg(reply)
}

// local answers req from the engine's records, or returns nil when the
// query is to be forwarded.
func (s *Server) local(container string, req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	if q.Qclass != dns.ClassINET {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if q.Qtype == dns.TypePTR {
		return s.localPTR(container, req, name)
	}
	var addrs []netip.Addr
	ours := false
	if s.lookup != nil {
		addrs, ours = s.lookup(container, name)
	}
	if !ours {
		if strings.Contains(name, ".") {
			return nil
		}
		return reply(req, dns.RcodeNameError) // single labels stay here
	}
	if len(addrs) == 0 {
		return reply(req, dns.RcodeNameError)
	}
	m := reply(req, dns.RcodeSuccess)
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: ttl}
		switch {
		case q.Qtype == dns.TypeA && a.Unmap().Is4():
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.Unmap().AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6() && !a.Is4In6():
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return m
}

// localPTR answers a reverse query for one of the engine's addresses, or
// returns nil to forward it.
func (s *Server) localPTR(container string, req *dns.Msg, name string) *dns.Msg {
	addr, ok := parseReverse(name)
	if !ok || s.reverse == nil {
		return nil
	}
	host, ours := s.reverse(container, addr)
	if !ours {
		return nil
	}
	m := reply(req, dns.RcodeSuccess)
	m.Answer = append(m.Answer, &dns.PTR{
		Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl},
		Ptr: dns.Fqdn(host),
	})
	return m
}

// reply starts an authoritative reply to req with rcode.
func reply(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.Authoritative = true
	m.RecursionAvailable = true
	return m
}

// parseReverse reads the address of a PTR name (lower case, no trailing dot):
// d.c.b.a.in-addr.arpa or 32 nibbles of ip6.arpa.
func parseReverse(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 16, 4)
			if err != nil || len(l) != 1 {
				return netip.Addr{}, false
			}
			pos := 31 - i // nibble index from the most significant
			b[pos/2] |= byte(n) << (4 * (1 - pos%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// forward asks the upstream resolvers in order and returns the first answer
// that is neither SERVFAIL nor REFUSED (else the last such one, else
// SERVFAIL). A UDP query goes upstream over UDP and again over TCP when the
// answer came back truncated; a TCP query goes over TCP.
func (s *Server) forward(req *dns.Msg, upstreams []string, isUDP bool) *dns.Msg {
	var last *dns.Msg
	for _, up := range upstreams {
		client := s.tcp
		if isUDP {
			client = s.udp
		}
		resp, _, err := client.Exchange(req, up)
		if err == nil && resp.Truncated && isUDP {
			resp, _, err = s.tcp.Exchange(req, up)
		}
		if err != nil {
			continue
		}
		if resp.Rcode != dns.RcodeServerFailure && resp.Rcode != dns.RcodeRefused {
			return resp
		}
		last = resp
	}
	if last != nil {
		return last
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}
