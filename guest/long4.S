/*
 * long4: 64-bit mode with 4-level paging on the guest's own tables
 * (BUILD_LM plus the mappings below). Real mode -> protected -> long:
 *   1  4 KiB page, identity, RIP-relative:   0x000d0500 -> 0xd0500
 *   2  4 KiB page, PT0[0x1f0]:               0x001f0010 -> 0xff001010
 *   3  2 MiB page, identity, via %rbx:       0xff000400 -> 0xff000400
 *   4  2 MiB page, PD0[2]:                   0x00402010 -> 0xff002010
 *   5  1 GiB page (CPUID 0x80000001 EDX[26]), PDPT[1] -> GPA 3 GiB:
 *                                            0x7f003000 -> 0xff003000
 *      (reported unsupported where the CPU lacks 1 GiB pages)
 *   higher half: PML4[256] -> PDPT_HI: [0] -> PD_HI ([0] -> PT0: low
 *   2 MiB, [1] -> 2 MiB page at 0xff000000), [3] -> PD3. The guest jumps
 *   to its higher-half alias 0xffff800000000000 + RIP and there:
 *   6  RIP-relative to the window alias 0xffff800000200000 (+0x10)
 *                                            -> 0xff000010
 *   7  through 0xffff8000ff000600 in %rbx    -> 0xff000600
 *   8  moffs with 64-bit offsets: A2/A0 byte at 0xff000700, 66 A3/A1 word
 *      at 0xff000702, A3/A1 dword at 0xff000704, REX.W A3/A1 qword at
 *      0xffff8000ff000708 (-> 0xff000708)
 * then back to the low half. Each access writes and reads back; failure
 * code = access number (8: 8..11 for the four moffs sizes).
 */
#include "lib.h"

#define HH		0xffff800000000000
#define PDPT_HI		(LM_EXTRA + 0x0000)
#define PD_HI		(LM_EXTRA + 0x1000)

	CODE16
	.text
	.globl	_start
_start:
	/* Absolute targets as section-relative symbols, for RIP-relative
	 * operands (gas takes an absolute symbol as the displacement). */
	.set	lowwin, _start + (TESTWIN_LOW - 0x1000)
	.set	hhwin, _start + (0x200000 - 0x1000)
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	PUTS16	msg_hello
	REAL_TO_PROT32 pm32
	BUILD_LM
	PTE64	LM_PT0, 0x1f0, (TESTWIN_HIGH + 0x1000 | PTE_P | PTE_W)
	PTE64	LM_PD0, 2, (TESTWIN_HIGH | PTE_P | PTE_W | PTE_PS)
	ZERO	PDPT_HI, 0x2000
	PTE64	LM_PML4, 256, (PDPT_HI | PTE_P | PTE_W)
	PTE64	PDPT_HI, 0, (PD_HI | PTE_P | PTE_W)
	PTE64	PDPT_HI, 3, (LM_PD3 | PTE_P | PTE_W)
	PTE64	PD_HI, 0, (LM_PT0 | PTE_P | PTE_W)
	PTE64	PD_HI, 1, (TESTWIN_HIGH | PTE_P | PTE_W | PTE_PS)
	LONG_ON	LM_PML4, 0, 0, STAGE_LONG, skip32, lm64
	REPORT_STAGE STAGE_LONG

	movl	$0x01010101, lowwin + 0x500(%rip)
	movl	lowwin + 0x500(%rip), %eax
	CHECK_EQ %eax, 0x01010101, 1, 64
	movl	$0x02020202, 0x1f0010
	movl	0x1f0010, %eax
	CHECK_EQ %eax, 0x02020202, 2, 64
	PUTS64	msg_4k
	movl	$TESTWIN_HIGH, %ebx
	movl	$0x03030303, 0x400(%rbx)
	movl	0x400(%rbx), %eax
	CHECK_EQ %eax, 0x03030303, 3, 64
	movl	$0x04040404, 0x402010
	movl	0x402010, %eax
	CHECK_EQ %eax, 0x04040404, 4, 64
	PUTS64	msg_2m

	movl	$0x80000001, %eax
	cpuid
	testl	$(1 << 26), %edx
	jnz	1f
	REPORT_UNSUPPORTED STAGE_1G
	PUTS64	msg_no1g
	jmp	2f
1:	PTE64	LM_PDPT, 1, (0xc0000000 | PTE_P | PTE_W | PTE_PS)
	REPORT_STAGE STAGE_1G
	movl	$0x05050505, 0x7f003000
	movl	0x7f003000, %eax
	CHECK_EQ %eax, 0x05050505, 5, 64
	PUTS64	msg_1g
2:
	/* To the higher half. */
	movl	$hh, %eax
	movabsq	$HH, %rdx
	addq	%rdx, %rax
	jmp	*%rax
hh:
	leaq	(%rip), %rax
	shrq	$47, %rax
	cmpq	$0x1ffff, %rax
	CHECK	e, 12, 64
	REPORT_STAGE STAGE_HIGHHALF
	movl	$0x06060606, hhwin + 0x10(%rip)
	movl	hhwin + 0x10(%rip), %eax
	CHECK_EQ %eax, 0x06060606, 6, 64
	movabsq	$(HH + TESTWIN_HIGH + 0x600), %rbx
	movl	$0x07070707, (%rbx)
	movl	(%rbx), %eax
	CHECK_EQ %eax, 0x07070707, 7, 64
	movb	$0x88, %al
	movabs	%al, TESTWIN_HIGH + 0x700
	xorl	%eax, %eax
	movabs	TESTWIN_HIGH + 0x700, %al
	CHECK_EQ %eax, 0x88, 8, 64
	movw	$0x9999, %ax
	movabs	%ax, TESTWIN_HIGH + 0x702
	xorl	%eax, %eax
	movabs	TESTWIN_HIGH + 0x702, %ax
	CHECK_EQ %eax, 0x9999, 9, 64
	movl	$0xaaaaaaaa, %eax
	movabs	%eax, TESTWIN_HIGH + 0x704
	xorl	%eax, %eax
	movabs	TESTWIN_HIGH + 0x704, %eax
	CHECK_EQ %eax, 0xaaaaaaaa, 10, 64
	movabsq	$0xbbbbbbbbcccccccc, %rax
	movabs	%rax, HH + TESTWIN_HIGH + 0x708
	xorl	%eax, %eax
	movabs	HH + TESTWIN_HIGH + 0x708, %rax
	movabsq	$0xbbbbbbbbcccccccc, %rdx
	cmpq	%rdx, %rax
	CHECK	e, 11, 64
	PUTS64	msg_hh
	/* Back to the low half. */
	movl	$low, %eax
	jmp	*%rax
low:
	PASS	64, msg_ok

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: long4: start\n"
msg_4k:		.asciz	"walkvm: long4: 4 KiB pages ok\n"
msg_2m:		.asciz	"walkvm: long4: 2 MiB pages ok\n"
msg_no1g:	.asciz	"walkvm: long4: no 1 GiB pages in CPUID, skipped\n"
msg_1g:		.asciz	"walkvm: long4: 1 GiB page ok\n"
msg_hh:		.asciz	"walkvm: long4: higher half, RIP-relative and moffs ok\n"
msg_ok:		.asciz	"walkvm: long4: pass\n"
