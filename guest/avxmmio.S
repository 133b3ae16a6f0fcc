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
	PASS	64, msg_ok

/* compare: ZF set if the %ecx bytes at OUT equal the pattern's first ones. */
compare:
	leaq	pattern(%rip), %rsi
	movl	$OUT, %edi
	cld
	repe cmpsb
	ret

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
msg_ok:		.asciz	"walkvm: avxmmio: vmovdqu/vmovdqa 128/256 on MMIO ok, pass\n"
