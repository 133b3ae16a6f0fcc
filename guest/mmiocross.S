/*
 * mmiocross: MMIO accesses and instructions that cross 4 KiB page
 * boundaries, and string instructions on MMIO, in long mode with 4 KiB
 * pages. PD0[3] -> PT_X for 0x600000-0x7fffff:
 *   0x600000 -> window page 0xff003000, 0x601000 -> window page 0xff007000
 *   0x610000 -> RAM SCRATCH+0x8000, 0x611000 -> SCRATCH+0x5000,
 *   0x612000 -> SCRATCH+0x7000 (code pages, deliberately non-contiguous)
 *   1  dword write and read at 0x600ffe: 2 bytes at 0xff003ffe and 2 at
 *      0xff007000
 *   2  code copied so that `movl $0x55555555, 0x10(%rbx)` starts at
 *      0x610ffc (4 bytes on one page, 3 on the next) and
 *      `movl 0x10(%rbx), %ecx` at 0x611ffe (2 + 1 bytes), with %rbx =
 *      0xd0b00: both MMIO at 0xd0b10
 *   string instructions on the low window (4 KiB pages):
 *   3  rep stosl, 4 dwords of 0xa1a1a1a1 to 0xd0a00
 *   4  rep movsl, 4 dwords RAM -> MMIO 0xd0a10
 *   5  rep movsl, MMIO 0xd0a10 -> RAM, checked
 *   6  rep movsl, MMIO 0xd0a00 -> MMIO 0xd0a20
 *   7  rep lodsl from 0xd0a20: the last dword in %eax
 *   8  std; rep stosw, 3 words of 0xc3c3 down from 0xd0a3e
 * Failure code = check number.
 */
#include "lib.h"

#define PT_X	LM_EXTRA

	CODE16
	.text
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	PUTS16	msg_hello
	REAL_TO_PROT32 pm32
	BUILD_LM
	ZERO	PT_X, 0x1000
	PTE64	LM_PD0, 3, (PT_X | PTE_P | PTE_W)
	PTE64	PT_X, 0x00, (TESTWIN_HIGH + 0x3000 | PTE_P | PTE_W)
	PTE64	PT_X, 0x01, (TESTWIN_HIGH + 0x7000 | PTE_P | PTE_W)
	PTE64	PT_X, 0x10, (SCRATCH + 0x8000 | PTE_P | PTE_W)
	PTE64	PT_X, 0x11, (SCRATCH + 0x5000 | PTE_P | PTE_W)
	PTE64	PT_X, 0x12, (SCRATCH + 0x7000 | PTE_P | PTE_W)
	/* The page-crossing code, written to where the pages point. */
	movl	$0x551043c7, SCRATCH + 0x8ffc	/* c7 43 10 55 | */
	movl	$0xe9555555, SCRATCH + 0x5000	/* 55 55 55, jmp rel32 */
	movl	$0x00000ff6, SCRATCH + 0x5004	/* to 0x611ffe */
	movw	$0x4b8b, SCRATCH + 0x5ffe	/* 8b 4b | */
	movw	$0xc310, SCRATCH + 0x7000	/* 10, ret */
	LONG_ON	LM_PML4, 0, 0, STAGE_LONG, skip32, lm64
	REPORT_STAGE STAGE_LONG

	movl	$0x44332211, 0x600ffe
	movl	0x600ffe, %eax
	CHECK_EQ %eax, 0x44332211, 1, 64
	PUTS64	msg_split

	movl	$(TESTWIN_LOW + 0xb00), %ebx
	xorl	%ecx, %ecx
	movl	$0x610ffc, %eax
	call	*%rax
	CHECK_EQ %ecx, 0x55555555, 2, 64
	PUTS64	msg_insn

	cld
	movl	$(TESTWIN_LOW + 0xa00), %edi
	movl	$0xa1a1a1a1, %eax
	movl	$4, %ecx
	rep stosl
	cmpl	$(TESTWIN_LOW + 0xa10), %edi
	CHECK	e, 3, 64

	leaq	src(%rip), %rsi
	movl	$(TESTWIN_LOW + 0xa10), %edi
	movl	$4, %ecx
	rep movsl
	cmpl	$(TESTWIN_LOW + 0xa20), %edi
	CHECK	e, 4, 64

	movl	$(TESTWIN_LOW + 0xa10), %esi
	movl	$(SCRATCH + 0x9000), %edi
	movl	$4, %ecx
	rep movsl
	movl	SCRATCH + 0x9000, %eax
	CHECK_EQ %eax, 0xb0b0b0b0, 5, 64
	movl	SCRATCH + 0x900c, %eax
	CHECK_EQ %eax, 0xb3b3b3b3, 5, 64

	movl	$(TESTWIN_LOW + 0xa00), %esi
	movl	$(TESTWIN_LOW + 0xa20), %edi
	movl	$4, %ecx
	rep movsl
	cmpl	$(TESTWIN_LOW + 0xa30), %edi
	CHECK	e, 6, 64

	movl	$(TESTWIN_LOW + 0xa20), %esi
	xorl	%eax, %eax
	movl	$4, %ecx
	rep lodsl
	CHECK_EQ %eax, 0xa1a1a1a1, 7, 64
	cmpl	$(TESTWIN_LOW + 0xa30), %esi
	CHECK	e, 7, 64

	std
	movl	$(TESTWIN_LOW + 0xa3e), %edi
	movw	$0xc3c3, %ax
	movl	$3, %ecx
	rep stosw
	cld
	cmpl	$(TESTWIN_LOW + 0xa38), %edi
	CHECK	e, 8, 64
	PASS	64, msg_ok

	.balign	4
src:	.long	0xb0b0b0b0, 0xb1b1b1b1, 0xb2b2b2b2, 0xb3b3b3b3

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: mmiocross: start\n"
msg_split:	.asciz	"walkvm: mmiocross: dword across two MMIO pages ok\n"
msg_insn:	.asciz	"walkvm: mmiocross: MMIO instructions across page boundaries ok\n"
msg_ok:		.asciz	"walkvm: mmiocross: rep stos/movs/lods on MMIO ok, pass\n"
