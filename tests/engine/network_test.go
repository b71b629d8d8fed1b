package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"berth.dev/network/netns"
	"berth.dev/tests/enginetest"
)

// The end-to-end tests of berth's networking: the real berthd driven by the
// berth CLI and by docker's, containers that serve and fetch over HTTP with
// busybox, and an "outside" network namespace of the test's own standing
// for the world beyond the host (the machine's only traffic is loopback and
// what stays inside namespaces the test made).

// cli runs one CLI (berth's or docker's) against the daemon.
type cli struct {
	name string
	run  func(args ...string) (stdout, stderr string, code int)
}

// clis are both CLIs against d.
func clis(d *enginetest.Daemon) []cli {
	return []cli{{"berth", d.Berth}, {"docker", d.Docker}}
}

// must runs args and fails the test unless they exit 0; it returns the
// standard output.
func (c cli) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d: %s", c.name, strings.Join(args, " "), code, errOut)
	}
	return out
}

// startDaemon starts a berthd with busybox loaded (berth's built-in one,
// as no registry is reachable).
func startDaemon(t *testing.T) *enginetest.Daemon {
	t.Helper()
	d := enginetest.Start(t, bin, "")
	d.MustBerth("pull", "busybox")
	return d
}

// serveWeb runs a detached busybox httpd that serves text at / with the
// run flags given, and waits until it answers inside its container.
func serveWeb(t *testing.T, c cli, name, text string, flags ...string) {
	t.Helper()
	args := append([]string{"run", "-d", "--name", name}, flags...)
	args = append(args, "busybox", "sh", "-c", "mkdir /www && echo "+text+" > /www/index.html && exec httpd -f -p 80 -h /www")
	c.must(t, args...)
	waitFor(t, name+"'s httpd to answer", func() bool {
		out, _, code := c.run("exec", name, "wget", "-q", "-O", "-", "http://127.0.0.1/")
		return code == 0 && strings.TrimSpace(out) == text
	})
}

// fetch runs a container with the run flags given that fetches url within
// secs seconds, and returns what it printed and its exit code. wget runs
// under a shell, not as pid 1, which ignores timeout's SIGTERM (and
// busybox-static's wget -T crashes).
func fetch(t *testing.T, c cli, url string, secs int, flags ...string) (string, int) {
	t.Helper()
	args := append([]string{"run", "--rm"}, flags...)
	args = append(args, "busybox", "sh", "-c", fmt.Sprintf("timeout %d wget -q -O - %s; exit $?", secs, url))
	out, errOut, code := c.run(args...)
	return strings.TrimSpace(out + errOut), code
}

// hostFetch gets url from the test process.
func hostFetch(url string) (string, error) {
	hc := http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(body)), err
}

// freePort returns a TCP port that nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// links lists the link names that `ip -o link` prints in a container.
func links(t *testing.T, c cli, ctr string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(c.must(t, "exec", ctr, "ip", "-o", "link")), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			out = append(out, name)
		}
	}
	return out
}

// settled polls cond for up to ten seconds (the kernel deletes the veths of
// a namespace that went in the background) and returns its last value.
func settled(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// checkNothingLeft asserts what must hold once every container is gone:
// no veth of the daemon's, no pinned network namespace, no DNAT rule in
// its nftables table.
func checkNothingLeft(t *testing.T, d *enginetest.Daemon) {
	t.Helper()
	if !settled(func() bool { return len(enginetest.Links(d.Net.Prefix+"v")) == 0 }) {
		t.Errorf("veths left: %v", enginetest.Links(d.Net.Prefix+"v"))
	}
	if e, _ := os.ReadDir(filepath.Join(d.ExecRoot, "netns")); len(e) > 0 {
		t.Errorf("pinned network namespaces left: %d", len(e))
	}
	// A container that leaves takes its rules away in the background.
	if !settled(func() bool { return dnatRules(t, d) == 0 }) {
		t.Errorf("%d DNAT rules left in table inet %s", dnatRules(t, d), d.Net.Table)
	}
}

// dnatRules counts the rules with a dnat statement in the daemon's nftables
// table, read as nft's JSON.
func dnatRules(t *testing.T, d *enginetest.Daemon) int {
	t.Helper()
	out, err := exec.Command("nft", "-j", "list", "table", "inet", d.Net.Table).Output()
	if err != nil {
		t.Fatalf("nft list table inet %s: %v", d.Net.Table, err)
	}
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Expr []map[string]json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft's JSON: %v", err)
	}
	n := 0
	for _, obj := range doc.Nftables {
		if obj.Rule == nil {
			continue
		}
		// A statement, not a match on "ct status dnat".
		for _, stmt := range obj.Rule.Expr {
			if _, ok := stmt["dnat"]; ok {
				n++
				break
			}
		}
	}
	return n
}

// Two containers on a user-defined network reach each other by name and by
// --network-alias through the embedded DNS server; a container on another
// user-defined network cannot connect to them. With both CLIs.
func TestNetworkNamesAndIsolation(t *testing.T) {
	d := startDaemon(t)
	for _, c := range clis(d) {
		t.Run(c.name, func(t *testing.T) {
			nw, other := "net-"+c.name, "other-"+c.name
			c.must(t, "network", "create", nw)
			c.must(t, "network", "create", other)
			web, alias := "web-"+c.name, "www-"+c.name
			serveWeb(t, c, web, "served-by-"+web, "--network", nw, "--network-alias", alias)
			for _, host := range []string{web, alias} {
				if out, code := fetch(t, c, "http://"+host+"/", 10, "--network", nw); code != 0 || out != "served-by-"+web {
					t.Errorf("wget http://%s/ on %s: exit %d: %q", host, nw, code, out)
				}
			}
			addr := strings.TrimSpace(c.must(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+nw+"\").IPAddress}}", web))
			if _, err := netip.ParseAddr(addr); err != nil {
				t.Fatalf("address of %s on %s: %q", web, nw, addr)
			}
			if out, code := fetch(t, c, "http://"+addr+"/", 3, "--network", other); code == 0 {
				t.Errorf("a container on %s reached %s on %s: %q", other, addr, nw, out)
			}
			// The name is not known on the other network either.
			if out, code := fetch(t, c, "http://"+web+"/", 3, "--network", other); code == 0 {
				t.Errorf("a container on %s reached %s by name: %q", other, web, out)
			}
			c.must(t, "rm", "-f", web)
			c.must(t, "network", "rm", nw, other)
		})
	}
	checkNothingLeft(t, d)
}

// A published port answers on the host's 127.0.0.1 whether its host port
// is picked (-p 127.0.0.1::80), given (-p PORT:80) or all exposed ports are
// published (--expose 80 -P); port and ps show it. With both CLIs.
func TestNetworkPublishedPorts(t *testing.T) {
	d := startDaemon(t)
	for _, c := range clis(d) {
		t.Run(c.name, func(t *testing.T) {
			fixed := freePort(t)
			cases := []struct {
				name  string
				flags []string
				host  string // the address port prints, before the port
				port  string // the host port, when given
			}{
				{"loopback-" + c.name, []string{"-p", "127.0.0.1::80"}, "127.0.0.1", ""},
				{"fixed-" + c.name, []string{"-p", fixed + ":80"}, "0.0.0.0", fixed},
				{"all-" + c.name, []string{"--expose", "80", "-P"}, "0.0.0.0", ""},
			}
			for _, tc := range cases {
				serveWeb(t, c, tc.name, "served-by-"+tc.name, tc.flags...)
				if n := dnatRules(t, d); n == 0 {
					t.Errorf("%s: no DNAT rule in table inet %s while a port is published", tc.name, d.Net.Table)
				}
				out := strings.TrimSpace(c.must(t, "port", tc.name, "80"))
				first, _, _ := strings.Cut(out, "\n")
				ap, err := netip.ParseAddrPort(first)
				if err != nil || ap.Addr().String() != tc.host || ap.Port() == 0 || tc.port != "" && fmt.Sprint(ap.Port()) != tc.port {
					t.Errorf("%s port %s 80: %q, want %s:%s", c.name, tc.name, out, tc.host, tc.port)
					continue
				}
				if body, err := hostFetch(fmt.Sprintf("http://127.0.0.1:%d/", ap.Port())); err != nil || body != "served-by-"+tc.name {
					t.Errorf("%s: published port %d on 127.0.0.1: %q, %v", tc.name, ap.Port(), body, err)
				}
				ps := strings.TrimSpace(c.must(t, "ps", "--filter", "name="+tc.name, "--format", "{{.Ports}}"))
				if want := fmt.Sprintf("%s:%d->80/tcp", tc.host, ap.Port()); !strings.Contains(ps, want) {
					t.Errorf("ps PORTS of %s: %q, want %q", tc.name, ps, want)
				}
				c.must(t, "rm", "-f", tc.name)
				// The host port is free again.
				if l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", tc.host, ap.Port())); err != nil {
					t.Errorf("host port %d still held after rm -f: %v", ap.Port(), err)
				} else {
					l.Close()
				}
			}
		})
	}
	checkNothingLeft(t, d)
}

// connect gives a running container an interface at once, disconnect
// takes one away at once (as ip link shows inside it). With both CLIs.
func TestNetworkConnectDisconnect(t *testing.T) {
	d := startDaemon(t)
	for _, c := range clis(d) {
		t.Run(c.name, func(t *testing.T) {
			a, b, ctr := "a-"+c.name, "b-"+c.name, "ctr-"+c.name
			c.must(t, "network", "create", a)
			c.must(t, "network", "create", b)
			c.must(t, "run", "-d", "--name", ctr, "--network", a, "busybox", "sleep", "600")
			if got := strings.Join(links(t, c, ctr), " "); got != "lo eth0" {
				t.Errorf("links at start: %s, want lo eth0", got)
			}
			c.must(t, "network", "connect", b, ctr)
			if got := strings.Join(links(t, c, ctr), " "); got != "lo eth0 eth1" {
				t.Errorf("links after connect: %s, want lo eth0 eth1", got)
			}
			c.must(t, "network", "disconnect", a, ctr)
			if got := strings.Join(links(t, c, ctr), " "); got != "lo eth1" {
				t.Errorf("links after disconnect: %s, want lo eth1", got)
			}
			// Through its interface on b it reaches a server there by name.
			serveWeb(t, c, "srv-"+c.name, "on-b", "--network", b)
			if out, _, code := c.run("exec", ctr, "sh", "-c", "timeout 10 wget -q -O - http://srv-"+c.name+"/; exit $?"); code != 0 || strings.TrimSpace(out) != "on-b" {
				t.Errorf("wget from the connected network: exit %d: %q", code, out)
			}
			c.must(t, "rm", "-f", ctr, "srv-"+c.name)
			c.must(t, "network", "rm", a, b)
		})
	}
	checkNothingLeft(t, d)
}

// After berthd is killed while containers run, the next berthd takes their
// network back: the published port answers, names resolve, and rm -f
// leaves nothing.
func TestNetworkDaemonKilled(t *testing.T) {
	d := startDaemon(t)
	d.MustBerth("network", "create", "survive")
	serveWeb(t, cli{"berth", d.Berth}, "web", "still-here", "--network", "survive", "--network-alias", "www", "-p", "127.0.0.1::80")
	d.MustBerth("run", "-d", "--name", "client", "--network", "survive", "busybox", "sleep", "600")
	port := strings.TrimSpace(d.MustBerth("port", "web", "80"))
	d.Kill()
	d.Restart()
	if body, err := hostFetch("http://" + port + "/"); err != nil || body != "still-here" {
		t.Errorf("published port %s after the restart: %q, %v", port, body, err)
	}
	for _, host := range []string{"web", "www"} {
		if out, _, code := d.Berth("exec", "client", "sh", "-c", "timeout 10 wget -q -O - http://"+host+"/; exit $?"); code != 0 || strings.TrimSpace(out) != "still-here" {
			t.Errorf("wget http://%s/ after the restart: exit %d: %q", host, code, out)
		}
	}
	// A container started by the new berthd gets a different address and
	// resolves the old ones.
	if out, code := fetch(t, cli{"berth", d.Berth}, "http://web/", 10, "--network", "survive"); code != 0 || out != "still-here" {
		t.Errorf("wget http://web/ from a new container: exit %d: %q", code, out)
	}
	d.MustBerth("rm", "-f", "web", "client")
	checkNothingLeft(t, d)
	d.MustBerth("network", "rm", "survive")
}

// Bad input is refused with docker's exit codes (125 for run, 1 for the
// network commands) and a clear message, and leaves nothing half-made.
// With both CLIs.
func TestNetworkBadInput(t *testing.T) {
	d := startDaemon(t)
	// A /24 that another test's daemon is unlikely to hold at once.
	second := 200 + rand.IntN(50)
	for i, c := range clis(d) {
		t.Run(c.name, func(t *testing.T) {
			nw := "fixed-" + c.name
			subnet := fmt.Sprintf("10.%d.%d.0/24", second, i)
			c.must(t, "network", "create", "--subnet", subnet, nw)
			c.must(t, "run", "-d", "--name", "busy-"+c.name, "--network", nw, "busybox", "sleep", "600")
			bridges := enginetest.Links(d.Net.Prefix + "-")
			veths := enginetest.Links(d.Net.Prefix + "v")
			l, err := net.Listen("tcp", "0.0.0.0:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			taken := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
			cases := []struct {
				name string
				args []string
				code int
				msg  string
			}{
				{"overlapping subnet", []string{"network", "create", "--subnet", fmt.Sprintf("10.%d.%d.128/25", second, i), "overlap-" + c.name}, 1, "overlaps"},
				{"host port in use", []string{"run", "-d", "--name", "taken-" + c.name, "-p", taken + ":80", "busybox", "sleep", "600"}, 125, "port is already allocated"},
				{"unknown network", []string{"run", "--rm", "--network", "nosuchnet", "busybox", "true"}, 125, "network nosuchnet not found"},
				{"--ip on the default bridge", []string{"run", "--rm", "--ip", "172.17.0.200", "busybox", "true"}, 125, "user specified IP address is supported on user defined networks only"},
				{"--ip outside the subnet", []string{"run", "--rm", "--network", nw, "--ip", "10.9.9.9", "busybox", "true"}, 125, "no configured subnet contains IP address 10.9.9.9"},
				{"rm of a network in use", []string{"network", "rm", nw}, 1, "has active endpoints"},
				{"network name in use", []string{"network", "create", nw}, 1, "already exists"},
			}
			for _, tc := range cases {
				out, errOut, code := c.run(tc.args...)
				if code != tc.code || !strings.Contains(errOut, tc.msg) {
					t.Errorf("%s: %s %s: exit %d, stderr %q; want exit %d and %q (stdout %q)", tc.name, c.name, strings.Join(tc.args, " "), code, errOut, tc.code, tc.msg, out)
				}
			}
			if got := enginetest.Links(d.Net.Prefix + "-"); len(got) != len(bridges) {
				t.Errorf("bridges after the refusals: %v, before: %v", got, bridges)
			}
			if !settled(func() bool { return len(enginetest.Links(d.Net.Prefix+"v")) == len(veths) }) {
				t.Errorf("veths after the refusals: %v, before: %v", enginetest.Links(d.Net.Prefix+"v"), veths)
			}
			if ps := strings.TrimSpace(c.must(t, "ps", "--format", "{{.Names}}")); ps != "busy-"+c.name {
				t.Errorf("running after the refusals: %q, want busy-%s only", ps, c.name)
			}
			if !settled(func() bool { return dnatRules(t, d) == 0 }) {
				t.Errorf("%d DNAT rules after a refused port", dnatRules(t, d))
			}
			c.must(t, "network", "inspect", nw)
			if _, _, code := c.run("network", "inspect", "overlap-"+c.name); code == 0 {
				t.Errorf("the overlapping network was made")
			}
			c.must(t, "rm", "-f", "busy-"+c.name)
			c.run("rm", "-f", "taken-"+c.name) // docker leaves it created
			c.must(t, "network", "rm", nw)
		})
	}
	checkNothingLeft(t, d)
}

// --network host sees the host's interfaces; --network container:<name>
// shares the other container's (the same address).
func TestNetworkHostAndContainerModes(t *testing.T) {
	d := startDaemon(t)
	c := cli{"berth", d.Berth}
	out := c.must(t, "run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
	if !strings.Contains(out, " "+d.Net.Bridge+":") {
		t.Errorf("--network host does not see the host's %s:\n%s", d.Net.Bridge, out)
	}
	c.must(t, "run", "-d", "--name", "owner", "busybox", "sleep", "600")
	addr := inspect(d, "{{.NetworkSettings.Networks.bridge.IPAddress}}", "owner")
	if _, err := netip.ParseAddr(addr); err != nil {
		t.Fatalf("owner's address: %q", addr)
	}
	out = c.must(t, "run", "--rm", "--network", "container:owner", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")
	if !strings.Contains(out, " "+addr+"/") {
		t.Errorf("--network container:owner shows %q, want owner's address %s", out, addr)
	}
	c.must(t, "rm", "-f", "owner")
	checkNothingLeft(t, d)
}

// outside is a network namespace the test owns that stands for the world
// beyond the host: a veth pair joins it to the host on a /30 of 198.18.0.0/15
// (the benchmarking range), with its default route back through the host's
// end, and an HTTP server listens inside it.
type outside struct {
	name     string     // the namespace, under /run/netns
	hostAddr netip.Addr // the host's end of the pair (.1)
	addr     netip.Addr // the namespace's end (.2)
	url      string     // the server's, ending in "/"

	mu      sync.Mutex
	remotes []string // the source addresses of the requests
}

// newOutside makes the namespace, the pair and the server, which serves
// dir's files (and "outside-says-hi" at /hello); cleanup removes them.
func newOutside(t *testing.T, dir string) *outside {
	t.Helper()
	var raw [2]byte
	for i := range raw {
		raw[i] = byte(rand.IntN(256))
	}
	suffix := fmt.Sprintf("%02x%02x", raw[0], raw[1])
	base := netip.AddrFrom4([4]byte{198, 18 + raw[0]&1, raw[1], byte(rand.IntN(64)) * 4})
	o := &outside{name: "berth-test-out-" + suffix, hostAddr: base.Next(), addr: base.Next().Next()}
	hostIf, peer := "btoh"+suffix, "btoo"+suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", o.name)
	t.Cleanup(func() {
		// The namespace takes its end of the pair, and so the pair, along.
		exec.Command("ip", "netns", "del", o.name).Run()
		exec.Command("ip", "link", "del", hostIf).Run()
	})
	run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", peer, "netns", o.name)
	run("ip", "addr", "add", o.hostAddr.String()+"/30", "dev", hostIf)
	run("ip", "link", "set", hostIf, "up")
	run("ip", "-n", o.name, "addr", "add", o.addr.String()+"/30", "dev", peer)
	run("ip", "-n", o.name, "link", "set", peer, "up")
	run("ip", "-n", o.name, "link", "set", "lo", "up")
	run("ip", "-n", o.name, "route", "add", "default", "via", o.hostAddr.String())

	var l net.Listener
	err := netns.Do("/run/netns/"+o.name, func() error {
		var err error
		l, err = net.Listen("tcp", netip.AddrPortFrom(o.addr, 0).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen inside %s: %v", o.name, err)
	}
	o.url = fmt.Sprintf("http://%s/", l.Addr())
	files := http.NotFoundHandler()
	if dir != "" {
		files = http.FileServer(http.Dir(dir))
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.remotes = append(o.remotes, r.RemoteAddr)
		o.mu.Unlock()
		if r.URL.Path == "/hello" {
			io.WriteString(w, "outside-says-hi\n")
			return
		}
		files.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return o
}

// sources returns the source addresses the server has seen so far.
func (o *outside) sources() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, r := range o.remotes {
		host, _, _ := net.SplitHostPort(r)
		out = append(out, host)
	}
	return out
}

// A container on the default bridge reaches a server beyond the host
// through the host's routes, forwarding and masquerade (the server sees the
// host's address); one on an --internal network has no default route and
// cannot reach it.
func TestNetworkOutboundAndInternal(t *testing.T) {
	d := startDaemon(t)
	o := newOutside(t, "")
	c := cli{"berth", d.Berth}
	if out, code := fetch(t, c, o.url+"hello", 10); code != 0 || out != "outside-says-hi" {
		t.Fatalf("wget %shello from the default bridge: exit %d: %q", o.url, code, out)
	}
	if src := o.sources(); len(src) != 1 || src[0] != o.hostAddr.String() {
		t.Errorf("the server saw requests from %v, want the host's %s only (masquerade)", src, o.hostAddr)
	}

	d.MustBerth("network", "create", "--internal", "closed")
	out := d.MustBerth("run", "--rm", "--network", "closed", "busybox", "ip", "route")
	if strings.Contains(out, "default") || !strings.Contains(out, "dev eth0") {
		t.Errorf("routes on an --internal network:\n%s", out)
	}
	if out, code := fetch(t, c, o.url+"hello", 3, "--network", "closed"); code == 0 {
		t.Errorf("a container on an --internal network reached %s: %q", o.url, out)
	}
	// Inside the network, names resolve and containers connect.
	serveWeb(t, c, "inner", "inner-web", "--network", "closed")
	if out, code := fetch(t, c, "http://inner/", 10, "--network", "closed"); code != 0 || out != "inner-web" {
		t.Errorf("wget http://inner/ on the --internal network: exit %d: %q", code, out)
	}
	// Nor with a route of its own: the host does not forward for it.
	d.MustBerth("run", "-d", "--name", "sneaky", "--network", "closed", "--cap-add", "NET_ADMIN", "busybox", "sleep", "600")
	gw := inspect(d, "{{.NetworkSettings.Networks.closed.Gateway}}", "sneaky")
	d.MustBerth("exec", "sneaky", "ip", "route", "add", "default", "via", gw)
	if out, _, code := d.Berth("exec", "sneaky", "sh", "-c", "timeout 3 wget -q -O - "+o.url+"hello; exit $?"); code == 0 {
		t.Errorf("a container on an --internal network with a default route reached %s: %q", o.url, out)
	}
	if n := len(o.sources()); n != 1 {
		t.Errorf("the server saw %d requests, want the default bridge's only", n)
	}
	d.MustBerth("rm", "-f", "sneaky", "inner")
	d.MustBerth("network", "rm", "closed")
	checkNothingLeft(t, d)
}

// aptDemo is where the .debs of the apt demo are kept between runs, with
// their Packages index; packages.done marks it complete.
const aptDemo = debianCache + "/apt-demo"

// aptDemoRepo returns a flat apt repository of iputils-ping and the
// packages it needs beyond a minbase bookworm (libcap2-bin and its
// recommended libpam-cap), made once with the host's apt-get download and
// dpkg-scanpackages. The test is skipped when they cannot be had.
func aptDemoRepo(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(aptDemo, "packages.done")); err == nil {
		return aptDemo
	}
	for _, tool := range []string{"apt-get", "dpkg-scanpackages"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (dpkg-dev) to make the apt demo's repository", tool)
		}
	}
	os.RemoveAll(aptDemo)
	if err := os.MkdirAll(aptDemo, 0o755); err != nil {
		t.Fatal(err)
	}
	dl := exec.Command("apt-get", "download", "iputils-ping", "libcap2-bin", "libpam-cap")
	dl.Dir = aptDemo
	if out, err := dl.CombinedOutput(); err != nil {
		os.RemoveAll(aptDemo)
		t.Skipf("apt-get download could not fetch the demo's packages (no mirror?): %v\n%s", err, lastLines(out, 5))
	}
	// An epoch's ':' is saved as "%3a": plain names keep URLs simple.
	debs, _ := filepath.Glob(filepath.Join(aptDemo, "*.deb"))
	for _, f := range debs {
		if err := os.Rename(f, strings.ReplaceAll(f, "%3a", "-")); err != nil {
			t.Fatal(err)
		}
	}
	scan := exec.Command("dpkg-scanpackages", "--multiversion", ".", "/dev/null")
	scan.Dir = aptDemo
	index, err := scan.Output()
	if err != nil {
		t.Fatalf("dpkg-scanpackages: %v", err)
	}
	if err := os.WriteFile(filepath.Join(aptDemo, "Packages"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(aptDemo, "packages.done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return aptDemo
}

// The lecture's demo step, "apt update; apt install iputils-ping", made
// safe: the Debian container's apt fetches from a flat repository that the
// outside namespace serves, and the ping it installs reaches that
// namespace.
func TestNetworkAptDemo(t *testing.T) {
	rootfs := debianRootfs(t)
	repo := aptDemoRepo(t)
	d := enginetest.Start(t, bin, "")
	importDebian(t, d, rootfs, "berth-test-debian:bookworm")
	o := newOutside(t, repo)
	script := fmt.Sprintf("echo 'deb [trusted=yes] %s ./' > /etc/apt/sources.list; rm -f /etc/apt/sources.list.d/*; "+
		"apt update && apt install -y iputils-ping && ping -c 1 %s", o.url, o.addr)
	out, errOut, code := d.Berth("run", "--rm", "berth-test-debian:bookworm", "bash", "-c", script)
	if code != 0 || !strings.Contains(out, " 1 received") {
		t.Errorf("apt demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	} else {
		t.Logf("the demo's last lines:\n%s", lastLines([]byte(out), 3))
	}
	for _, src := range o.sources() {
		if src != o.hostAddr.String() {
			t.Errorf("the repository saw a request from %s, want the host's %s", src, o.hostAddr)
			break
		}
	}
	d.MustBerth("rmi", "berth-test-debian:bookworm")
	checkNothingLeft(t, d)
}
