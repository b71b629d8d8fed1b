package cgroups

import (
	"encoding/binary"
	"fmt"
	"strings"
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

// bpfInsn is one eBPF instruction (struct bpf_insn) before assembly: a
// jump names its target by label instead of giving its offset.
type bpfInsn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
	label    string // this instruction is the jump target of that name
	ref      string // a jump: the label it goes to (assemble sets off)
}

// The opcodes the device program uses (include/uapi/linux/bpf_common.h,
// bpf.h): class | operation | source.
const (
	bpfLdxMemW   = 0x61 // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
	bpfMov32Reg  = 0xbc // BPF_ALU | BPF_MOV | BPF_X: dst = (u32)src
	bpfAnd32Imm  = 0x54 // BPF_ALU | BPF_AND | BPF_K: dst = (u32)(dst & imm)
	bpfRsh32Imm  = 0x74 // BPF_ALU | BPF_RSH | BPF_K: dst = (u32)(dst >> imm)
	bpfMov64Imm  = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K: dst = imm
	bpfJa        = 0x05 // BPF_JMP | BPF_JA: pc += off
	bpfJeqImm    = 0x15 // BPF_JMP | BPF_JEQ | BPF_K: if dst == imm: pc += off
	bpfJneImm    = 0x55 // BPF_JMP | BPF_JNE | BPF_K: if dst != imm: pc += off
	bpfExit      = 0x95 // BPF_JMP | BPF_EXIT: return r0
	bpfInsnBytes = 8
)

// Registers: r0 holds the result, r1 the context on entry.
const (
	r0 uint8 = iota
	r1
	r2
	r3
	r4
	r5
	r6
	r7
)

func ldxW(dst, src uint8, off int16) bpfInsn {
	return bpfInsn{op: bpfLdxMemW, dst: dst, src: src, off: off}
}
func mov32(dst, src uint8) bpfInsn        { return bpfInsn{op: bpfMov32Reg, dst: dst, src: src} }
func and32(dst uint8, imm int32) bpfInsn  { return bpfInsn{op: bpfAnd32Imm, dst: dst, imm: imm} }
func rsh32(dst uint8, imm int32) bpfInsn  { return bpfInsn{op: bpfRsh32Imm, dst: dst, imm: imm} }
func movImm(dst uint8, imm int32) bpfInsn { return bpfInsn{op: bpfMov64Imm, dst: dst, imm: imm} }
func ja(label string) bpfInsn             { return bpfInsn{op: bpfJa, ref: label} }
func jeq(dst uint8, imm int32, label string) bpfInsn {
	return bpfInsn{op: bpfJeqImm, dst: dst, imm: imm, ref: label}
}
func jne(dst uint8, imm int32, label string) bpfInsn {
	return bpfInsn{op: bpfJneImm, dst: dst, imm: imm, ref: label}
}
func exit() bpfInsn { return bpfInsn{op: bpfExit} }

// bpfBuilder emits instructions with labels as jump targets.
type bpfBuilder struct {
	insns   []bpfInsn
	pending string
}

// label names the next emitted instruction.
func (b *bpfBuilder) label(name string) {
	if b.pending != "" {
		panic("two labels on one instruction: " + b.pending + ", " + name)
	}
	b.pending = name
}

func (b *bpfBuilder) emit(ins ...bpfInsn) {
	for _, in := range ins {
		if b.pending != "" {
			in.label = b.pending
			b.pending = ""
		}
		b.insns = append(b.insns, in)
	}
}

// assemble resolves the jumps of insns into offsets and lays the program
// out as the kernel takes it (struct bpf_insn in native byte order). The
// instructions get their offsets set.
func assemble(insns []bpfInsn) ([]byte, error) {
	at := make(map[string]int, len(insns))
	for i, in := range insns {
		if in.label != "" {
			at[in.label] = i
		}
	}
	littleEndian := binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	out := make([]byte, 0, len(insns)*bpfInsnBytes)
	for i := range insns {
		in := &insns[i]
		if in.ref != "" {
			target, ok := at[in.ref]
			if !ok {
				return nil, fmt.Errorf("bpf: jump to unknown label %q", in.ref)
			}
			in.off = int16(target - (i + 1))
		}
		regs := in.dst&0xf | in.src<<4 // dst_reg:4, src_reg:4 (little endian)
		if !littleEndian {
			regs = in.dst<<4 | in.src&0xf
		}
		out = append(out, in.op, regs)
		out = binary.NativeEndian.AppendUint16(out, uint16(in.off))
		out = binary.NativeEndian.AppendUint32(out, uint32(in.imm))
	}
	return out, nil
}

// deviceProgram compiles rules (normalized, in spec order).
func deviceProgram(rules []deviceRule) []bpfInsn {
	var b bpfBuilder
	b.emit(
		ldxW(r2, r1, 0), // access_type
		mov32(r3, r2),
		and32(r3, 0xffff), // r3 = device type
		mov32(r4, r2),
		rsh32(r4, 16),   // r4 = access bits
		ldxW(r5, r1, 4), // r5 = major
		ldxW(r6, r1, 8), // r6 = minor
	)
	bits := bpfAccessBits()
	for i, a := range bits {
		next := "allow"
		if i+1 < len(bits) {
			next = fmt.Sprintf("bit%d", i+1)
		}
		b.label(fmt.Sprintf("bit%d", i))
		b.emit(
			mov32(r7, r4),
			and32(r7, a.bit),
			jeq(r7, 0, next), // bit not asked for
		)
		b.emitBitRules(i, a.char, rules, next)
	}
	b.label("allow")
	b.emit(movImm(r0, 1), exit())
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
			b.emit(ja(next))
		} else {
			b.emit(movImm(r0, 0), exit())
		}
		if r.matchesAll() {
			return
		}
	}
	b.label(fmt.Sprintf("bit%d_default", bitIndex))
	b.emit(ja(next))
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
	b.emit(jne(r3, typ, skip))
	if r.major != anyDevice {
		b.emit(jne(r5, int32(r.major), skip))
	}
	if r.minor != anyDevice {
		b.emit(jne(r6, int32(r.minor), skip))
	}
}
