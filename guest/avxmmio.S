/*
 * avxmmio: AVX 128- and 256-bit moves with MMIO operands, which KVM's
 * emulator cannot do: walkvm must complete them in userspace. Long mode;
 * where CPUID 1 ECX lacks XSAVE (26) or AVX (28) the guest reports stage
 * AVX unsupported and exits with STATUS_SKIPPED. Else CR4.OSFXSR,
 * OSXMMEXCPT and OSXSAVE, XCR0 = x87|SSE|AVX (xsetbv); where a
 * register-only vmovdqu then faults (#UD), the guest reports stage AVX
 * refused by the host and exits with STATUS_SKIPPED. With a 32-byte
 * pattern (bytes 0x40..0x5f) in %ymm0, on the low window:
 *   1  vmovdqu %xmm0 -> 0xd0d00, vmovdqu 0xd0d00 -> %xmm1 (16 bytes)
 *   2  vmovdqa %ymm0 -> 0xd0d20, vmovdqa 0xd0d20 -> %ymm2 (32, aligned)
 *   3  vmovdqu %ymm0 -> 0xd0d41, vmovdqu 0xd0d41 -> %ymm3 (32, unaligned)
 *   4  vmovdqa %xmm0 -> 0xd0d80, vmovdqa 0xd0d80 -> %xmm4 (16, aligned)
 * Each register read back is stored to RAM and compared with the pattern.
 * Then arithmetic with the memory operand on MMIO (operands stored there
 * with vmovdqu first):
 *   5  vaddps 0xd0e20 (256 bits)
 *   6  vpaddd 0xd0e00 (128 bits)
 *   7  where CPUID 7.0 EBX[5] has AVX2: vpaddd and vpxor 0xd0e00 (256 bits)
 * Failure code = check number.
 */
#include "lib.h"

#define OUT	(SCRATCH + 0xa000)

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
	movl	$1, %eax
	cpuid
	andl	$((1 << 26) | (1 << 28)), %ecx
	cmpl	$((1 << 26) | (1 << 28)), %ecx
	je	1f
	REPORT_UNSUPPORTED STAGE_AVX
	SKIP	64, msg_noavx
1:	movq	%cr0, %rax
	andq	$~(CR0_EM | CR0_TS), %rax
	orq	$(CR0_MP | CR0_NE), %rax
	movq	%rax, %cr0
	movq	%cr4, %rax
	orq	$(CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE), %rax
	movq	%rax, %cr4
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	movl	$7, %eax
	xsetbv
	/* Probe: a register-only VEX move. A host that raises #UD for it
	 * cannot run AVX guests at all: report the stage refused. */
	RECOVER64 2f
	vmovdqu	%ymm0, %ymm1
2:	movq	$0, recover_rip(%rip)
	cmpl	$-1, fault_vec(%rip)
	je	3f
	REPORT_REFUSED STAGE_AVX
	SKIP	64, msg_refused
3:	REPORT_STAGE STAGE_AVX

	vmovdqu	pattern(%rip), %ymm0
	movl	$(TESTWIN_LOW + 0xd00), %ebx

	vmovdqu	%xmm0, (%rbx)
	vmovdqu	(%rbx), %xmm1
	vmovdqu	%xmm1, OUT
	movl	$16, %ecx
	call	compare
	CHECK	e, 1, 64

	vmovdqa	%ymm0, 0x20(%rbx)
	vmovdqa	0x20(%rbx), %ymm2
	vmovdqu	%ymm2, OUT
	movl	$32, %ecx
	call	compare
	CHECK	e, 2, 64

	vmovdqu	%ymm0, 0x41(%rbx)
	vmovdqu	0x41(%rbx), %ymm3
	vmovdqu	%ymm3, OUT
	movl	$32, %ecx
	call	compare
	CHECK	e, 3, 64

	vmovdqa	%xmm0, 0x80(%rbx)
	vmovdqa	0x80(%rbx), %xmm4
	vmovdqu	%xmm4, OUT
	movl	$16, %ecx
	call	compare
	CHECK	e, 4, 64

	/* 5-7: arithmetic. */
	vmovdqu	va(%rip), %ymm15
	vmovdqu	%ymm15, 0x100(%rbx)
	vmovdqu	fa(%rip), %ymm15
	vmovdqu	%ymm15, 0x120(%rbx)
	vmovdqu	fb(%rip), %ymm5
	vaddps	0x120(%rbx), %ymm5, %ymm5
	vmovdqu	%ymm5, OUT
	leaq	e_vaddps(%rip), %rsi
	movl	$32, %ecx
	call	comparen
	CHECK	e, 5, 64
	vmovdqu	vb(%rip), %xmm6
	vpaddd	0x100(%rbx), %xmm6, %xmm6
	vmovdqu	%xmm6, OUT
	leaq	e_vpaddd(%rip), %rsi
	movl	$16, %ecx
	call	comparen
	CHECK	e, 6, 64
	movl	$7, %eax
	xorl	%ecx, %ecx
	cpuid
	btl	$5, %ebx
	movl	$(TESTWIN_LOW + 0xd00), %ebx
	jnc	1f
	vmovdqu	vb(%rip), %ymm7
	vpaddd	0x100(%rbx), %ymm7, %ymm7
	vmovdqu	%ymm7, OUT
	leaq	e_vpaddd(%rip), %rsi
	movl	$32, %ecx
	call	comparen
	CHECK	e, 7, 64
	vmovdqu	vb(%rip), %ymm8
	vpxor	0x100(%rbx), %ymm8, %ymm8
	vmovdqu	%ymm8, OUT
	leaq	e_vpxor(%rip), %rsi
	movl	$32, %ecx
	call	comparen
	CHECK	e, 7, 64
1:	PASS	64, msg_ok

/* compare: ZF set if the %ecx bytes at OUT equal the pattern's first ones. */
compare:
	leaq	pattern(%rip), %rsi
/* comparen: ZF set if the %ecx bytes at OUT equal those at %rsi. */
comparen:
	movl	$OUT, %edi
	cld
	repe cmpsb
	ret

	.balign	32
va:	.long	1, 2, 3, 4, 5, 6, 7, 0x7fffffff
vb:	.long	10, 20, 30, 40, 50, 60, 70, 1
fa:	.float	1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0
fb:	.float	0.5, 0.5, 0.5, 0.5, -1.0, -2.0, -3.0, -4.0
e_vaddps: .long	0x3fc00000, 0x40200000, 0x40600000, 0x40900000
	.long	0x40800000, 0x40800000, 0x40800000, 0x40800000
e_vpaddd: .long	0xb, 0x16, 0x21, 0x2c, 0x37, 0x42, 0x4d, 0x80000000
e_vpxor: .long	0xb, 0x16, 0x1d, 0x2c, 0x37, 0x3a, 0x41, 0x7ffffffe

	.balign	32
pattern:
	.byte	0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47
	.byte	0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f
	.byte	0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57
	.byte	0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: avxmmio: start\n"
msg_refused:	.asciz	"walkvm: avxmmio: a register-only vmovdqu faulted: the host refuses AVX\n"
msg_noavx:	.asciz	"walkvm: avxmmio: no AVX/XSAVE in CPUID, skipped\n"
msg_ok:		.asciz	"walkvm: avxmmio: vmovdqu/vmovdqa 128/256 and arithmetic on MMIO ok, pass\n"
