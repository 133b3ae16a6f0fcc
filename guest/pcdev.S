/*
 * pcdev: a multiboot guest that checks the PC devices kvm-unit-tests uses
 * and exits through QEMU's form of the debug exit, as kvm-unit-tests does:
 *
 *   vmm run -debug-exit qemu guest/pcdev.elf      (status 1 on a pass)
 *
 * In 32-bit protected mode it reads fw_cfg, finds the ACPI tables, reads
 * the PM timer and drives pc-testdev's ports; then in long mode (the
 * interrupt handlers return with iretq) it programs the 8259 PICs (vectors
 * 0x20-0x2f) and raises ISA IRQs 5 and 11 through pc-testdev's IRQ ports
 * 0x2000+n, which the in-kernel irqchip delivers to the IDT. Checks:
 *
 *   1  fw_cfg signature (key 0) is "QEMU"
 *   2  fw_cfg ID (key 1) is 1: the port interface, no DMA
 *   3  fw_cfg RAM_SIZE (key 3) = 1 MiB + mem_upper KiB (multiboot)
 *   4  an ACPI RSDP ("RSD PTR ", checksum 0) in 0xe0000-0xfffff
 *   5  its RSDT (checksum 0) lists a FADT and a MADT
 *   6  fw_cfg NB_CPUS (key 5) = the MADT's enabled local APICs
 *   7  the FADT's PM_TMR_BLK is 0x608, PM_TMR_LEN 4
 *   8  the PM timer counts, in 24 bits
 *   9  pc-testdev 0xe0: a dword written reads back
 *  10  byte lanes: a byte at 0xe2, a word at 0xe2, bytes at the 0xe8 alias
 *  11  a RAM page keeps its contents across a 0xe4 flush of it
 *  12  IRQ 5 (0x2005) reaches vector 0x25 once
 *  13  IRQ 11 (0x200b) reaches vector 0x2b, through the slave PIC, once
 *  14  no other IRQ came
 *
 * A failed check n exits with status (n << 1) | 1 in QEMU's form.
 */
#include "lib.h"

#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000003
#define MB_BOOT_MAGIC	0x2BADB002
#define MBI_MEM_UPPER	8

#define FW_CFG_PORT	0x510
#define PM_TIMER_PORT	0x608
#define TESTDEV		0xe0
#define TESTDEV_IRQ	0x2000
#define FLUSH_PAGE	SCRATCH
#define QEMU_SKIP	38		/* (38 << 1) | 1 = 77 */

#define SIG_RSD		0x20445352	/* "RSD " */
#define SIG_PTR		0x20525450	/* "PTR " */
#define SIG_RSDT	0x54445352
#define SIG_FACP	0x50434146
#define SIG_APIC	0x43495041

	.text
	.globl	_start
	CODE32
mb_header:
	.long	MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

_start:
	movl	$STACK_TOP, %esp
	movl	%ebx, mbi
	lgdt	gdt_desc
	ljmp	$SEL_CODE32, $1f
1:	movw	$SEL_DATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	lidt	idt32_desc
	PUTS32	msg_hello
	REPORT_STAGE STAGE_PROT32

	/* fw_cfg: signature, ID, RAM size. */
	movw	$0, %ax
	call	fwcfg_u32
	cmpl	$0x554d4551, %eax	/* "QEMU" */
	CHECK	e, 1, 32
	movw	$1, %ax
	call	fwcfg_u32
	cmpl	$1, %eax
	CHECK	e, 2, 32
	movw	$3, %ax
	call	fwcfg_u32
	movl	%eax, %ecx
	call	fwcfg_byte4		/* the high dword */
	testl	%eax, %eax
	CHECK	z, 3, 32
	movl	mbi, %ebx
	movl	MBI_MEM_UPPER(%ebx), %eax
	addl	$1024, %eax
	shll	$10, %eax
	cmpl	%eax, %ecx
	CHECK	e, 3, 32

	/* ACPI: the RSDP, the RSDT, the FADT and the MADT. */
	movl	$0xe0000, %esi
2:	cmpl	$SIG_RSD, (%esi)
	jne	3f
	cmpl	$SIG_PTR, 4(%esi)
	je	4f
3:	addl	$16, %esi
	cmpl	$0x100000, %esi
	jb	2b
	movl	$4, %ebx
	jmp	fail32
4:	movl	$20, %ecx
	call	checksum
	CHECK	z, 4, 32
	movl	16(%esi), %esi		/* the RSDT */
	cmpl	$SIG_RSDT, (%esi)
	CHECK	e, 5, 32
	movl	4(%esi), %ecx
	call	checksum
	CHECK	z, 5, 32
	leal	36(%esi), %ebx		/* its entries */
	addl	4(%esi), %esi		/* their end */
5:	cmpl	%esi, %ebx
	jae	7f
	movl	(%ebx), %eax
	cmpl	$SIG_FACP, (%eax)
	jne	6f
	movl	%eax, fadt
6:	cmpl	$SIG_APIC, (%eax)
	jne	61f
	movl	%eax, madt
61:	addl	$4, %ebx
	jmp	5b
7:	cmpl	$0, fadt
	CHECK	ne, 5, 32
	cmpl	$0, madt
	CHECK	ne, 5, 32

	/* NB_CPUS against the MADT's processor local APICs (type 0, enabled). */
	movl	madt, %esi
	leal	44(%esi), %ebx
	addl	4(%esi), %esi
	xorl	%ecx, %ecx
8:	cmpl	%esi, %ebx
	jae	9f
	cmpb	$0, (%ebx)
	jne	81f
	testb	$1, 4(%ebx)
	jz	81f
	incl	%ecx
81:	movzbl	1(%ebx), %eax
	testl	%eax, %eax
	CHECK	nz, 6, 32
	addl	%eax, %ebx
	jmp	8b
9:	pushl	%ecx
	movw	$5, %ax
	call	fwcfg_select
	call	fwcfg_byte
	movl	%eax, %ecx
	call	fwcfg_byte
	shll	$8, %eax
	orl	%ecx, %eax
	popl	%ecx
	cmpl	%ecx, %eax
	CHECK	e, 6, 32

	/* The FADT's PM timer, and that it counts. */
	movl	fadt, %ebx
	cmpl	$PM_TIMER_PORT, 76(%ebx)
	CHECK	e, 7, 32
	cmpb	$4, 91(%ebx)
	CHECK	e, 7, 32
	movw	$PM_TIMER_PORT, %dx
	inl	%dx, %eax
	movl	%eax, %ebx
	testl	$0xff000000, %eax
	CHECK	z, 8, 32
	movl	$100000, %ecx
10:	inl	%dx, %eax
	cmpl	%eax, %ebx
	jne	11f
	pause
	decl	%ecx
	jnz	10b
	movl	$8, %ebx
	jmp	fail32
11:	testl	$0xff000000, %eax
	CHECK	z, 8, 32

	/* pc-testdev's scratch register and its byte lanes. */
	movl	$0x12345678, %eax
	outl	%eax, $TESTDEV
	xorl	%eax, %eax
	inl	$TESTDEV, %eax
	cmpl	$0x12345678, %eax
	CHECK	e, 9, 32
	movb	$0xab, %al
	outb	%al, $(TESTDEV + 2)
	inl	$TESTDEV, %eax
	cmpl	$0x12ab5678, %eax
	CHECK	e, 10, 32
	xorl	%eax, %eax
	inw	$(TESTDEV + 2), %ax
	cmpl	$0x12ab, %eax
	CHECK	e, 10, 32
	inb	$(TESTDEV + 8), %al
	cmpb	$0x78, %al
	CHECK	e, 10, 32
	inb	$(TESTDEV + 11), %al
	cmpb	$0x12, %al
	CHECK	e, 10, 32

	/* Flush a page: it keeps what was written, and takes writes after. */
	movl	$0xa5a5a5a5, FLUSH_PAGE + 0x10
	movl	$FLUSH_PAGE, %eax
	outl	%eax, $(TESTDEV + 4)
	cmpl	$0xa5a5a5a5, FLUSH_PAGE + 0x10
	CHECK	e, 11, 32
	movl	$0x5a5a5a5a, FLUSH_PAGE + 0x10
	cmpl	$0x5a5a5a5a, FLUSH_PAGE + 0x10
	CHECK	e, 11, 32

	/* Long mode for the interrupts. */
	BUILD_LM
	LONG_ON	LM_PML4, 0, 0, STAGE_LONG, skip_qemu, lm64
	REPORT_STAGE STAGE_LONG
	lidt	idt_irq_desc(%rip)

	/* The PICs: master at 0x20 (slave on IRQ 2), slave at 0x28; only
	 * IRQs 2, 5 and 11 unmasked. */
	movb	$0x11, %al
	outb	%al, $0x20
	outb	%al, $0xa0
	movb	$0x20, %al
	outb	%al, $0x21
	movb	$0x28, %al
	outb	%al, $0xa1
	movb	$0x04, %al
	outb	%al, $0x21
	movb	$0x02, %al
	outb	%al, $0xa1
	movb	$0x01, %al
	outb	%al, $0x21
	outb	%al, $0xa1
	movb	$0xdb, %al
	outb	%al, $0x21
	movb	$0xf7, %al
	outb	%al, $0xa1
	sti

	movl	$5, %esi
	movl	$12, %ebp
	call	raise
	movl	$11, %esi
	movl	$13, %ebp
	call	raise
	cli
	leaq	irq_counts(%rip), %rbx
	xorl	%ecx, %ecx
12:	movl	(%rbx,%rcx,4), %eax
	cmpl	$5, %ecx
	je	13f
	cmpl	$11, %ecx
	je	13f
	testl	%eax, %eax
	CHECK	z, 14, 64
13:	incl	%ecx
	cmpl	$16, %ecx
	jb	12b
	PASS	64, msg_pass

/* raise: IRQ %esi through pc-testdev: raise the line, wait for the
 * handler, lower the line; the IRQ must have come exactly once, else fail
 * with %ebp. */
raise:
	leaq	irq_counts(%rip), %rbx
	movw	$TESTDEV_IRQ, %dx
	addw	%si, %dx
	movb	$1, %al
	outb	%al, %dx
	movl	$0x1000000, %ecx
1:	cmpl	$0, (%rbx,%rsi,4)
	jne	2f
	pause
	decl	%ecx
	jnz	1b
	movl	%ebp, %ebx
	jmp	fail64
2:	movb	$0, %al
	outb	%al, %dx
	movl	$1000, %ecx
3:	pause
	decl	%ecx
	jnz	3b
	cmpl	$1, (%rbx,%rsi,4)
	je	4f
	movl	%ebp, %ebx
	jmp	fail64
4:	ret

/* IRQ n (vector 0x20 + n): count it, end it at the PICs, return. */
.macro IRQ_STUB n
irq_stub\n:
	pushq	$\n
	jmp	irq_common
.endm
.macro IRQ_GATE n
	.word	irq_stub\n, SEL_CODE64
	.byte	0, 0x8e
	.word	0
	.long	0, 0
.endm
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	IRQ_STUB \n
	.endr
irq_common:
	pushq	%rax
	pushq	%rbx
	movq	16(%rsp), %rax
	leaq	irq_counts(%rip), %rbx
	incl	(%rbx,%rax,4)
	cmpl	$8, %eax
	movb	$0x20, %al		/* non-specific EOI */
	jb	1f
	outb	%al, $0xa0
1:	outb	%al, $0x20
	popq	%rbx
	popq	%rax
	addq	$8, %rsp
	iretq

	CODE32
/* skip_qemu: the host refused long mode (reported): QEMU's skip status. */
skip_qemu:
	movb	$QEMU_SKIP, %al
	outb	%al, $DEBUG_EXIT_PORT
	cli
	hlt

/* fwcfg_select: select key %ax. Clobbers %dx. */
fwcfg_select:
	movw	$FW_CFG_PORT, %dx
	outw	%ax, %dx
	ret
/* fwcfg_byte: the selected item's next byte in %eax. Clobbers %dx. */
fwcfg_byte:
	movw	$(FW_CFG_PORT + 1), %dx
	xorl	%eax, %eax
	inb	%dx, %al
	ret
/* fwcfg_u32: key %ax's first four bytes, little-endian, in %eax. */
fwcfg_u32:
	call	fwcfg_select
/* fwcfg_byte4: the selected item's next four bytes in %eax. */
fwcfg_byte4:
	pushl	%ebx
	pushl	%ecx
	xorl	%ebx, %ebx
	xorl	%ecx, %ecx
1:	call	fwcfg_byte
	shll	%cl, %eax
	orl	%eax, %ebx
	addl	$8, %ecx
	cmpl	$32, %ecx
	jb	1b
	movl	%ebx, %eax
	popl	%ecx
	popl	%ebx
	ret

/* checksum: ZF set when the %ecx bytes at %esi sum to 0. Clobbers %eax,
 * %ecx. */
checksum:
	xorl	%eax, %eax
1:	addb	-1(%esi,%ecx), %al
	decl	%ecx
	jnz	1b
	testb	%al, %al
	ret

	GUEST_LIBS 64

	CODE64
	.balign	8
idt_irq:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	IDT64_GATE \v
	.endr
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	IRQ_GATE \n
	.endr
idt_irq_end:
idt_irq_desc:
	.word	idt_irq_end - idt_irq - 1
	.long	idt_irq, 0

	.balign	4
mbi:		.long	0
fadt:		.long	0
madt:		.long	0
irq_counts:	.fill	16, 4, 0
msg_hello:	.asciz	"walkvm: pcdev guest\n"
msg_pass:	.asciz	"walkvm: pcdev: fw_cfg, ACPI PM timer, pc-testdev ports and IRQs 5 and 11 through the PICs ok, pass\n"
