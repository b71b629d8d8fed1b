package cli

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/network"
)

// fakeNetworks is the network part of fakeEngine: the three predefined
// networks, "front" (used by the container web) and the unused "backend",
// "net2" and "net10".
type fakeNetworks struct {
	mu       sync.Mutex
	networks []network.Inspect
}

const fakeCreatedNetworkID = "5d1c0ffee5d1c0ffee5d1c0ffee5d1c0ffee5d1c0ffee5d1c0ffee5d1c0ffee0"

func newFakeNetworks(webID string) *fakeNetworks {
	created := time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)
	n := func(name, id, driver string, subnet string, labels map[string]string, users ...string) network.Inspect {
		in := network.Inspect{
			Network: network.Network{Name: name, ID: id, Created: created, Scope: "local", Driver: driver, EnableIPv4: true,
				IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}}, Options: map[string]string{}, Labels: labels},
			Containers: map[string]network.EndpointResource{},
		}
		if subnet != "" {
			p := netip.MustParsePrefix(subnet)
			in.IPAM.Config = []network.IPAMConfig{{Subnet: p, Gateway: p.Addr().Next()}}
		}
		for _, u := range users {
			in.Containers[webID] = network.EndpointResource{Name: u, EndpointID: strings.Repeat("e", 64),
				MacAddress: network.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0, 2}, IPv4Address: netip.MustParsePrefix("10.89.0.2/24")}
		}
		return in
	}
	return &fakeNetworks{networks: []network.Inspect{
		n("bridge", "8f7c3a2b1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a", "bridge", "172.17.0.0/16", map[string]string{}, "web"),
		n("host", "1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c", "host", "", map[string]string{}),
		n("none", "0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b", "null", "", map[string]string{}),
		n("front", "f40e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4f66ad9a0b2e5d3c4b1a0", "bridge", "10.89.0.0/24", map[string]string{"tier": "front"}, "web"),
		n("backend", "bac0e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4f66ad9a0b2e5d3c4b1a", "bridge", "10.89.1.0/24", nil),
		n("net10", "10ae7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4f66ad9a0b2e5d3c4b1a0", "bridge", "10.89.10.0/24", nil),
		n("net2", "20ae7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4f66ad9a0b2e5d3c4b1a0", "bridge", "10.89.2.0/24", nil),
	}}
}

// find looks a network up by name, full ID or ID prefix.
func (f *fakeNetworks) find(ref string) (network.Inspect, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.networks {
		if n.Name == ref || n.ID == ref {
			return n, true
		}
	}
	for _, n := range f.networks {
		if len(ref) >= 3 && strings.HasPrefix(n.ID, ref) {
			return n, true
		}
	}
	return network.Inspect{}, false
}

func predefinedNetwork(name string) bool { return name == "bridge" || name == "host" || name == "none" }

// network answers the /networks routes.
func (e *fakeEngine) network(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	f := e.nets
	notFound := func(ref string) {
		writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "network " + ref + " not found"})
	}
	switch {
	case path == "/networks" && r.Method == http.MethodGet:
		f.mu.Lock()
		list := make([]network.Summary, 0, len(f.networks))
		for _, n := range f.networks {
			list = append(list, network.Summary{Network: n.Network})
		}
		f.mu.Unlock()
		writeFakeJSON(w, http.StatusOK, list)
	case path == "/networks/create":
		var req network.CreateRequest
		json.Unmarshal(body, &req)
		if _, ok := f.find(req.Name); ok {
			writeFakeJSON(w, http.StatusConflict, map[string]string{"message": "network with name " + req.Name + " already exists"})
			return
		}
		writeFakeJSON(w, http.StatusCreated, network.CreateResponse{ID: fakeCreatedNetworkID})
	case path == "/networks/prune":
		writeFakeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: []string{"backend", "net10", "net2"}})
	default:
		rest := strings.TrimPrefix(path, "/networks/")
		ref, verb, _ := strings.Cut(rest, "/")
		n, ok := f.find(ref)
		if !ok {
			notFound(ref)
			return
		}
		switch {
		case verb == "" && r.Method == http.MethodGet:
			writeFakeJSON(w, http.StatusOK, n)
		case verb == "" && r.Method == http.MethodDelete:
			switch {
			case predefinedNetwork(n.Name):
				writeFakeJSON(w, http.StatusForbidden, map[string]string{"message": n.Name + " is a pre-defined network and cannot be removed"})
			case len(n.Containers) > 0:
				writeFakeJSON(w, http.StatusForbidden, map[string]string{"message": "error while removing network: network " + n.Name + " has active endpoints"})
			default:
				w.WriteHeader(http.StatusNoContent)
			}
		case verb == "connect" || verb == "disconnect":
			var req network.ConnectRequest
			json.Unmarshal(body, &req)
			if e.lookupContainer(req.Container) == nil {
				noSuchContainer(w, req.Container)
				return
			}
			w.WriteHeader(http.StatusOK)
		default:
			writeFakeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
		}
	}
}
