#include "textflag.h"

DATA vecMxcsr<>+0(SB)/4, $0x1F80
GLOBL vecMxcsr<>(SB), RODATA, $4

// func vecrun(code uintptr, c *VecContext)
//
// VecContext (vec_amd64.go): Img at 0 (the XSAVE image, 64-byte aligned by
// the caller), Mem at 1024, GPR at 1088 (RAX, RCX, RDX, RBX), Flags at
// 1120. The instruction at code ends with RET; its memory operand is (RDI).
TEXT ·vecrun(SB), NOSPLIT, $32-16
	MOVQ BP, 0(SP)
	MOVQ R14, 8(SP)
	MOVQ R15, 16(SP)
	MOVQ code+0(FP), R8
	MOVQ c+8(FP), R9
	MOVQ R9, 24(SP)
	MOVL $7, AX
	XORL DX, DX
	BYTE $0x49; BYTE $0x0F; BYTE $0xAE; BYTE $0x29 // xrstor64 (%r9)
	LEAQ 1024(R9), DI
	MOVQ 1088(R9), AX
	MOVQ 1096(R9), CX
	MOVQ 1104(R9), DX
	MOVQ 1112(R9), BX
	PUSHQ 1120(R9)
	POPFQ
	CALL R8
	PUSHFQ
	MOVQ 32(SP), R9 // c (one slot further: the PUSHFQ)
	POPQ 1120(R9)
	MOVQ AX, 1088(R9)
	MOVQ CX, 1096(R9)
	MOVQ DX, 1104(R9)
	MOVQ BX, 1112(R9)
	MOVL $7, AX
	XORL DX, DX
	BYTE $0x49; BYTE $0x0F; BYTE $0xAE; BYTE $0x21 // xsave64 (%r9)
	BYTE $0xDB; BYTE $0xE3                         // fninit
	LDMXCSR vecMxcsr<>(SB)
	VZEROUPPER
	PUSHQ $2
	POPFQ
	MOVQ 0(SP), BP
	MOVQ 8(SP), R14
	MOVQ 16(SP), R15
	XORPS X15, X15
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
