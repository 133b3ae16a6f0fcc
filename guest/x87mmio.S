/*
 * x87mmio: x87 loads and stores with MMIO operands, which KVM's emulator
 * cannot do: walkvm must complete them in userspace. Long mode; CR0.EM
 * clear, MP and NE set; fninit. On the low window (4 KiB pages):
 *   1  flds  0xd0c00 (1.5f, written first), fstps 0xd0c04 -> 0x3fc00000
 *   2  fldl  0xd0c08 (2.5, written first),  fstpl 0xd0c10 -> 0x4004000000000000
 *   3  flds  0xd0c00, fstpl 0xd0c18 -> 1.5 as a double, 0x3ff8000000000000
 *   4  fldl  0xd0c08, fstps 0xd0c20 -> 2.5 as a float,  0x40200000
 * and the other memory forms (operands put with mov first):
 *   5  fildl 0xd0c28 (7), fistpl 0xd0c2c
 *   6  filds 0xd0c30 (-3), fistps 0xd0c32
 *   7  fildll 0xd0c38 (0x0123456789abcdef), fistpll 0xd0c40
 *   8  fldt 0xd0c50 (1.5 as an 80-bit real), fstpt 0xd0c60
 *   9  fbld 0xd0c70 (BCD 12345), fbstp 0xd0c80
 *   10 fnstcw 0xd0c90 (0x037f after fninit; KVM emulates it); fldcw
 *      0xd0c92 (round toward zero), flds 1.5, fistpl 0xd0c94 (-> 1),
 *      fnstcw 0xd0c98; fldcw 0xd0c9a (back to 0x037f)
 *   11 fninit, fnstsw 0xd0ca0 (-> 0; KVM emulates it)
 *   12 fnstenv 0xd0cb0, fldenv 0xd0cb0: FCW 0x037f in the image and after
 *   13 fld1, fiaddl 0xd0c28 (+7), fistpl 0xd0ccc (-> 8)
 *   14 flds 1.5, fmuls 0xd0c00 (x1.5), fstps 0xd0cd0 (-> 2.25f, 0x40100000)
 *   15 flds 0xd0c04 (1.5), fcomps 0xd0c00: equal, C3 set, C0 and C2 clear
 *   16 fld1, fnsave 0xd0d00 (108 bytes; the x87 state is reset), frstor
 *      0xd0d00, fistpl 0xd0cdc (-> 1)
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

	/* 5-7: integers. */
	movl	$7, 0x28(%rbx)
	fildl	0x28(%rbx)
	fistpl	0x2c(%rbx)
	movl	0x2c(%rbx), %eax
	CHECK_EQ %eax, 7, 5, 64
	movw	$-3, 0x30(%rbx)
	filds	0x30(%rbx)
	fistps	0x32(%rbx)
	movzwl	0x32(%rbx), %eax
	CHECK_EQ %eax, 0xfffd, 6, 64
	movabsq	$0x0123456789abcdef, %rax
	movq	%rax, 0x38(%rbx)
	fildll	0x38(%rbx)
	fistpll	0x40(%rbx)
	movq	0x40(%rbx), %rcx
	cmpq	%rax, %rcx
	CHECK	e, 7, 64

	/* 8: an 80-bit real. */
	movabsq	$0xc000000000000000, %rax
	movq	%rax, 0x50(%rbx)
	movw	$0x3fff, 0x58(%rbx)
	fldt	0x50(%rbx)
	fstpt	0x60(%rbx)
	movq	0x60(%rbx), %rcx
	cmpq	%rax, %rcx
	CHECK	e, 8, 64
	movzwl	0x68(%rbx), %eax
	CHECK_EQ %eax, 0x3fff, 8, 64

	/* 9: packed BCD. */
	movq	$0x012345, 0x70(%rbx)
	movw	$0, 0x78(%rbx)
	fbld	0x70(%rbx)
	fbstp	0x80(%rbx)
	movq	0x80(%rbx), %rax
	cmpq	$0x012345, %rax
	CHECK	e, 9, 64
	movzwl	0x88(%rbx), %eax
	CHECK_EQ %eax, 0, 9, 64

	/* 10: the control word, and a rounding change through it. */
	fnstcw	0x90(%rbx)
	movzwl	0x90(%rbx), %eax
	CHECK_EQ %eax, 0x037f, 10, 64
	movw	$0x0f7f, 0x92(%rbx)
	movw	$0x037f, 0x9a(%rbx)
	fldcw	0x92(%rbx)
	flds	0x04(%rbx)
	fistpl	0x94(%rbx)
	movl	0x94(%rbx), %eax
	CHECK_EQ %eax, 1, 10, 64
	fnstcw	0x98(%rbx)
	movzwl	0x98(%rbx), %eax
	CHECK_EQ %eax, 0x0f7f, 10, 64
	fldcw	0x9a(%rbx)

	/* 11: the status word. */
	fninit
	fnstsw	0xa0(%rbx)
	movzwl	0xa0(%rbx), %eax
	CHECK_EQ %eax, 0, 11, 64

	/* 12: the environment. */
	fnstenv	0xb0(%rbx)
	movzwl	0xb0(%rbx), %eax
	CHECK_EQ %eax, 0x037f, 12, 64
	fldenv	0xb0(%rbx)
	fnstcw	0xa2(%rbx)
	movzwl	0xa2(%rbx), %eax
	CHECK_EQ %eax, 0x037f, 12, 64

	/* 13, 14: arithmetic with memory operands. */
	fld1
	fiaddl	0x28(%rbx)
	fistpl	0xcc(%rbx)
	movl	0xcc(%rbx), %eax
	CHECK_EQ %eax, 8, 13, 64
	flds	0x04(%rbx)
	fmuls	(%rbx)
	fstps	0xd0(%rbx)
	movl	0xd0(%rbx), %eax
	CHECK_EQ %eax, 0x40100000, 14, 64

	/* 15: a compare. */
	flds	0x04(%rbx)
	fcomps	(%rbx)
	fnstsw	%ax
	andl	$0x4500, %eax
	CHECK_EQ %eax, 0x4000, 15, 64

	/* 16: the whole x87 state to MMIO and back. */
	fld1
	fnsave	0x100(%rbx)
	frstor	0x100(%rbx)
	fistpl	0xdc(%rbx)
	movl	0xdc(%rbx), %eax
	CHECK_EQ %eax, 1, 16, 64
	PASS	64, msg_ok

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: x87mmio: start\n"
msg_ok:		.asciz	"walkvm: x87mmio: every x87 memory form on MMIO ok, pass\n"
