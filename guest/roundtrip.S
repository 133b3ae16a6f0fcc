/*
 * roundtrip: every mode switch there and back, with MMIO in every stage.
 * Steps (i: stage):
 *   0 real -> 1 protected 32 -> 2 32-bit paging -> 3 protected 32 (paging
 *   off) -> 4 PAE -> 5 protected 32 -> 6 long -> 7 compatibility -> 8 long
 *   -> 9 protected 32 (long mode left) -> 10 protected 16 -> 11 real
 * At each step the guest reports the stage reached and writes
 * 0x5a000000 | i << 8 | stage id to the low window at 0xd0e00 + 4*i, then
 * reads it back (failure code 10 + i). Where the host refuses a stage (the
 * CR0.PG write faults) the handler catches the fault, the guest reports
 * the stage refused (and prints it) and goes on with the next step without
 * that step's MMIO. The verdict is a pass when every step passed or was
 * refused by the host.
 */
#include "lib.h"

#define RT_OFF(i)	(0xe00 + 4 * (i))
#define RT_VAL(i, s)	(0x5a000000 | ((i) << 8) | (s))

/* The step's MMIO: ES-based in 16-bit code, flat otherwise. */
.macro STEP i, stage
	REPORT_STAGE \stage
	.if BITS == 16
	movl	$RT_VAL(\i, \stage), %es:RT_OFF(\i)
	movl	%es:RT_OFF(\i), %eax
	cmpl	$RT_VAL(\i, \stage), %eax
	.else
	movl	$RT_VAL(\i, \stage), TESTWIN_LOW + RT_OFF(\i)
	movl	TESTWIN_LOW + RT_OFF(\i), %eax
	cmpl	$RT_VAL(\i, \stage), %eax
	.endif
.endm

	CODE16
	.text
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	IVT16_INSTALL
	PUTS16	msg_hello
	movw	$(TESTWIN_LOW >> 4), %ax
	movw	%ax, %es
	STEP	0, STAGE_REAL
	CHECK	e, 10, 16

	REAL_TO_PROT32 pm32
	STEP	1, STAGE_PROT32
	CHECK	e, 11, 32

	BUILD_P32
	PAGING_ON32 P32_PD, CR4_PSE, STAGE_PAGING32, p32_refused
	STEP	2, STAGE_PAGING32
	CHECK	e, 12, 32
	PAGING_OFF32
	jmp	1f
p32_refused:
	PUTS32	msg_p32_refused
1:	STEP	3, STAGE_PROT32
	CHECK	e, 13, 32

	BUILD_PAE
	PAGING_ON32 PAE_PDPT, CR4_PAE, STAGE_PAE, pae_refused
	STEP	4, STAGE_PAE
	CHECK	e, 14, 32
	PAGING_OFF32
	jmp	1f
pae_refused:
	PUTS32	msg_pae_refused
1:	STEP	5, STAGE_PROT32
	CHECK	e, 15, 32

	BUILD_LM
	LONG_ON	LM_PML4, 0, 0, STAGE_LONG, lm_refused, lm64
	STEP	6, STAGE_LONG
	CHECK	e, 16, 64
	LONG_TO_COMPAT cm32
	STEP	7, STAGE_COMPAT
	CHECK	e, 17, 32
	COMPAT_TO_LONG lm64b
	STEP	8, STAGE_LONG
	CHECK	e, 18, 64
	LONG_TO_COMPAT cm32b
	COMPAT_TO_PROT32
	jmp	1f
lm_refused:
	PUTS32	msg_lm_refused
1:	STEP	9, STAGE_PROT32
	CHECK	e, 19, 32

	PROT32_TO_PROT16 pm16
	movw	$SEL_WINLOW16, %ax
	movw	%ax, %es
	STEP	10, STAGE_PROT16
	CHECK_QUIET e, 20
	movw	$SEL_DATA16, %ax
	movw	%ax, %es
	PROT16_TO_REAL rm16
	movw	$(TESTWIN_LOW >> 4), %ax
	movw	%ax, %es
	STEP	11, STAGE_REAL
	CHECK	e, 21, 16
	PASS	16, msg_ok

	CODE16
	LIB	16
	IVT16
	CODE32
	LIB	32
	IDT32
	CODE64
	LIB	64
	IDT64
	GUEST_GDT
	GUEST_DATA
msg_hello:	.asciz	"walkvm: roundtrip: start\n"
msg_p32_refused: .asciz	"walkvm: roundtrip: 32-bit paging refused by the host (CR0.PG write faulted)\n"
msg_pae_refused: .asciz	"walkvm: roundtrip: PAE paging refused by the host (CR0.PG write faulted)\n"
msg_lm_refused:	.asciz	"walkvm: roundtrip: long mode refused by the host\n"
msg_ok:		.asciz	"walkvm: roundtrip: real -> protected -> paging32 -> PAE -> long -> compat -> long -> protected -> 16-bit -> real, pass\n"
