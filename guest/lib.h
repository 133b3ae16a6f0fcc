/*
 * lib.h: what walkvm's test guests share. Include it once, at the top of a
 * guest (it includes walkvm.h). It defines constants and assembler macros;
 * code and tables appear only where a guest instantiates them:
 *
 *   GUEST_GDT          the guests' own GDT (selectors SEL_* below)
 *   GUEST_DATA         fault bookkeeping the exception handlers fill in
 *   LIB16/LIB32/LIB64  puts, puthex and fail routines for that code size
 *   IVT16, IDT32, IDT64  exception handlers for real mode, protected mode
 *                      and long mode: each REPORTS the exception (vector,
 *                      error code, CR2, RIP) through the report device, then
 *                      resumes at recover_rip if the guest set it (clearing
 *                      it), else prints it and exits with STATUS_EXCEPTION +
 *                      vector.
 *   mode switches      REAL_TO_PROT32, PROT32_TO_REAL (through 16-bit
 *                      protected mode), PAGING_ON32 (may be refused),
 *                      PAGING_OFF32, LONG_ON, LONG_TO_COMPAT,
 *                      COMPAT_TO_LONG, COMPAT_TO_PROT32
 *   table builders     BUILD_P32, BUILD_PAE, BUILD_LM (32-bit code, paging off)
 *
 * Register use: the report and check macros clobber %eax (CHECK* also %ebx
 * on failure); puts clobbers %eax, %edx, %esi; puthex %eax-%edx.
 */
#include "walkvm.h"

/*
 * Code size: use CODE16/CODE32/CODE64 instead of .code16/.code32/.code64 so
 * that the macros below know it (BITS). In 64-bit code a guest's variables
 * are reached RIP-relative: the 32-bit ELF object gas builds cannot hold
 * the sign-extended absolute relocations 64-bit code would need.
 */
.macro CODE16
	.code16
	.set	BITS, 16
.endm
.macro CODE32
	.code32
	.set	BITS, 32
.endm
.macro CODE64
	.code64
	.set	BITS, 64
.endm
	.set	BITS, 0

/* insn sym, dst: a variable as the source operand, in any code size. */
.macro MEMSRC insn, sym, dst
	.if BITS == 64
	\insn	\sym(%rip), \dst
	.else
	\insn	\sym, \dst
	.endif
.endm
/* insn src, sym: a variable as the destination operand. */
.macro MEMDST insn, src, sym
	.if BITS == 64
	\insn	\src, \sym(%rip)
	.else
	\insn	\src, \sym
	.endif
.endm

#define CR0_PE		0x1
#define CR0_MP		0x2
#define CR0_EM		0x4
#define CR0_TS		0x8
#define CR0_NE		0x20
#define CR0_WP		0x10000
#define CR0_PG		0x80000000
#define CR4_PSE		0x10
#define CR4_PAE		0x20
#define CR4_OSFXSR	0x200
#define CR4_OSXMMEXCPT	0x400
#define CR4_LA57	0x1000
#define CR4_OSXSAVE	0x40000
#define MSR_EFER	0xc0000080
#define EFER_LME	0x100
#define EFER_NXE	0x800

/* Selectors of GUEST_GDT. */
#define SEL_CODE32	0x08	/* flat 32-bit code */
#define SEL_DATA32	0x10	/* flat data, 4 GiB */
#define SEL_CODE64	0x18	/* 64-bit code */
#define SEL_CODE16	0x20	/* 16-bit code, base 0, 64 KiB */
#define SEL_DATA16	0x28	/* 16-bit data, base 0, 64 KiB */
#define SEL_UCODE64	0x33	/* 64-bit code, DPL 3 */
#define SEL_UDATA	0x3b	/* flat data, DPL 3 */
#define SEL_TSS		0x40	/* 64-bit TSS at TSS_ADDR (16 bytes) */
#define SEL_WINLOW16	0x50	/* 16-bit data, base TESTWIN_LOW, 64 KiB */
#define SEL_WINHIGH16	0x58	/* 16-bit data, base TESTWIN_HIGH, 64 KiB */

/* Paging-structure entry bits (SDM Vol. 3A §4.3-4.5). */
#define PTE_P		0x1
#define PTE_W		0x2
#define PTE_U		0x4
#define PTE_PS		0x80
#define PTE_NX_HI	0x80000000	/* bit 63, in the entry's high dword */
#define PDE_PSE36_LO	0x2000		/* bit 13 of a 4 MiB PDE: address bit 32 */

/* Fixed tables (see walkvm.h for the areas). */
#define LM_PML4		(LM_BASE + 0x0000)
#define LM_PDPT		(LM_BASE + 0x1000)
#define LM_PD0		(LM_BASE + 0x2000)	/* 0-1 GiB */
#define LM_PT0		(LM_BASE + 0x3000)	/* 0-2 MiB, 4 KiB pages */
#define LM_PD3		(LM_BASE + 0x4000)	/* 3-4 GiB */
#define LM_EXTRA	(LM_BASE + 0x5000)	/* 0x5000-0xffff: the guest's own */
#define LM_SIZE		0x5000
#define P32_PD		(P32_BASE + 0x0000)
#define P32_PT0		(P32_BASE + 0x1000)	/* 0-4 MiB, 4 KiB pages */
#define P32_EXTRA	(P32_BASE + 0x2000)
#define P32_SIZE	0x2000
#define PAE_PDPT	(PAE_BASE + 0x0000)
#define PAE_PD0		(PAE_BASE + 0x1000)
#define PAE_PT0		(PAE_BASE + 0x2000)	/* 0-2 MiB, 4 KiB pages */
#define PAE_PD3		(PAE_BASE + 0x3000)
#define PAE_EXTRA	(PAE_BASE + 0x4000)
#define PAE_SIZE	0x4000

/* Index of the 2 MiB page holding TESTWIN_HIGH in a 3-4 GiB directory. */
#define PD3_WIN_IDX	((TESTWIN_HIGH - 0xc0000000) >> 21)

/* ---- reporting (any code size; clobber %eax) ---------------------------- */

.macro REPORT_ARG val
	movl	$\val, %eax
	outl	%eax, $REPORT_PORT
.endm

.macro REPORT_ARG_MEM mem
	MEMSRC	movl, \mem, %eax
	outl	%eax, $REPORT_PORT
.endm

.macro REPORT_EVENT kind
	movb	$\kind, %al
	outb	%al, $REPORT_EVENT_PORT
.endm

.macro REPORT_STAGE id
	REPORT_ARG \id
	REPORT_EVENT EV_STAGE
.endm

.macro REPORT_UNSUPPORTED id
	REPORT_ARG \id
	REPORT_EVENT EV_UNSUPPORTED
.endm

/* The stage was refused: the exception is the one the handler recorded. */
.macro REPORT_REFUSED id
	REPORT_ARG \id
	REPORT_ARG_MEM fault_vec
	REPORT_ARG_MEM fault_err
	REPORT_EVENT EV_REFUSED
.endm

.macro REPORT_VALUE tag, reg
	REPORT_ARG \tag
	movl	\reg, %eax
	outl	%eax, $REPORT_PORT
	REPORT_ARG 0
	REPORT_EVENT EV_VALUE
.endm

/* ---- checks: after a cmp, fail with code unless the condition holds ---- */

.macro CHECK cond, code, bits
	j\cond	909f
	movl	$\code, %ebx
	jmp	fail\bits
909:
.endm

/* The same without printing, for code whose segments cannot reach the
 * console strings (16-bit protected mode). */
.macro CHECK_QUIET cond, code
	j\cond	909f
	movb	$\code, %al
	outb	%al, $DEBUG_EXIT_PORT
	cli
	hlt
909:
.endm

.macro CHECK_EQ reg, val, code, bits
	cmpl	$\val, \reg
	CHECK	e, \code, \bits
.endm

.macro PUTS16 msg
	movw	$\msg, %si
	call	puts16
.endm
.macro PUTS32 msg
	movl	$\msg, %esi
	call	puts32
.endm
.macro PUTS64 msg
	movl	$\msg, %esi
	call	puts64
.endm

.macro PASS bits, msg
	PUTS\bits \msg
	movb	$STATUS_PASS, %al
	outb	%al, $DEBUG_EXIT_PORT
	cli
	hlt
.endm

.macro SKIP bits, msg
	PUTS\bits \msg
	movb	$STATUS_SKIPPED, %al
	outb	%al, $DEBUG_EXIT_PORT
	cli
	hlt
.endm

/* Set the recovery point for an instruction expected to fault. */
.macro RECOVER32 label
	movl	$\label, recover_rip
	movl	$0, recover_rip+4
	movl	$-1, fault_vec
.endm
.macro RECOVER64 label
	movl	$\label, recover_rip(%rip)
	movl	$0, recover_rip+4(%rip)
	movl	$-1, fault_vec(%rip)
.endm
.macro RECOVER16 label
	movw	$\label, recover_rip
	movw	$0, recover_rip+2
	movl	$0, recover_rip+4
	movl	$-1, fault_vec
.endm

/*
 * After a faulting instruction and its recovery label: check the recorded
 * fault (vector, error code, CR2, RIP = the faulting instruction's label).
 */
.macro EXPECT_FAULT64 vec, err, cr2, rip, code
	cmpl	$\vec, fault_vec(%rip)
	CHECK	e, \code, 64
	cmpl	$\err, fault_err(%rip)
	CHECK	e, \code, 64
	movabsq	$\cr2, %rax
	cmpq	%rax, fault_cr2(%rip)
	CHECK	e, \code, 64
	movl	$\rip, %eax
	cmpq	%rax, fault_rip(%rip)
	CHECK	e, \code, 64
.endm

/* ---- shared data ---------------------------------------------------------- */

.macro GUEST_DATA
	.balign	8
recover_rip:	.quad	0	/* where a handler resumes; 0: unexpected */
recover_rsp:	.quad	0	/* 64-bit: stack to resume on (with recover_cs) */
recover_cs:	.quad	0	/* 64-bit: nonzero: resume at CPL 0 in SEL_CODE64 */
fault_cr2:	.quad	0
fault_rip:	.quad	0
fault_vec:	.long	0
fault_err:	.long	0
fault_count:	.long	0
recover_jmp:	.long	0
fail_code:	.long	0
msg_fail:	.asciz	"walkvm: FAIL check 0x"
msg_exc:	.asciz	"walkvm: unexpected exception 0x"
msg_err:	.asciz	" error 0x"
msg_cr2:	.asciz	" cr2 0x"
msg_rip:	.asciz	" rip 0x"
msg_nl:		.asciz	"\n"
.endm

.macro GUEST_GDT
	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08 code32 */
	.quad	0x00cf92000000ffff	/* 0x10 data32 */
	.quad	0x00af9a000000ffff	/* 0x18 code64 */
	.quad	0x00009a000000ffff	/* 0x20 code16 */
	.quad	0x000092000000ffff	/* 0x28 data16 */
	.quad	0x00affa000000ffff	/* 0x30 user code64, DPL 3 */
	.quad	0x00cff2000000ffff	/* 0x38 user data, DPL 3 */
	.quad	0x67 | ((TSS_ADDR & 0xffffff) << 16) | (0x89 << 40) | ((TSS_ADDR >> 24) << 56)
	.quad	0			/* 0x40 64-bit TSS, two slots */
	.quad	0x92000000ffff | ((TESTWIN_LOW & 0xffffff) << 16) | ((TESTWIN_LOW >> 24) << 56)
	.quad	0x92000000ffff | ((TESTWIN_HIGH & 0xffffff) << 16) | ((TESTWIN_HIGH >> 24) << 56)
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt, 0
ivt_desc:
	.word	0x3ff
	.long	0, 0
.endm

/* ---- console and failure routines, one set per code size ---------------- */

.macro LIB bits
/* puts: print the NUL-terminated string at (e/r)si. */
puts\bits:
901:	lodsb
	testb	%al, %al
	jz	903f
	movb	%al, %ah
	movw	$(COM1 + 5), %dx
902:	inb	%dx, %al
	testb	$0x20, %al
	jz	902b
	movw	$COM1, %dx
	movb	%ah, %al
	outb	%al, %dx
	jmp	901b
903:	ret

/* puthex: print %eax as 8 hex digits. */
puthex\bits:
	movl	%eax, %ebx
	movl	$8, %ecx
904:	roll	$4, %ebx
	movb	%bl, %al
	andb	$0xf, %al
	addb	$0x30, %al
	cmpb	$0x39, %al
	jbe	905f
	addb	$0x27, %al
905:	movb	%al, %ah
	movw	$(COM1 + 5), %dx
906:	inb	%dx, %al
	testb	$0x20, %al
	jz	906b
	movw	$COM1, %dx
	movb	%ah, %al
	outb	%al, %dx
	decl	%ecx
	jnz	904b
	ret

/* fail: print and exit with the failure code in %ebx. */
fail\bits:
	.if \bits == 16
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %ss
	movw	$0x1000, %sp
	.endif
	MEMDST	movl, %ebx, fail_code
	PUTS\bits msg_fail
	MEMSRC	movl, fail_code, %eax
	call	puthex\bits
	PUTS\bits msg_nl
	MEMSRC	movl, fail_code, %eax
	outb	%al, $DEBUG_EXIT_PORT
	cli
	hlt

/* skip: the host refused a mode the guest needs (already reported). */
skip\bits:
	movb	$STATUS_SKIPPED, %al
	outb	%al, $DEBUG_EXIT_PORT
	cli
	hlt

/* exc_fatal: print the fault recorded in GUEST_DATA and exit with
 * STATUS_EXCEPTION + vector. */
exc_fatal\bits:
	PUTS\bits msg_exc
	MEMSRC	movl, fault_vec, %eax
	call	puthex\bits
	PUTS\bits msg_err
	MEMSRC	movl, fault_err, %eax
	call	puthex\bits
	PUTS\bits msg_cr2
	MEMSRC	movl, fault_cr2+4, %eax
	call	puthex\bits
	MEMSRC	movl, fault_cr2, %eax
	call	puthex\bits
	PUTS\bits msg_rip
	MEMSRC	movl, fault_rip+4, %eax
	call	puthex\bits
	MEMSRC	movl, fault_rip, %eax
	call	puthex\bits
	PUTS\bits msg_nl
	MEMSRC	movl, fault_vec, %eax
	addl	$STATUS_EXCEPTION, %eax
	outb	%al, $DEBUG_EXIT_PORT
	cli
	hlt
.endm

/* Report the fault recorded in GUEST_DATA (any code size). */
.macro REPORT_FAULT
	REPORT_ARG_MEM fault_vec
	REPORT_ARG_MEM fault_err
	REPORT_ARG_MEM fault_cr2
	REPORT_ARG_MEM fault_cr2+4
	REPORT_ARG_MEM fault_rip
	REPORT_ARG_MEM fault_rip+4
	REPORT_EVENT EV_EXCEPTION
.endm

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERRCODE(v) ((v == 8) || ((v >= 10) && (v <= 14)) || (v == 17) || (v == 21) || (v == 29) || (v == 30))

/* ---- long mode: 64-bit IDT ---------------------------------------------- */

.macro IDT64_STUB v
idt64_stub\v:
	.if HAS_ERRCODE(\v)
	.else
	pushq	$0
	.endif
	pushq	$\v
	jmp	idt64_common
.endm

.macro IDT64_GATE v, dpl=0
	.word	idt64_stub\v, SEL_CODE64
	.byte	0, 0x8e | (\dpl << 5)
	.word	0
	.long	0, 0
.endm

.macro IDT64
	CODE64
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	IDT64_STUB \v
	.endr
idt64_common:
	/* 0 rdx, 8 rax, 16 vector, 24 error code, 32 rip, 40 cs, 48 rflags, 56 rsp, 64 ss */
	pushq	%rax
	pushq	%rdx
	movq	16(%rsp), %rax
	movl	%eax, fault_vec(%rip)
	movq	24(%rsp), %rax
	movl	%eax, fault_err(%rip)
	movq	32(%rsp), %rax
	movq	%rax, fault_rip(%rip)
	movq	%cr2, %rax
	movq	%rax, fault_cr2(%rip)
	incl	fault_count(%rip)
	REPORT_FAULT
	movq	recover_rip(%rip), %rax
	testq	%rax, %rax
	jz	exc_fatal64
	movq	$0, recover_rip(%rip)
	movq	%rax, 32(%rsp)
	movq	recover_cs(%rip), %rax
	testq	%rax, %rax
	jz	1f
	/* back to CPL 0 on the stack the guest saved */
	movq	$0, recover_cs(%rip)
	movq	$SEL_CODE64, 40(%rsp)
	movq	$SEL_DATA32, 64(%rsp)
	movq	recover_rsp(%rip), %rax
	movq	%rax, 56(%rsp)
1:	popq	%rdx
	popq	%rax
	addq	$16, %rsp
	iretq
	.balign	8
idt64:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	IDT64_GATE \v
	.endr
idt64_end:
idt64_desc:
	.word	idt64_end - idt64 - 1
	.long	idt64, 0
.endm

/* ---- protected mode: 32-bit IDT ----------------------------------------- */

.macro IDT32_STUB v
idt32_stub\v:
	.if HAS_ERRCODE(\v)
	.else
	pushl	$0
	.endif
	pushl	$\v
	jmp	idt32_common
.endm

.macro IDT32_GATE v
	.word	idt32_stub\v, SEL_CODE32
	.byte	0, 0x8e
	.word	0
.endm

.macro IDT32
	CODE32
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	IDT32_STUB \v
	.endr
idt32_common:
	/* 0 eax, 4 vector, 8 error code, 12 eip, 16 cs, 20 eflags */
	pushl	%eax
	movl	4(%esp), %eax
	movl	%eax, fault_vec
	movl	8(%esp), %eax
	movl	%eax, fault_err
	movl	12(%esp), %eax
	movl	%eax, fault_rip
	movl	$0, fault_rip+4
	movl	%cr2, %eax
	movl	%eax, fault_cr2
	movl	$0, fault_cr2+4
	incl	fault_count
	REPORT_FAULT
	movl	recover_rip, %eax
	testl	%eax, %eax
	jz	exc_fatal32
	movl	$0, recover_rip
	/*
	 * Same privilege level: drop the frame and jump instead of iret.
	 * KVM's emulator (and walkvm's) cannot do a protected-mode iret, and
	 * on PVM protected mode without paging runs in the emulator.
	 */
	movl	%eax, recover_jmp
	popl	%eax
	addl	$20, %esp
	jmp	*recover_jmp
	.balign	8
idt32:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	IDT32_GATE \v
	.endr
idt32_end:
idt32_desc:
	.word	idt32_end - idt32 - 1
	.long	idt32, 0
.endm

/* ---- real mode: IVT ------------------------------------------------------ */

.macro IVT16_STUB v
ivt16_stub\v:
	pushw	$\v
	jmp	ivt16_common
.endm

/* IVT16 defines the handlers; IVT16_INSTALL (real mode, DS=0) points IVT
 * entries 0-31 at them. */
.macro IVT16
	CODE16
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	IVT16_STUB \v
	.endr
ivt16_common:
	/* 0 bp, 2 vector, 4 ip, 6 cs, 8 flags (relative to %bp) */
	pushw	%bp
	movw	%sp, %bp
	pushw	%ax
	pushw	%ds
	xorw	%ax, %ax
	movw	%ax, %ds
	movzwl	2(%bp), %eax
	movl	%eax, fault_vec
	movl	$0, fault_err
	movzwl	4(%bp), %eax
	movl	%eax, fault_rip
	movl	$0, fault_rip+4
	movl	%cr2, %eax
	movl	%eax, fault_cr2
	movl	$0, fault_cr2+4
	incl	fault_count
	REPORT_FAULT
	movw	recover_rip, %ax
	testw	%ax, %ax
	jz	exc_fatal16
	movw	$0, recover_rip
	movw	%ax, 4(%bp)
	popw	%ds
	popw	%ax
	popw	%bp
	addw	$2, %sp
	iret
ivt16_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.word	ivt16_stub\v
	.endr
.endm

.macro IVT16_INSTALL
	movw	$ivt16_table, %si
	xorw	%di, %di
	movw	$32, %cx
908:	movw	(%si), %ax
	movw	%ax, (%di)
	movw	$0, 2(%di)
	addw	$2, %si
	addw	$4, %di
	loop	908b
.endm

/* ---- mode switches ------------------------------------------------------- */

/* Real mode (CS=0) -> 32-bit protected mode at label, flat segments, the
 * 32-bit IDT (the guest must instantiate IDT32), stack at STACK_TOP. */
.macro REAL_TO_PROT32 label
	CODE16
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	lgdtl	gdt_desc
	lidtl	idt32_desc
	movl	%cr0, %eax
	orl	$CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $\label
	CODE32
\label:
	movw	$SEL_DATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movl	$STACK_TOP, %esp
.endm

/* 32-bit protected mode (paging off) -> 16-bit protected mode at label16:
 * CS = SEL_CODE16, data segments SEL_DATA16, the stack below 0x1000. */
.macro PROT32_TO_PROT16 label16
	CODE32
	ljmp	$SEL_CODE16, $\label16
	CODE16
\label16:
	movw	$SEL_DATA16, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movl	$0x1000, %esp
.endm

/* 16-bit protected mode (segments from PROT32_TO_PROT16) -> real mode at
 * label, CS=DS=ES=FS=GS=SS=0, SP=0x1000, the IVT at 0. */
.macro PROT16_TO_REAL label
	CODE16
	movl	%cr0, %eax
	andl	$~CR0_PE, %eax
	movl	%eax, %cr0
	ljmp	$0, $\label
\label:
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movl	$0x1000, %esp
	lidtl	ivt_desc
.endm

/*
 * Turn paging on from 32-bit protected mode: CR3 = cr3, CR4 |= cr4bits,
 * CR0 |= PG|WP. A host that refuses (the CR0 write raises an exception)
 * is reported as EV_REFUSED for stage and execution goes on at refused,
 * paging still off; CR4 is restored.
 */
.macro PAGING_ON32 cr3, cr4bits, stage, refused
	CODE32
	movl	$\cr3, %eax
	movl	%eax, %cr3
	movl	%cr4, %eax
	orl	$\cr4bits, %eax
	movl	%eax, %cr4
	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_WP), %eax
	RECOVER32 907f
	movl	%eax, %cr0
907:	movl	$0, recover_rip
	cmpl	$-1, fault_vec
	je	906f
	REPORT_REFUSED \stage
	movl	%cr4, %eax
	andl	$~(\cr4bits), %eax
	movl	%eax, %cr4
	jmp	\refused
906:
.endm

/* Paging off again (32-bit code, identity-mapped), CR4.PSE and PAE cleared. */
.macro PAGING_OFF32
	CODE32
	movl	%cr0, %eax
	andl	$~CR0_PG, %eax
	movl	%eax, %cr0
	movl	%cr4, %eax
	andl	$~(CR4_PSE | CR4_PAE), %eax
	movl	%eax, %cr4
.endm

/*
 * 32-bit protected mode (paging off) -> 64-bit mode at label64 with
 * CR3 = cr3, CR4.PAE|cr4bits, EFER.LME|eferbits, CR0.PG|WP; loads the
 * 64-bit IDT (the guest must instantiate IDT64). A refused CR0 write (or
 * CR4 write) is reported for stage and goes on at refused (32-bit, paging
 * off, CR4 and EFER restored).
 */
.macro LONG_ON cr3, cr4bits, eferbits, stage, refused, label64
	CODE32
	movl	$\cr3, %eax
	movl	%eax, %cr3
	movl	%cr4, %eax
	orl	$(CR4_PAE | \cr4bits), %eax
	RECOVER32 905f
	movl	%eax, %cr4
905:	movl	$0, recover_rip
	cmpl	$-1, fault_vec
	jne	904f
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$(EFER_LME | \eferbits), %eax
	wrmsr
	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_WP), %eax
	RECOVER32 903f
	movl	%eax, %cr0
903:	movl	$0, recover_rip
	cmpl	$-1, fault_vec
	je	902f
	movl	$MSR_EFER, %ecx
	rdmsr
	andl	$~(EFER_LME | \eferbits), %eax
	wrmsr
904:	REPORT_REFUSED \stage
	movl	%cr4, %eax
	andl	$~(CR4_PAE | \cr4bits), %eax
	movl	%eax, %cr4
	jmp	\refused
902:	ljmp	$SEL_CODE64, $\label64
	CODE64
\label64:
	lidt	idt64_desc(%rip)
	movw	$SEL_DATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movq	$STACK_TOP, %rsp
.endm

/* 64-bit mode -> compatibility mode (SEL_CODE32) at label32. */
.macro LONG_TO_COMPAT label32
	CODE64
	pushq	$SEL_CODE32
	subq	$8, %rsp
	movl	$\label32, (%rsp)
	movl	$0, 4(%rsp)
	lretq
	CODE32
\label32:
.endm

/* Compatibility mode -> 64-bit mode at label64. */
.macro COMPAT_TO_LONG label64
	CODE32
	ljmp	$SEL_CODE64, $\label64
	CODE64
\label64:
.endm

/* Compatibility mode -> 32-bit protected mode, paging off, EFER.LME and
 * CR4.PAE clear, the 32-bit IDT loaded. */
.macro COMPAT_TO_PROT32
	CODE32
	movl	%cr0, %eax
	andl	$~CR0_PG, %eax
	movl	%eax, %cr0
	movl	$MSR_EFER, %ecx
	rdmsr
	andl	$~EFER_LME, %eax
	wrmsr
	movl	%cr4, %eax
	andl	$~CR4_PAE, %eax
	movl	%eax, %cr4
	lidt	idt32_desc
.endm

/* ---- page-table builders (32-bit code, paging off, flat ES) ------------- */

/* Zero n bytes at addr. */
.macro ZERO addr, n
	movl	$\addr, %edi
	movl	$(\n / 4), %ecx
	xorl	%eax, %eax
	cld
	rep stosl
.endm

/* Fill n 8-byte entries at table+8*idx with first, first+step, ... (the
 * high dword is hi). */
.macro FILL64 table, idx, n, first, step, hi=0
	movl	$(\table + 8 * \idx), %edi
	movl	$\first, %eax
	movl	$\n, %ecx
901:	movl	%eax, (%edi)
	movl	$\hi, 4(%edi)
	addl	$\step, %eax
	addl	$8, %edi
	loop	901b
.endm

/* Same with 4-byte entries. */
.macro FILL32 table, idx, n, first, step
	movl	$(\table + 4 * \idx), %edi
	movl	$\first, %eax
	movl	$\n, %ecx
901:	movl	%eax, (%edi)
	addl	$\step, %eax
	addl	$4, %edi
	loop	901b
.endm

/* One 8-byte entry. */
.macro PTE64 table, idx, lo, hi=0
	movl	$\lo, \table + 8 * \idx
	movl	$\hi, \table + 8 * \idx + 4
.endm

/*
 * 32-bit paging (CR4.PSE): PD[0] -> PT0 mapping 0-4 MiB 1:1 with 4 KiB
 * pages (the low test window included); PD[0x3fc] a 4 MiB page 1:1 over
 * 0xff000000 (the high test window).
 */
.macro BUILD_P32
	ZERO	P32_BASE, P32_SIZE
	movl	$(P32_PT0 | PTE_P | PTE_W | PTE_U), P32_PD
	FILL32	P32_PT0, 0, 1024, (PTE_P | PTE_W), 0x1000
	movl	$(TESTWIN_HIGH | PTE_P | PTE_W | PTE_PS), P32_PD + 4 * (TESTWIN_HIGH >> 22)
.endm

/*
 * PAE paging: PDPT[0] -> PD0, PD0[0] -> PT0 mapping 0-2 MiB 1:1 with 4 KiB
 * pages; PDPT[3] -> PD3 with a 2 MiB page 1:1 over 0xff000000.
 */
.macro BUILD_PAE
	ZERO	PAE_BASE, PAE_SIZE
	PTE64	PAE_PDPT, 0, (PAE_PD0 | PTE_P)
	PTE64	PAE_PDPT, 3, (PAE_PD3 | PTE_P)
	PTE64	PAE_PD0, 0, (PAE_PT0 | PTE_P | PTE_W | PTE_U)
	FILL64	PAE_PT0, 0, 512, (PTE_P | PTE_W), 0x1000
	PTE64	PAE_PD3, PD3_WIN_IDX, (TESTWIN_HIGH | PTE_P | PTE_W | PTE_PS)
.endm

/*
 * 4-level paging: PML4[0] -> PDPT; PDPT[0] -> PD0: PD0[0] -> PT0 mapping
 * 0-2 MiB 1:1 with 4 KiB pages, PD0[1..31] 2 MiB pages 1:1 up to 64 MiB;
 * PDPT[3] -> PD3 with a 2 MiB page 1:1 over 0xff000000. Non-leaf entries
 * allow user access; leaves are supervisor-only.
 */
.macro BUILD_LM
	ZERO	LM_BASE, LM_SIZE
	PTE64	LM_PML4, 0, (LM_PDPT | PTE_P | PTE_W | PTE_U)
	PTE64	LM_PDPT, 0, (LM_PD0 | PTE_P | PTE_W | PTE_U)
	PTE64	LM_PDPT, 3, (LM_PD3 | PTE_P | PTE_W | PTE_U)
	PTE64	LM_PD0, 0, (LM_PT0 | PTE_P | PTE_W | PTE_U)
	FILL64	LM_PT0, 0, 512, (PTE_P | PTE_W), 0x1000
	FILL64	LM_PD0, 1, 31, (0x200000 | PTE_P | PTE_W | PTE_PS), 0x200000
	PTE64	LM_PD3, PD3_WIN_IDX, (TESTWIN_HIGH | PTE_P | PTE_W | PTE_PS)
.endm

/* Real mode -> 64-bit mode with BUILD_LM's tables, for guests that only
 * test long mode; a refusal ends the run with STATUS_SKIPPED. */
.macro REAL_TO_LONG label32, label64, eferbits=0
	REAL_TO_PROT32 \label32
	BUILD_LM
	LONG_ON	LM_PML4, 0, \eferbits, STAGE_LONG, skip32, \label64
.endm

/* GUEST_LIBS: the shared code and data every guest ends with: the 16- and
 * 32-bit library and IDT, with bits=64 the 64-bit ones too, the guest's GDT
 * and its data. */
.macro GUEST_LIBS bits
	CODE16
	LIB	16
	CODE32
	LIB	32
	IDT32
	.if \bits == 64
	CODE64
	LIB	64
	IDT64
	.endif
	GUEST_GDT
	GUEST_DATA
.endm
