/*
 * x87mmio: x87 loads and stores with MMIO operands, which KVM's emulator
 * cannot do: walkvm must complete them in userspace. Long mode; CR0.EM
 * clear, MP and NE set; fninit. On the low window (4 KiB pages):
 *   1  flds  0xd0c00 (1.5f, written first), fstps 0xd0c04 -> 0x3fc00000
 *   2  fldl  0xd0c08 (2.5, written first),  fstpl 0xd0c10 -> 0x4004000000000000
 *   3  flds  0xd0c00, fstpl 0xd0c18 -> 1.5 as a double, 0x3ff8000000000000
 *   4  fldl  0xd0c08, fstps 0xd0c20 -> 2.5 as a float,  0x40200000
 * Failure code = check number.
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
	movq	%cr0, %rax
	andq	$~(CR0_EM | CR0_TS), %rax
	orq	$(CR0_MP | CR0_NE), %rax
	movq	%rax, %cr0
	fninit
	REPORT_STAGE STAGE_X87

	movl	$(TESTWIN_LOW + 0xc00), %ebx
	movl	$0x3fc00000, (%rbx)
	movabsq	$0x4004000000000000, %rax
	movq	%rax, 0x08(%rbx)

	flds	(%rbx)
	fstps	0x04(%rbx)
	movl	0x04(%rbx), %eax
	CHECK_EQ %eax, 0x3fc00000, 1, 64
	fldl	0x08(%rbx)
	fstpl	0x10(%rbx)
	movq	0x10(%rbx), %rax
	movabsq	$0x4004000000000000, %rdx
	cmpq	%rdx, %rax
	CHECK	e, 2, 64
	flds	(%rbx)
	fstpl	0x18(%rbx)
	movq	0x18(%rbx), %rax
	movabsq	$0x3ff8000000000000, %rdx
	cmpq	%rdx, %rax
	CHECK	e, 3, 64
	fldl	0x08(%rbx)
	fstps	0x20(%rbx)
	movl	0x20(%rbx), %eax
	CHECK_EQ %eax, 0x40200000, 4, 64
	PASS	64, msg_ok

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: x87mmio: start\n"
msg_ok:		.asciz	"walkvm: x87mmio: flds/fstps/fldl/fstpl on MMIO ok, pass\n"
