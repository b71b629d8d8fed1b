package ocispec

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// HostsFile is the /etc/hosts of a container: the loopback and IPv6
// well-known names, then extra, entries already in hosts format
// ("10.0.0.2\tdb" or "10.0.0.2 db db.local", as --add-host and the network
// give them). The caller adds "<ip>\t<hostname>" to extra when the
// container has an address; when no line names hostname, it is given
// 127.0.0.1 so that the container resolves its own name.
func HostsFile(hostname string, extra []string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("ff00::0\tip6-mcastprefix\n")
	b.WriteString("ff02::1\tip6-allnodes\n")
	b.WriteString("ff02::2\tip6-allrouters\n")
	named := false
	for _, e := range extra {
		fields := strings.Fields(e)
		if len(fields) < 2 {
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\n", fields[0], strings.Join(fields[1:], " "))
		for _, n := range fields[1:] {
			named = named || n == hostname
		}
	}
	if !named && hostname != "" {
		// Without an address of its own the container still resolves its
		// name, as with --network none in docker.
		fmt.Fprintf(&b, "127.0.0.1\t%s\n", hostname)
	}
	return b.Bytes()
}

// ResolvConf is the /etc/resolv.conf of a container on a network of its
// own, made from the host's (hostResolv). Nameservers on loopback
// addresses (127.0.0.0/8, ::1) are dropped, as they would be the
// container's own loopback; dns, search and opts, when given, replace the
// host's nameservers, search domains and options. When no nameserver is
// left, none is invented (the machine may have no route to a public
// resolver): a comment says so, and the resolver library falls back to
// its defaults. A container on the host's network uses the host's file
// unchanged.
func ResolvConf(hostResolv []byte, dns, search, opts []string) []byte {
	var servers, domains, options, other []string
	sc := bufio.NewScanner(bytes.NewReader(hostResolv))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) == 0 || line[0] == '#' || line[0] == ';' {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) > 1 && !isLoopback(fields[1]) {
				servers = append(servers, fields[1])
			}
		case "search", "domain":
			domains = fields[1:]
		case "options":
			options = append(options, fields[1:]...)
		default:
			other = append(other, line)
		}
	}
	if len(dns) > 0 {
		servers = dns
	}
	if len(search) > 0 {
		domains = search
	}
	if len(opts) > 0 {
		options = opts
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(servers) == 0 {
		b.WriteString("# berth: no nameserver: the host has none usable from a container network namespace\n")
	}
	if len(domains) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(domains, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	for _, l := range other {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

func isLoopback(s string) bool {
	// A zone ("fe80::1%eth0") parses; an unparsable address is kept.
	a, err := netip.ParseAddr(s)
	return err == nil && a.IsLoopback()
}
