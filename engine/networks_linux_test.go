package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
	"berth.dev/internal/testutil"
	"berth.dev/metadata"
	"berth.dev/network/netns"
	"berth.dev/tests/enginetest"
)

// netEnv is a containerEnv whose container service has a network service
// with names of the test's own: the default bridge, the links' prefix,
// the nftables table. At the end it checks that no veth or pinned
// namespace is left, then removes the bridges and the table.
type netEnv struct {
	*containerEnv
	nets   *Networks
	prefix string
}

func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	env := newContainerEnv(t)
	var raw [2]byte
	rand.Read(raw[:])
	p := "e" + hex.EncodeToString(raw[:])
	env.cfg.Network = NetworkConfig{Bridge: p + "-0", LinkPrefix: p, Table: "berth_test_" + p, MTU: 1500}
	nets, err := NewNetworks(context.Background(), NetworksConfig{Config: env.cfg, DB: env.db})
	if err != nil {
		t.Fatal(err)
	}
	env.cs = NewContainers(ContainersConfig{Config: env.cfg, Images: env.imgs, Snaps: env.snaps, DB: env.db, Networks: nets, Shim: env.cs.shimBin})
	if err := env.cs.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Registered after newContainerEnv's cleanup, so it runs first: the
	// containers go before the network is checked.
	t.Cleanup(func() {
		cs := env.cs
		for _, x := range cs.all() {
			if err := cs.Remove(context.Background(), x.rec.ID, backend.ContainerRemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if v := settledLinks(p+"v", 0); len(v) > 0 {
			t.Errorf("veths left: %v", v)
		}
		if e, _ := os.ReadDir(filepath.Join(env.run, "netns")); len(e) > 0 {
			t.Errorf("network namespaces left: %d", len(e))
		}
		nets.Close()
		for _, l := range append(enginetest.Links(p+"v"), enginetest.Links(p+"-")...) {
			exec.Command("ip", "link", "del", l).Run()
		}
		exec.Command("nft", "delete", "table", "inet", env.cfg.Network.Table).Run()
	})
	return &netEnv{containerEnv: env, nets: nets, prefix: p}
}

// settledLinks is hostLinks once the kernel has finished deleting the
// veths of namespaces that went (it does so in the background), or after
// ten seconds.
func settledLinks(prefix string, want int) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := enginetest.Links(prefix)
		if len(l) <= want || time.Now().After(deadline) {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createNet makes a user-defined network.
func (e *netEnv) createNet(t *testing.T, name string, mod func(*network.CreateRequest)) string {
	t.Helper()
	req := network.CreateRequest{Name: name}
	if mod != nil {
		mod(&req)
	}
	resp, err := e.nets.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.nets.Remove(context.Background(), resp.ID) })
	return resp.ID
}

// runCtr creates and starts a busybox container with cmd on the network of
// mode; mod changes the request first.
func (e *netEnv) runCtr(t *testing.T, name, mode string, cmd []string, mod func(*container.Config, *container.HostConfig, *network.NetworkingConfig)) string {
	t.Helper()
	cfg := &container.Config{Image: "busybox", Cmd: cmd}
	hc := &container.HostConfig{Resources: container.Resources{CgroupParent: e.parent}, NetworkMode: container.NetworkMode(mode)}
	nc := &network.NetworkingConfig{}
	if mod != nil {
		mod(cfg, hc, nc)
	}
	resp, err := e.cs.Create(context.Background(), name, container.CreateRequest{Config: cfg, HostConfig: hc, NetworkingConfig: nc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.Start(context.Background(), resp.ID); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

// (Commands with a timeout run under a shell that stays: the timeout's
// signal would not end pid 1, which ignores what it does not handle.)

// output waits for the container to exit and returns its exit code and
// its output.
func (e *netEnv) output(t *testing.T, id string) (int, string) {
	t.Helper()
	code := waitExit(t, e.cs, id).StatusCode
	data, err := os.ReadFile(e.cs.logPath(id))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m struct{ Log string }
		if json.Unmarshal([]byte(line), &m) == nil {
			out.WriteString(m.Log)
		}
	}
	return int(code), out.String()
}

func (e *netEnv) inspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	info, err := e.cs.Inspect(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// Two containers on a user-defined network reach each other by name and by
// alias through the embedded DNS server; inspect shows the endpoints; a
// published port answers on the host's 127.0.0.1; removing the containers
// leaves no veth and no namespace.
func TestNetworkUserDefined(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	env.createNet(t, "tnet", nil)
	web := env.runCtr(t, "web", "tnet", []string{"sh", "-c", "echo served-by-web > /tmp/index.html; exec httpd -f -p 80 -h /tmp"}, func(cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) {
		nc.EndpointsConfig = map[string]*network.EndpointSettings{"tnet": {Aliases: []string{"www"}}}
		hc.PortBindings = network.PortMap{network.MustParsePort("80/tcp"): {{}}}
	})
	info := env.inspect(t, web)
	es := info.NetworkSettings.Networks["tnet"]
	if es == nil || !es.IPAddress.IsValid() || !es.Gateway.IsValid() || es.IPPrefixLen == 0 || len(es.MacAddress) != 6 {
		t.Fatalf("endpoint of web: %+v", es)
	}
	if info.NetworkSettings.SandboxKey == "" {
		t.Error("no SandboxKey")
	}
	for _, target := range []string{"web", "www", web[:12], es.IPAddress.String()} {
		id := env.runCtr(t, "", "tnet", []string{"sh", "-c", "timeout 5 wget -q -O - http://" + target + "/; exit $?"}, nil)
		if code, out := env.output(t, id); code != 0 || !strings.Contains(out, "served-by-web") {
			t.Errorf("wget http://%s/: exit %d, output %q", target, code, out)
		}
	}
	// A name nobody has is not answered by the engine.
	id := env.runCtr(t, "", "tnet", []string{"nslookup", "nosuchcontainer"}, nil)
	if code, out := env.output(t, id); code == 0 {
		t.Errorf("nslookup of an unknown name succeeded: %s", out)
	}

	bindings := info.NetworkSettings.Ports[network.MustParsePort("80/tcp")]
	if len(bindings) != 1 || bindings[0].HostPort == "" || bindings[0].HostPort == "0" {
		t.Fatalf("port bindings: %+v", info.NetworkSettings.Ports)
	}
	hc := http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://127.0.0.1:" + bindings[0].HostPort + "/")
	if err != nil {
		t.Fatalf("published port on 127.0.0.1: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "served-by-web") {
		t.Errorf("published port answered %q", body)
	}
	// The port is held: nobody else can bind it.
	if l, err := net.Listen("tcp", "127.0.0.1:"+bindings[0].HostPort); err == nil {
		l.Close()
		t.Error("the published port could be bound by another program")
	}

	ni, err := env.nets.Inspect(ctx, "tnet", backend.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := ni.Containers[web]; !ok || r.Name != "web" || r.IPv4Address.Addr() != es.IPAddress {
		t.Errorf("network inspect containers: %+v", ni.Containers)
	}
	if err := env.nets.Remove(ctx, "tnet"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("remove a network with a running container: %v, want forbidden", err)
	}
	if err := env.cs.Remove(ctx, web, backend.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if l, err := net.Listen("tcp", "127.0.0.1:"+bindings[0].HostPort); err != nil {
		t.Errorf("the port is still held after the container went: %v", err)
	} else {
		l.Close()
	}
	if v := settledLinks(env.prefix+"v", 0); len(v) > 0 {
		t.Errorf("veths left after rm -f of web: %v", v)
	}
}

// The default bridge gives a container an address, a default route and
// the embedded DNS server in resolv.conf; --network none only a loopback
// that is up; an internal network no default route.
func TestNetworkModes(t *testing.T) {
	env := newNetEnv(t)
	env.createNet(t, "inside", func(r *network.CreateRequest) { r.Internal = true })
	cases := []struct {
		mode string
		want []string
		not  []string
	}{
		{"bridge", []string{"eth0", "default via", "nameserver 127.0.0.11", "lo UP"}, nil},
		{"none", []string{"lo UP"}, []string{"eth0", "default via"}},
		{"inside", []string{"eth0", "nameserver 127.0.0.11"}, []string{"default via"}},
	}
	script := `ip -o link | sed 's/^[0-9]*: //; s/@.*//; s/: <.*,UP.*/ UP/'; ip route; cat /etc/resolv.conf; grep "$(hostname)" /etc/hosts`
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			id := env.runCtr(t, "", c.mode, []string{"sh", "-c", script}, nil)
			code, out := env.output(t, id)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in:\n%s", w, out)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("unexpected %q in:\n%s", w, out)
				}
			}
			if c.mode != "none" {
				ip := env.inspect(t, id).NetworkSettings.Networks[c.mode]
				if ip == nil {
					t.Fatalf("no endpoint for %s", c.mode)
				}
				// An exited container keeps its network, without an address.
				if ip.IPAddress.IsValid() {
					t.Errorf("exited container still has address %s", ip.IPAddress)
				}
			}
		})
	}
}

// Containers on two user-defined networks cannot connect to each other;
// connect gives a running container an interface on the other network at
// once, and disconnect takes it away.
func TestNetworkIsolationConnectDisconnect(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	env.createNet(t, "neta", nil)
	env.createNet(t, "netb", nil)
	srv := env.runCtr(t, "srv", "neta", []string{"sh", "-c", "echo hi > /tmp/index.html; exec httpd -f -p 80 -h /tmp"}, nil)
	addr := env.inspect(t, srv).NetworkSettings.Networks["neta"].IPAddress
	id := env.runCtr(t, "", "netb", []string{"sh", "-c", "timeout 3 wget -q -O - http://" + addr.String() + "/; exit $?"}, nil)
	if code, out := env.output(t, id); code == 0 {
		t.Errorf("a container on netb reached %s on neta: %q", addr, out)
	}

	cli := env.runCtr(t, "cli", "netb", []string{"sleep", "60"}, nil)
	if err := env.nets.Connect(ctx, "neta", "cli", nil); err != nil {
		t.Fatal(err)
	}
	if err := env.nets.Connect(ctx, "neta", "cli", nil); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("second connect: %v, want forbidden", err)
	}
	ns := env.inspect(t, cli).NetworkSettings
	if ns.Networks["neta"] == nil || !ns.Networks["neta"].IPAddress.IsValid() {
		t.Fatalf("after connect: %+v", ns.Networks)
	}
	ifaces := func() []string {
		var names []string
		if err := netns.Do(ns.SandboxKey, func() error {
			ifs, err := net.Interfaces()
			for _, i := range ifs {
				names = append(names, i.Name)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return names
	}
	if got := strings.Join(ifaces(), " "); got != "lo eth0 eth1" {
		t.Errorf("interfaces after connect: %s", got)
	}
	// Through eth1 it reaches srv now.
	code, out, err := env.execOut(t, cli, "timeout", "5", "wget", "-q", "-O", "-", "http://srv/")
	if err != nil || code != 0 || !strings.Contains(out, "hi") {
		t.Errorf("wget srv after connect: %d %q %v", code, out, err)
	}
	if err := env.nets.Disconnect(ctx, "neta", "cli", false); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ifaces(), " "); got != "lo eth0" {
		t.Errorf("interfaces after disconnect: %s", got)
	}
	if _, ok := env.inspect(t, cli).NetworkSettings.Networks["neta"]; ok {
		t.Error("neta still in the container's networks after disconnect")
	}
}

// Bad input is refused with the right category and leaves nothing: an
// overlapping subnet, a name in use, an unknown network, a host port in
// use, an address outside the subnet.
func TestNetworkBadInput(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	env.createNet(t, "fixed", func(r *network.CreateRequest) {
		r.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: mustPrefix("10.231.0.0/24")}}}
	})
	_, err := env.nets.Create(ctx, network.CreateRequest{Name: "overlap", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: mustPrefix("10.231.0.128/25")}}}})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("overlapping subnet: %v", err)
	}
	if _, err := env.nets.Create(ctx, network.CreateRequest{Name: "fixed"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("name in use: %v", err)
	}
	if _, err := env.nets.Create(ctx, network.CreateRequest{Name: "bridge"}); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("predefined name: %v", err)
	}
	if v := enginetest.Links(env.prefix + "-"); len(v) != 2 { // the default bridge and fixed's
		t.Errorf("bridges after refused creates: %v", v)
	}
	_, err = env.cs.Create(ctx, "", container.CreateRequest{Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{NetworkMode: "nosuchnet"}})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown network: %v", err)
	}
	_, err = env.cs.Create(ctx, "", container.CreateRequest{
		Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{NetworkMode: "fixed"},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"fixed": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: mustAddr("10.9.9.9")}}}},
	})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("address outside the subnet: %v", err)
	}
	_, err = env.cs.Create(ctx, "", container.CreateRequest{
		Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"bridge": {Aliases: []string{"x"}}}},
	})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("alias on the default bridge: %v", err)
	}

	// A fixed address in use, then a host port in use: the start fails,
	// and leaves no veth, namespace or address behind.
	first := env.runCtr(t, "", "fixed", []string{"sleep", "60"}, func(_ *container.Config, _ *container.HostConfig, nc *network.NetworkingConfig) {
		nc.EndpointsConfig = map[string]*network.EndpointSettings{"fixed": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: mustAddr("10.231.0.50")}}}
	})
	second, err := env.cs.Create(ctx, "", container.CreateRequest{
		Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{NetworkMode: "fixed", Resources: container.Resources{CgroupParent: env.parent}},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"fixed": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: mustAddr("10.231.0.50")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.cs.Start(ctx, second.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("start with an address in use: %v, want conflict", err)
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	busy, err := env.cs.Create(ctx, "", container.CreateRequest{
		Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: &container.HostConfig{NetworkMode: "fixed", Resources: container.Resources{CgroupParent: env.parent},
			PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: port}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.cs.Start(ctx, busy.ID)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "port is already allocated") {
		t.Errorf("start with a host port in use: %v", err)
	}
	if v := settledLinks(env.prefix+"v", 1); len(v) != 1 { // first's only
		t.Errorf("veths after failed starts: %v", v)
	}
	if e, _ := os.ReadDir(filepath.Join(env.containerEnv.run, "netns")); len(e) != 1 {
		t.Errorf("network namespaces after failed starts: %d, want 1", len(e))
	}
	_ = first
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

// execOut runs cmd in the running container and returns its exit code
// and output.
func (e *netEnv) execOut(t *testing.T, id string, cmd ...string) (int, string, error) {
	t.Helper()
	ctx := context.Background()
	execID, err := e.cs.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, "", err
	}
	var out testutil.Buffer
	if err := e.cs.ExecStart(ctx, execID, backend.ExecStartOptions{Stdout: &out, Stderr: &out}); err != nil {
		return -1, out.String(), err
	}
	info, err := e.cs.ExecInspect(ctx, execID)
	if err != nil {
		return -1, out.String(), err
	}
	if info.ExitCode == nil {
		return -1, out.String(), fmt.Errorf("exec has no exit code")
	}
	return *info.ExitCode, out.String(), nil
}

// /etc/hosts names the container's address, --add-host entries (with
// host-gateway as the network's gateway); resolv.conf points at the
// embedded DNS server with the search domains and options given, also
// with --dns (whose servers the embedded one forwards to).
func TestNetworkEtcFiles(t *testing.T) {
	env := newNetEnv(t)
	id := env.runCtr(t, "", "bridge", []string{"sh", "-c", "cat /etc/hosts /etc/resolv.conf; hostname"}, func(cfg *container.Config, hc *container.HostConfig, _ *network.NetworkingConfig) {
		cfg.Hostname = "box"
		hc.ExtraHosts = []string{"db:10.0.0.2", "gw:host-gateway"}
		hc.DNSSearch = []string{"example.org"}
		hc.DNSOptions = []string{"timeout:2"}
	})
	code, out := env.output(t, id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	nr, err := env.nets.lookupRecord("bridge")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"10.0.0.2\tdb\n", nr.Gateway.String() + "\tgw\n", "\tbox\n",
		"nameserver 127.0.0.11\n", "search example.org\n", "timeout:2", "ndots:0", "\nbox\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "127.0.0.1\tbox") {
		t.Errorf("the hostname is given the loopback although the container has an address:\n%s", out)
	}

	id = env.runCtr(t, "", "bridge", []string{"cat", "/etc/resolv.conf"}, func(_ *container.Config, hc *container.HostConfig, _ *network.NetworkingConfig) {
		hc.DNS = []netip.Addr{mustAddr("10.0.0.53")}
	})
	// --dns feeds the embedded server (its foreign names go to
	// 10.0.0.53, as with docker on a user network): resolv.conf still
	// names 127.0.0.11.
	if _, out := env.output(t, id); !strings.Contains(out, "nameserver 127.0.0.11\n") || strings.Contains(out, "10.0.0.53") {
		t.Errorf("resolv.conf with --dns:\n%s", out)
	}
}

// A dual-stack network (--ipv6) gives its containers an IPv6 address and
// route besides the IPv4 ones; they reach each other over IPv6, and the
// embedded DNS server answers AAAA queries for their names.
func TestNetworkIPv6(t *testing.T) {
	env := newNetEnv(t)
	v6 := true
	env.createNet(t, "dual", func(r *network.CreateRequest) {
		r.EnableIPv6 = &v6
		r.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: mustPrefix("10.232.0.0/24")}, {Subnet: mustPrefix("fd00:b:e:1::/64")}}}
	})
	ni, err := env.nets.Inspect(context.Background(), "dual", backend.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ni.EnableIPv6 || len(ni.IPAM.Config) != 2 || ni.IPAM.Config[1].Gateway != mustAddr("fd00:b:e:1::1") {
		t.Errorf("network inspect: EnableIPv6 %v, IPAM %+v", ni.EnableIPv6, ni.IPAM.Config)
	}
	web := env.runCtr(t, "web6", "dual", []string{"sh", "-c", "echo over-v6 > /tmp/index.html; exec httpd -f -p 80 -h /tmp"}, nil)
	es := env.inspect(t, web).NetworkSettings.Networks["dual"]
	if !es.GlobalIPv6Address.Is6() || !mustPrefix("fd00:b:e:1::/64").Contains(es.GlobalIPv6Address) || es.GlobalIPv6PrefixLen != 64 || es.IPv6Gateway != mustAddr("fd00:b:e:1::1") {
		t.Fatalf("endpoint: %+v", es)
	}
	script := "ip -6 route | grep -q '^default via fd00:b:e:1::1' || { echo no v6 default route; ip -6 route; exit 1; }; " +
		"nslookup -type=AAAA web6 127.0.0.11 | grep -q " + es.GlobalIPv6Address.String() + " || { echo no AAAA; nslookup -type=AAAA web6; exit 1; }; " +
		"timeout 5 wget -q -O - http://[" + es.GlobalIPv6Address.String() + "]/; exit $?"
	id := env.runCtr(t, "", "dual", []string{"sh", "-c", script}, nil)
	if code, out := env.output(t, id); code != 0 || !strings.Contains(out, "over-v6") {
		t.Errorf("exit %d: %s", code, out)
	}
}

// Disconnecting a running container from the network its ports were
// published on frees them and inspect shows none, while it stays on its
// other network.
func TestNetworkDisconnectPublished(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	env.createNet(t, "pubnet", nil)
	env.createNet(t, "othernet", nil)
	id := env.runCtr(t, "pub", "pubnet", []string{"sleep", "60"}, func(_ *container.Config, hc *container.HostConfig, _ *network.NetworkingConfig) {
		hc.PortBindings = network.PortMap{network.MustParsePort("80/tcp"): {{}}}
	})
	if err := env.nets.Connect(ctx, "othernet", "pub", nil); err != nil {
		t.Fatal(err)
	}
	bindings := env.inspect(t, id).NetworkSettings.Ports[network.MustParsePort("80/tcp")]
	if len(bindings) != 1 {
		t.Fatalf("bindings: %+v", bindings)
	}
	if err := env.nets.Disconnect(ctx, "pubnet", "pub", false); err != nil {
		t.Fatal(err)
	}
	ns := env.inspect(t, id).NetworkSettings
	if len(ns.Ports) != 0 || ns.Networks["othernet"] == nil {
		t.Errorf("after disconnect: ports %+v, networks %v", ns.Ports, ns.Networks)
	}
	l, err := net.Listen("tcp", "0.0.0.0:"+bindings[0].HostPort)
	if err != nil {
		t.Errorf("the port of the network left is still held: %v", err)
	} else {
		l.Close()
	}
}

// A default bridge that exists with an address (left by an earlier berthd
// whose state is gone, or made by hand) keeps it, as dockerd keeps
// docker0's; it used to get one more subnet at every such start.
func TestDefaultBridgeKeepsItsAddress(t *testing.T) {
	testutil.RequiresRoot(t)
	var raw [2]byte
	rand.Read(raw[:])
	p := "e" + hex.EncodeToString(raw[:])
	br := p + "-0"
	cfg := DefaultConfig()
	cfg.Root = t.TempDir()
	cfg.ExecRoot = t.TempDir()
	cfg.Network = NetworkConfig{Bridge: br, LinkPrefix: p, Table: "berth_test_" + p, MTU: 1500}
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", br).Run()
		exec.Command("nft", "delete", "table", "inet", cfg.Network.Table).Run()
	})
	for _, args := range [][]string{{"link", "add", br, "type", "bridge"}, {"addr", "add", "10.231.45.1/24", "dev", br}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	db, err := metadata.Open(cfg.MetadataPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	nets, err := NewNetworks(context.Background(), NetworksConfig{Config: cfg, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer nets.Close()
	n, err := nets.Inspect(context.Background(), "bridge", backend.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := n.IPAM.Config; len(c) != 1 || c[0].Subnet.String() != "10.231.45.0/24" || c[0].Gateway.String() != "10.231.45.1" {
		t.Fatalf("bridge network IPAM %+v, want 10.231.45.0/24 via 10.231.45.1", c)
	}
}
