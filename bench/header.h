/*
 * Common to every bench guest. The image starts with a short jump over a
 * header that package bench patches before a run:
 *   offset 4: the iteration count (u32, at least 1)
 *   offset 8: the magic "WVMBENCH", which the driver checks first
 * Every guest ends with a write of 0 to the debug-exit port.
 */
#define DEBUG_EXIT_PORT	0xf4
#define COM1		0x3f8
#define TESTWIN_HIGH	0xff000000

.macro BENCH_HEADER
	.globl	_start
_start:
	jmp	.Lbody
	.balign	4
iterations:
	.long	1
	.ascii	"WVMBENCH"
.Lbody:
.endm
