/*
 * exit: boot-to-exit. Real mode, loaded at 0x1000: the first instruction
 * after the header writes 0 to the debug-exit port (one exit).
 */
#include "header.h"

	.code16
	.text
	BENCH_HEADER
	xorb	%al, %al
	outb	%al, $DEBUG_EXIT_PORT
	hlt
