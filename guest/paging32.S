/*
 * paging32: legacy 32-bit paging (CR0.PG without EFER.LME) with 4 KiB and
 * 4 MiB (CR4.PSE) pages, and PSE-36 where CPUID 1 EDX[17] has it. Real mode
 * -> 32-bit protected mode -> paging (BUILD_P32 plus the mappings below):
 *   1  4 KiB page, identity:        0x000d0100 -> 0xd0100 (low window)
 *   2  4 KiB page, PT[0x300]:       0x00300010 -> 0xff001010
 *   3  4 MiB page, identity:        0xff000200 -> 0xff000200
 *   4  4 MiB page, PD[2]:           0x00802010 -> 0xff002010
 *   5  PSE-36: 4 MiB page, PD[3], PDE bit 13 = address bit 32:
 *      0x00c00010 -> GPA 0x1_0000_0010, outside every memslot and device:
 *      the write is dropped, the read gives all ones (reported as a value)
 * Each access writes and reads back; failure code = access number. Where
 * the host refuses the CR0.PG write the guest reports stage paging32
 * refused and exits with STATUS_SKIPPED.
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
	BUILD_P32
	movl	$(TESTWIN_HIGH + 0x1000 | PTE_P | PTE_W), P32_PT0 + 4 * 0x300
	movl	$(TESTWIN_HIGH | PTE_P | PTE_W | PTE_PS), P32_PD + 4 * 2
	movl	$(PDE_PSE36_LO | PTE_P | PTE_W | PTE_PS), P32_PD + 4 * 3
	PAGING_ON32 P32_PD, CR4_PSE, STAGE_PAGING32, refused
	REPORT_STAGE STAGE_PAGING32

	movl	$0x01010101, 0xd0100
	movl	0xd0100, %eax
	CHECK_EQ %eax, 0x01010101, 1, 32
	movl	$0x02020202, 0x300010
	movl	0x300010, %eax
	CHECK_EQ %eax, 0x02020202, 2, 32
	PUTS32	msg_4k

	REPORT_STAGE STAGE_PSE
	movl	$0x03030303, TESTWIN_HIGH + 0x200
	movl	TESTWIN_HIGH + 0x200, %eax
	CHECK_EQ %eax, 0x03030303, 3, 32
	movl	$0x04040404, 0x802010
	movl	0x802010, %eax
	CHECK_EQ %eax, 0x04040404, 4, 32
	PUTS32	msg_4m

	movl	$1, %eax
	cpuid
	testl	$(1 << 17), %edx
	jnz	1f
	REPORT_UNSUPPORTED STAGE_PSE36
	PUTS32	msg_nopse36
	jmp	done
1:	REPORT_STAGE STAGE_PSE36
	movl	$0x05050505, 0xc00010
	movl	0xc00010, %ecx
	REPORT_VALUE TAG_PSE36_READ, %ecx
	CHECK_EQ %ecx, 0xffffffff, 5, 32
	PUTS32	msg_pse36
done:
	PASS	32, msg_ok

refused:
	PUTS32	msg_refused
	jmp	skip32

	GUEST_LIBS 32
msg_hello:	.asciz	"walkvm: paging32: start\n"
msg_refused:	.asciz	"walkvm: paging32: the host refused 32-bit paging (CR0.PG write faulted)\n"
msg_4k:		.asciz	"walkvm: paging32: 4 KiB pages ok\n"
msg_4m:		.asciz	"walkvm: paging32: 4 MiB pages ok\n"
msg_nopse36:	.asciz	"walkvm: paging32: no PSE-36 in CPUID, skipped\n"
msg_pse36:	.asciz	"walkvm: paging32: PSE-36 page above 4 GiB read all ones\n"
msg_ok:		.asciz	"walkvm: paging32: pass\n"
