/*
 * compat: compatibility mode (a 32-bit code segment under long mode) with
 * MMIO. Real mode -> long mode (BUILD_LM), then:
 *   1  64-bit: through %rbx                    0xff000800
 *   -> compatibility mode (lret to SEL_CODE32):
 *   2  disp32 absolute                         0xff000810
 *   3  low window, 4 KiB page                  0x000d0810
 *   4  SIB, base+index*8+disp32                0xff000830
 *   5  ES = window-based data segment (base 0xd0000): ES:0x820 -> 0xd0820
 *   -> 64-bit mode again (ljmp to SEL_CODE64):
 *   6  through %rbx                            0xff000840
 * Each access writes and reads back; failure code = access number.
 * Stages: long, compat, long.
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
	REAL_TO_LONG pm32, lm64
	REPORT_STAGE STAGE_LONG
	movl	$TESTWIN_HIGH, %ebx
	movl	$0x01010101, 0x800(%rbx)
	movl	0x800(%rbx), %eax
	CHECK_EQ %eax, 0x01010101, 1, 64

	LONG_TO_COMPAT cm32
	REPORT_STAGE STAGE_COMPAT
	movl	$0x02020202, TESTWIN_HIGH + 0x810
	movl	TESTWIN_HIGH + 0x810, %eax
	CHECK_EQ %eax, 0x02020202, 2, 32
	movl	$0x03030303, TESTWIN_LOW + 0x810
	movl	TESTWIN_LOW + 0x810, %eax
	CHECK_EQ %eax, 0x03030303, 3, 32
	movl	$TESTWIN_HIGH, %ebx
	movl	$2, %esi
	movl	$0x04040404, %ecx
	movl	%ecx, 0x820(%ebx,%esi,8)
	movl	0x820(%ebx,%esi,8), %edx
	CHECK_EQ %edx, 0x04040404, 4, 32
	movw	$SEL_WINLOW16, %ax
	movw	%ax, %es
	movl	$0x05050505, %es:0x820
	movl	%es:0x820, %eax
	CHECK_EQ %eax, 0x05050505, 5, 32
	movw	$SEL_DATA32, %ax
	movw	%ax, %es
	PUTS32	msg_compat

	COMPAT_TO_LONG lm64b
	REPORT_STAGE STAGE_LONG
	movl	$TESTWIN_HIGH, %ebx
	movl	$0x06060606, 0x840(%rbx)
	movl	0x840(%rbx), %eax
	CHECK_EQ %eax, 0x06060606, 6, 64
	PASS	64, msg_ok

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: compat: start\n"
msg_compat:	.asciz	"walkvm: compat: compatibility mode ok\n"
msg_ok:		.asciz	"walkvm: compat: back in 64-bit mode, pass\n"
