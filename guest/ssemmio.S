/*
 * ssemmio: SSE instructions with MMIO operands. KVM's emulator executes
 * the SSE moves itself (the result is then checked under -verify exec);
 * the arithmetic, conversions, MXCSR loads and stores and FXSAVE/FXRSTOR it
 * gives up on, and walkvm completes them. Long mode; CR0.EM and TS clear,
 * MP and NE set; CR4.OSFXSR and OSXMMEXCPT. Operands are put in the low
 * window (W = 0xd0800) with plain movs first, results compared in RAM:
 *   1  movups W -> %xmm0                 2  movups %xmm0 -> W+0x10
 *   3  movdqa W+0x20, movdqu W+0x31 (unaligned), both ways
 *   4  movq W+8, movss W, movd W+4 -> %xmm (upper parts zeroed)
 *   5  addps W+0x40                      6  mulpd W+0x50
 *   7  sqrtps W+0x60                     8  paddd W+0x70
 *   9  pshufd $0x1b, W+0x70              10 pxor W+0x70
 *   11 cvtsi2sdl W+0x80 (7 -> 7.0)       12 cvttss2si W+0x84 (1.5f -> 1)
 *   13 ucomiss W+0x84 (equal: ZF, no PF)
 *   14 ldmxcsr W+0x88 (round toward zero), stmxcsr W+0x8c, cvtss2si W+0x84
 *      (-> 1), ldmxcsr W+0x90 (back to nearest), cvtss2si (-> 2)
 *   15 pmulld W+0x70, pminud W+0x70 (SSE4.1)
 *   16 fxsave W+0x200, %xmm0 cleared, fxrstor W+0x200: %xmm0 back, and its
 *      slot in the image (W+0x2a0) holds it
 * walkvm runs the SSE arithmetic, conversions and compares it completes on
 * the host's vector unit, which needs SSSE3, SSE4.1, SSE4.2 and XSAVE:
 * where CPUID 1 ECX lacks one of them (9, 19, 20, 26; the nested runner's
 * CPU model) the guest reports stage SSE unsupported and passes over 5-13,
 * the conversions of 14, and 15.
 * Failure code = check number.
 */
#include "lib.h"

#define OUT	(SCRATCH + 0xa000)
#define W	(TESTWIN_LOW + 0x800)
/* CPUID 1 ECX: SSSE3, SSE4.1, SSE4.2, XSAVE (walkvm's host vector unit). */
#define HOSTVEC	((1 << 9) | (1 << 19) | (1 << 20) | (1 << 26))

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
	movq	%cr4, %rax
	orq	$(CR4_OSFXSR | CR4_OSXMMEXCPT), %rax
	movq	%rax, %cr4
	REPORT_STAGE STAGE_SSE
	movl	$W, %ebx

	/* 1, 2: movups both ways. */
	leaq	pat(%rip), %rsi
	movq	%rbx, %rdi
	call	put16
	movups	(%rbx), %xmm0
	movups	%xmm0, OUT
	leaq	pat(%rip), %rsi
	call	cmp16
	CHECK	e, 1, 64
	movups	%xmm0, 0x10(%rbx)
	movq	0x10(%rbx), %rax
	movq	%rax, OUT
	movq	0x18(%rbx), %rax
	movq	%rax, OUT+8
	leaq	pat(%rip), %rsi
	call	cmp16
	CHECK	e, 2, 64

	/* 3: aligned and unaligned. */
	movdqa	%xmm0, 0x20(%rbx)
	movdqa	0x20(%rbx), %xmm1
	movdqu	%xmm1, 0x31(%rbx)
	movdqu	0x31(%rbx), %xmm2
	movups	%xmm2, OUT
	leaq	pat(%rip), %rsi
	call	cmp16
	CHECK	e, 3, 64

	/* 4: scalar loads zero the rest of the register. */
	pcmpeqb	%xmm3, %xmm3
	movq	0x08(%rbx), %xmm3
	movups	%xmm3, OUT
	leaq	pat_movq(%rip), %rsi
	call	cmp16
	CHECK	e, 4, 64
	pcmpeqb	%xmm4, %xmm4
	movss	(%rbx), %xmm4
	movups	%xmm4, OUT
	leaq	pat_movss(%rip), %rsi
	call	cmp16
	CHECK	e, 4, 64
	pcmpeqb	%xmm5, %xmm5
	movd	0x04(%rbx), %xmm5
	movups	%xmm5, OUT
	leaq	pat_movd(%rip), %rsi
	call	cmp16
	CHECK	e, 4, 64

	/* 14 (the loads and stores): MXCSR from and to MMIO. */
	movl	$0x7f80, 0x88(%rbx)
	movl	$0x1f80, 0x90(%rbx)
	ldmxcsr	0x88(%rbx)
	stmxcsr	0x8c(%rbx)
	movl	0x8c(%rbx), %eax
	CHECK_EQ %eax, 0x7f80, 14, 64
	ldmxcsr	0x90(%rbx)

	movl	$1, %eax
	cpuid
	andl	$HOSTVEC, %ecx
	cmpl	$HOSTVEC, %ecx
	movl	$W, %ebx
	je	1f
	REPORT_UNSUPPORTED STAGE_SSE
	jmp	fxstate
1:
	/* 5-10: arithmetic with the memory operand on MMIO. */
	leaq	fa2(%rip), %rsi
	leaq	0x40(%rbx), %rdi
	call	put16
	movups	fa(%rip), %xmm6
	addps	0x40(%rbx), %xmm6
	movups	%xmm6, OUT
	leaq	e_addps(%rip), %rsi
	call	cmp16
	CHECK	e, 5, 64

	leaq	dd(%rip), %rsi
	leaq	0x50(%rbx), %rdi
	call	put16
	movups	dd2(%rip), %xmm7
	mulpd	0x50(%rbx), %xmm7
	movups	%xmm7, OUT
	leaq	e_mulpd(%rip), %rsi
	call	cmp16
	CHECK	e, 6, 64

	leaq	fs(%rip), %rsi
	leaq	0x60(%rbx), %rdi
	call	put16
	sqrtps	0x60(%rbx), %xmm8
	movups	%xmm8, OUT
	leaq	e_sqrtps(%rip), %rsi
	call	cmp16
	CHECK	e, 7, 64

	leaq	ii(%rip), %rsi
	leaq	0x70(%rbx), %rdi
	call	put16
	movups	ii2(%rip), %xmm9
	paddd	0x70(%rbx), %xmm9
	movups	%xmm9, OUT
	leaq	e_paddd(%rip), %rsi
	call	cmp16
	CHECK	e, 8, 64

	pshufd	$0x1b, 0x70(%rbx), %xmm10
	movups	%xmm10, OUT
	leaq	e_pshufd(%rip), %rsi
	call	cmp16
	CHECK	e, 9, 64

	movups	ii2(%rip), %xmm11
	pxor	0x70(%rbx), %xmm11
	movups	%xmm11, OUT
	leaq	e_pxor(%rip), %rsi
	call	cmp16
	CHECK	e, 10, 64

	/* 11-13: conversions and a compare. */
	movl	$7, 0x80(%rbx)
	xorps	%xmm12, %xmm12
	cvtsi2sdl 0x80(%rbx), %xmm12
	movq	%xmm12, %rax
	movabsq	$0x401c000000000000, %rdx
	cmpq	%rdx, %rax
	CHECK	e, 11, 64
	movl	$0x3fc00000, 0x84(%rbx)
	cvttss2si 0x84(%rbx), %eax
	CHECK_EQ %eax, 1, 12, 64
	movss	0x84(%rbx), %xmm13
	ucomiss	0x84(%rbx), %xmm13
	CHECK	e, 13, 64
	CHECK	np, 13, 64

	/* 14 (the conversions): rounding by MXCSR.RC. */
	ldmxcsr	0x88(%rbx)
	cvtss2si 0x84(%rbx), %eax
	CHECK_EQ %eax, 1, 14, 64
	ldmxcsr	0x90(%rbx)
	cvtss2si 0x84(%rbx), %eax
	CHECK_EQ %eax, 2, 14, 64

	/* 15: SSE4.1. */
	movups	ii2(%rip), %xmm14
	pmulld	0x70(%rbx), %xmm14
	movups	%xmm14, OUT
	leaq	e_pmulld(%rip), %rsi
	call	cmp16
	CHECK	e, 15, 64
	movups	ii2(%rip), %xmm15
	pminud	0x70(%rbx), %xmm15
	movups	%xmm15, OUT
	leaq	e_pminud(%rip), %rsi
	call	cmp16
	CHECK	e, 15, 64

fxstate:
	/* 16: the whole SSE state to MMIO and back. */
	fxsave	0x200(%rbx)
	xorps	%xmm0, %xmm0
	fxrstor	0x200(%rbx)
	movups	%xmm0, OUT
	leaq	pat(%rip), %rsi
	call	cmp16
	CHECK	e, 16, 64
	movq	0x2a0(%rbx), %rax
	movq	%rax, OUT
	movq	0x2a8(%rbx), %rax
	movq	%rax, OUT+8
	leaq	pat(%rip), %rsi
	call	cmp16
	CHECK	e, 16, 64
	PASS	64, msg_ok

/* put16: the 16 bytes at %rsi to %rdi, 8 at a time. */
put16:
	movq	(%rsi), %rax
	movq	%rax, (%rdi)
	movq	8(%rsi), %rax
	movq	%rax, 8(%rdi)
	ret

/* cmp16: ZF set if the 16 bytes at OUT equal those at %rsi. */
cmp16:
	movl	$OUT, %edi
	movl	$16, %ecx
	cld
	repe cmpsb
	ret

	.balign	16
pat:	.byte	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17
	.byte	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f
pat_movq:	.byte	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f
	.quad	0
pat_movss:	.byte	0x10, 0x11, 0x12, 0x13
	.long	0, 0, 0
pat_movd:	.byte	0x14, 0x15, 0x16, 0x17
	.long	0, 0, 0
fa:	.float	1.0, 2.0, 3.0, 4.0
fa2:	.float	0.5, 0.25, 8.0, -1.0
e_addps: .long	0x3fc00000, 0x40100000, 0x41300000, 0x40400000
dd:	.double	1.5, -2.0
dd2:	.double	2.0, 4.0
e_mulpd: .quad	0x4008000000000000, 0xc020000000000000
fs:	.float	4.0, 9.0, 16.0, 25.0
e_sqrtps: .long	0x40000000, 0x40400000, 0x40800000, 0x40a00000
ii:	.long	1, 2, 0x80000000, 0xffffffff
ii2:	.long	0x10, 0x20, 0x80000000, 1
e_paddd: .long	0x11, 0x22, 0, 0
e_pshufd: .long	0xffffffff, 0x80000000, 2, 1
e_pxor:	.long	0x11, 0x22, 0, 0xfffffffe
e_pmulld: .long	0x10, 0x40, 0, 0xffffffff
e_pminud: .long	1, 2, 0x80000000, 1

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: ssemmio: start\n"
msg_ok:		.asciz	"walkvm: ssemmio: SSE moves, arithmetic, MXCSR and FXSAVE/FXRSTOR on MMIO ok, pass\n"
