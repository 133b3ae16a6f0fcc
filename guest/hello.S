/*
 * hello: walkvm's first guest. Real mode, loaded at 0x1000 with CS=DS=0.
 * Prints through the 16550 at 0x3f8, writes and reads the MMIO test window
 * at 0xd0000 with several 16-bit addressing forms, checks what it reads
 * back, and reports through the debug-exit port (0 = pass, 1 = fail).
 */
#include "walkvm.h"

	.code16
	.text
	.globl _start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	$msg_hello, %si
	call	puts

	movw	$(TESTWIN_LOW >> 4), %ax	/* ES = 0xd000: the window */
	movw	%ax, %es

	/* 1. [disp16] with an ES override: word write, word read. */
	movw	$0x1234, %es:0x10
	movw	%es:0x10, %ax
	cmpw	$0x1234, %ax
	jne	fail

	/* 2. [bx+si+disp8]. */
	movw	$0x20, %bx
	movw	$0x4, %si
	movw	$0xbeef, %es:2(%bx,%si)		/* 0xd0026 */
	movw	%es:0x26, %dx
	cmpw	$0xbeef, %dx
	jne	fail

	/* 3. [di+disp16], byte access. */
	movw	$0x100, %di
	movb	$0x5a, %es:0x200(%di)		/* 0xd0300 */
	movb	%es:0x300, %cl
	cmpb	$0x5a, %cl
	jne	fail

	/* 4. [bx+di], dword with an operand-size prefix. */
	movw	$0x40, %bx
	movw	$0x8, %di
	movl	$0xdeadbeef, %es:(%bx,%di)	/* 0xd0048 */
	movl	%es:0x48, %eax
	cmpl	$0xdeadbeef, %eax
	jne	fail

	/* 5. [bp+disp8] defaults to SS: point SS at the window for a moment. */
	movw	%ss, %dx
	movw	$(TESTWIN_LOW >> 4), %ax
	movw	%ax, %ss
	movw	$0x60, %bp
	movw	$0xcafe, 4(%bp)			/* SS:0x64 = 0xd0064 */
	movw	%dx, %ss
	movw	%es:0x64, %ax
	cmpw	$0xcafe, %ax
	jne	fail

	/* 6. [si] with DS pointing at the window, read back through ES. */
	movw	$(TESTWIN_LOW >> 4), %ax
	movw	%ax, %ds
	movw	$0x80, %si
	movw	$0x0bad, (%si)			/* 0xd0080 */
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%es:0x80, %ax
	cmpw	$0x0bad, %ax
	jne	fail

	movw	$msg_ok, %si
	call	puts
	movb	$0, %al
	outb	%al, $DEBUG_EXIT_PORT
	hlt

fail:
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	$msg_fail, %si
	call	puts
	movb	$1, %al
	outb	%al, $DEBUG_EXIT_PORT
	hlt

/* puts: print the NUL-terminated string at DS:SI. */
puts:
	lodsb
	testb	%al, %al
	jz	2f
	movb	%al, %ah
	movw	$(COM1 + 5), %dx
1:	inb	%dx, %al			/* wait for THRE */
	testb	$0x20, %al
	jz	1b
	movw	$COM1, %dx
	movb	%ah, %al
	outb	%al, %dx
	jmp	puts
2:	ret

msg_hello:	.asciz	"walkvm: hello from real mode\n"
msg_ok:		.asciz	"walkvm: MMIO test window: 6 addressing forms ok\n"
msg_fail:	.asciz	"walkvm: MMIO test window: FAIL\n"
