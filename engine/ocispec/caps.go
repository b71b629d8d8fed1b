package ocispec

import (
	"fmt"
	"slices"
	"strings"

	"berth.dev/internal/errdefs"
)

// normalizeCap turns "net_admin", "CAP_NET_ADMIN" or "all" into the
// canonical form ("CAP_NET_ADMIN", "ALL"), rejecting unknown names.
func normalizeCap(name string) (string, error) {
	up := strings.ToUpper(strings.TrimSpace(name))
	if up == "ALL" {
		return up, nil
	}
	if !strings.HasPrefix(up, "CAP_") {
		up = "CAP_" + up
	}
	if !slices.Contains(knownCapabilities[:], up) {
		return "", fmt.Errorf("%w: unknown capability: %q", errdefs.ErrInvalidArgument, name)
	}
	return up, nil
}

func normalizeCaps(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, err := normalizeCap(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// capabilities applies --cap-add and --cap-drop to docker's defaults the
// way docker does: --cap-add ALL grants every capability but the dropped
// ones; otherwise --cap-drop ALL starts from nothing, and the added ones
// are granted. all is the full set the kernel knows.
func capabilities(add, drop, all []string, privileged bool) ([]string, error) {
	if privileged {
		return slices.Clone(all), nil
	}
	capAdd, err := normalizeCaps(add)
	if err != nil {
		return nil, err
	}
	capDrop, err := normalizeCaps(drop)
	if err != nil {
		return nil, err
	}
	var base []string
	switch {
	case slices.Contains(capAdd, "ALL"):
		base, capAdd = all, nil
	case slices.Contains(capDrop, "ALL"):
		base = nil
	default:
		base = DefaultCapabilities()
	}
	var caps []string
	for _, c := range append(slices.Clone(base), capAdd...) {
		if !slices.Contains(capDrop, c) && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}
