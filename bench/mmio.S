/*
 * mmio: per-exit cost of MMIO. Flat 32-bit protected mode, paging off,
 * loaded at 0x1000: ITERATIONS times one 4-byte write and one 4-byte read
 * of the test window at 0xff000000 (2 exits each), then the debug exit.
 */
#include "header.h"

	.code32
	.text
	BENCH_HEADER
	movl	iterations, %ecx
	movl	$TESTWIN_HIGH, %ebx
	xorl	%eax, %eax
1:	movl	%eax, (%ebx)
	movl	(%ebx), %eax
	decl	%ecx
	jnz	1b
	xorb	%al, %al
	outb	%al, $DEBUG_EXIT_PORT
	hlt
