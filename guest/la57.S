/*
 * la57: 5-level paging where the CPU has it (CPUID 7.0 ECX[16]); else the
 * guest reports stage la57 unsupported and exits with STATUS_SKIPPED (and
 * refused, likewise, where the CR4.LA57 write faults). Real mode ->
 * protected mode -> CR4.PAE|LA57, CR3 = PML5 (PML5[0] and PML5[1] both ->
 * BUILD_LM's PML4), EFER.LME, CR0.PG:
 *   1  4 KiB page, identity            0x000d0900 -> 0xd0900
 *   2  2 MiB page, identity, via %rbx  0xff000900 -> 0xff000900
 *   3  through PML5[1]: 0x00010000ff000910 (canonical only with 57-bit
 *      linear addresses) -> 0xff000910
 * Each access writes and reads back; failure code = access number.
 */
#include "lib.h"

#define PML5	LM_EXTRA

	CODE16
	.text
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	PUTS16	msg_hello
	REAL_TO_PROT32 pm32
	xorl	%eax, %eax
	cpuid
	cmpl	$7, %eax
	jb	1f
	movl	$7, %eax
	xorl	%ecx, %ecx
	cpuid
	testl	$(1 << 16), %ecx
	jnz	2f
1:	REPORT_UNSUPPORTED STAGE_LA57
	SKIP	32, msg_nola57
2:	BUILD_LM
	ZERO	PML5, 0x1000
	PTE64	PML5, 0, (LM_PML4 | PTE_P | PTE_W)
	PTE64	PML5, 1, (LM_PML4 | PTE_P | PTE_W)
	LONG_ON	PML5, CR4_LA57, 0, STAGE_LA57, refused, lm64
	REPORT_STAGE STAGE_LA57

	movl	$0x01010101, TESTWIN_LOW + 0x900
	movl	TESTWIN_LOW + 0x900, %eax
	CHECK_EQ %eax, 0x01010101, 1, 64
	movl	$TESTWIN_HIGH, %ebx
	movl	$0x02020202, 0x900(%rbx)
	movl	0x900(%rbx), %eax
	CHECK_EQ %eax, 0x02020202, 2, 64
	movabsq	$(0x0001000000000000 + TESTWIN_HIGH + 0x910), %rbx
	movl	$0x03030303, (%rbx)
	movl	(%rbx), %eax
	CHECK_EQ %eax, 0x03030303, 3, 64
	PASS	64, msg_ok

refused:
	PUTS32	msg_refused
	jmp	skip32

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: la57: start\n"
msg_nola57:	.asciz	"walkvm: la57: no LA57 in CPUID, skipped\n"
msg_refused:	.asciz	"walkvm: la57: the host refused 5-level paging\n"
msg_ok:		.asciz	"walkvm: la57: 5-level paging ok, pass\n"
