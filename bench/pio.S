/*
 * pio: per-exit cost of port I/O. Flat 32-bit protected mode, loaded at
 * 0x1000: ITERATIONS times one byte OUT and one byte IN on the UART's
 * scratch register (0x3ff; 2 exits each), then the debug exit.
 */
#include "header.h"

	.code32
	.text
	BENCH_HEADER
	movl	iterations, %ecx
	movw	$(COM1 + 7), %dx
	xorl	%eax, %eax
1:	outb	%al, %dx
	inb	%dx, %al
	decl	%ecx
	jnz	1b
	xorb	%al, %al
	outb	%al, $DEBUG_EXIT_PORT
	hlt
