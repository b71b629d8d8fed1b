package runtime

import (
	"encoding/binary"
	"strconv"
)

// trampolineELF returns a minimal static x86-64 executable that, started
// with the container's argv and environment plus one more variable whose
// value is the program's path, opens the exec fifo at descriptor fifo for
// writing (blocking until start opens it to read), writes one byte, closes
// fifo, drops that last variable and executes the program with its argv and
// the rest of the environment. If any step fails it writes a line to
// standard error and exits with status 127; a second run of it (a script
// whose interpreter is /proc/self/exe) fails at the first step, its fifo
// being closed.
func trampolineELF(fifo int) []byte {
	const (
		base     = 0
		ehdrSize = 64
		phdrSize = 56
		codeOff  = ehdrSize + 2*phdrSize
	)
	fifoPath := "/proc/self/fd/" + strconv.Itoa(fifo) + "\x00"
	msg := "berth-runtime init: exec of the container's program failed\n"
	var code []byte
	// rel32 fixups: position in code of a 4-byte displacement and the data
	// item it points to, relative to the end of the instruction (the
	// displacement is always its last four bytes here).
	type fix struct{ at, item int }
	var fixes []fix
	const (
		itemFifo = iota
		itemZero
		itemMsg
	)
	emit := func(b ...byte) { code = append(code, b...) }
	lea := func(reg byte, item int) { // lea reg, [rip+item]
		emit(0x48, 0x8d, 0x05|reg<<3, 0, 0, 0, 0)
		fixes = append(fixes, fix{len(code) - 4, item})
	}
	imm32 := func(op byte, v uint32) { // mov r32, imm32 (op = 0xb8+reg)
		emit(op)
		code = binary.LittleEndian.AppendUint32(code, v)
	}
	const rax, rdx, rsi, rdi = 0xb8, 0xba, 0xbe, 0xbf
	var jsFail []int
	// fd = openat(AT_FDCWD, fifoPath, O_WRONLY|O_CLOEXEC)
	imm32(rdi, 0xffffff9c)
	lea(6, itemFifo)
	imm32(rdx, 0x80001)
	imm32(rax, 257)
	emit(0x0f, 0x05)
	emit(0x48, 0x85, 0xc0)       // test rax, rax
	emit(0x0f, 0x88, 0, 0, 0, 0) // js fail
	jsFail = append(jsFail, len(code)-4)
	// write(fd, &zero, 1)
	emit(0x48, 0x89, 0xc7) // mov rdi, rax
	lea(6, itemZero)
	imm32(rdx, 1)
	imm32(rax, 1)
	emit(0x0f, 0x05)
	emit(0x48, 0x83, 0xf8, 0x01) // cmp rax, 1
	emit(0x0f, 0x85, 0, 0, 0, 0) // jne fail
	jsFail = append(jsFail, len(code)-4)
	// close(fifo)
	imm32(rdi, uint32(fifo))
	imm32(rax, 3)
	emit(0x0f, 0x05)
	// argv at rsp+8, envp after argv's NULL; the last variable is
	// "P=<path>": cut it off and execve(path, argv, envp).
	emit(0x48, 0x8b, 0x0c, 0x24)       // mov rcx, [rsp]
	emit(0x48, 0x8d, 0x74, 0x24, 0x08) // lea rsi, [rsp+8]
	emit(0x48, 0x8d, 0x54, 0xce, 0x08) // lea rdx, [rsi+rcx*8+8]
	emit(0x48, 0x89, 0xd0)             // mov rax, rdx
	loop := len(code)
	emit(0x48, 0x83, 0x38, 0x00)               // cmp qword [rax], 0
	emit(0x74, 0x06)                           // je +6 (past the next two)
	emit(0x48, 0x83, 0xc0, 0x08)               // add rax, 8
	emit(0xeb, byte(int8(loop-(len(code)+2)))) // jmp loop
	// rax points at envp's NULL; the last variable is at rax-8.
	emit(0x48, 0x39, 0xd0)       // cmp rax, rdx
	emit(0x0f, 0x84, 0, 0, 0, 0) // je fail (no variable)
	jsFail = append(jsFail, len(code)-4)
	emit(0x48, 0x8b, 0x78, 0xf8)             // mov rdi, [rax-8]
	emit(0x48, 0xc7, 0x40, 0xf8, 0, 0, 0, 0) // mov qword [rax-8], 0
	emit(0x48, 0x83, 0xc7, 0x02)             // add rdi, 2 (past "P=")
	imm32(rax, 59)
	emit(0x0f, 0x05)
	failAt := len(code)
	// write(2, msg, len(msg)); exit_group(127)
	imm32(rdi, 2)
	lea(6, itemMsg)
	imm32(rdx, uint32(len(msg)))
	imm32(rax, 1)
	emit(0x0f, 0x05)
	imm32(rdi, 127)
	imm32(rax, 231)
	emit(0x0f, 0x05)
	for _, at := range jsFail {
		binary.LittleEndian.PutUint32(code[at:], uint32(int32(failAt-(at+4))))
	}
	// Data after the code.
	items := []string{fifoPath, "\x00", msg}
	itemAt := make([]int, len(items))
	data := []byte{}
	for i, s := range items {
		itemAt[i] = len(code) + len(data)
		data = append(data, s...)
	}
	for _, f := range fixes {
		binary.LittleEndian.PutUint32(code[f.at:], uint32(int32(itemAt[f.item]-(f.at+4))))
	}
	body := append(code, data...)
	size := uint64(codeOff + len(body))

	le := binary.LittleEndian
	out := make([]byte, codeOff, size)
	copy(out, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0}) // 64-bit, little endian, version 1, SysV
	le.PutUint16(out[16:], 3)                          // ET_DYN: loaded anywhere, no interpreter
	le.PutUint16(out[18:], 62)                         // EM_X86_64
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[24:], base+codeOff) // entry
	le.PutUint64(out[32:], ehdrSize)     // phoff
	le.PutUint16(out[52:], ehdrSize)
	le.PutUint16(out[54:], phdrSize)
	le.PutUint16(out[56:], 2) // phnum
	// PT_LOAD of the whole file, read and execute.
	ph := out[ehdrSize:]
	le.PutUint32(ph[0:], 1)
	le.PutUint32(ph[4:], 5)
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], size)
	le.PutUint64(ph[40:], size)
	le.PutUint64(ph[48:], 0x1000)
	// PT_GNU_STACK, read and write: a stack that is not executable.
	ph = out[ehdrSize+phdrSize:]
	le.PutUint32(ph[0:], 0x6474e551)
	le.PutUint32(ph[4:], 6)
	le.PutUint64(ph[48:], 16)
	return append(out, body...)
}
