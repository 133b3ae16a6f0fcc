#include "textflag.h"

// The native runner (native_amd64.go): one instruction runs on the host
// CPU with every GPR, RFLAGS and the x87/SSE/AVX state taken from the
// control block at a fixed address, and everything is captured again
// afterwards, whether the instruction falls through, branches to the
// landing pad, or faults (the signal handler below sends a fault to
// exitFault). Offsets are the ctl* constants of native_amd64.go.

#define BASE 0x6a000000

// func nativeRun()
TEXT ·nativeRun(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ $BASE, BX
	MOVQ SP, 0x00(BX)
	MOVQ BP, 0x08(BX)
	MOVQ R14, 0x10(BX)
	MOVQ R15, 0x18(BX)
	BYTE $0x8C; BYTE $0xD8 // mov %ds, %eax
	MOVQ AX, 0x90(BX)
	BYTE $0x8C; BYTE $0xC0 // mov %es, %eax
	MOVQ AX, 0x98(BX)
	BYTE $0x8C; BYTE $0xD0 // mov %ss, %eax
	MOVQ AX, 0xa0(BX)
	BYTE $0x8C; BYTE $0xE8 // mov %gs, %eax
	MOVQ AX, 0xa8(BX)
	LEAQ ·exitFall(SB), AX
	MOVQ AX, 0x28(BX)
	LEAQ ·exitBranch(SB), AX
	MOVQ AX, 0x30(BX)
	MOVQ $(BASE+0x1000), AX
	MOVQ AX, 0x20(BX)
	MOVQ $0, 0x88(BX)
	MOVQ $0, 0x60(BX)
	// x87, SSE and AVX state: xrstor64 (BASE+0xB000) with RFBM = 7.
	MOVQ $(BASE+0xB000), DI
	MOVL $7, AX
	XORL DX, DX
	BYTE $0x48; BYTE $0x0F; BYTE $0xAE; BYTE $0x2F
	PUSHQ 0x180(BX)
	POPFQ
	MOVQ $BASE, AX
	MOVQ 0x108(AX), CX
	MOVQ 0x110(AX), DX
	MOVQ 0x118(AX), BX
	MOVQ 0x120(AX), SP
	MOVQ 0x128(AX), BP
	MOVQ 0x130(AX), SI
	MOVQ 0x138(AX), DI
	MOVQ 0x140(AX), R8
	MOVQ 0x148(AX), R9
	MOVQ 0x150(AX), R10
	MOVQ 0x158(AX), R11
	MOVQ 0x160(AX), R12
	MOVQ 0x168(AX), R13
	MOVQ 0x170(AX), R14
	MOVQ 0x178(AX), R15
	MOVQ 0x100(AX), AX
	// jmp *(BASE+0x20): the code page
	BYTE $0xFF; BYTE $0x24; BYTE $0x25; LONG $(BASE+0x20)

// The landing pads: each saves RAX with an absolute store, records which
// pad was reached, and joins exitCommon.

// func exitFall()
TEXT ·exitFall(SB), NOSPLIT|NOFRAME, $0-0
	BYTE $0x48; BYTE $0x89; BYTE $0x04; BYTE $0x25; LONG $(BASE+0x200)
	MOVQ $BASE, AX
	MOVQ $1, 0x88(AX)
	JMP exitCommon<>(SB)

// func exitBranch()
TEXT ·exitBranch(SB), NOSPLIT|NOFRAME, $0-0
	BYTE $0x48; BYTE $0x89; BYTE $0x04; BYTE $0x25; LONG $(BASE+0x200)
	MOVQ $BASE, AX
	MOVQ $2, 0x88(AX)
	JMP exitCommon<>(SB)

// func exitFault()
TEXT ·exitFault(SB), NOSPLIT|NOFRAME, $0-0
	BYTE $0x48; BYTE $0x89; BYTE $0x04; BYTE $0x25; LONG $(BASE+0x200)
	MOVQ $BASE, AX
	MOVQ $3, 0x88(AX)
	JMP exitCommon<>(SB)

TEXT exitCommon<>(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ CX, 0x208(AX)
	MOVQ DX, 0x210(AX)
	MOVQ BX, 0x218(AX)
	MOVQ SP, 0x220(AX)
	MOVQ BP, 0x228(AX)
	MOVQ SI, 0x230(AX)
	MOVQ DI, 0x238(AX)
	MOVQ R8, 0x240(AX)
	MOVQ R9, 0x248(AX)
	MOVQ R10, 0x250(AX)
	MOVQ R11, 0x258(AX)
	MOVQ R12, 0x260(AX)
	MOVQ R13, 0x268(AX)
	MOVQ R14, 0x270(AX)
	MOVQ R15, 0x278(AX)
	MOVQ 0x00(AX), SP
	PUSHFQ
	POPQ BX
	MOVQ BX, 0x280(AX)
	MOVQ AX, BX
	// The selectors the instruction left, then the ones Go had.
	BYTE $0x8C; BYTE $0xD8 // mov %ds, %eax
	MOVQ AX, 0x288(BX)
	BYTE $0x8C; BYTE $0xC0 // mov %es, %eax
	MOVQ AX, 0x290(BX)
	BYTE $0x8C; BYTE $0xD0 // mov %ss, %eax
	MOVQ AX, 0x298(BX)
	BYTE $0x8C; BYTE $0xE8 // mov %gs, %eax
	MOVQ AX, 0x2a0(BX)
	MOVQ 0x90(BX), AX
	BYTE $0x8E; BYTE $0xD8 // mov %eax, %ds
	MOVQ 0x98(BX), AX
	BYTE $0x8E; BYTE $0xC0 // mov %eax, %es
	MOVQ 0xa0(BX), AX
	BYTE $0x8E; BYTE $0xD0 // mov %eax, %ss
	MOVQ 0xa8(BX), AX
	BYTE $0x8E; BYTE $0xE8 // mov %eax, %gs
	// xsave64 (BASE+0xC000) with RFBM = 7, then the state Go expects.
	MOVQ $(BASE+0xC000), DI
	MOVL $7, AX
	XORL DX, DX
	BYTE $0x48; BYTE $0x0F; BYTE $0xAE; BYTE $0x27
	BYTE $0xDB; BYTE $0xE3 // fninit
	LDMXCSR 0x38(BX)
	VZEROUPPER
	PUSHQ $2
	POPFQ
	MOVQ 0x08(BX), BP
	MOVQ 0x10(BX), R14
	MOVQ 0x18(BX), R15
	XORPS X15, X15
	RET

// sigHandler is installed for SIGSEGV, SIGBUS, SIGFPE and SIGILL while a
// batch runs. A fault with RIP in the region (the code page, or wherever a
// stray branch went in it) is recorded (signal, trap number,
// error code, CR2, RIP) and resumed at exitFault with every register as
// the fault left it; any other fault goes to the handler that was
// installed before (Go's), with the registers the kernel passed.
// func sigHandler()
TEXT ·sigHandler(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ 168(DX), AX // uc_mcontext.gregs[REG_RIP]
	MOVQ $BASE, CX
	CMPQ AX, CX
	JB chain
	ADDQ $0x10000, CX
	CMPQ AX, CX
	JAE chain
	MOVQ $BASE, CX
	MOVQ DI, 0x60(CX)
	MOVQ 200(DX), R8 // REG_TRAPNO
	MOVQ R8, 0x68(CX)
	MOVQ 192(DX), R8 // REG_ERR
	MOVQ R8, 0x70(CX)
	MOVQ 216(DX), R8 // REG_CR2
	MOVQ R8, 0x78(CX)
	MOVQ AX, 0x80(CX)
	MOVQ 184(DX), R8 // REG_CSGSFS
	MOVQ R8, 0xb0(CX)
	LEAQ ·exitFault(SB), AX
	MOVQ AX, 168(DX)
	RET
chain:
	MOVQ $BASE, CX
	CMPL DI, $11
	JEQ segv
	CMPL DI, $8
	JEQ fpe
	CMPL DI, $4
	JEQ ill
	MOVQ 0x58(CX), AX
	JMP AX
segv:
	MOVQ 0x40(CX), AX
	JMP AX
fpe:
	MOVQ 0x48(CX), AX
	JMP AX
ill:
	MOVQ 0x50(CX), AX
	JMP AX

// func sigHandlerPC() uintptr
TEXT ·sigHandlerPC(SB), NOSPLIT, $0-8
	LEAQ ·sigHandler(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv0() uint64
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	XORL CX, CX
	BYTE $0x0F; BYTE $0x01; BYTE $0xD0 // xgetbv
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+0(FP)
	RET
