package ipam

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"berth.dev/internal/errdefs"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

func TestNewAllocator(t *testing.T) {
	tests := []struct {
		name          string
		subnet, rng   string
		gateway       string
		wantGateway   string
		wantErrSubstr string // empty: no error
	}{
		{name: "defaults", subnet: "172.18.0.0/16", wantGateway: "172.18.0.1"},
		{name: "gateway given", subnet: "10.1.0.0/24", gateway: "10.1.0.254", wantGateway: "10.1.0.254"},
		{name: "range", subnet: "10.1.0.0/16", rng: "10.1.5.0/24", wantGateway: "10.1.0.1"},
		{name: "range is subnet", subnet: "10.1.0.0/16", rng: "10.1.0.0/16", wantGateway: "10.1.0.1"},
		{name: "ipv6", subnet: "fd00:1::/64", wantGateway: "fd00:1::1"},
		{name: "ipv6 /48", subnet: "fd00:2::/48", gateway: "fd00:2::ff", wantGateway: "fd00:2::ff"},
		{name: "smallest", subnet: "10.0.0.0/30", wantGateway: "10.0.0.1"},
		{name: "unmasked subnet", subnet: "172.18.0.1/16", wantErrSubstr: "invalid subnet 172.18.0.1/16: it should be 172.18.0.0/16"},
		{name: "no subnet", wantErrSubstr: "invalid subnet"},
		{name: "too small", subnet: "10.0.0.0/31", wantErrSubstr: "too small"},
		{name: "unmasked range", subnet: "10.1.0.0/16", rng: "10.1.5.7/24", wantErrSubstr: "invalid ip-range 10.1.5.7/24: it should be 10.1.5.0/24"},
		{name: "range outside", subnet: "10.1.0.0/16", rng: "10.2.0.0/24", wantErrSubstr: "must be a subset of subnet"},
		{name: "range larger", subnet: "10.1.0.0/16", rng: "10.0.0.0/8", wantErrSubstr: "must be a subset of subnet"},
		{name: "range other family", subnet: "10.1.0.0/16", rng: "fd00::/64", wantErrSubstr: "must be a subset of subnet"},
		{name: "range only broadcast", subnet: "10.1.0.0/16", rng: "10.1.255.255/32", wantErrSubstr: "holds no usable address"},
		{name: "gateway outside", subnet: "10.1.0.0/16", gateway: "10.2.0.1", wantErrSubstr: "invalid gateway 10.2.0.1"},
		{name: "gateway network address", subnet: "10.1.0.0/16", gateway: "10.1.0.0", wantErrSubstr: "invalid gateway"},
		{name: "gateway broadcast", subnet: "10.1.0.0/16", gateway: "10.1.255.255", wantErrSubstr: "invalid gateway"},
		{name: "gateway other family", subnet: "10.1.0.0/16", gateway: "fd00::1", wantErrSubstr: "invalid gateway"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var subnet, rng netip.Prefix
			var gw netip.Addr
			if tc.subnet != "" {
				subnet = pfx(tc.subnet)
			}
			if tc.rng != "" {
				rng = pfx(tc.rng)
			}
			if tc.gateway != "" {
				gw = addr(tc.gateway)
			}
			a, err := NewAllocator(subnet, rng, gw)
			if tc.wantErrSubstr != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("NewAllocator: got %v, want an invalid argument containing %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Gateway() != addr(tc.wantGateway) || a.Subnet() != subnet {
				t.Errorf("gateway %s subnet %s, want %s %s", a.Gateway(), a.Subnet(), tc.wantGateway, subnet)
			}
			if !a.InUse(a.Gateway()) {
				t.Error("gateway not reserved")
			}
		})
	}
}

func mustAllocator(t testing.TB, subnet, rng, gateway string) *Allocator {
	t.Helper()
	var r netip.Prefix
	var gw netip.Addr
	if rng != "" {
		r = pfx(rng)
	}
	if gateway != "" {
		gw = addr(gateway)
	}
	a, err := NewAllocator(pfx(subnet), r, gw)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// step is one call on an Allocator: Allocate(want) (want "" for any),
// or Release when release is set.
type step struct {
	want    string
	release bool
	got     string // expected address for Allocate
	err     error  // expected category
}

func runSteps(t *testing.T, a *Allocator, steps []step) {
	t.Helper()
	for i, s := range steps {
		if s.release {
			a.Release(addr(s.want))
			if a.InUse(addr(s.want)) {
				t.Fatalf("step %d: %s still in use after Release", i, s.want)
			}
			continue
		}
		var want netip.Addr
		if s.want != "" {
			want = addr(s.want)
		}
		got, err := a.Allocate(want)
		if s.err != nil {
			if !errors.Is(err, s.err) {
				t.Fatalf("step %d: Allocate(%s) = %s, %v; want error %v", i, s.want, got, err, s.err)
			}
			continue
		}
		if err != nil || got != addr(s.got) {
			t.Fatalf("step %d: Allocate(%s) = %s, %v; want %s", i, s.want, got, err, s.got)
		}
		if !a.InUse(got) {
			t.Fatalf("step %d: %s not in use after Allocate", i, got)
		}
	}
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name                 string
		subnet, rng, gateway string
		steps                []step
	}{
		{
			name: "sequential from after the gateway", subnet: "172.18.0.0/16",
			steps: []step{{got: "172.18.0.2"}, {got: "172.18.0.3"}, {got: "172.18.0.4"}},
		},
		{
			name: "round robin: a released address is not reused at once", subnet: "10.0.0.0/24",
			steps: []step{
				{got: "10.0.0.2"}, {got: "10.0.0.3"}, {want: "10.0.0.2", release: true},
				{got: "10.0.0.4"}, {got: "10.0.0.5"},
			},
		},
		{
			name: "wraps around to released addresses, then full", subnet: "10.0.0.0/29", // usable .1-.6
			steps: []step{
				{got: "10.0.0.2"}, {got: "10.0.0.3"}, {got: "10.0.0.4"}, {got: "10.0.0.5"}, {got: "10.0.0.6"},
				{err: errdefs.ErrUnavailable},
				{want: "10.0.0.3", release: true}, {got: "10.0.0.3"},
				{err: errdefs.ErrUnavailable},
				{want: "10.0.0.6", release: true}, {want: "10.0.0.2", release: true},
				{got: "10.0.0.6"}, {got: "10.0.0.2"}, {err: errdefs.ErrUnavailable},
			},
		},
		{
			name: "gateway at the end", subnet: "10.0.0.0/29", gateway: "10.0.0.6",
			steps: []step{{got: "10.0.0.1"}, {got: "10.0.0.2"}},
		},
		{
			name: "skips addresses asked for", subnet: "10.0.0.0/24",
			steps: []step{
				{want: "10.0.0.3", got: "10.0.0.3"}, {want: "10.0.0.4", got: "10.0.0.4"},
				{got: "10.0.0.2"}, {got: "10.0.0.5"},
			},
		},
		{
			name: "asked-for addresses", subnet: "10.0.0.0/24", rng: "10.0.0.128/25",
			steps: []step{
				{want: "10.0.0.7", got: "10.0.0.7"}, // outside the range, inside the subnet
				{want: "10.0.0.7", err: errdefs.ErrConflict},
				{want: "10.0.0.1", err: errdefs.ErrConflict}, // the gateway
				{want: "10.0.0.0", err: errdefs.ErrInvalidArgument},
				{want: "10.0.0.255", err: errdefs.ErrInvalidArgument},
				{want: "10.0.1.1", err: errdefs.ErrInvalidArgument},
				{want: "fd00::1", err: errdefs.ErrInvalidArgument},
				{want: "::ffff:10.0.0.9", got: "10.0.0.9"},
			},
		},
		{
			name: "range", subnet: "10.0.0.0/16", rng: "10.0.7.252/30",
			steps: []step{
				{got: "10.0.7.252"}, {got: "10.0.7.253"}, {got: "10.0.7.254"}, {got: "10.0.7.255"},
				{err: errdefs.ErrUnavailable},
				{want: "10.0.8.1", got: "10.0.8.1"},
			},
		},
		{
			name: "range at the end of the subnet stops before broadcast", subnet: "10.0.0.0/24", rng: "10.0.0.252/30",
			steps: []step{{got: "10.0.0.252"}, {got: "10.0.0.253"}, {got: "10.0.0.254"}, {err: errdefs.ErrUnavailable}},
		},
		{
			name: "ipv6", subnet: "fd00:1::/64",
			steps: []step{
				{got: "fd00:1::2"}, {want: "fd00:1::ffff:ffff:ffff:ffff", got: "fd00:1::ffff:ffff:ffff:ffff"},
				{want: "fd00:1::", err: errdefs.ErrInvalidArgument}, {got: "fd00:1::3"},
			},
		},
		{
			name: "ipv6 beyond the managed 2^64 addresses", subnet: "fd00:2::/48",
			steps: []step{{want: "fd00:2:0:1::1", err: errdefs.ErrInvalidArgument}, {got: "fd00:2::2"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, mustAllocator(t, tc.subnet, tc.rng, tc.gateway), tc.steps)
		})
	}
}

func TestReleaseKeepsGatewayAndIgnoresStrangers(t *testing.T) {
	a := mustAllocator(t, "10.0.0.0/24", "", "")
	a.Release(a.Gateway())
	a.Release(addr("10.0.0.77"))
	a.Release(addr("192.168.0.1"))
	a.Release(netip.Addr{})
	if !a.InUse(a.Gateway()) {
		t.Fatal("Release freed the gateway")
	}
	if got, err := a.Allocate(netip.Addr{}); err != nil || got != addr("10.0.0.2") {
		t.Fatalf("Allocate = %s, %v", got, err)
	}
}

func TestZeroAllocator(t *testing.T) {
	var a Allocator
	for _, want := range []netip.Addr{{}, addr("10.0.0.2")} {
		if got, err := a.Allocate(want); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("Allocate(%s) on a zero Allocator = %s, %v", want, got, err)
		}
	}
	if a.InUse(addr("0.0.0.0")) {
		t.Error("a zero Allocator has addresses in use")
	}
}

func TestExhaustMessages(t *testing.T) {
	a := mustAllocator(t, "10.0.0.0/30", "", "")
	if _, err := a.Allocate(netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	_, err := a.Allocate(netip.Addr{})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.HasSuffix(err.Error(), "no available IPv4 addresses on this network's address pools") {
		t.Errorf("full: %v", err)
	}
	_, err = a.Allocate(addr("10.0.0.2"))
	if !errors.Is(err, errdefs.ErrConflict) || !strings.HasSuffix(err.Error(), "Address already in use") {
		t.Errorf("taken: %v", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	a := mustAllocator(t, "172.20.0.0/16", "172.20.4.0/22", "172.20.0.1")
	for range 10 {
		if _, err := a.Allocate(netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	a.Release(addr("172.20.4.3"))
	if _, err := a.Allocate(addr("172.20.200.9")); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Subnet":"172.20.0.0/16","IPRange":"172.20.4.0/22","Gateway":"172.20.0.1",` +
		`"Allocated":["172.20.0.1","172.20.4.0-172.20.4.2","172.20.4.4-172.20.4.9","172.20.200.9"],"Last":"172.20.4.9"}`
	if string(data) != want {
		t.Fatalf("JSON:\n got %s\nwant %s", data, want)
	}
	var b Allocator
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	// The copy continues exactly where the original would.
	for range 5 {
		x, errA := a.Allocate(netip.Addr{})
		y, errB := b.Allocate(netip.Addr{})
		if x != y || errA != nil || errB != nil {
			t.Fatalf("after round trip: original %s %v, copy %s %v", x, errA, y, errB)
		}
	}
	if b.Subnet() != a.Subnet() || b.Gateway() != a.Gateway() || b.IPRange() != a.IPRange() || !b.InUse(addr("172.20.200.9")) || b.InUse(addr("172.20.4.3")) {
		t.Fatalf("copy differs: %+v", b)
	}

	fresh := mustAllocator(t, "fd00::/64", "", "")
	data, err = json.Marshal(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Subnet":"fd00::/64","Gateway":"fd00::1","Allocated":["fd00::1"]}`; string(data) != want {
		t.Fatalf("JSON:\n got %s\nwant %s", data, want)
	}
	var c Allocator
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Allocate(netip.Addr{}); err != nil || got != addr("fd00::2") {
		t.Fatalf("Allocate after round trip: %s, %v", got, err)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	tests := []struct{ name, json string }{
		{"wrong type", `{"Subnet":5}`},
		{"bad subnet", `{"Subnet":"10.0.0.1/24","Gateway":"10.0.0.1","Allocated":["10.0.0.1"]}`},
		{"gateway free", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.5"]}`},
		{"outside", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.1","10.0.1.5"]}`},
		{"broadcast", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.1-10.0.0.255"]}`},
		{"unordered", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.5","10.0.0.1"]}`},
		{"overlapping", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.1-10.0.0.5","10.0.0.4"]}`},
		{"adjacent", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.1","10.0.0.2"]}`},
		{"reversed", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.1","10.0.0.9-10.0.0.4"]}`},
		{"garbage", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.1","x"]}`},
		{"last outside", `{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","Allocated":["10.0.0.1"],"Last":"10.9.0.1"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Allocator
			if err := json.Unmarshal([]byte(tc.json), &a); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want an invalid argument", err)
			}
		})
	}
}

// FuzzAllocator drives an Allocator of a small subnet with a byte script and
// checks it against a plain set: Allocate with a want succeeds exactly when
// the address is usable and free, automatic allocation fails only when the
// range is full and never hands out a taken address, Release frees, and the
// JSON round trip keeps the state.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 5, 2, 5, 0, 0}, uint8(0))
	f.Add([]byte{1, 3, 1, 3, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(3))
	f.Fuzz(func(t *testing.T, script []byte, rangeSel uint8) {
		subnet := pfx("10.9.0.0/27") // usable offsets 1..30
		ranges := []netip.Prefix{{}, pfx("10.9.0.8/29"), pfx("10.9.0.16/28"), pfx("10.9.0.0/30")}
		rng := ranges[int(rangeSel)%len(ranges)]
		a, err := NewAllocator(subnet, rng, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if !rng.IsValid() {
			rng = subnet
		}
		model := map[netip.Addr]bool{a.Gateway(): true}
		at := func(off byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 9, 0, off % 34}) }
		usable := func(x netip.Addr) bool { return subnet.Contains(x) && x.As4()[3] != 0 && x.As4()[3] != 31 }
		rangeFree := func() bool {
			for o := range byte(32) {
				if x := at(o); rng.Contains(x) && usable(x) && !model[x] {
					return true
				}
			}
			return false
		}
		for i := 0; i+1 < len(script); i += 2 {
			op, x := script[i]%3, at(script[i+1])
			switch op {
			case 0:
				free := rangeFree()
				got, err := a.Allocate(netip.Addr{})
				if free != (err == nil) {
					t.Fatalf("Allocate() = %s, %v with free addresses in range: %v", got, err, free)
				}
				if err == nil {
					if model[got] || !rng.Contains(got) || !usable(got) {
						t.Fatalf("Allocate() = %s: taken, outside the range or unusable", got)
					}
					model[got] = true
				}
			case 1:
				got, err := a.Allocate(x)
				ok := usable(x) && !model[x]
				if ok != (err == nil) || (err == nil && got != x) {
					t.Fatalf("Allocate(%s) = %s, %v; usable and free: %v", x, got, err, ok)
				}
				if err == nil {
					model[x] = true
				}
			case 2:
				a.Release(x)
				if x != a.Gateway() {
					delete(model, x)
				}
			}
			for o := range byte(34) {
				if y := at(o); a.InUse(y) != model[y] {
					t.Fatalf("InUse(%s) = %v, model %v", y, a.InUse(y), model[y])
				}
			}
			for k := 1; k < len(a.used); k++ {
				if a.used[k].lo <= a.used[k-1].hi+1 {
					t.Fatalf("spans not sorted, disjoint and apart: %v", a.used)
				}
			}
		}
		data, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var b Allocator
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatalf("unmarshal %s: %v", data, err)
		}
		if !slices.Equal(a.used, b.used) || a.last != b.last || a.lastSet != b.lastSet {
			t.Fatalf("round trip of %s changed the state", data)
		}
	})
}

// BenchmarkAllocateFull measures automatic allocation in a /16 with most
// addresses taken: each call must cost a binary search, not a scan.
func BenchmarkAllocateFull(b *testing.B) {
	a := mustAllocator(b, "10.0.0.0/16", "", "")
	for range 60000 {
		if _, err := a.Allocate(netip.Addr{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		x, err := a.Allocate(netip.Addr{})
		if err != nil {
			b.Fatal(err)
		}
		a.Release(x)
	}
}
