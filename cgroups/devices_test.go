package cgroups

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDeviceRuleString(t *testing.T) {
	tests := []struct {
		in   specs.LinuxDeviceCgroup
		want string
	}{
		{specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}, "a"},
		{specs.LinuxDeviceCgroup{Type: "a", Major: ptr[int64](1), Access: "r"}, "a"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "wr"}, "c 1:3 rw"},
		{specs.LinuxDeviceCgroup{Type: "b", Major: ptr[int64](8)}, "b 8:* rwm"},
		{specs.LinuxDeviceCgroup{Type: "c", Minor: ptr[int64](-1), Access: "m"}, "c *:* m"},
	}
	for _, tt := range tests {
		rules, err := normalizeDeviceRules([]specs.LinuxDeviceCgroup{tt.in})
		if err != nil {
			t.Fatalf("%+v: %v", tt.in, err)
		}
		if got := rules[0].String(); got != tt.want {
			t.Errorf("%+v: String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// device is one access the kernel would check.
type device struct {
	typ          byte // 'b' or 'c'
	major, minor int64
	access       string
}

// v1Decision is the reference model: the v1 devices controller applying
// rules in order to a cgroup that starts allowing everything, asked
// whether every bit of access is allowed.
func v1Decision(rules []deviceRule, d device) bool {
	for _, bit := range d.access {
		allowed := true
		for _, r := range rules {
			covers := r.typ == 'a' || strings.ContainsRune(r.access, bit)
			matches := r.typ == 'a' || (r.typ == d.typ &&
				(r.major == anyDevice || r.major == d.major) && (r.minor == anyDevice || r.minor == d.minor))
			if covers && matches {
				allowed = r.allow
			}
		}
		if !allowed {
			return false
		}
	}
	return true
}

// runDeviceProgram assembles the instructions deviceProgram emits and
// interprets them, with the context the kernel passes.
func runDeviceProgram(t *testing.T, insns []bpfInsn, d device) bool {
	t.Helper()
	if _, err := assemble(insns); err != nil {
		t.Fatal(err)
	}
	typ := uint64(bpfDevChar)
	if d.typ == 'b' {
		typ = bpfDevBlock
	}
	var access uint64
	for _, a := range bpfAccessBits() {
		if strings.ContainsRune(d.access, a.char) {
			access |= uint64(a.bit)
		}
	}
	ctx := []uint64{access<<16 | typ, uint64(d.major), uint64(d.minor)}
	var reg [11]uint64
	for pc, steps := 0, 0; steps < 10000; steps++ {
		if pc < 0 || pc >= len(insns) {
			t.Fatalf("pc %d outside the program", pc)
		}
		in := insns[pc]
		pc++
		jump := func(cond bool) {
			if cond {
				pc += int(in.off)
			}
		}
		imm := uint64(uint32(in.imm))
		switch in.op {
		case bpfLdxMemW:
			if in.src != r1 {
				t.Fatalf("load from r%d, not the context", in.src)
			}
			reg[in.dst] = ctx[in.off/4]
		case bpfMov32Reg:
			reg[in.dst] = uint64(uint32(reg[in.src]))
		case bpfAnd32Imm:
			reg[in.dst] = uint64(uint32(reg[in.dst] & imm))
		case bpfRsh32Imm:
			reg[in.dst] = uint64(uint32(reg[in.dst]) >> imm)
		case bpfMov64Imm:
			reg[in.dst] = uint64(int64(in.imm))
		case bpfExit:
			return reg[r0] == 1
		case bpfJa:
			jump(true)
		case bpfJeqImm:
			jump(reg[in.dst] == uint64(int64(in.imm)))
		case bpfJneImm:
			jump(reg[in.dst] != uint64(int64(in.imm)))
		default:
			t.Fatalf("unexpected instruction %+v", in)
		}
	}
	t.Fatal("program does not terminate")
	return false
}

func TestAssembleLayout(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("byte layout written for little-endian hosts")
	}
	insns := []bpfInsn{ldxW(r2, r1, 4), jne(r3, 2, "end"), movImm(r0, -1), {op: bpfExit, label: "end"}}
	got, err := assemble(insns)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x61, 0x12, 4, 0, 0, 0, 0, 0, // r2 = *(u32 *)(r1 + 4)
		0x55, 0x03, 1, 0, 2, 0, 0, 0, // if r3 != 2 goto +1
		0xb7, 0x00, 0, 0, 0xff, 0xff, 0xff, 0xff, // r0 = -1
		0x95, 0, 0, 0, 0, 0, 0, 0, // exit
	}
	if !bytes.Equal(got, want) {
		t.Errorf("assemble:\n got % x\nwant % x", got, want)
	}
	if _, err := assemble([]bpfInsn{ja("nowhere")}); err == nil {
		t.Error("jump to an unknown label: want an error")
	}
}

func TestDeviceProgramMatchesV1Semantics(t *testing.T) {
	c := func(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
		if major != anyDevice {
			d.Major = &major
		}
		if minor != anyDevice {
			d.Minor = &minor
		}
		return d
	}
	ruleSets := map[string][]specs.LinuxDeviceCgroup{
		"empty":            nil,
		"deny all":         {c(false, "a", -1, -1, "rwm")},
		"deny null":        {c(false, "c", 1, 3, "rwm")},
		"allowlist":        {c(false, "a", -1, -1, ""), c(true, "c", 1, 3, "rw"), c(true, "c", 1, 5, "r"), c(true, "b", 8, -1, "m")},
		"read only null":   {c(false, "", -1, -1, "rwm"), c(true, "c", 1, 3, "r")},
		"deny write later": {c(false, "a", -1, -1, ""), c(true, "c", -1, -1, "rwm"), c(false, "c", 1, 3, "w")},
		"allow all at end": {c(false, "c", 1, 3, "rwm"), c(true, "a", -1, -1, "r")},
		"a with access":    {c(false, "a", -1, -1, "r")},
		"char wildcard":    {c(false, "a", -1, -1, ""), c(true, "c", -1, -1, "m"), c(true, "c", 136, -1, "rw")},
	}
	var devices []device
	for _, typ := range []byte{'b', 'c'} {
		for _, num := range [][2]int64{{1, 3}, {1, 5}, {8, 0}, {136, 2}, {10, 200}} {
			for _, acc := range []string{"r", "w", "m", "rw", "rwm"} {
				devices = append(devices, device{typ, num[0], num[1], acc})
			}
		}
	}
	for name, set := range ruleSets {
		t.Run(name, func(t *testing.T) {
			rules, err := normalizeDeviceRules(set)
			if err != nil {
				t.Fatal(err)
			}
			prog := deviceProgram(rules)
			for _, d := range devices {
				want := v1Decision(rules, d)
				if got := runDeviceProgram(t, prog, d); got != want {
					t.Errorf("%c %d:%d %s: program says %v, v1 semantics %v", d.typ, d.major, d.minor, d.access, got, want)
				}
			}
		})
	}
}

// TestDeviceProgramHasNoDeadCode guards the verifier's rule that every
// instruction must be reachable: after a rule matching every device,
// nothing more may be emitted for that access bit.
func TestDeviceProgramHasNoDeadCode(t *testing.T) {
	rules, _ := normalizeDeviceRules([]specs.LinuxDeviceCgroup{
		{Allow: true, Type: "c", Access: "r"}, {Allow: false, Access: "rwm"}, {Allow: true, Type: "a"},
	})
	prog := deviceProgram(rules)
	for i := range bpfAccessBits() {
		for _, in := range prog {
			if in.label == fmt.Sprintf("bit%d_default", i) {
				t.Errorf("bit %d: default emitted after an unconditional rule:\n%+v", i, prog)
			}
		}
	}
}
