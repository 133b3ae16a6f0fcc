/*
 * pae: legacy PAE paging (CR4.PAE, CR0.PG, EFER.LME clear) with 4 KiB and
 * 2 MiB pages. Real mode -> 32-bit protected mode -> PAE (BUILD_PAE plus
 * the mappings below):
 *   1  4 KiB page, identity:        0x000d0200 -> 0xd0200 (low window)
 *   2  4 KiB page, PT[0x1f0]:       0x001f0010 -> 0xff001010
 *   3  2 MiB page, identity (PD3):  0xff000300 -> 0xff000300
 *   4  2 MiB page, PD0[2]:          0x00402010 -> 0xff002010
 * Each access writes and reads back; failure code = access number. Where
 * the host refuses the CR0.PG write the guest reports stage pae refused
 * and exits with STATUS_SKIPPED.
 */
#include "lib.h"

	CODE16
	.text
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	PUTS16	msg_hello
	REAL_TO_PROT32 pm32
	BUILD_PAE
	PTE64	PAE_PT0, 0x1f0, (TESTWIN_HIGH + 0x1000 | PTE_P | PTE_W)
	PTE64	PAE_PD0, 2, (TESTWIN_HIGH | PTE_P | PTE_W | PTE_PS)
	PAGING_ON32 PAE_PDPT, CR4_PAE, STAGE_PAE, refused
	REPORT_STAGE STAGE_PAE

	movl	$0x01010101, 0xd0200
	movl	0xd0200, %eax
	CHECK_EQ %eax, 0x01010101, 1, 32
	movl	$0x02020202, 0x1f0010
	movl	0x1f0010, %eax
	CHECK_EQ %eax, 0x02020202, 2, 32
	PUTS32	msg_4k
	movl	$0x03030303, TESTWIN_HIGH + 0x300
	movl	TESTWIN_HIGH + 0x300, %eax
	CHECK_EQ %eax, 0x03030303, 3, 32
	movl	$0x04040404, 0x402010
	movl	0x402010, %eax
	CHECK_EQ %eax, 0x04040404, 4, 32
	PASS	32, msg_ok

refused:
	PUTS32	msg_refused
	jmp	skip32

	GUEST_LIBS 32
msg_hello:	.asciz	"walkvm: pae: start\n"
msg_refused:	.asciz	"walkvm: pae: the host refused PAE paging (CR0.PG write faulted)\n"
msg_4k:		.asciz	"walkvm: pae: 4 KiB pages ok\n"
msg_ok:		.asciz	"walkvm: pae: 2 MiB pages ok\n"
