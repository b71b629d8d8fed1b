#include "textflag.h"

// func vforkSyscall(trap, a1, a2, a3 uintptr) (r1 uintptr, err uintptr)
//
// A system call that starts a child sharing this stack while the caller is
// suspended (clone with CLONE_VM|CLONE_VFORK): the return address is kept
// in a register across it, so nothing the child pushes or pops can change
// where the caller returns to, and the results are stored after the call,
// over whatever the child wrote there.
TEXT ·vforkSyscall(SB),NOSPLIT|NOFRAME,$0-48
	MOVQ	a1+8(FP), DI
	MOVQ	a2+16(FP), SI
	MOVQ	a3+24(FP), DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$0, R9
	MOVQ	trap+0(FP), AX
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, r1+32(FP)
	NEGQ	AX
	MOVQ	AX, err+40(FP)
	RET
ok:
	MOVQ	AX, r1+32(FP)
	MOVQ	$0, err+40(FP)
	RET
