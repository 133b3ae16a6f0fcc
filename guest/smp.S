/*
 * smp: a multiboot guest for several vCPUs (vmm run -smp 4 guest/smp.elf).
 * vCPU 0 starts the others with INIT and SIPI through its local APIC, as
 * kvm-unit-tests does; they come up in real mode at 0x1000 (SIPI vector 1:
 * this image's first page), switch to 32-bit protected mode, and then every
 * vCPU at once writes, reads back and increments its own 256-byte slot of
 * the high MMIO test window (0xff000000 + 0x100 * APIC ID), waits for the
 * others, and reads every other vCPU's slot to check their results. The
 * MMIO exits of all vCPUs reach walkvm's own path together.
 *
 * Entry: multiboot (32-bit protected mode, paging off); the vCPU count is
 * fw_cfg's NB_CPUS. Waits are bounded by the ACPI PM timer (port 0x608):
 * about 5 s each. Checks:
 *
 *   1  NB_CPUS is 2 to MAX_CPUS
 *   2  CPUID leaf 1 EBX[31:24] (initial APIC ID) = the local APIC's ID
 *   3  an APIC ID not below NB_CPUS, or seen twice
 *   4  CPUID leaf 0xB EDX (x2APIC ID) = the APIC ID, where leaf 0xB is there
 *   5  not every vCPU arrived (vCPU 0 started the others; they never came)
 *   6  a vCPU read its own slot back other than it wrote it
 *   7  a vCPU found another's slot other than that vCPU left it
 *   8  not every vCPU finished
 *   9  the AP entry point is not at 0x1000 (a build error)
 *
 * and the vCPU that saw it exits with that number (0 on a pass) on the
 * debug-exit port, which stops every vCPU.
 */
#include "lib.h"

#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000003	/* page-align modules, memory info */

#define MAX_CPUS	8
#define FW_CFG_PORT	0x510
#define FW_CFG_NB_CPUS	0x05
#define PM_TIMER_PORT	0x608
#define PM_5S		(5 * 3579545)

#define LAPIC		0xfee00000
#define LAPIC_ID	0x20
#define LAPIC_SVR	0xf0
#define LAPIC_ICR_LO	0x300
#define LAPIC_ICR_HI	0x310
#define ICR_ALL_BUT_SELF 0x000c0000	/* destination shorthand 11 */
#define ICR_INIT	0x00004500	/* level assert, INIT */
#define ICR_SIPI	0x00004600	/* level assert, start-up */
#define SIPI_VECTOR	0x01		/* ap_start >> 12 */

#define SLOT_SIZE	0x100
#define ROUNDS		(SLOT_SIZE / 4)

	.text
	.globl	_start
/* The application processors start here, in real mode at CS 0x100, IP 0. */
	CODE16
ap_start:
	ljmp	$0, $ap_real
ap_real:
	REAL_TO_PROT32 ap_prot
	movl	$1, %eax
	cpuid
	shrl	$24, %ebx
	andl	$(MAX_CPUS - 1), %ebx	/* a stack within the guest's area */
	shll	$12, %ebx
	movl	$STACK_TOP, %esp
	subl	%ebx, %esp
	jmp	cpu_main

	.balign	4
mb_header:
	.long	MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	CODE32
_start:
	movl	$STACK_TOP, %esp
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
	movl	$ap_start, %eax
	cmpl	$(SIPI_VECTOR << 12), %eax
	CHECK	e, 9, 32

	/* The vCPU count, as kvm-unit-tests reads it. */
	movw	$FW_CFG_NB_CPUS, %ax
	movw	$FW_CFG_PORT, %dx
	outw	%ax, %dx
	incw	%dx
	inb	%dx, %al
	movzbl	%al, %ecx
	inb	%dx, %al
	movzbl	%al, %eax
	shll	$8, %eax
	orl	%eax, %ecx
	movl	%ecx, ncpus
	cmpl	$2, %ecx
	CHECK	ae, 1, 32
	cmpl	$MAX_CPUS, %ecx
	CHECK	be, 1, 32

	/* Local APIC on; INIT, then SIPI twice, to all but self. */
	movl	$0x1ff, LAPIC + LAPIC_SVR
	movl	$0, LAPIC + LAPIC_ICR_HI
	movl	$(ICR_ALL_BUT_SELF | ICR_INIT), LAPIC + LAPIC_ICR_LO
	movl	$(ICR_ALL_BUT_SELF | ICR_SIPI | SIPI_VECTOR), LAPIC + LAPIC_ICR_LO
	movl	$(ICR_ALL_BUT_SELF | ICR_SIPI | SIPI_VECTOR), LAPIC + LAPIC_ICR_LO

/* Every vCPU, 32-bit protected mode. %esi holds its APIC ID. */
cpu_main:
	movl	$1, %eax
	cpuid
	shrl	$24, %ebx
	movl	%ebx, %esi
	movl	LAPIC + LAPIC_ID, %eax
	shrl	$24, %eax
	cmpl	%esi, %eax
	CHECK	e, 2, 32
	cmpl	ncpus, %esi
	CHECK	b, 3, 32
	lock btsl %esi, seen
	CHECK	nc, 3, 32
	xorl	%eax, %eax		/* leaf 0xB, where there is one */
	cpuid
	cmpl	$0xb, %eax
	jb	1f
	movl	$0xb, %eax
	xorl	%ecx, %ecx
	cpuid
	testl	%ebx, %ebx
	jz	1f
	cmpl	%esi, %edx
	CHECK	e, 4, 32
1:	lock incl arrived
	movl	$arrived, %edi
	movl	$5, %ebp
	call	wait_all

	/* My slot: write, read back, increment, compare, ROUNDS dwords. */
	movl	%esi, %edi
	shll	$8, %edi
	addl	$TESTWIN_HIGH, %edi
	xorl	%ecx, %ecx
2:	call	pattern			/* %eax: vCPU %esi's word %ecx */
	movl	%eax, (%edi,%ecx,4)
	movl	(%edi,%ecx,4), %edx
	cmpl	%eax, %edx
	CHECK	e, 6, 32
	incl	(%edi,%ecx,4)
	incl	%eax
	cmpl	%eax, (%edi,%ecx,4)
	CHECK	e, 6, 32
	incl	%ecx
	cmpl	$ROUNDS, %ecx
	jb	2b
	lock incl done1
	movl	$done1, %edi
	movl	$8, %ebp
	call	wait_all

	/* Everyone else's slot: pattern + 1 in every word. */
	pushl	%esi
	xorl	%ebx, %ebx
3:	cmpl	(%esp), %ebx
	je	5f
	movl	%ebx, %edi
	shll	$8, %edi
	addl	$TESTWIN_HIGH, %edi
	movl	%ebx, %esi
	xorl	%ecx, %ecx
4:	call	pattern
	incl	%eax
	cmpl	%eax, (%edi,%ecx,4)
	CHECK	e, 7, 32
	incl	%ecx
	cmpl	$ROUNDS, %ecx
	jb	4b
5:	incl	%ebx
	cmpl	ncpus, %ebx
	jb	3b
	popl	%esi
	lock incl done2
	testl	%esi, %esi
	jnz	park
	movl	$done2, %edi
	movl	$8, %ebp
	call	wait_all
	PASS	32, msg_pass
park:	cli
	hlt
	jmp	park

/* pattern: %eax = vCPU %esi's word %ecx: id << 24 | word << 8 | 0x5a. */
pattern:
	movl	%esi, %eax
	shll	$24, %eax
	movl	%ecx, %edx
	shll	$8, %edx
	orl	%edx, %eax
	orb	$0x5a, %al
	ret

/* wait_all: wait until the counter at %edi reaches ncpus; after about 5 s
 * by the ACPI PM timer, fail with the code in %ebp. Keeps %esi, %edi. */
wait_all:
	pushl	%esi
	movw	$PM_TIMER_PORT, %dx
	inl	%dx, %eax
	movl	%eax, %esi		/* the last timer value */
	xorl	%ebx, %ebx		/* ticks waited */
1:	movl	ncpus, %eax
	cmpl	%eax, (%edi)
	jae	3f
	movl	$1024, %ecx
2:	pause
	decl	%ecx
	jnz	2b
	inl	%dx, %eax
	movl	%eax, %ecx
	subl	%esi, %ecx
	andl	$0xffffff, %ecx		/* the timer has 24 bits */
	addl	%ecx, %ebx
	movl	%eax, %esi
	cmpl	$PM_5S, %ebx
	jb	1b
	movl	%ebp, %ebx
	jmp	fail32
3:	popl	%esi
	ret

	GUEST_LIBS 32

	.balign	4
ncpus:		.long	0
seen:		.long	0	/* bit per APIC ID */
arrived:	.long	0
done1:		.long	0
done2:		.long	0
msg_hello:	.asciz	"walkvm: smp guest\n"
msg_pass:	.asciz	"walkvm: smp: every vCPU started by INIT/SIPI, MMIO on all at once, each checked the others, pass\n"
