package engine

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"berth.dev/internal/errdefs"
	"berth.dev/network/bridge"
	netdns "berth.dev/network/dns"
	"berth.dev/network/firewall"
	"berth.dev/network/netns"
)

// A container's networking, from the container service's side: the
// networks it is connected to (record.Networks, by name, with what the
// user asked and, while it runs, what it got), the network namespace
// berthd pins for it before the runtime starts it, its endpoints and
// published ports.

// netNSPath is where the container's network namespace is pinned.
func (c *Containers) netNSPath(id string) string {
	return filepath.Join(c.cfg.ExecRoot, "netns", id)
}

// userNetwork reports whether mode names a network (not none, host,
// container:<x>).
func userNetwork(mode container.NetworkMode) bool {
	return !mode.IsHost() && !mode.IsNone() && !mode.IsContainer()
}

// networkName is the network a mode names: "default" and "" are the
// bridge network.
func networkName(mode container.NetworkMode) string {
	if mode == "" || mode == "default" {
		return "bridge"
	}
	return string(mode)
}

// createEndpoints resolves the networks a new container is connected to:
// the one of --network, and any more the request's networking config
// names. It checks what docker checks: addresses and aliases only on
// user-defined networks, addresses inside the network's subnet.
func (c *Containers) createEndpoints(hc *container.HostConfig, nc *network.NetworkingConfig) (map[string]*network.EndpointSettings, error) {
	mode := hc.NetworkMode
	// docker's CLI sends the endpoint of a plain run under "default".
	asked := map[string]*network.EndpointSettings{}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if name == "default" {
				name = "bridge"
			}
			asked[name] = es
		}
	}
	if mode.IsContainer() {
		if len(asked) > 0 {
			return nil, fmt.Errorf("%w: conflicting options: container type network can't be used with other networks", errdefs.ErrInvalidArgument)
		}
		return nil, nil
	}
	if (mode.IsHost() || mode.IsNone()) && len(asked) > 1 {
		return nil, fmt.Errorf("%w: container cannot be connected to multiple networks with one of the networks in private (none) or host mode", errdefs.ErrInvalidArgument)
	}
	out := map[string]*network.EndpointSettings{}
	primary := networkName(mode)
	names := []string{primary}
	for name := range asked {
		if name != primary && name != string(mode) {
			names = append(names, name)
		}
	}
	for i, name := range names {
		nr, err := c.nets.lookupRecord(name)
		if err != nil {
			return nil, err
		}
		if i > 0 && (nr.Driver == "host" || nr.Driver == "null") {
			return nil, fmt.Errorf("%w: container cannot be connected to multiple networks with one of the networks in private (none) or host mode", errdefs.ErrInvalidArgument)
		}
		es := &network.EndpointSettings{}
		if a := asked[name]; a != nil {
			es = a.Copy()
		} else if a := asked[string(mode)]; i == 0 && a != nil {
			es = a.Copy()
		}
		if err := checkEndpoint(nr, es); err != nil {
			return nil, err
		}
		es.NetworkID = nr.ID
		out[nr.Name] = es
	}
	return out, nil
}

// checkEndpoint refuses settings the network cannot take.
func checkEndpoint(nr netRecord, es *network.EndpointSettings) error {
	ip, ip6 := netip.Addr{}, netip.Addr{}
	if es.IPAMConfig != nil {
		ip, ip6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
	}
	if nr.Name == "bridge" || nr.Driver != "bridge" {
		if ip.IsValid() || ip6.IsValid() {
			return fmt.Errorf("%w: user specified IP address is supported on user defined networks only", errdefs.ErrInvalidArgument)
		}
		if len(es.Aliases) > 0 {
			return fmt.Errorf("%w: network-scoped alias is supported only for containers in user defined networks", errdefs.ErrInvalidArgument)
		}
		return nil
	}
	if ip.IsValid() && (!ip.Is4() || !nr.Subnet.Contains(ip)) {
		return fmt.Errorf("%w: no configured subnet contains IP address %s", errdefs.ErrInvalidArgument, ip)
	}
	if ip6.IsValid() && (!ip6.Is6() || !nr.Subnet6.Contains(ip6)) {
		return fmt.Errorf("%w: no configured subnet contains IP address %s", errdefs.ErrInvalidArgument, ip6)
	}
	return nil
}

// netOrder is the container's networks in the order they get their
// interfaces: the one of --network first (it gives the default route), the
// others by name.
func netOrder(rec *record) []string {
	primary := networkName(rec.HostConfig.NetworkMode)
	var out []string
	if _, ok := rec.Networks[primary]; ok {
		out = append(out, primary)
	}
	var rest []string
	for name := range rec.Networks {
		if name != primary {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// setupNetwork pins the container's network namespace and connects it to
// its networks: an interface on each, the default route through the first,
// its published ports, and the embedded DNS server. It fills rec's
// networking state. On error nothing is left.
func (c *Containers) setupNetwork(ctx context.Context, rec *record) (err error) {
	mode := rec.HostConfig.NetworkMode
	if c.nets == nil || mode.IsHost() || mode.IsContainer() {
		return nil
	}
	path := c.netNSPath(rec.ID)
	netns.Remove(path) // a pin a crash left
	if err := netns.New(path); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	rec.NetNS = path
	defer func() {
		if err != nil {
			c.teardownNetwork(context.WithoutCancel(ctx), rec)
		}
	}()
	if mode.IsNone() {
		return nil
	}
	rec.HostIfs = map[string]string{}
	var primary *endpoint
	var primaryNet netRecord
	serveDNS := false
	for i, name := range netOrder(rec) {
		es := rec.Networks[name]
		ep, nr, err := c.nets.attach(ctx, name, rec, es, "eth"+strconv.Itoa(i), primary == nil)
		if err != nil {
			return fmt.Errorf("network %s: %w", name, err)
		}
		rec.HostIfs[nr.ID] = ep.HostIf
		fillEndpoint(es, ep, nr)
		if primary == nil {
			primary, primaryNet = ep, nr
		}
		serveDNS = true
	}
	if primary != nil && !primaryNet.Internal { // nothing reaches an internal network from outside
		ports, err := c.nets.publishPorts(ctx, primaryNet.ID, rec.ID, rec.Config.ExposedPorts, rec.HostConfig.PortBindings, rec.HostConfig.PublishAllPorts)
		if err != nil {
			return err
		}
		rec.Ports = ports
	}
	if serveDNS {
		if err := c.nets.serveDNS(rec); err != nil {
			return fmt.Errorf("embedded DNS server: %w", err)
		}
	}
	return nil
}

// fillEndpoint records in es what the container got on the network.
func fillEndpoint(es *network.EndpointSettings, ep *endpoint, nr netRecord) {
	es.NetworkID = nr.ID
	es.EndpointID = ep.ID
	es.IPAddress = ep.Addr
	es.IPPrefixLen = nr.Subnet.Bits()
	es.Gateway = nr.Gateway
	es.MacAddress = network.HardwareAddr(ep.MAC)
	es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = netip.Addr{}, 0, netip.Addr{}
	if ep.Addr6.IsValid() {
		es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = ep.Addr6, nr.Subnet6.Bits(), nr.Gateway6
	}
	es.DNSNames = nil
	if nr.Name != "bridge" {
		es.DNSNames = append([]string{ep.Name, ep.Container[:12]}, es.Aliases...)
	}
}

// clearEndpoint drops what a run gave es.
func clearEndpoint(es *network.EndpointSettings) {
	es.EndpointID, es.IPAddress, es.IPPrefixLen, es.Gateway, es.MacAddress, es.DNSNames = "", netip.Addr{}, 0, netip.Addr{}, nil, nil
	es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = netip.Addr{}, 0, netip.Addr{}
}

// teardownNetwork undoes setupNetwork: it works from the record alone, so
// it also cleans up after a crash (the endpoints a dead berthd made).
func (c *Containers) teardownNetwork(ctx context.Context, rec *record) {
	if c.nets == nil || rec.NetNS == "" && len(rec.HostIfs) == 0 {
		return
	}
	// The DNS server's sockets in the namespace go first: they would keep
	// it alive.
	c.nets.dns.Stop(rec.ID)
	for netID, hostIf := range rec.HostIfs {
		c.nets.detach(ctx, netID, rec.ID)
		if rec.NetNS != "" {
			// Deleting a veth makes the kernel wait for RCU grace periods
			// (15-20 ms); when the namespace goes, the kernel deletes the
			// pair itself, in the background.
			continue
		}
		if err := bridge.Detach(ctx, hostIf); err != nil {
			c.log.Warn("remove veth", "id", rec.ID, "link", hostIf, "err", err)
		}
	}
	if rec.NetNS != "" {
		if err := netns.Remove(rec.NetNS); err != nil {
			c.log.Warn("remove network namespace", "id", rec.ID, "err", err)
		}
	}
	for _, es := range rec.Networks {
		clearEndpoint(es)
	}
	rec.HostIfs, rec.NetNS, rec.Ports = nil, "", nil
}

// attach connects the running container of rec to a network: an address
// from the network's allocator (the one asked for, if any), a veth into
// its namespace, named ifName there, with the default route when
// defaultRoute and the network is not internal.
func (n *Networks) attach(ctx context.Context, name string, rec *record, es *network.EndpointSettings, ifName string, defaultRoute bool) (*endpoint, netRecord, error) {
	n.mu.Lock()
	w, err := n.find(name)
	if err == nil && w.rec.Driver != "bridge" {
		err = fmt.Errorf("%w: cannot attach to network %s of driver %s", errdefs.ErrInvalidArgument, w.rec.Name, w.rec.Driver)
	}
	if err == nil && w.eps[rec.ID] != nil {
		err = fmt.Errorf("%w: endpoint with name %s already exists in network %s", errdefs.ErrForbidden, strings.TrimPrefix(rec.Name, "/"), w.rec.Name)
	}
	var want, want6 netip.Addr
	if es.IPAMConfig != nil {
		want, want6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
	}
	var addr, addr6 netip.Addr
	if err == nil {
		addr, err = w.alloc.Allocate(want)
	}
	if err == nil && w.alloc6 != nil {
		if addr6, err = w.alloc6.Allocate(want6); err != nil {
			w.alloc.Release(addr)
		}
	}
	if err != nil {
		n.mu.Unlock()
		return nil, netRecord{}, err
	}
	id := newEndpointID()
	p := n.cfg.Network.LinkPrefix
	ep := &endpoint{
		ID: id, Container: rec.ID, Name: strings.TrimPrefix(rec.Name, "/"), Aliases: slices.Clone(es.Aliases),
		Addr: addr, Addr6: addr6, MAC: bridge.MACFor(addr), HostIf: p + "v" + id[:14-len(p)], IfName: ifName,
	}
	w.eps[rec.ID] = ep
	nr := w.rec
	n.mu.Unlock()
	be := bridge.Endpoint{
		Bridge: nr.Bridge, HostIf: ep.HostIf, NetNS: rec.NetNS, IfName: ifName,
		Address: netip.PrefixFrom(addr, nr.Subnet.Bits()), MAC: ep.MAC, MTU: nr.MTU,
	}
	if addr6.IsValid() {
		be.Address6 = netip.PrefixFrom(addr6, nr.Subnet6.Bits())
	}
	if defaultRoute && !nr.Internal {
		be.Gateway = nr.Gateway
		if addr6.IsValid() {
			be.Gateway6 = nr.Gateway6
		}
	}
	if err = bridge.Attach(ctx, be); err != nil {
		n.mu.Lock()
		delete(w.eps, rec.ID)
		w.alloc.Release(addr)
		if addr6.IsValid() {
			w.alloc6.Release(addr6)
		}
		n.mu.Unlock()
		return nil, netRecord{}, err
	}
	return ep, nr, nil
}

// detach forgets the container's endpoint on the network: its address and
// published ports go back (the firewall is rebuilt when it had ports),
// and says whether it had ports. The caller removes the veth.
func (n *Networks) detach(ctx context.Context, netID, containerID string) (hadPorts bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.nets[netID]
	if w == nil {
		return false
	}
	ep := w.eps[containerID]
	if ep == nil {
		return false
	}
	delete(w.eps, containerID)
	if w.alloc != nil {
		w.alloc.Release(ep.Addr)
	}
	if w.alloc6 != nil && ep.Addr6.IsValid() {
		w.alloc6.Release(ep.Addr6)
	}
	if len(ep.Ports) == 0 {
		return false
	}
	// The ports are free at once; their rules go in the background (a
	// rule left for some milliseconds leads to an address nobody has).
	for _, p := range ep.Ports {
		p.res.Close()
	}
	n.applyLater()
	return true
}

// publishPorts reserves the host ports of the container's bindings (and,
// with all, of every exposed port) and forwards them to its address on the
// network. It returns the bindings as they are (ports picked for "").
func (n *Networks) publishPorts(ctx context.Context, netID, containerID string, exposed network.PortSet, bindings network.PortMap, all bool) (network.PortMap, error) {
	out := network.PortMap{}
	for p := range exposed {
		out[p] = nil
	}
	want := network.PortMap{}
	for p, bs := range bindings {
		want[p] = bs
		out[p] = nil
	}
	if all {
		for p := range exposed {
			if _, ok := want[p]; !ok {
				want[p] = []network.PortBinding{{}}
			}
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.nets[netID]
	if w == nil || w.eps[containerID] == nil {
		return nil, fmt.Errorf("%w: the container has no endpoint to publish ports on", errdefs.ErrFailedPrecondition)
	}
	ep := w.eps[containerID]
	keys := make([]network.Port, 0, len(want))
	for p := range want {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b network.Port) int { return strings.Compare(a.String(), b.String()) })
	var got []publishedPort
	fail := func(err error) (network.PortMap, error) {
		for _, p := range got {
			p.res.Close()
		}
		return nil, err
	}
	for _, p := range keys {
		for _, b := range want[p] {
			hostIP := b.HostIP
			if !hostIP.IsValid() {
				hostIP = netip.IPv4Unspecified()
			}
			hostIP = hostIP.Unmap()
			cip := ep.Addr
			if hostIP.Is6() {
				if !ep.Addr6.IsValid() {
					return fail(fmt.Errorf("%w: cannot publish on %s: the container has no IPv6 address", errdefs.ErrInvalidArgument, hostIP))
				}
				cip = ep.Addr6
			}
			lo, hi, err := hostPortRange(b.HostPort)
			if err != nil {
				return fail(err)
			}
			var res *firewall.Reservation
			for port := lo; ; port++ {
				res, err = firewall.Reserve(string(p.Proto()), hostIP, port)
				if err == nil || port >= hi {
					break
				}
			}
			if err != nil {
				return fail(err)
			}
			got = append(got, publishedPort{rule: portRule(p, hostIP, res.Port(), cip, w.rec.Bridge), res: res})
			out[p] = append(out[p], network.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(res.Port()))})
			if !b.HostIP.IsValid() && ep.Addr6.IsValid() {
				// As docker: a port published on every address is
				// published on every IPv6 address too, same number.
				res6, err := firewall.Reserve(string(p.Proto()), netip.IPv6Unspecified(), res.Port())
				if err != nil {
					return fail(err)
				}
				got = append(got, publishedPort{rule: portRule(p, netip.IPv6Unspecified(), res.Port(), ep.Addr6, w.rec.Bridge), res: res6})
				out[p] = append(out[p], network.PortBinding{HostIP: netip.IPv6Unspecified(), HostPort: strconv.Itoa(int(res.Port()))})
			}
		}
	}
	ep.Ports = got
	if err := n.applyLocked(ctx); err != nil {
		ep.Ports = nil
		return fail(fmt.Errorf("firewall rules for the published ports: %w", err))
	}
	return out, nil
}

// portRule forwards hostIP:hostPort to cip's port p on the bridge; the
// IPv4 unspecified address is every local address (zero for the firewall).
func portRule(p network.Port, hostIP netip.Addr, hostPort uint16, cip netip.Addr, bridgeName string) firewall.Port {
	r := firewall.Port{Proto: string(p.Proto()), HostIP: hostIP, HostPort: hostPort, ContainerIP: cip, ContainerPort: p.Num(), Bridge: bridgeName}
	if hostIP == netip.IPv4Unspecified() {
		r.HostIP = netip.Addr{}
	}
	return r
}

// hostPortRange reads a binding's host port: "" (any), "8080" or
// "8000-8010".
func hostPortRange(s string) (uint16, uint16, error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: invalid host port %q", errdefs.ErrInvalidArgument, s)
	}
	hi := lo
	if isRange {
		if hi, err = strconv.ParseUint(b, 10, 16); err != nil || hi < lo {
			return 0, 0, fmt.Errorf("%w: invalid host port range %q", errdefs.ErrInvalidArgument, s)
		}
	}
	return uint16(lo), uint16(hi), nil
}

// restore takes back the endpoints and ports of a container that kept
// running while berthd was away, from its record.
func (n *Networks) restore(ctx context.Context, rec *record) {
	if len(rec.HostIfs) == 0 {
		return
	}
	n.mu.Lock()
	var primary *endpoint
	var primaryNet *netw
	for _, name := range netOrder(rec) {
		es := rec.Networks[name]
		w := n.nets[es.NetworkID]
		if w == nil || w.alloc == nil || !es.IPAddress.IsValid() {
			continue
		}
		if _, err := w.alloc.Allocate(es.IPAddress); err != nil {
			n.log.Warn("address of a running container", "id", rec.ID, "network", name, "err", err)
		}
		if w.alloc6 != nil && es.GlobalIPv6Address.IsValid() {
			if _, err := w.alloc6.Allocate(es.GlobalIPv6Address); err != nil {
				n.log.Warn("IPv6 address of a running container", "id", rec.ID, "network", name, "err", err)
			}
		}
		ep := &endpoint{
			ID: es.EndpointID, Container: rec.ID, Name: strings.TrimPrefix(rec.Name, "/"), Aliases: slices.Clone(es.Aliases),
			Addr: es.IPAddress, Addr6: es.GlobalIPv6Address, MAC: []byte(es.MacAddress), HostIf: rec.HostIfs[es.NetworkID],
		}
		w.eps[rec.ID] = ep
		if primary == nil {
			primary, primaryNet = ep, w
		}
	}
	if primary != nil {
		for p, bs := range rec.Ports {
			for _, b := range bs {
				port, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					continue
				}
				res, err := firewall.Reserve(string(p.Proto()), b.HostIP, uint16(port))
				if err != nil {
					n.log.Warn("host port of a running container is taken", "id", rec.ID, "port", b.HostPort, "err", err)
					continue
				}
				cip := primary.Addr
				if b.HostIP.Is6() {
					cip = primary.Addr6
				}
				primary.Ports = append(primary.Ports, publishedPort{rule: portRule(p, b.HostIP, uint16(port), cip, primaryNet.rec.Bridge), res: res})
			}
		}
	}
	n.mu.Unlock()
	if err := n.serveDNS(rec); err != nil {
		n.log.Warn("embedded DNS server for a running container", "id", rec.ID, "err", err)
	}
}

// reconcile removes what a crash left that no record owns: veths and
// bridges named with berth's prefix, pinned namespaces; and rebuilds the
// firewall table from the state.
func (n *Networks) reconcile(ctx context.Context, netnsDir string, live map[string]bool) {
	p := n.cfg.Network.LinkPrefix
	n.mu.Lock()
	owned := map[string]bool{}
	for _, w := range n.nets {
		owned[w.rec.Bridge] = true
		for _, ep := range w.eps {
			owned[ep.HostIf] = true
		}
	}
	n.mu.Unlock()
	for _, prefix := range []string{p + "v", p + "-"} {
		links, err := bridge.Links(ctx, prefix)
		if err != nil {
			n.log.Warn("list links", "err", err)
		}
		for _, l := range links {
			if owned[l] {
				continue
			}
			n.log.Info("removing a link no record owns", "link", l)
			var err error
			if prefix == p+"-" {
				err = bridge.Delete(ctx, l)
			} else {
				err = bridge.Detach(ctx, l)
			}
			if err != nil {
				n.log.Warn("remove link", "link", l, "err", err)
			}
		}
	}
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if !live[e.Name()] {
			n.log.Info("removing a network namespace no record owns", "id", e.Name())
			netns.Remove(filepath.Join(netnsDir, e.Name()))
		}
	}
	if err := n.apply(ctx); err != nil {
		n.log.Warn("firewall rules", "err", err)
	}
}

// connect adds the container to the network; a running container gets
// its interface at once.
func (c *Containers) connect(ctx context.Context, name string, nr netRecord, settings *network.EndpointSettings) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	x.op.Lock()
	defer x.op.Unlock()
	rec := x.snapshotRecord()
	mode := rec.HostConfig.NetworkMode
	switch {
	case nr.Driver == "host" || mode.IsHost():
		return fmt.Errorf("%w: container cannot be disconnected from host network or connected to host network", errdefs.ErrForbidden)
	case nr.Driver == "null" || mode.IsNone():
		return fmt.Errorf("%w: container cannot be connected to multiple networks with one of the networks in private (none) mode", errdefs.ErrForbidden)
	case mode.IsContainer():
		return fmt.Errorf("%w: container sharing network namespace with another container or host cannot be connected to any other network", errdefs.ErrForbidden)
	}
	if _, ok := rec.Networks[nr.Name]; ok {
		return fmt.Errorf("%w: endpoint with name %s already exists in network %s", errdefs.ErrForbidden, strings.TrimPrefix(rec.Name, "/"), nr.Name)
	}
	es := &network.EndpointSettings{}
	if settings != nil {
		es = settings.Copy()
	}
	clearEndpoint(es)
	if err := checkEndpoint(nr, es); err != nil {
		return err
	}
	es.NetworkID = nr.ID
	running := rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused
	x.mu.Lock()
	defer x.mu.Unlock()
	if running && x.rec.NetNS != "" {
		ep, _, err := c.nets.attach(ctx, nr.Name, &x.rec, es, "eth"+strconv.Itoa(len(x.rec.HostIfs)), len(x.rec.HostIfs) == 0)
		if err != nil {
			return err
		}
		if x.rec.HostIfs == nil {
			x.rec.HostIfs = map[string]string{}
		}
		x.rec.HostIfs[nr.ID] = ep.HostIf
		fillEndpoint(es, ep, nr)
		if err := c.nets.serveDNS(&x.rec); err != nil {
			c.log.Warn("embedded DNS server", "id", x.rec.ID, "err", err)
		}
	}
	if x.rec.Networks == nil {
		x.rec.Networks = map[string]*network.EndpointSettings{}
	}
	x.rec.Networks[nr.Name] = es
	if err := c.save(ctx, &x.rec); err != nil {
		return err
	}
	c.nets.publish(&nr, events.ActionConnect, map[string]string{"container": x.rec.ID})
	return nil
}

// disconnect takes the container off the network; a running container
// loses its interface at once.
func (c *Containers) disconnect(ctx context.Context, name string, nr netRecord, force bool) error {
	x, err := c.find(name)
	if err != nil {
		return err
	}
	x.op.Lock()
	defer x.op.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	if nr.Driver == "host" {
		return fmt.Errorf("%w: container cannot be disconnected from host network or connected to host network", errdefs.ErrForbidden)
	}
	es, ok := x.rec.Networks[nr.Name]
	if !ok || es.NetworkID != nr.ID {
		return fmt.Errorf("%w: container %s is not connected to network %s", errdefs.ErrForbidden, x.rec.ID[:12], nr.Name)
	}
	if hostIf, ok := x.rec.HostIfs[nr.ID]; ok {
		if c.nets.detach(ctx, nr.ID, x.rec.ID) {
			// The ports were published on this network: they are gone.
			x.rec.Ports = nil
		}
		if err := bridge.Detach(ctx, hostIf); err != nil {
			return err
		}
		delete(x.rec.HostIfs, nr.ID)
	}
	delete(x.rec.Networks, nr.Name)
	if err := c.save(ctx, &x.rec); err != nil {
		return err
	}
	c.nets.publish(&nr, events.ActionDisconnect, map[string]string{"container": x.rec.ID})
	return nil
}

// usesNetwork reports whether a container is connected to the network.
func (c *Containers) usesNetwork(name, id string) bool {
	for _, x := range c.all() {
		x.mu.Lock()
		es, ok := x.rec.Networks[name]
		x.mu.Unlock()
		if ok && es.NetworkID == id {
			return true
		}
	}
	return false
}

// primaryAddr is the container's address and gateway on its first
// network, while it runs.
func primaryAddr(rec *record) (netip.Addr, netip.Addr) {
	for _, name := range netOrder(rec) {
		if es := rec.Networks[name]; es.IPAddress.IsValid() {
			return es.IPAddress, es.Gateway
		}
	}
	return netip.Addr{}, netip.Addr{}
}

// rename gives the container's endpoints its new name (the DNS answers
// it at once).
func (n *Networks) rename(containerID, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, w := range n.nets {
		if ep := w.eps[containerID]; ep != nil {
			ep.Name = name
		}
	}
}

// serveDNS answers the container's DNS queries in its namespace: its
// --dns servers, when given, get the names that are not the engine's (as
// docker's embedded server forwards to them), else the host's resolvers.
func (n *Networks) serveDNS(rec *record) error {
	var opts []netdns.ServeOption
	if len(rec.HostConfig.DNS) > 0 {
		var ups []string
		for _, a := range rec.HostConfig.DNS {
			ups = append(ups, netip.AddrPortFrom(a, 53).String())
		}
		opts = append(opts, netdns.WithUpstreams(ups))
	}
	return n.dns.Serve(rec.ID, rec.NetNS, opts...)
}
