/*
 * realmode: MMIO from real mode with every 16-bit addressing form. Loaded
 * at 0x1000, CS=0. With BX=0x100, SI=0x10, DI=0x20, BP=0x300 and
 * DS=0xd000, SS=0xd100, ES=0xd200, FS=0xd300, GS=0xd400 (all inside the
 * low test window, each segment base 4 KiB apart so the segment used shows
 * in the GPA), form n writes the word 0xa500+n through its operand and reads
 * it back through the same operand:
 *   0-7    mod 00: [bx+si] [bx+di] [bp+si] [bp+di] [si] [di] [disp16] [bx]
 *   8-15   mod 01: the same with disp8 (negative ones included), [bp+disp8]
 *   16-23  mod 10: the same with disp16 (form 16 wraps at 64 KiB)
 *   24-28  segment overrides: ES, FS (on a BP form), GS, SS (on a BX form),
 *          DS (on a BP form)
 *   29     moffs16 (A3 store, A1 load)
 * then a CS override: code copied to 0x9f000 runs with CS=0x9f00 and
 * reads and writes CS:0x1000 = GPA 0xa0000, in the PC hole (unassigned
 * MMIO: the read gives all ones). An exception through the guest's IVT
 * (ud2 -> #UD) is reported and resumed. Failure codes: 1 #UD not seen,
 * 10+n form n read back wrong, 40 CS-override read not all ones.
 */
#include "lib.h"

	CODE16
	.text
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	IVT16_INSTALL
	PUTS16	msg_hello
	REPORT_STAGE STAGE_REAL

	/* An exception through the IVT: reported, resumed after ud2. */
	RECOVER16 1f
ud_insn:
	ud2
1:	cmpl	$6, fault_vec
	CHECK	e, 1, 16
	cmpl	$ud_insn, fault_rip
	CHECK	e, 1, 16

	/* CS override: run a copy of cs_code at 0x9f00:0. */
	movw	$0x9f00, %ax
	movw	%ax, %es
	movw	$cs_code, %si
	xorw	%di, %di
	movw	$(cs_code_end - cs_code), %cx
	cld
	rep movsb
	lcall	$0x9f00, $0
	cmpw	$0xffff, %ax
	CHECK	e, 40, 16

	/* The addressing forms. */
	movw	$0x100, %bx
	movw	$0x10, %si
	movw	$0x20, %di
	movw	$0x300, %bp
	movw	$0xd000, %ax
	movw	%ax, %ds
	movw	$0xd100, %ax
	movw	%ax, %ss
	movw	$0xd200, %ax
	movw	%ax, %es
	movw	$0xd300, %ax
	movw	%ax, %fs
	movw	$0xd400, %ax
	movw	%ax, %gs

.macro FORM n, mem:vararg
	movw	$(0xa500 + \n), \mem
	movw	\mem, %cx
	cmpw	$(0xa500 + \n), %cx
	CHECK	e, (10 + \n), 16
.endm
/* The same, forcing a 16-bit displacement (gas would pick disp8). */
.macro FORMD16 n, mem:vararg
	{disp16} movw $(0xa500 + \n), \mem
	{disp16} movw \mem, %cx
	cmpw	$(0xa500 + \n), %cx
	CHECK	e, (10 + \n), 16
.endm
	FORM	0, (%bx,%si)
	FORM	1, (%bx,%di)
	FORM	2, (%bp,%si)
	FORM	3, (%bp,%di)
	FORM	4, (%si)
	FORM	5, (%di)
	FORM	6, 0x0600
	FORM	7, (%bx)
	FORM	8, 0x08(%bx,%si)
	FORM	9, -0x08(%bx,%di)
	FORM	10, 0x08(%bp,%si)
	FORM	11, 0x10(%bp,%di)
	FORM	12, 0x08(%si)
	FORM	13, -0x08(%di)
	FORM	14, 0x08(%bp)
	FORM	15, 0x7f(%bx)
	FORMD16	16, 0xfff0(%bx,%si)	/* 0x110 + 0xfff0 wraps to 0x100 */
	FORM	17, 0x1000(%bx,%di)
	FORM	18, 0x1000(%bp,%si)
	FORM	19, 0x2000(%bp,%di)
	FORM	20, 0x1000(%si)
	FORM	21, 0x1000(%di)
	FORM	22, 0x1000(%bp)
	FORM	23, 0x1000(%bx)
	FORM	24, %es:(%bx,%si)
	FORM	25, %fs:0x08(%bp)
	FORM	26, %gs:0x1000(%di)
	FORM	27, %ss:(%bx)
	FORM	28, %ds:(%bp,%di)
	/* 29: moffs16 (A3/A1), DS. */
	movw	$0xa51d, %ax
	movw	%ax, 0x0700
	xorw	%ax, %ax
	movw	0x0700, %ax
	cmpw	$0xa51d, %ax
	CHECK	e, 39, 16

	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movw	$0x1000, %sp
	PASS	16, msg_ok

/* Runs at 0x9f00:0: CS:0x1000 is GPA 0xa0000, in the PC hole. */
cs_code:
	movw	%cs:0x1000, %ax
	movw	$0x5a5a, %cs:0x1002
	lret
cs_code_end:

	LIB	16
	IVT16
	GUEST_DATA
msg_hello:	.asciz	"walkvm: realmode: start\n"
msg_ok:		.asciz	"walkvm: realmode: 30 addressing forms and a CS override ok\n"
