package ipam

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	"berth.dev/internal/errdefs"
)

// Allocator hands out the addresses of one subnet: the gateway's, and one per
// container attached to the network. Automatic allocation takes the addresses
// of an IP range (the whole subnet by default) round robin, as Docker does, so
// that an address released by a removed container is not given to the next
// one at once; addresses asked for by name may lie anywhere in the subnet.
//
// The network and (IPv4) broadcast addresses are never handed out. An IPv6
// subnet is managed in its first 2^64 addresses (all of a /64 or longer).
//
// State is kept as a sorted list of allocated spans, so an Allocator of a /8
// with thousands of containers stays small, and its JSON form (MarshalJSON)
// lists spans as "first-last" strings. An Allocator is not safe for
// concurrent use: the engine serialises calls on a network.
type Allocator struct {
	subnet  netip.Prefix
	ipRange netip.Prefix
	gateway netip.Addr

	// Offsets from the network address. [minOff, maxOff] is what may be
	// allocated at all, [rangeLo, rangeHi] what automatic allocation uses.
	minOff, maxOff   uint64
	rangeLo, rangeHi uint64

	used []span // sorted, disjoint, never adjacent
	last uint64 // offset handed out last by automatic allocation
	// lastSet is false until the first automatic allocation.
	lastSet bool
}

// span is an inclusive run of allocated offsets.
type span struct{ lo, hi uint64 }

// NewAllocator returns an Allocator for subnet with the gateway reserved.
// subnet must be masked (172.18.0.1/16 is rejected, naming 172.18.0.0/16)
// and leave room for a gateway and one container. ipRange, when valid, must
// be a masked prefix inside subnet. gateway, when zero, is the first address
// after the network address; it must lie in the subnet and be neither the
// network nor the broadcast address. Errors wrap errdefs.ErrInvalidArgument.
func NewAllocator(subnet, ipRange netip.Prefix, gateway netip.Addr) (*Allocator, error) {
	a, err := newAllocator(subnet, ipRange, gateway)
	if err != nil {
		return nil, err
	}
	if _, err := a.Allocate(a.gateway); err != nil {
		return nil, err
	}
	return a, nil
}

func newAllocator(subnet, ipRange netip.Prefix, gateway netip.Addr) (*Allocator, error) {
	if !subnet.IsValid() {
		return nil, fmt.Errorf("%w: invalid subnet: no subnet given", errdefs.ErrInvalidArgument)
	}
	if subnet.Addr().Is4In6() || subnet.Addr().Zone() != "" {
		return nil, fmt.Errorf("%w: invalid subnet %s", errdefs.ErrInvalidArgument, subnet)
	}
	if m := subnet.Masked(); m != subnet {
		return nil, fmt.Errorf("%w: invalid subnet %s: it should be %s", errdefs.ErrInvalidArgument, subnet, m)
	}
	hostBits := subnet.Addr().BitLen() - subnet.Bits()
	if hostBits < 2 {
		return nil, fmt.Errorf("%w: invalid subnet %s: too small to hold a gateway and a container", errdefs.ErrInvalidArgument, subnet)
	}
	a := &Allocator{subnet: subnet, minOff: 1, maxOff: math.MaxUint64}
	if hostBits < 64 {
		a.maxOff = 1<<hostBits - 1
	}
	if subnet.Addr().Is4() {
		a.maxOff-- // the broadcast address
	}
	if !ipRange.IsValid() {
		ipRange = subnet
	}
	if m := ipRange.Masked(); m != ipRange {
		return nil, fmt.Errorf("%w: invalid ip-range %s: it should be %s", errdefs.ErrInvalidArgument, ipRange, m)
	}
	if ipRange.Bits() < subnet.Bits() || !subnet.Contains(ipRange.Addr()) {
		return nil, fmt.Errorf("%w: invalid ip-range %s: it must be a subset of subnet %s", errdefs.ErrInvalidArgument, ipRange, subnet)
	}
	a.ipRange = ipRange
	lo, _ := a.offset(ipRange.Addr())
	hi, ok := a.offset(lastAddr(ipRange))
	if !ok {
		hi = math.MaxUint64 // ends on the broadcast address or past the managed 2^64
	}
	a.rangeLo, a.rangeHi = max(lo, a.minOff), min(hi, a.maxOff)
	if a.rangeLo > a.rangeHi {
		return nil, fmt.Errorf("%w: invalid ip-range %s: it holds no usable address of subnet %s", errdefs.ErrInvalidArgument, ipRange, subnet)
	}
	if !gateway.IsValid() {
		gateway = a.addr(a.minOff)
	}
	if off, ok := a.offset(gateway); !ok || off < a.minOff || off > a.maxOff {
		return nil, fmt.Errorf("%w: invalid gateway %s: it must be a usable address of subnet %s", errdefs.ErrInvalidArgument, gateway, subnet)
	}
	a.gateway = gateway.Unmap()
	return a, nil
}

// Subnet returns the subnet the Allocator hands out addresses of.
func (a *Allocator) Subnet() netip.Prefix { return a.subnet }

// IPRange returns the prefix automatic allocation takes addresses from (the
// subnet when none was given).
func (a *Allocator) IPRange() netip.Prefix { return a.ipRange }

// Gateway returns the gateway address, which stays allocated.
func (a *Allocator) Gateway() netip.Addr { return a.gateway }

// Allocate allocates an address and returns it. A valid want is allocated
// when it is free and a usable address of the subnet (it may lie outside the
// IP range, as Docker allows --ip outside --ip-range): taken, ErrConflict;
// outside the subnet or the network or broadcast address,
// ErrInvalidArgument. A zero want takes the next free address of the IP
// range after the one this method handed out last, wrapping around to the
// range's start; none left, ErrUnavailable.
func (a *Allocator) Allocate(want netip.Addr) (netip.Addr, error) {
	if !a.subnet.IsValid() {
		return netip.Addr{}, fmt.Errorf("%w: allocator has no subnet: make it with NewAllocator", errdefs.ErrFailedPrecondition)
	}
	if want.IsValid() {
		off, ok := a.offset(want)
		if !ok || off < a.minOff || off > a.maxOff {
			return netip.Addr{}, fmt.Errorf("%w: requested address %s is not a usable address of subnet %s", errdefs.ErrInvalidArgument, want, a.subnet)
		}
		if !a.insert(off) {
			return netip.Addr{}, fmt.Errorf("%w: Address already in use", errdefs.ErrConflict)
		}
		return a.addr(off), nil
	}
	start := a.rangeLo
	if a.lastSet && a.last >= a.rangeLo && a.last < a.rangeHi {
		start = a.last + 1
	}
	off, ok := a.freeFrom(start, a.rangeHi)
	if !ok && start > a.rangeLo {
		off, ok = a.freeFrom(a.rangeLo, start-1)
	}
	if !ok {
		return netip.Addr{}, fmt.Errorf("%w: no available IPv%d addresses on this network's address pools", errdefs.ErrUnavailable, a.family())
	}
	a.insert(off)
	a.last, a.lastSet = off, true
	return a.addr(off), nil
}

// Release frees addr. Addresses that are not allocated, outside the subnet,
// or the gateway's are left as they are.
func (a *Allocator) Release(addr netip.Addr) {
	off, ok := a.offset(addr)
	if !ok || addr.Unmap() == a.gateway {
		return
	}
	i, found := a.find(off)
	if !found {
		return
	}
	s := a.used[i]
	switch {
	case s.lo == s.hi:
		a.used = slices.Delete(a.used, i, i+1)
	case off == s.lo:
		a.used[i].lo++
	case off == s.hi:
		a.used[i].hi--
	default:
		a.used[i].hi = off - 1
		a.used = slices.Insert(a.used, i+1, span{off + 1, s.hi})
	}
}

// InUse reports whether addr is allocated (the gateway always is).
func (a *Allocator) InUse(addr netip.Addr) bool {
	off, ok := a.offset(addr)
	if !ok {
		return false
	}
	_, found := a.find(off)
	return found
}

// family is 4 or 6.
func (a *Allocator) family() int {
	if a.subnet.Addr().Is4() {
		return 4
	}
	return 6
}

// find returns the index of the first span whose hi is at least off, and
// whether that span contains off.
func (a *Allocator) find(off uint64) (int, bool) {
	i, _ := slices.BinarySearchFunc(a.used, off, func(s span, off uint64) int {
		switch {
		case s.hi < off:
			return -1
		case s.lo > off:
			return 1
		}
		return 0
	})
	return i, i < len(a.used) && a.used[i].lo <= off
}

// freeFrom returns the first free offset in [from, to]. Spans are never
// adjacent, so the offset after the span holding from is free.
func (a *Allocator) freeFrom(from, to uint64) (uint64, bool) {
	if from > to {
		return 0, false
	}
	i, found := a.find(from)
	if !found {
		return from, true
	}
	hi := a.used[i].hi
	if hi >= to {
		return 0, false
	}
	return hi + 1, true
}

// insert marks off allocated, merging spans; false if it was already.
func (a *Allocator) insert(off uint64) bool {
	i, found := a.find(off)
	if found {
		return false
	}
	joinPrev := i > 0 && a.used[i-1].hi+1 == off
	joinNext := i < len(a.used) && a.used[i].lo == off+1
	switch {
	case joinPrev && joinNext:
		a.used[i-1].hi = a.used[i].hi
		a.used = slices.Delete(a.used, i, i+1)
	case joinPrev:
		a.used[i-1].hi = off
	case joinNext:
		a.used[i].lo = off
	default:
		a.used = slices.Insert(a.used, i, span{off, off})
	}
	return true
}

// offset returns addr's distance from the network address, false when addr
// is of the other family or outside the managed part of the subnet.
func (a *Allocator) offset(addr netip.Addr) (uint64, bool) {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.Zone() != "" || !a.subnet.Contains(addr) {
		return 0, false
	}
	bh, bl := split(a.subnet.Addr())
	ah, al := split(addr)
	lo, borrow := bits.Sub64(al, bl, 0)
	if hi, _ := bits.Sub64(ah, bh, borrow); hi != 0 {
		return 0, false
	}
	return lo, lo <= a.maxOff
}

// addr is the address at offset off.
func (a *Allocator) addr(off uint64) netip.Addr {
	bh, bl := split(a.subnet.Addr())
	lo, carry := bits.Add64(bl, off, 0)
	hi, _ := bits.Add64(bh, 0, carry)
	if a.subnet.Addr().Is4() {
		return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, uint32(lo))))
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// split returns an address as a 128-bit number (IPv4 in the low 32 bits).
func split(addr netip.Addr) (hi, lo uint64) {
	if addr.Is4() {
		b := addr.As4()
		return 0, uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := addr.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// allocatorJSON is the stored form of an Allocator.
type allocatorJSON struct {
	Subnet    netip.Prefix
	IPRange   netip.Prefix `json:",omitzero"`
	Gateway   netip.Addr
	Allocated []string   // "addr" or "first-last", ascending
	Last      netip.Addr `json:",omitzero"` // handed out last by automatic allocation
}

// MarshalJSON encodes the Allocator's whole state.
func (a *Allocator) MarshalJSON() ([]byte, error) {
	j := allocatorJSON{Subnet: a.subnet, Gateway: a.gateway, Allocated: make([]string, 0, len(a.used))}
	if a.ipRange != a.subnet {
		j.IPRange = a.ipRange
	}
	if a.lastSet {
		j.Last = a.addr(a.last)
	}
	for _, s := range a.used {
		if s.lo == s.hi {
			j.Allocated = append(j.Allocated, a.addr(s.lo).String())
		} else {
			j.Allocated = append(j.Allocated, a.addr(s.lo).String()+"-"+a.addr(s.hi).String())
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON restores a state written by MarshalJSON, validating it as
// NewAllocator does; errors wrap errdefs.ErrInvalidArgument.
func (a *Allocator) UnmarshalJSON(data []byte) error {
	var j allocatorJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("%w: ipam state: %w", errdefs.ErrInvalidArgument, err)
	}
	n, err := newAllocator(j.Subnet, j.IPRange, j.Gateway)
	if err != nil {
		return fmt.Errorf("ipam state: %w", err)
	}
	for _, s := range j.Allocated {
		first, last, isSpan := strings.Cut(s, "-")
		if !isSpan {
			last = first
		}
		lo, err1 := n.parseOffset(first)
		hi, err2 := n.parseOffset(last)
		if err1 != nil || err2 != nil || hi < lo || (len(n.used) > 0 && lo <= n.used[len(n.used)-1].hi+1) {
			return fmt.Errorf("%w: ipam state: bad or unordered allocated span %q", errdefs.ErrInvalidArgument, s)
		}
		n.used = append(n.used, span{lo, hi})
	}
	if !n.InUse(n.gateway) {
		return fmt.Errorf("%w: ipam state: gateway %s is not allocated", errdefs.ErrInvalidArgument, n.gateway)
	}
	if j.Last.IsValid() {
		off, ok := n.offset(j.Last)
		if !ok {
			return fmt.Errorf("%w: ipam state: last address %s is outside subnet %s", errdefs.ErrInvalidArgument, j.Last, n.subnet)
		}
		n.last, n.lastSet = off, true
	}
	*a = *n
	return nil
}

// parseOffset parses a usable address of the subnet into its offset.
func (a *Allocator) parseOffset(s string) (uint64, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return 0, err
	}
	off, ok := a.offset(addr)
	if !ok || off < a.minOff || off > a.maxOff {
		return 0, fmt.Errorf("%s is not a usable address of %s", addr, a.subnet)
	}
	return off, nil
}
