package cgroups

import (
	"errors"
	"testing"
)

func TestCPUSharesToWeight(t *testing.T) {
	tests := []struct {
		shares, want uint64
	}{
		{0, 0},          // unset stays unset
		{1, 1},          // below the v1 minimum
		{2, 1},          // v1 minimum → v2 minimum
		{512, 59},       // half the default
		{1024, 100},     // v1 default → v2 default
		{2048, 174},     // twice the default
		{262144, 10000}, // v1 maximum → v2 maximum
		{1 << 20, 10000},
	}
	for _, tt := range tests {
		if got := CPUSharesToWeight(tt.shares); got != tt.want {
			t.Errorf("CPUSharesToWeight(%d) = %d, want %d", tt.shares, got, tt.want)
		}
	}
}

func TestCPUSharesToWeightIsMonotonic(t *testing.T) {
	prev := CPUSharesToWeight(2)
	for s := uint64(3); s <= maxCPUShares; s += 97 {
		w := CPUSharesToWeight(s)
		if w < prev || w < 1 || w > maxCPUWeight {
			t.Fatalf("CPUSharesToWeight(%d) = %d after %d", s, w, prev)
		}
		prev = w
	}
}

func TestBlkioWeightToIOWeight(t *testing.T) {
	tests := []struct {
		weight uint16
		want   uint64
	}{
		{0, 0}, {5, 1}, {10, 1}, {500, 4950}, {1000, 10000},
	}
	for _, tt := range tests {
		if got := BlkioWeightToIOWeight(tt.weight); got != tt.want {
			t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", tt.weight, got, tt.want)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name           string
		memSwap, mem   int64
		want           int64
		wantErrInvalid bool
	}{
		{"both unlimited", -1, -1, -1, false},
		{"memory unlimited, swap unset", 0, -1, -1, false},
		{"swap unset", 0, 100 * mb, 0, false},
		{"swap unlimited", -1, 100 * mb, -1, false},
		{"swap equals memory: no swap", 100 * mb, 100 * mb, 0, false},
		{"memory+swap 300M over 100M", 300 * mb, 100 * mb, 200 * mb, false},
		{"memory+swap below memory", 50 * mb, 100 * mb, 0, true},
		{"swap without memory limit", 100 * mb, 0, 0, true},
		{"swap with unlimited memory", 100 * mb, -1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SwapToV2(tt.memSwap, tt.mem)
			if tt.wantErrInvalid {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("SwapToV2(%d, %d) error = %v, want ErrInvalid", tt.memSwap, tt.mem, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SwapToV2(%d, %d) = %d, %v; want %d", tt.memSwap, tt.mem, got, err, tt.want)
			}
			if tt.memSwap > 0 {
				if back := SwapFromV2(got, tt.mem); back != tt.memSwap {
					t.Errorf("SwapFromV2(%d, %d) = %d, want %d", got, tt.mem, back, tt.memSwap)
				}
			}
		})
	}
}

func TestV2LimitFormat(t *testing.T) {
	for _, v := range []int64{-1, 0, 4096, 1 << 40} {
		s := formatV2Limit(v)
		back, err := parseV2Limit(s)
		if err != nil || back != v {
			t.Errorf("parseV2Limit(formatV2Limit(%d) = %q) = %d, %v", v, s, back, err)
		}
	}
	if s := formatV2Limit(-1); s != "max" {
		t.Errorf("formatV2Limit(-1) = %q, want max", s)
	}
}
