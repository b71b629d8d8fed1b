package cgroups

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/asm"
)

// Compilation of device rules into a BPF_PROG_TYPE_CGROUP_DEVICE program,
// the v2 replacement for devices.allow/deny. The kernel runs it on every
// open or mknod of a device node with a struct bpf_cgroup_dev_ctx:
//
//	u32 access_type  // (access << 16) | type
//	u32 major
//	u32 minor
//
// and allows the operation if it returns 1.
//
// Semantics follow the v1 list, applied in order: for each access bit the
// operation asks for (mknod, read, write), the last rule that covers the
// bit and matches the device decides; a bit no rule covers is allowed, as
// in a fresh v1 cgroup, which inherits "a *:* rwm". The operation is
// allowed only if every bit it asks for is. Rules of type 'a' cover every
// bit whatever their access string, as the v1 kernel treats them.

// Values of struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h).
const (
	bpfDevBlock = 1
	bpfDevChar  = 2
)

// bpfAccess is one access bit of bpf_cgroup_dev_ctx and its letter in a
// rule's access string.
type bpfAccess struct {
	bit  int32
	char rune
}

// bpfAccessBits lists mknod, read and write.
func bpfAccessBits() []bpfAccess {
	return []bpfAccess{{1, 'm'}, {2, 'r'}, {4, 'w'}}
}

// bpfBuilder emits instructions with labels as jump targets.
type bpfBuilder struct {
	insns   asm.Instructions
	pending string
}

// label names the next emitted instruction.
func (b *bpfBuilder) label(name string) {
	if b.pending != "" {
		panic("two labels on one instruction: " + b.pending + ", " + name)
	}
	b.pending = name
}

func (b *bpfBuilder) emit(ins ...asm.Instruction) {
	for _, in := range ins {
		if b.pending != "" {
			in = in.WithSymbol(b.pending)
			b.pending = ""
		}
		b.insns = append(b.insns, in)
	}
}

// deviceProgram compiles rules (normalized, in spec order).
func deviceProgram(rules []deviceRule) asm.Instructions {
	var b bpfBuilder
	b.emit(
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // access_type
		asm.Mov.Reg32(asm.R3, asm.R2),
		asm.And.Imm32(asm.R3, 0xffff), // R3 = device type
		asm.Mov.Reg32(asm.R4, asm.R2),
		asm.RSh.Imm32(asm.R4, 16),                // R4 = access bits
		asm.LoadMem(asm.R5, asm.R1, 4, asm.Word), // R5 = major
		asm.LoadMem(asm.R6, asm.R1, 8, asm.Word), // R6 = minor
	)
	bits := bpfAccessBits()
	for i, a := range bits {
		next := "allow"
		if i+1 < len(bits) {
			next = fmt.Sprintf("bit%d", i+1)
		}
		b.label(fmt.Sprintf("bit%d", i))
		b.emit(
			asm.Mov.Reg32(asm.R7, asm.R4),
			asm.And.Imm32(asm.R7, a.bit),
			asm.JEq.Imm(asm.R7, 0, next), // bit not asked for
		)
		b.emitBitRules(i, a.char, rules, next)
	}
	b.label("allow")
	b.emit(asm.Mov.Imm(asm.R0, 1), asm.Return())
	return b.insns
}

// emitBitRules emits the decision for one access bit: the rules that
// cover it, last first; an allow jumps to next (the following bit), a deny
// returns 0. Code after a rule that matches every device would be
// unreachable, which the verifier refuses, so emission stops there.
func (b *bpfBuilder) emitBitRules(bitIndex int, char rune, rules []deviceRule, next string) {
	var covering []deviceRule
	for i := len(rules) - 1; i >= 0; i-- {
		if rules[i].typ == 'a' || strings.ContainsRune(rules[i].access, char) {
			covering = append(covering, rules[i])
		}
	}
	for j, r := range covering {
		skip := fmt.Sprintf("bit%d_default", bitIndex)
		if j+1 < len(covering) {
			skip = fmt.Sprintf("bit%d_rule%d", bitIndex, j+1)
		}
		b.label(fmt.Sprintf("bit%d_rule%d", bitIndex, j))
		b.emitMatch(r, skip)
		if r.allow {
			b.emit(asm.Ja.Label(next))
		} else {
			b.emit(asm.Mov.Imm(asm.R0, 0), asm.Return())
		}
		if r.matchesAll() {
			return
		}
	}
	b.label(fmt.Sprintf("bit%d_default", bitIndex))
	b.emit(asm.Ja.Label(next))
}

// emitMatch emits the tests of r against the device, jumping to skip on a
// mismatch and falling through on a match.
func (b *bpfBuilder) emitMatch(r deviceRule, skip string) {
	if r.matchesAll() {
		return
	}
	typ := int32(bpfDevChar)
	if r.typ == 'b' {
		typ = bpfDevBlock
	}
	b.emit(asm.JNE.Imm(asm.R3, typ, skip))
	if r.major != anyDevice {
		b.emit(asm.JNE.Imm(asm.R5, int32(r.major), skip))
	}
	if r.minor != anyDevice {
		b.emit(asm.JNE.Imm(asm.R6, int32(r.minor), skip))
	}
}
