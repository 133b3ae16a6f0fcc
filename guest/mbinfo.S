/*
 * mbinfo: a multiboot (version 1) guest that checks the boot information
 * walkvm's multiboot loader hands it. One source, four images (build.sh):
 *
 *   mbelf32.elf    ELFCLASS32 EM_386, 32-bit code: checks in protected mode
 *   mbelf64.elf    ELFCLASS64 EM_X86_64: enters 32-bit, switches to long
 *                  mode (MB_LONG) and checks from 64-bit code
 *   mbelf64x32.elf the same, objcopy -O elf32-i386: ELFCLASS32 EM_386
 *                  holding 64-bit code, as kvm-unit-tests ships its guests
 *   mbaout.bin     a flat binary whose header has the load addresses
 *                  (flags bit 16, the a.out kludge: MB_AOUT)
 *
 * All link at 0x1000 (lib.h's IDT gates are 16-bit offsets) with 16 KiB
 * of bss, and expect to be run as
 *
 *   vmm run -mem 128M -append "mbtest mem_upper=130048" \
 *       -initrd guest/mbmodule.txt guest/IMAGE
 *
 * (mem_upper= is the KiB of RAM from 1 MiB the guest expects: -mem minus
 * 1 MiB). Entry: EAX = 0x2BADB002, EBX = the information structure, 32-bit
 * protected mode, paging off, interrupts off. The guest loads its own GDT
 * and IDT, reports STAGE_PROT32 (and STAGE_LONG), and checks:
 *
 *   1  EAX = 0x2BADB002 at entry
 *   2  flags have mem_* (bit 0), cmdline (2), mods (3) and mmap (6)
 *   3  mem_lower = 639
 *   4  the command line has " mem_upper=N" and N = mem_upper
 *   5  the command line's first word (the image name) is not empty and
 *      " mbtest" follows it
 *   6  mods_count = 1
 *   7  the module is as long as mbmodule.txt
 *   8  the module's bytes are mbmodule.txt's
 *   9  the module starts on a page boundary (header flags bit 0)
 *  10  every mmap entry has size 20 and mmap_length is a multiple of 24
 *  11  the mmap has RAM at 0 of 636-640 KiB
 *  12  the mmap has RAM at 1 MiB of mem_upper KiB
 *  13  no mmap RAM entry overlaps 0xa0000-0xfffff
 *  14  the information structure, command line, mmap, module list,
 *      module string, boot loader name and module lie outside the image,
 *      page 0, page 0x1000 and 0x8000-0xdfff, and below 4 GiB
 *  15  boot_loader_name (flags bit 9) is "walkvm"
 *  16  CR0.PE set and CR0.PG clear at entry
 *  17  the module string is not empty
 *  18  EFLAGS.IF clear at entry
 * and exits with that number (0 on a pass) on the debug-exit port.
 */
#include "lib.h"

#define MB_MAGIC	0x1BADB002
#define MB_BOOT_MAGIC	0x2BADB002
#ifdef MB_AOUT
#define MB_FLAGS	0x00010003	/* page-align modules, memory info, address fields */
#else
#define MB_FLAGS	0x00000003	/* page-align modules, memory info */
#endif

/* Information structure offsets (Multiboot 0.6.96 §3.3). */
#define MBI_FLAGS	0
#define MBI_MEM_LOWER	4
#define MBI_MEM_UPPER	8
#define MBI_CMDLINE	16
#define MBI_MODS_COUNT	20
#define MBI_MODS_ADDR	24
#define MBI_MMAP_LENGTH	44
#define MBI_MMAP_ADDR	48
#define MBI_LOADER_NAME	64
#define MBI_SIZE	88
#define MBI_NEEDED	0x4d	/* bits 0, 2, 3, 6 */

/* The checks, in 32- or 64-bit code (addresses are below 4 GiB: 32-bit
 * registers address them in either). */
.macro MBCHECKS bits
	MEMSRC	movl, mbi, %esi
	movl	MBI_FLAGS(%esi), %eax
	andl	$MBI_NEEDED, %eax
	cmpl	$MBI_NEEDED, %eax
	CHECK	e, 2, \bits
	cmpl	$639, MBI_MEM_LOWER(%esi)
	CHECK	e, 3, \bits

	/* Command line: "<name> mbtest ... mem_upper=N ...". */
	movl	MBI_CMDLINE(%esi), %ecx
	movb	(%ecx), %al
	cmpb	$' ', %al
	CHECK	ne, 5, \bits
	testb	%al, %al
	CHECK	nz, 5, \bits
1:	incl	%ecx			/* to the first blank */
	movb	(%ecx), %al
	testb	%al, %al
	CHECK	nz, 5, \bits
	cmpb	$' ', %al
	jne	1b
	movl	$str_mbtest, %edi
	call	prefix\bits
	CHECK	e, 5, \bits
	movl	MBI_CMDLINE(%esi), %edx	/* find " mem_upper=" */
2:	cmpb	$0, (%edx)
	CHECK	ne, 4, \bits
	movl	%edx, %ecx
	movl	$str_memupper, %edi
	call	prefix\bits
	je	3f
	incl	%edx
	jmp	2b
3:	xorl	%eax, %eax		/* %ecx is after the '=': decimal digits */
	movl	%ecx, %edi
4:	movzbl	(%ecx), %edx
	subl	$'0', %edx
	cmpl	$9, %edx
	ja	5f
	imull	$10, %eax, %eax
	addl	%edx, %eax
	incl	%ecx
	jmp	4b
5:	cmpl	%edi, %ecx
	CHECK	ne, 4, \bits
	cmpl	MBI_MEM_UPPER(%esi), %eax
	CHECK	e, 4, \bits

	/* The module. */
	cmpl	$1, MBI_MODS_COUNT(%esi)
	CHECK	e, 6, \bits
	movl	MBI_MODS_ADDR(%esi), %ebx
	movl	4(%ebx), %ecx
	subl	(%ebx), %ecx
	cmpl	$(modexp_end - modexp), %ecx
	CHECK	e, 7, \bits
	testl	$0xfff, (%ebx)
	CHECK	z, 9, \bits
	movl	8(%ebx), %eax
	cmpb	$0, (%eax)
	CHECK	ne, 17, \bits
	movl	(%ebx), %esi
	movl	$modexp, %edi
	cld
	repe cmpsb
	CHECK	e, 8, \bits
	MEMSRC	movl, mbi, %esi

	/* The memory map. */
	movl	MBI_MMAP_LENGTH(%esi), %eax
	xorl	%edx, %edx
	movl	$24, %ecx
	divl	%ecx
	testl	%edx, %edx
	CHECK	z, 10, \bits
	movl	MBI_MMAP_ADDR(%esi), %ebx
	movl	%ebx, %edi
	addl	MBI_MMAP_LENGTH(%esi), %edi	/* end */
	xorl	%ebp, %ebp		/* bit 0: low RAM seen, bit 1: high */
6:	cmpl	%edi, %ebx
	jae	8f
	cmpl	$20, (%ebx)
	CHECK	e, 10, \bits
	cmpl	$1, 20(%ebx)
	jne	7f
	cmpl	$0, 8(%ebx)		/* base above 4 GiB: nothing to check */
	jne	7f
	movl	4(%ebx), %eax		/* base */
	movl	12(%ebx), %ecx		/* length (low dword) */
	testl	%eax, %eax
	jnz	61f
	cmpl	$0, 16(%ebx)
	CHECK	e, 11, \bits
	cmpl	$(636 * 1024), %ecx
	CHECK	ae, 11, \bits
	cmpl	$(640 * 1024), %ecx
	CHECK	be, 11, \bits
	orl	$1, %ebp
61:	cmpl	$0x100000, %eax
	jne	62f
	movl	MBI_MEM_UPPER(%esi), %edx
	shll	$10, %edx
	cmpl	%edx, %ecx
	CHECK	e, 12, \bits
	orl	$2, %ebp
62:	cmpl	$0x100000, %eax		/* RAM entries below 1 MiB end by 0xa0000 */
	jae	7f
	addl	%ecx, %eax
	cmpl	$0xa0000, %eax
	CHECK	be, 13, \bits
7:	addl	$24, %ebx
	jmp	6b
8:	testl	$1, %ebp
	CHECK	nz, 11, \bits
	testl	$2, %ebp
	CHECK	nz, 12, \bits

	/* Where the loader put things. */
	movl	%esi, %eax
	leal	MBI_SIZE(%esi), %edx
	call	range\bits
	movl	MBI_MMAP_ADDR(%esi), %eax
	movl	%eax, %edx
	addl	MBI_MMAP_LENGTH(%esi), %edx
	call	range\bits
	movl	MBI_MODS_ADDR(%esi), %eax
	leal	16(%eax), %edx
	call	range\bits
	movl	MBI_MODS_ADDR(%esi), %ebx
	movl	(%ebx), %eax
	movl	4(%ebx), %edx
	call	range\bits
	movl	8(%ebx), %eax
	call	strrange\bits
	movl	MBI_CMDLINE(%esi), %eax
	call	strrange\bits
	testl	$0x200, MBI_FLAGS(%esi)
	jz	9f
	movl	MBI_LOADER_NAME(%esi), %eax
	call	strrange\bits
	movl	MBI_LOADER_NAME(%esi), %ecx
	movl	$str_walkvm, %edi
	call	prefix\bits
	CHECK	e, 15, \bits
	cmpb	$0, (%ecx)
	CHECK	e, 15, \bits
9:	PASS	\bits, msg_pass

/* prefix: ZF set when the NUL-terminated string at %edi starts at %ecx;
 * %ecx is then just after it. Clobbers %eax, %edi. */
prefix\bits:
	movb	(%edi), %al
	testb	%al, %al
	jz	1f
	cmpb	(%ecx), %al
	jne	1f
	incl	%ecx
	incl	%edi
	jmp	prefix\bits
1:	ret

/* strrange: range check of the NUL-terminated string at %eax. */
strrange\bits:
	movl	%eax, %edx
1:	cmpb	$0, (%edx)
	je	2f
	incl	%edx
	jmp	1b
2:	incl	%edx
	/* fall through */
/* range: fail with 14 unless [%eax, %edx) is clear of the image, page 0,
 * page 0x1000 and 0x8000-0xdfff, and does not wrap. */
range\bits:
	cmpl	%eax, %edx
	CHECK	a, 14, \bits
	cmpl	$0x2000, %eax
	CHECK	ae, 14, \bits
	cmpl	$0xe000, %eax
	jae	1f
	cmpl	$0x8000, %edx
	CHECK	be, 14, \bits
1:	cmpl	$_end, %eax
	jae	2f
	cmpl	$mb_header, %edx
	CHECK	be, 14, \bits
2:	ret
.endm

	.text
	.globl	_start
	CODE32
mb_header:
	.long	MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
#ifdef MB_AOUT
	/* header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr */
	.long	mb_header, mb_header, text_end, _end, _start
#endif

_start:
	movl	$STACK_TOP, %esp
	movl	%eax, entry_eax
	movl	%ebx, mbi
	movl	%cr0, %eax
	movl	%eax, entry_cr0
	pushfl
	popl	entry_eflags
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
	cmpl	$MB_BOOT_MAGIC, entry_eax
	CHECK	e, 1, 32
	movl	entry_cr0, %eax
	andl	$(CR0_PE | CR0_PG), %eax
	cmpl	$CR0_PE, %eax
	CHECK	e, 16, 32
	testl	$0x200, entry_eflags
	CHECK	z, 18, 32
	REPORT_STAGE STAGE_PROT32
#ifdef MB_LONG
	BUILD_LM
	/* Map 64 MiB-1 GiB too: the module sits at the top of RAM. */
	FILL64	LM_PD0, 32, 480, (0x4000000 | PTE_P | PTE_W | PTE_PS), 0x200000
	LONG_ON	LM_PML4, 0, 0, STAGE_LONG, skip32, lm64
	REPORT_STAGE STAGE_LONG
	MBCHECKS 64
	GUEST_LIBS 64
#else
	MBCHECKS 32
	GUEST_LIBS 32
#endif


	.balign	4
mbi:		.long	0
entry_eax:	.long	0
entry_cr0:	.long	0
entry_eflags:	.long	0
str_mbtest:	.asciz	" mbtest"
str_memupper:	.asciz	" mem_upper="
str_walkvm:	.asciz	"walkvm"
msg_hello:	.asciz	"walkvm: multiboot guest\n"
msg_pass:	.asciz	"walkvm: multiboot information ok, pass\n"
modexp:		.incbin	"mbmodule.txt"
modexp_end:
text_end:

	.bss
	.balign	16
	.skip	0x4000
