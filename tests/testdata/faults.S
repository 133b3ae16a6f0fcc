/*
 * faults: the own MMIO path's fault and completion checks. Long mode,
 * entered by walkvm (-entry long: walkvm's identity map, CS=0x18), loaded
 * at 0x1000. Results go to RAM at RESULTS (see below); the test reads them.
 *
 *   1. movbe with a register operand: #UD on the CPU. KVM's emulator gives
 *      up on it on some hosts; walkvm decodes it and injects #UD.
 *   2. flds from the MMIO window: KVM cannot emulate x87, walkvm completes
 *      it; fstps to RAM gives the value back.
 *   3. fstps to the MMIO window: completed by walkvm as a write.
 *   4. flds across a page boundary from an MMIO page into a not-present
 *      page: walkvm's own walk of the second page faults; the guest gets
 *      #PF with error code 0 (read, supervisor, not present) and CR2 at
 *      the second page.
 */
	.code64
	.text
	.globl _start

#define RESULTS		0x8000	/* 8 qwords per event: vector, error code, cr2, rip */
#define IDT		0x7000
#define PDPT2		0x3000	/* PML4[1] -> this PDPT: linear 0x8000000000 */
#define PD2		0x4000
#define PT2		0x5000
#define WIN		0xff000000
#define HIGH		0x8000000000

_start:
	/* IDT: vector 6 and 14 -> handler, 64-bit interrupt gates, CS 0x18. */
	lea	ud_handler(%rip), %rax
	mov	$IDT + 6*16, %rdi
	call	set_gate
	lea	pf_handler(%rip), %rax
	mov	$IDT + 14*16, %rdi
	call	set_gate
	lidt	idtr(%rip)

	/* Map linear 0x8000000000: PT[0] -> the MMIO window page, PT[1] not present. */
	movq	$(PDPT2 | 3), 0x9a000 + 8
	movq	$(PD2 | 3), PDPT2
	movq	$(PT2 | 3), PD2
	mov	$(WIN | 3), %eax		/* zero-extends: no sign-extended imm32 */
	mov	%rax, PT2
	movq	$0, PT2 + 8
	mov	%cr3, %rax
	mov	%rax, %cr3

	/* x87 on: CR0.MP=1, EM=0, TS=0; CR4.OSFXSR. */
	mov	%cr0, %rax
	and	$~0xc, %rax
	or	$0x2, %rax
	mov	%rax, %cr0
	fninit

	/* 1. #UD */
	movq	$0, RESULTS
	.byte	0x0f, 0x38, 0xf0, 0xc0		/* movbe %eax,%eax: undefined */
ud_resume:

	/* 2. flds from MMIO: seed the window with 1.5f, load, store to RAM. */
	mov	$WIN, %rbx
	movl	$0x3fc00000, 0x100(%rbx)
	flds	0x100(%rbx)
	fstps	RESULTS + 0x40

	/* 3. fstps to MMIO: 2.5f. */
	movl	$0x40200000, RESULTS + 0x48
	flds	RESULTS + 0x48
	fstps	0x104(%rbx)
	movl	0x104(%rbx), %eax
	movl	%eax, RESULTS + 0x50

	/* 4. flds across into the not-present page. */
	movq	$0, RESULTS + 0x20
	movabs	$(HIGH + 0xffe), %rbx
	flds	(%rbx)
pf_resume:
	movb	$0, %al
	outb	%al, $0xf4
	hlt

set_gate:
	mov	%ax, (%rdi)
	movw	$0x18, 2(%rdi)
	movw	$0x8e00, 4(%rdi)
	shr	$16, %rax
	mov	%ax, 6(%rdi)
	shr	$16, %rax
	mov	%eax, 8(%rdi)
	movl	$0, 12(%rdi)
	ret

/* #UD has no error code: record and resume after the 4-byte movbe. */
ud_handler:
	movq	$6, RESULTS
	movq	$0, RESULTS + 8
	mov	(%rsp), %rax
	mov	%rax, RESULTS + 0x18
	lea	ud_resume(%rip), %rax
	mov	%rax, (%rsp)
	iretq

/* #PF: record vector, error code, CR2, RIP; resume at pf_resume. */
pf_handler:
	movq	$14, RESULTS + 0x20
	pop	%rax
	mov	%rax, RESULTS + 0x28
	mov	%cr2, %rax
	mov	%rax, RESULTS + 0x30
	mov	(%rsp), %rax
	mov	%rax, RESULTS + 0x38
	lea	pf_resume(%rip), %rax
	mov	%rax, (%rsp)
	iretq

	.align	8
idtr:	.word	256*16 - 1
	.quad	IDT
