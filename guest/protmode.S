/*
 * protmode: protected mode without paging, 32- and 16-bit code segments,
 * MMIO in both, on the guest's own GDT. Real mode -> 32-bit protected mode:
 *   1  disp32 to the high window           0xff000010
 *   2  base+index*4+disp8                   0xff000030
 *   3  ES = window-based 16-bit data segment (base 0xd0000): 0xd0040
 *   4  16-bit addressing (0x67) in 32-bit code, ES:[bx+si+0x10]: 0xd0060
 * -> 16-bit protected mode (CS = 16-bit code segment):
 *   5  DS = data segment based at 0xff000000, [disp16]:  0xff000050
 *   6  DS, [bx+di+disp8]                                  0xff000068
 *   7  32-bit addressing (0x67) through flat FS:          0xff000070
 * -> back to 32-bit protected mode, exit. Each access writes a value and
 * reads it back; failure code = access number. Stages: real, prot32,
 * prot16, prot32.
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
	REPORT_STAGE STAGE_REAL
	REAL_TO_PROT32 pm32
	REPORT_STAGE STAGE_PROT32

	movl	$0x11111111, TESTWIN_HIGH + 0x10
	movl	TESTWIN_HIGH + 0x10, %eax
	CHECK_EQ %eax, 0x11111111, 1, 32

	movl	$TESTWIN_HIGH, %ebx
	movl	$4, %esi
	movl	$0x22222222, %ecx
	movl	%ecx, 0x20(%ebx,%esi,4)
	movl	0x20(%ebx,%esi,4), %edx
	CHECK_EQ %edx, 0x22222222, 2, 32

	movw	$SEL_WINLOW16, %ax
	movw	%ax, %es
	movl	$0x33333333, %es:0x40
	movl	%es:0x40, %eax
	CHECK_EQ %eax, 0x33333333, 3, 32

	movl	$0x40, %ebx
	movl	$0x10, %esi
	movl	$0x44444444, %es:0x10(%bx,%si)
	movl	%es:0x10(%bx,%si), %eax
	CHECK_EQ %eax, 0x44444444, 4, 32

	PUTS32	msg_pm32
	movw	$SEL_DATA32, %ax
	movw	%ax, %es
	PROT32_TO_PROT16 pm16
	REPORT_STAGE STAGE_PROT16
	movw	$SEL_WINHIGH16, %ax
	movw	%ax, %ds
	movw	$0x5555, 0x50
	movw	0x50, %ax
	cmpw	$0x5555, %ax
	CHECK_QUIET e, 5

	movw	$0x60, %bx
	movw	$0x4, %di
	movl	$0x66666666, 0x4(%bx,%di)
	movl	0x4(%bx,%di), %eax
	cmpl	$0x66666666, %eax
	CHECK_QUIET e, 6

	movw	$SEL_DATA32, %ax
	movw	%ax, %fs
	addr32 movl	$0x77777777, %fs:(TESTWIN_HIGH + 0x70)
	addr32 movl	%fs:(TESTWIN_HIGH + 0x70), %eax
	cmpl	$0x77777777, %eax
	CHECK_QUIET e, 7

	movw	$SEL_DATA32, %ax
	movw	%ax, %ds
	ljmpl	$SEL_CODE32, $back32
	CODE32
back32:
	movw	$SEL_DATA32, %ax
	movw	%ax, %ss
	movl	$STACK_TOP, %esp
	REPORT_STAGE STAGE_PROT32
	PASS	32, msg_ok

	GUEST_LIBS 32
msg_hello:	.asciz	"walkvm: protmode: start\n"
msg_pm32:	.asciz	"walkvm: protmode: 32-bit code ok\n"
msg_ok:		.asciz	"walkvm: protmode: 16-bit code ok\n"
