package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"berth.dev/api/docker/backend"
	"berth.dev/internal/errdefs"
	"berth.dev/metadata"
	"berth.dev/network/bridge"
	"berth.dev/network/dns"
	"berth.dev/network/firewall"
	"berth.dev/network/ipam"
)

// Options of the bridge driver that berth reads (docker's names).
const (
	optBridgeName = "com.docker.network.bridge.name"
	optMTU        = "com.docker.network.driver.mtu"
	optMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
	optICC        = "com.docker.network.bridge.enable_icc"
	optDefault    = "com.docker.network.bridge.default_bridge"
	optHostIP     = "com.docker.network.bridge.host_binding_ipv4"
)

// Networks is the engine's network service: the predefined networks
// (bridge, host, none) and user-defined bridge networks, each a Linux
// bridge with its own subnet; the containers' endpoints on them (a veth
// pair into the container's pinned network namespace, an address from the
// network's allocator); the ports they publish; berth's nftables table,
// rebuilt whole from this state at each change; and the embedded DNS
// server that answers containers' names on user-defined networks. It
// implements the Docker API's NetworkBackend.
//
// Network records live in the database. Addresses and endpoints are
// derived from the container records at start (Recover): a running
// container's record holds what it was given, so nothing is stored twice.
type Networks struct {
	cfg  *Config
	db   *metadata.DB
	log  *slog.Logger
	fw   *firewall.Firewall
	dns  *dns.Server
	ctrs *Containers // set by NewContainers

	// fwMu serialises firewall applies; applied is the generation of the
	// state in place, so that an older one never replaces a newer.
	fwMu    sync.Mutex
	applied uint64

	gen  uint64 // of the last state computed, under mu
	mu   sync.Mutex
	nets map[string]*netw // by ID
}

// netw is a network in memory: its record, its address allocator and its
// endpoints by container ID.
type netw struct {
	rec    netRecord
	alloc  *ipam.Allocator
	alloc6 *ipam.Allocator // nil without IPv6
	eps    map[string]*endpoint
}

// netRecord is a network as the database keeps it.
type netRecord struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Driver  string       `json:"driver"` // bridge, host or null
	Created time.Time    `json:"created"`
	Bridge  string       `json:"bridge,omitempty"`
	Subnet  netip.Prefix `json:"subnet,omitzero"`
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	// The IPv6 subnet of a dual-stack network (--ipv6).
	Subnet6    netip.Prefix      `json:"subnet6,omitzero"`
	IPRange6   netip.Prefix      `json:"ipRange6,omitzero"`
	Gateway6   netip.Addr        `json:"gateway6,omitzero"`
	MTU        int               `json:"mtu,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
	Masquerade bool              `json:"masquerade,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	IPAMDriver string            `json:"ipamDriver,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// endpoint is a container's attachment to a network.
type endpoint struct {
	ID        string
	Container string
	Name      string // the container's name, without "/"
	Aliases   []string
	Addr      netip.Addr
	Addr6     netip.Addr // on a dual-stack network
	MAC       []byte
	HostIf    string
	IfName    string
	Ports     []publishedPort
}

// publishedPort is one host port forwarded to the endpoint, held by its
// reservation while the container runs.
type publishedPort struct {
	rule firewall.Port
	res  *firewall.Reservation
}

// NetworksConfig gathers what NewNetworks needs.
type NetworksConfig struct {
	Config *Config
	DB     *metadata.DB
	Log    *slog.Logger
}

// NewNetworks loads the networks, makes the predefined ones on the first
// run, and brings every bridge up (after a reboot they are gone).
func NewNetworks(ctx context.Context, c NetworksConfig) (*Networks, error) {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nc := c.Config.Network
	n := &Networks{cfg: c.Config, db: c.DB, log: log, fw: firewall.New(nc.Table), nets: map[string]*netw{}}
	host, _ := os.ReadFile("/etc/resolv.conf")
	n.dns = dns.NewServer(n.lookup, n.reverse, dns.Upstreams(host))
	if err := n.load(ctx); err != nil {
		return nil, err
	}
	if err := n.predefine(ctx); err != nil {
		return nil, err
	}
	forward, forward6 := false, false
	for _, w := range n.nets {
		if w.rec.Driver != "bridge" {
			continue
		}
		if err := n.ensureBridge(ctx, &w.rec); err != nil {
			return nil, fmt.Errorf("network %s: %w", w.rec.Name, err)
		}
		forward = forward || !w.rec.Internal
		forward6 = forward6 || !w.rec.Internal && w.rec.Subnet6.IsValid()
	}
	if forward {
		n.enableForwarding(forward6)
	}
	return n, nil
}

// enableForwarding makes the host route for the bridge networks (IPv4,
// and IPv6 when one has a v6 subnet), saying what it changed.
func (n *Networks) enableForwarding(v6 bool) {
	if changed, err := bridge.EnableForwarding(); err != nil {
		n.log.Warn("cannot enable IPv4 forwarding: containers on bridge networks have no outbound access", "err", err)
	} else if changed {
		n.log.Info("enabled IPv4 forwarding on the host (net.ipv4.ip_forward=1) for bridge networks")
	}
	if !v6 {
		return
	}
	if changed, err := bridge.EnableForwarding6(); err != nil {
		n.log.Warn("cannot enable IPv6 forwarding: containers on IPv6 networks have no outbound access", "err", err)
	} else if changed {
		n.log.Info("enabled IPv6 forwarding on the host (net.ipv6.conf.all.forwarding=1) for IPv6 networks")
	}
}

// Close stops the DNS server. Links and rules stay: running containers
// keep their network. The directory of pinned namespaces, a mount point
// of its own, is unmounted when no pin is left in it.
func (n *Networks) Close() error {
	err := n.dns.Close()
	dir := filepath.Join(n.cfg.ExecRoot, "netns")
	if e, rerr := os.ReadDir(dir); rerr == nil && len(e) == 0 {
		if uerr := unix.Unmount(dir, unix.MNT_DETACH); uerr == nil {
			os.Remove(dir)
		}
	}
	return err
}

func (n *Networks) load(ctx context.Context) error {
	return n.db.View(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketNetworks).ForEach(func(k, v []byte) error {
			var rec netRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				n.log.Warn("network record unreadable; skipped", "id", string(k), "err", err)
				return nil
			}
			w := &netw{rec: rec, eps: map[string]*endpoint{}}
			if rec.Driver == "bridge" {
				a, err := ipam.NewAllocator(rec.Subnet, rec.IPRange, rec.Gateway)
				if err != nil {
					n.log.Warn("network record with a bad address config; skipped", "name", rec.Name, "err", err)
					return nil
				}
				w.alloc = a
				if rec.Subnet6.IsValid() {
					a6, err := ipam.NewAllocator(rec.Subnet6, rec.IPRange6, rec.Gateway6)
					if err != nil {
						n.log.Warn("network record with a bad IPv6 config; skipped", "name", rec.Name, "err", err)
						return nil
					}
					w.alloc6 = a6
				}
			}
			n.nets[rec.ID] = w
			return nil
		})
	})
}

func (n *Networks) save(ctx context.Context, rec *netRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return n.db.Update(context.WithoutCancel(ctx), func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketNetworks).Put([]byte(rec.ID), data)
	})
}

// predefine makes the bridge, host and none networks when missing.
func (n *Networks) predefine(ctx context.Context) error {
	have := map[string]bool{}
	for _, w := range n.nets {
		have[w.rec.Name] = true
	}
	if !have["none"] {
		if err := n.add(ctx, netRecord{ID: newID(), Name: "none", Driver: "null", Created: time.Now().UTC()}, nil, nil); err != nil {
			return err
		}
	}
	if !have["host"] {
		if err := n.add(ctx, netRecord{ID: newID(), Name: "host", Driver: "host", Created: time.Now().UTC()}, nil, nil); err != nil {
			return err
		}
	}
	if have["bridge"] {
		return nil
	}
	nc := n.cfg.Network
	var subnet netip.Prefix
	if nc.Subnet != "" {
		p, err := netip.ParsePrefix(nc.Subnet)
		if err != nil {
			return fmt.Errorf("%w: [network] subnet %q: %w", errdefs.ErrInvalidArgument, nc.Subnet, err)
		}
		subnet = p
	} else {
		// A bridge of that name that has an address already (from an
		// earlier berthd whose state is gone, or made by hand) keeps
		// it, as dockerd keeps docker0's: a new subnet would be added
		// beside it on every such start.
		addrs, err := bridge.Addrs(ctx, nc.Bridge)
		if err != nil {
			return fmt.Errorf("default bridge network: %w", err)
		}
		if len(addrs) > 0 && addrs[0].Bits() <= 30 {
			subnet = addrs[0]
		} else if subnet, err = ipam.PickSubnet(ipam.DefaultPools, n.inUse(nil)); err != nil {
			return fmt.Errorf("default bridge network: %w", err)
		}
	}
	gw := netip.Addr{}
	if subnet.Addr() != subnet.Masked().Addr() {
		// "172.18.0.1/16" names the gateway too.
		gw = subnet.Addr()
	}
	a, err := ipam.NewAllocator(subnet.Masked(), netip.Prefix{}, gw)
	if err != nil {
		return fmt.Errorf("default bridge network: %w", err)
	}
	mtu := nc.MTU
	if mtu == 0 {
		mtu = 1500
	}
	rec := netRecord{
		ID: newID(), Name: "bridge", Driver: "bridge", Created: time.Now().UTC(), Bridge: nc.Bridge,
		Subnet: a.Subnet(), Gateway: a.Gateway(), MTU: mtu, Masquerade: true, IPAMDriver: "default",
		Options: map[string]string{
			optDefault: "true", optICC: "true", optMasquerade: "true", optHostIP: "0.0.0.0",
			optBridgeName: nc.Bridge, optMTU: strconv.Itoa(mtu),
		},
	}
	return n.add(ctx, rec, a, nil)
}

// inUse is every subnet that a new network must not overlap: the other
// networks' and the host's routes (except those of berth's own bridges,
// which the networks list already).
func (n *Networks) inUse(except *netRecord) []netip.Prefix {
	var out []netip.Prefix
	own := map[netip.Prefix]bool{}
	for _, w := range n.nets {
		if w.rec.Subnet.IsValid() && (except == nil || w.rec.ID != except.ID) {
			out = append(out, w.rec.Subnet)
			own[w.rec.Subnet] = true
		}
	}
	routes, err := ipam.HostRoutes()
	if err != nil {
		n.log.Warn("read the host's routes", "err", err)
	}
	for _, r := range routes {
		if !own[r.Masked()] {
			out = append(out, r)
		}
	}
	return out
}

// add records a new network and keeps it in memory. The caller holds n.mu
// or is NewNetworks.
func (n *Networks) add(ctx context.Context, rec netRecord, a, a6 *ipam.Allocator) error {
	if err := n.save(ctx, &rec); err != nil {
		return err
	}
	n.nets[rec.ID] = &netw{rec: rec, alloc: a, alloc6: a6, eps: map[string]*endpoint{}}
	return nil
}

func (n *Networks) ensureBridge(ctx context.Context, rec *netRecord) error {
	cfg := bridge.Config{Name: rec.Bridge, Address: netip.PrefixFrom(rec.Gateway, rec.Subnet.Bits()), MTU: rec.MTU}
	if rec.Subnet6.IsValid() {
		cfg.Address6 = netip.PrefixFrom(rec.Gateway6, rec.Subnet6.Bits())
	}
	return bridge.Ensure(ctx, cfg)
}

// find resolves a network by full ID, name or unique ID prefix, as dockerd
// does: an exact ID first, then a name, then a prefix. The caller holds
// n.mu.
func (n *Networks) find(name string) (*netw, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: network %s not found", errdefs.ErrNotFound, name)
	}
	if w, ok := n.nets[name]; ok {
		return w, nil
	}
	for _, w := range n.nets {
		if w.rec.Name == name {
			return w, nil
		}
	}
	var found []*netw
	for id, w := range n.nets {
		if strings.HasPrefix(id, name) {
			found = append(found, w)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: network %s not found", errdefs.ErrNotFound, name)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: network %s is ambiguous (%d matches found based on ID prefix)", errdefs.ErrInvalidArgument, name, len(found))
}

// lookupRecord returns a copy of the named network's record.
func (n *Networks) lookupRecord(name string) (netRecord, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w, err := n.find(name)
	if err != nil {
		return netRecord{}, err
	}
	return w.rec, nil
}

func predefined(name string) bool { return name == "bridge" || name == "host" || name == "none" }

// Create makes a user-defined bridge network.
func (n *Networks) Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	if req.Name == "" {
		return network.CreateResponse{}, fmt.Errorf("%w: invalid name: name is empty", errdefs.ErrInvalidArgument)
	}
	if !validName.MatchString(req.Name) || strings.HasPrefix(req.Name, "/") {
		return network.CreateResponse{}, fmt.Errorf("%w: invalid network name %q, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", errdefs.ErrInvalidArgument, req.Name)
	}
	if predefined(req.Name) {
		return network.CreateResponse{}, fmt.Errorf("%w: %s is a pre-defined network and cannot be created", errdefs.ErrForbidden, req.Name)
	}
	driver := req.Driver
	if driver == "" {
		driver = "bridge"
	}
	if driver != "bridge" {
		return network.CreateResponse{}, fmt.Errorf("%w: plugin %q not found", errdefs.ErrNotFound, driver)
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return network.CreateResponse{}, fmt.Errorf("%w: IPv4 cannot be disabled on a bridge network", errdefs.ErrInvalidArgument)
	}
	rec := netRecord{
		ID: newID(), Name: req.Name, Driver: "bridge", Created: time.Now().UTC(), Internal: req.Internal,
		Attachable: req.Attachable, Masquerade: !req.Internal, MTU: n.cfg.Network.MTU, IPAMDriver: "default",
		Options: maps.Clone(req.Options), Labels: maps.Clone(req.Labels),
	}
	if rec.MTU == 0 {
		rec.MTU = 1500
	}
	if rec.Options == nil {
		rec.Options = map[string]string{}
	}
	if rec.Labels == nil {
		rec.Labels = map[string]string{}
	}
	for k, v := range rec.Options {
		switch k {
		case optBridgeName:
			if len(v) == 0 || len(v) > 15 || strings.ContainsAny(v, "/ \t\n:") {
				return network.CreateResponse{}, fmt.Errorf("%w: invalid bridge name %q", errdefs.ErrInvalidArgument, v)
			}
			rec.Bridge = v
		case optMTU:
			m, err := strconv.Atoi(v)
			if err != nil || m < 68 || m > 65535 {
				return network.CreateResponse{}, fmt.Errorf("%w: invalid MTU %q", errdefs.ErrInvalidArgument, v)
			}
			rec.MTU = m
		case optMasquerade:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return network.CreateResponse{}, fmt.Errorf("%w: invalid value %q for %s", errdefs.ErrInvalidArgument, v, k)
			}
			rec.Masquerade = b && !req.Internal
		case optICC:
			if _, err := strconv.ParseBool(v); err != nil {
				return network.CreateResponse{}, fmt.Errorf("%w: invalid value %q for %s", errdefs.ErrInvalidArgument, v, k)
			}
		}
	}
	if rec.Bridge == "" {
		rec.Bridge = n.cfg.Network.LinkPrefix + "-" + rec.ID[:14-len(n.cfg.Network.LinkPrefix)]
	}
	// One IPv4 config and, with --ipv6, one IPv6 config.
	var cfg, cfg6 network.IPAMConfig
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return network.CreateResponse{}, fmt.Errorf("%w: IPAM driver %q not found", errdefs.ErrNotFound, req.IPAM.Driver)
		}
		seen4, seen6 := false, false
		for _, c := range req.IPAM.Config {
			if !c.Subnet.IsValid() && (c.Gateway.IsValid() || c.IPRange.IsValid()) {
				return network.CreateResponse{}, fmt.Errorf("%w: every ip-range or gateway must have a corresponding subnet", errdefs.ErrInvalidArgument)
			}
			switch {
			case !c.Subnet.IsValid():
			case c.Subnet.Addr().Is4() && !seen4:
				cfg, seen4 = c, true
			case c.Subnet.Addr().Is6() && !seen6:
				cfg6, seen6 = c, true
			default:
				return network.CreateResponse{}, fmt.Errorf("%w: only one IPv4 and one IPv6 subnet per network are supported", errdefs.ErrNotImplemented)
			}
		}
	}
	ipv6 := req.EnableIPv6 != nil && *req.EnableIPv6 || cfg6.Subnet.IsValid()
	if ipv6 && !cfg6.Subnet.IsValid() {
		// As docker: a unique local /64 of its own (RFC 4193, random
		// global ID).
		var raw [5]byte
		rand.Read(raw[:])
		a := [16]byte{0xfd, raw[0], raw[1], raw[2], raw[3], raw[4]}
		cfg6.Subnet = netip.PrefixFrom(netip.AddrFrom16(a), 64)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, w := range n.nets {
		if w.rec.Name == req.Name {
			return network.CreateResponse{}, fmt.Errorf("%w: network with name %s already exists", errdefs.ErrConflict, req.Name)
		}
		if w.rec.Bridge == rec.Bridge {
			return network.CreateResponse{}, fmt.Errorf("%w: bridge name %s is used by network %s", errdefs.ErrConflict, rec.Bridge, w.rec.Name)
		}
	}
	if cfg6.Subnet.IsValid() {
		if cfg6.Subnet != cfg6.Subnet.Masked() {
			return network.CreateResponse{}, fmt.Errorf("%w: invalid subnet %s: it should be %s", errdefs.ErrInvalidArgument, cfg6.Subnet, cfg6.Subnet.Masked())
		}
		for _, w := range n.nets {
			if w.rec.Subnet6.IsValid() && ipam.Overlaps(w.rec.Subnet6, cfg6.Subnet) {
				return network.CreateResponse{}, fmt.Errorf("%w: invalid pool request: Pool overlaps with other one on this address space (network %s has %s)", errdefs.ErrConflict, w.rec.Name, w.rec.Subnet6)
			}
		}
	}
	subnet := cfg.Subnet
	if subnet.IsValid() {
		if subnet != subnet.Masked() {
			return network.CreateResponse{}, fmt.Errorf("%w: invalid subnet %s: it should be %s", errdefs.ErrInvalidArgument, subnet, subnet.Masked())
		}
		for _, w := range n.nets {
			if w.rec.Subnet.IsValid() && ipam.Overlaps(w.rec.Subnet, subnet) {
				return network.CreateResponse{}, fmt.Errorf("%w: invalid pool request: Pool overlaps with other one on this address space (network %s has %s)", errdefs.ErrConflict, w.rec.Name, w.rec.Subnet)
			}
		}
	} else {
		p, err := ipam.PickSubnet(ipam.DefaultPools, n.inUse(nil))
		if err != nil {
			return network.CreateResponse{}, err
		}
		subnet = p
	}
	a, err := ipam.NewAllocator(subnet, cfg.IPRange, cfg.Gateway)
	if err != nil {
		return network.CreateResponse{}, err
	}
	rec.Subnet, rec.IPRange, rec.Gateway = a.Subnet(), cfg.IPRange, a.Gateway()
	var a6 *ipam.Allocator
	if cfg6.Subnet.IsValid() {
		if a6, err = ipam.NewAllocator(cfg6.Subnet, cfg6.IPRange, cfg6.Gateway); err != nil {
			return network.CreateResponse{}, err
		}
		rec.Subnet6, rec.IPRange6, rec.Gateway6 = a6.Subnet(), cfg6.IPRange, a6.Gateway()
	}
	if err := n.ensureBridge(ctx, &rec); err != nil {
		bridge.Delete(context.WithoutCancel(ctx), rec.Bridge)
		return network.CreateResponse{}, fmt.Errorf("create bridge %s: %w", rec.Bridge, err)
	}
	if err := n.add(ctx, rec, a, a6); err != nil {
		bridge.Delete(context.WithoutCancel(ctx), rec.Bridge)
		return network.CreateResponse{}, err
	}
	if err := n.applyLocked(ctx); err != nil {
		n.log.Warn("firewall rules for the new network", "network", rec.Name, "err", err)
	}
	if !rec.Internal {
		n.enableForwarding(rec.Subnet6.IsValid())
	}
	n.publish(&rec, events.ActionCreate, nil)
	return network.CreateResponse{ID: rec.ID}, nil
}

// Remove deletes a user-defined network without endpoints.
func (n *Networks) Remove(ctx context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	w, err := n.find(name)
	if err != nil {
		return err
	}
	return n.removeLocked(ctx, w)
}

func (n *Networks) removeLocked(ctx context.Context, w *netw) error {
	if predefined(w.rec.Name) {
		return fmt.Errorf("%w: %s is a pre-defined network and cannot be removed", errdefs.ErrForbidden, w.rec.Name)
	}
	if len(w.eps) > 0 {
		return fmt.Errorf("%w: error while removing network: network %s has active endpoints", errdefs.ErrForbidden, w.rec.Name)
	}
	if err := n.db.Update(context.WithoutCancel(ctx), func(tx *bolt.Tx) error {
		return tx.Bucket(metadata.BucketNetworks).Delete([]byte(w.rec.ID))
	}); err != nil {
		return err
	}
	delete(n.nets, w.rec.ID)
	if err := n.applyLocked(ctx); err != nil {
		n.log.Warn("firewall rules after removing a network", "network", w.rec.Name, "err", err)
	}
	if err := bridge.Delete(context.WithoutCancel(ctx), w.rec.Bridge); err != nil {
		n.log.Warn("remove bridge", "bridge", w.rec.Bridge, "err", err)
	}
	n.publish(&w.rec, events.ActionDestroy, nil)
	return nil
}

// List returns the networks that pass the filters.
func (n *Networks) List(ctx context.Context, filters backend.NetworkFilters) ([]network.Summary, error) {
	match, err := networkFilter(filters, false)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []network.Summary
	for _, w := range n.sorted() {
		if match(w) {
			out = append(out, network.Summary{Network: n.apiNetwork(w)})
		}
	}
	return out, nil
}

// sorted returns the networks by name. The caller holds n.mu.
func (n *Networks) sorted() []*netw {
	out := slices.Collect(maps.Values(n.nets))
	slices.SortFunc(out, func(a, b *netw) int { return strings.Compare(a.rec.Name, b.rec.Name) })
	return out
}

// networkFilter compiles list (or, with prune, prune) filters.
func networkFilter(f backend.NetworkFilters, prune bool) (func(*netw) bool, error) {
	allowed := []string{"dangling", "driver", "id", "label", "name", "scope", "type"}
	if prune {
		allowed = []string{"label", "label!", "until"}
	}
	var until time.Time
	for k, vs := range f {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("%w: invalid filter '%s'", errdefs.ErrInvalidArgument, k)
		}
		if k == "until" {
			for _, v := range vs {
				t, err := parseUntil(v)
				if err != nil {
					return nil, err
				}
				until = t
			}
		}
		if k == "type" {
			for _, v := range vs {
				if v != "custom" && v != "builtin" {
					return nil, fmt.Errorf("%w: invalid filter: 'type'='%s'", errdefs.ErrInvalidArgument, v)
				}
			}
		}
	}
	labelMatch := func(labels map[string]string, v string) bool {
		k, val, hasVal := strings.Cut(v, "=")
		got, ok := labels[k]
		return ok && (!hasVal || got == val)
	}
	return func(w *netw) bool {
		for k, vs := range f {
			ok := false
			for _, v := range vs {
				switch k {
				case "driver":
					ok = ok || w.rec.Driver == v
				case "id":
					ok = ok || strings.HasPrefix(w.rec.ID, v)
				case "name":
					ok = ok || strings.Contains(w.rec.Name, v)
				case "label":
					ok = ok || labelMatch(w.rec.Labels, v)
				case "label!":
					ok = ok || !labelMatch(w.rec.Labels, v)
				case "scope":
					ok = ok || v == "local"
				case "type":
					ok = ok || (v == "builtin") == predefined(w.rec.Name)
				case "dangling":
					d := v == "true" || v == "1"
					ok = ok || d == (len(w.eps) == 0 && !predefined(w.rec.Name))
				case "until":
					ok = ok || w.rec.Created.Before(until)
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

// parseUntil reads an until filter: a duration before now, or a time.
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(s, 0), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: invalid until filter %q", errdefs.ErrInvalidArgument, v)
}

// apiNetwork is the network as the API shows it. The caller holds n.mu.
func (n *Networks) apiNetwork(w *netw) network.Network {
	r := w.rec
	out := network.Network{
		Name: r.Name, ID: r.ID, Created: r.Created, Scope: "local", Driver: r.Driver,
		EnableIPv4: r.Driver == "bridge", EnableIPv6: r.Subnet6.IsValid(), Internal: r.Internal, Attachable: r.Attachable,
		IPAM:    network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
		Options: map[string]string{}, Labels: map[string]string{},
	}
	if r.Options != nil {
		out.Options = maps.Clone(r.Options)
	}
	if r.Labels != nil {
		out.Labels = maps.Clone(r.Labels)
	}
	if r.Name == "bridge" {
		out.IPAM.Options = nil
	}
	if r.Subnet.IsValid() {
		out.IPAM.Config = []network.IPAMConfig{{Subnet: r.Subnet, IPRange: r.IPRange, Gateway: r.Gateway}}
	}
	if r.Subnet6.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: r.Subnet6, IPRange: r.IPRange6, Gateway: r.Gateway6})
	}
	return out
}

// Inspect describes a network and its running containers' endpoints.
func (n *Networks) Inspect(ctx context.Context, name string, opts backend.NetworkInspectOptions) (network.Inspect, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w, err := n.find(name)
	if err != nil {
		return network.Inspect{}, err
	}
	if opts.Scope != "" && opts.Scope != "local" {
		return network.Inspect{}, fmt.Errorf("%w: network %s not found", errdefs.ErrNotFound, name)
	}
	out := network.Inspect{Network: n.apiNetwork(w), Containers: map[string]network.EndpointResource{}}
	for id, ep := range w.eps {
		out.Containers[id] = network.EndpointResource{
			Name: ep.Name, EndpointID: ep.ID, MacAddress: network.HardwareAddr(ep.MAC),
			IPv4Address: netip.PrefixFrom(ep.Addr, w.rec.Subnet.Bits()),
		}
		if ep.Addr6.IsValid() {
			r := out.Containers[id]
			r.IPv6Address = netip.PrefixFrom(ep.Addr6, w.rec.Subnet6.Bits())
			out.Containers[id] = r
		}
	}
	return out, nil
}

// Prune removes the user-defined networks without endpoints.
func (n *Networks) Prune(ctx context.Context, filters backend.NetworkFilters) (network.PruneReport, error) {
	match, err := networkFilter(filters, true)
	if err != nil {
		return network.PruneReport{}, err
	}
	n.mu.Lock()
	var candidates []netRecord
	for _, w := range n.sorted() {
		if !predefined(w.rec.Name) && len(w.eps) == 0 && match(w) {
			candidates = append(candidates, w.rec)
		}
	}
	n.mu.Unlock()
	var rep network.PruneReport
	for _, r := range candidates {
		if n.ctrs != nil && n.ctrs.usesNetwork(r.Name, r.ID) {
			continue
		}
		n.mu.Lock()
		w := n.nets[r.ID]
		err := errdefs.ErrNotFound
		if w != nil {
			err = n.removeLocked(ctx, w)
		}
		n.mu.Unlock()
		if err != nil {
			n.log.Warn("prune network", "network", r.Name, "err", err)
			continue
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, r.Name)
	}
	return rep, nil
}

// Connect adds a container to a network; a running one gets its interface
// at once.
func (n *Networks) Connect(ctx context.Context, name, ctrName string, settings *network.EndpointSettings) error {
	rec, err := n.lookupRecord(name)
	if err != nil {
		return err
	}
	return n.ctrs.connect(ctx, ctrName, rec, settings)
}

// Disconnect takes a container off a network; a running one loses its
// interface at once.
func (n *Networks) Disconnect(ctx context.Context, name, ctrName string, force bool) error {
	rec, err := n.lookupRecord(name)
	if err != nil {
		return err
	}
	return n.ctrs.disconnect(ctx, ctrName, rec, force)
}

func (n *Networks) publish(rec *netRecord, action events.Action, extra map[string]string) {
	if n.ctrs == nil || n.ctrs.events == nil {
		return
	}
	attrs := map[string]string{"name": rec.Name, "type": rec.Driver}
	maps.Copy(attrs, extra)
	n.ctrs.events.Publish(events.NetworkEventType, action, rec.ID, attrs)
}

// apply rebuilds berth's firewall table from the networks and published
// ports.
func (n *Networks) apply(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.applyLocked(ctx)
}

// applyLocked is apply for a caller holding n.mu.
func (n *Networks) applyLocked(ctx context.Context) error {
	gen, rs := n.ruleset()
	return n.applyRuleset(context.WithoutCancel(ctx), gen, rs)
}

// applyLater is applyLocked in the background, for changes that nobody
// waits for: removing a rule makes the kernel wait for RCU grace periods
// (about 12 ms), which a container's exit need not pay. The caller holds
// n.mu.
func (n *Networks) applyLater() {
	gen, rs := n.ruleset()
	go func() {
		if err := n.applyRuleset(context.Background(), gen, rs); err != nil {
			n.log.Warn("firewall rules", "err", err)
		}
	}()
}

// ruleset is the firewall's state now, with its generation. The caller
// holds n.mu.
func (n *Networks) ruleset() (uint64, firewall.Ruleset) {
	n.gen++
	var rs firewall.Ruleset
	for _, w := range n.sorted() {
		if w.rec.Driver != "bridge" {
			continue
		}
		rs.Networks = append(rs.Networks, firewall.Network{Bridge: w.rec.Bridge, Subnet: w.rec.Subnet, Subnet6: w.rec.Subnet6, Internal: w.rec.Internal, Masquerade: w.rec.Masquerade})
		for _, ep := range w.eps {
			for _, p := range ep.Ports {
				rs.Ports = append(rs.Ports, p.rule)
			}
		}
	}
	return n.gen, rs
}

// applyRuleset applies the state of generation gen, unless a newer one is
// in place already (a background apply that lost the race).
func (n *Networks) applyRuleset(ctx context.Context, gen uint64, rs firewall.Ruleset) error {
	n.fwMu.Lock()
	defer n.fwMu.Unlock()
	if gen < n.applied {
		return nil
	}
	if err := n.fw.Apply(ctx, rs); err != nil {
		return err
	}
	n.applied = gen
	return nil
}

// newEndpointID returns 64 random hex digits.
func newEndpointID() string {
	var raw [32]byte
	rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// lookup answers the embedded DNS server: names of containers (and their
// aliases) on the user-defined networks the asking container is on.
func (n *Networks) lookup(container, name string) ([]netip.Addr, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []netip.Addr
	found := false
	for _, w := range n.nets {
		if w.rec.Name == "bridge" || w.eps[container] == nil {
			continue
		}
		short, scoped := name, false
		if s, ok := strings.CutSuffix(name, "."+strings.ToLower(w.rec.Name)); ok {
			short, scoped = s, true
		}
		for _, ep := range w.eps {
			if ep.answers(name) || scoped && ep.answers(short) {
				found = true
				for _, a := range []netip.Addr{ep.Addr, ep.Addr6} {
					if a.IsValid() && !slices.Contains(out, a) {
						out = append(out, a)
					}
				}
			}
		}
	}
	return out, found
}

// answers reports whether the endpoint has the (lowercase) DNS name.
func (ep *endpoint) answers(name string) bool {
	if strings.ToLower(ep.Name) == name || len(name) == 12 && strings.HasPrefix(ep.Container, name) {
		return true
	}
	for _, a := range ep.Aliases {
		if strings.ToLower(a) == name {
			return true
		}
	}
	return false
}

// reverse answers PTR queries for addresses of the asking container's
// user-defined networks.
func (n *Networks) reverse(container string, addr netip.Addr) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, w := range n.nets {
		if w.rec.Name == "bridge" || w.eps[container] == nil || !w.rec.Subnet.Contains(addr) && !w.rec.Subnet6.Contains(addr) {
			continue
		}
		for _, ep := range w.eps {
			if ep.Addr == addr || ep.Addr6 == addr {
				return ep.Name + "." + w.rec.Name, true
			}
		}
	}
	return "", false
}
