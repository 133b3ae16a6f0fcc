/*
 * long4k: MMIO through 4-level walks with 4 KiB pages. Entered in long
 * mode (walkvm's 2 MiB identity map), loaded at 0x1000. It builds its own
 * tables at 0x10000 (PML4, PDPT, PD, PT): the PT maps linear 0-0x1fefff
 * onto itself and linear 0x1ff000 onto the test window at 0xff000000, so
 * both the fetch and the operand of every MMIO exit walk four levels to a
 * 4 KiB page. Then ITERATIONS times one 4-byte write and one 4-byte read
 * at linear 0x1ff000 (2 exits each), then the debug exit.
 */
#include "header.h"

#define PML4	0x10000
#define PDPT	0x11000
#define PD	0x12000
#define PT	0x13000
#define P_RW	3	/* present, writable */
#define ALIAS	0x1ff000	/* PT entry 511 */

	.code64
	.text
	BENCH_HEADER
	movl	$PML4, %edi
	xorl	%eax, %eax
	movl	$(4 * 4096 / 8), %ecx
	rep stosq
	movq	$(PDPT | P_RW), PML4
	movq	$(PD | P_RW), PDPT
	movq	$(PT | P_RW), PD
	movl	$PT, %edi
	movl	$P_RW, %eax
	movl	$511, %ecx
1:	movq	%rax, (%rdi)
	addq	$8, %rdi
	addq	$0x1000, %rax
	loop	1b
	movl	$(TESTWIN_HIGH | P_RW), %eax	/* zero-extended into RAX */
	movq	%rax, (%rdi)
	movl	$PML4, %eax
	movq	%rax, %cr3

	movl	iterations(%rip), %ecx
	movl	$ALIAS, %ebx
	xorl	%eax, %eax
2:	movl	%eax, (%rbx)
	movl	(%rbx), %eax
	decl	%ecx
	jnz	2b
	xorb	%al, %al
	outb	%al, $DEBUG_EXIT_PORT
	hlt
