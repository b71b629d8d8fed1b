package docker

import (
	"context"

	"berth.dev/api/docker/backend"
	"github.com/moby/moby/api/types/network"
)

// NetworkBackend is the engine's network service behind /networks. Names
// are a network's name, its full ID or a unique ID prefix, as in docker.
//
// Create answers ErrConflict for a name in use ("network with name x already
// exists") and an overlapping subnet ("Pool overlaps with other one on this
// address space"), ErrInvalidArgument for a bad driver, option or address,
// and ErrForbidden for the predefined networks' names. Remove refuses the
// predefined networks (ErrForbidden) and a network with endpoints
// (ErrForbidden: "error while removing network: network x has active
// endpoints"). Connect and Disconnect work on created and running
// containers; Connect of a container already on the network is ErrForbidden.
type NetworkBackend interface {
	Create(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	List(ctx context.Context, filters backend.NetworkFilters) ([]network.Summary, error)
	Inspect(ctx context.Context, name string, opts backend.NetworkInspectOptions) (network.Inspect, error)
	Remove(ctx context.Context, name string) error
	Connect(ctx context.Context, name, container string, settings *network.EndpointSettings) error
	Disconnect(ctx context.Context, name, container string, force bool) error
	Prune(ctx context.Context, filters backend.NetworkFilters) (network.PruneReport, error)
}
