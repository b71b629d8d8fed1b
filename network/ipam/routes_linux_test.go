package ipam

import (
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"berth.dev/internal/testutil"
)

// TestHostRoutes reads the routes of a fresh network namespace standing in
// for the host: a connected route in main, a route in a policy table and a
// default route, which must be left out.
func TestHostRoutes(t *testing.T) {
	testutil.RequiresRoot(t)
	type result struct {
		routes []netip.Prefix
		err    error
	}
	done := make(chan result, 1)
	go func() {
		// The thread moves to a new namespace and is never unlocked, so Go
		// ends it with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		done <- func() result {
			// No dummy driver on every kernel: a bridge serves as well.
			link := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "berthipam0"}}
			if err := netlink.LinkAdd(link); err != nil {
				return result{err: err}
			}
			if err := netlink.LinkSetUp(link); err != nil {
				return result{err: err}
			}
			a, _ := netlink.ParseAddr("10.77.0.1/24")
			if err := netlink.AddrAdd(link, a); err != nil {
				return result{err: err}
			}
			_, dst, _ := net.ParseCIDR("192.0.2.0/24")
			for _, r := range []*netlink.Route{
				{LinkIndex: link.Index, Dst: dst, Table: 100},
				{LinkIndex: link.Index, Gw: net.ParseIP("10.77.0.254")},
			} {
				if err := netlink.RouteAdd(r); err != nil {
					return result{err: err}
				}
			}
			routes, err := HostRoutes()
			return result{routes, err}
		}()
	}()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	for _, want := range []string{"10.77.0.0/24", "192.0.2.0/24"} {
		if !slices.Contains(res.routes, pfx(want)) {
			t.Errorf("HostRoutes() = %v: %s missing", res.routes, want)
		}
	}
	for _, p := range res.routes {
		if p.Bits() == 0 || !p.Addr().Is4() || p.Masked() != p {
			t.Errorf("HostRoutes() = %v: holds %s", res.routes, p)
		}
	}
	// The connected subnet is taken, so the pool's next one is picked.
	if got, err := PickSubnet([]Pool{{Base: pfx("10.77.0.0/16"), Size: 24}}, res.routes); err != nil || got != pfx("10.77.1.0/24") {
		t.Errorf("PickSubnet = %s, %v", got, err)
	}
}
