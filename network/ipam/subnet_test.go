package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"berth.dev/internal/errdefs"
)

func TestDefaultPools(t *testing.T) {
	var got []netip.Prefix
	var inUse []netip.Prefix
	for {
		p, err := PickSubnet(DefaultPools, inUse)
		if err != nil {
			if !errors.Is(err, errdefs.ErrUnavailable) || !strings.HasSuffix(err.Error(), errNoPool) {
				t.Fatalf("exhausted: %v", err)
			}
			break
		}
		got = append(got, p)
		inUse = append(inUse, p)
	}
	var want []netip.Prefix
	for i := 17; i <= 31; i++ {
		want = append(want, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		want = append(want, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	if len(got) != len(want) {
		t.Fatalf("got %d subnets %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("subnet %d: got %s, want %s", i, got[i], want[i])
		}
	}
}

func TestPickSubnet(t *testing.T) {
	tests := []struct {
		name    string
		pools   []Pool
		inUse   []string
		want    string
		wantErr error
	}{
		{name: "first", pools: DefaultPools, want: "172.17.0.0/16"},
		{name: "host route inside the first", pools: DefaultPools, inUse: []string{"172.17.3.0/24"}, want: "172.18.0.0/16"},
		{name: "wide route covers many", pools: DefaultPools, inUse: []string{"172.16.0.0/12"}, want: "192.168.0.0/20"},
		{name: "host bits ignored", pools: DefaultPools, inUse: []string{"172.17.1.1/16", "172.18.9.9/15"}, want: "172.20.0.0/16"},
		{name: "ipv6 in use never blocks", pools: DefaultPools, inUse: []string{"::/0"}, want: "172.17.0.0/16"},
		{name: "gaps found", pools: []Pool{{Base: pfx("10.0.0.0/22"), Size: 24}}, inUse: []string{"10.0.0.0/24", "10.0.2.0/24"}, want: "10.0.1.0/24"},
		{name: "pool full", pools: []Pool{{Base: pfx("10.0.0.0/23"), Size: 24}}, inUse: []string{"10.0.0.0/24", "10.0.1.128/25"}, wantErr: errdefs.ErrUnavailable},
		{name: "last pool of the address space", pools: []Pool{{Base: pfx("255.255.255.0/24"), Size: 25}}, inUse: []string{"255.255.255.0/25", "255.255.255.128/25"}, wantErr: errdefs.ErrUnavailable},
		{name: "ipv6 pool", pools: []Pool{{Base: pfx("fd00::/48"), Size: 64}}, inUse: []string{"fd00::/64"}, want: "fd00:0:0:1::/64"},
		{name: "size shorter than base", pools: []Pool{{Base: pfx("10.0.0.0/16"), Size: 8}}, wantErr: errdefs.ErrInvalidArgument},
		{name: "size past address", pools: []Pool{{Base: pfx("10.0.0.0/16"), Size: 33}}, wantErr: errdefs.ErrInvalidArgument},
		{name: "no pools", wantErr: errdefs.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inUse []netip.Prefix
			for _, s := range tc.inUse {
				inUse = append(inUse, pfx(s))
			}
			got, err := PickSubnet(tc.pools, inUse)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %s, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != pfx(tc.want) {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"10.0.0.0/8", "10.1.0.0/16", true},
		{"10.1.0.0/16", "10.0.0.0/8", true},
		{"10.0.0.0/16", "10.1.0.0/16", false},
		{"10.0.0.0/24", "10.0.0.255/32", true},
		{"10.0.1.0/24", "10.0.0.255/32", false},
		{"10.0.0.7/24", "10.0.0.200/25", true}, // host bits ignored
		{"0.0.0.0/0", "192.168.1.0/24", true},
		{"10.0.0.0/8", "::ffff:10.0.0.0/104", false},
		{"fd00::/8", "fd12::/16", true},
		{"fd00::/16", "fd01::/16", false},
		{"10.0.0.0/8", "fd00::/8", false},
	}
	for _, tc := range tests {
		if got := Overlaps(pfx(tc.a), pfx(tc.b)); got != tc.want {
			t.Errorf("Overlaps(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if Overlaps(netip.Prefix{}, pfx("0.0.0.0/0")) {
		t.Error("a zero prefix overlaps")
	}
}
