/*
 * oracle: the generic guest of the hardware-oracle walker test
 * (tests/oracle_test.go). Loaded at 0x1000 and entered by the test directly
 * in the mode under test (KVM_SET_SREGS): 32-bit code for nonpaging,
 * 32-bit paging, PAE and compatibility mode, 64-bit code for long mode. The
 * test writes the GDT, IDT, TSS, page tables and the case list; this code
 * only performs the cases and records what happened.
 *
 * For each case (CASES + 32*i: u64 linear address, u32 op, u32 flags,
 * u64 value to write) the loop sets PARAMS_CUR = i, sets RFLAGS.AC if
 * flags bit 1, and performs the access with one instruction, at CPL 0 or,
 * if flags bit 0, at CPL 3 (iret to the user page, which comes back with
 * a ud2 at a known address: under the project's PVM KVM an int $0x80 at
 * CPL 3 raised #UD instead in some of the cases). The result (RESULTS +
 * 32*i: u32 status, u32 vector, u64 error code, u64 CR2, u64 value) is
 * 1/value read or returned by the landing code for a completed access,
 * 2/vector/error code/CR2/RIP for an exception. Every handler resets the
 * stack and goes on with the next case. After the last case: hlt.
 *
 * TSS: the test's KVM_SET_SREGS gives TR a busy TSS, but the entry code
 * loads TR itself from the GDT's available TSS descriptor (SEL_TSS): QEMU's
 * TCG, the CPU of the nested runner, aborts ("invalid tss type") on a
 * stack switch through a 32-bit TSS whose cached type is busy, which only
 * a TR not loaded by LTR has.
 *
 * ops: 0-3 read 1/2/4/8 bytes, 4-7 write 1/2/4/8 bytes (the case's
 * value), 8 fetch (call to the address; the landing page returns an ID).
 */
	.text
	.globl	_start

#define PARAMS		0x8000
#define P_NCASES	(PARAMS + 0x00)
#define P_CUR		(PARAMS + 0x08)
#define P_RESUME_IP	(PARAMS + 0x10)	/* where 64-bit handlers go on */
#define P_RESUME_CS	(PARAMS + 0x18)
#define P_PKRU		(PARAMS + 0x20)
#define P_FLAGS		(PARAMS + 0x28)	/* bit 0: load PKRU at entry */
#define KSTACK		0xe000
#define USTACK		0xf000
#define CASES		0x10000
#define RESULTS		0x20000
#define UCS32		0x23
#define UDS		0x2b
#define UCS64		0x33
#define SEL_TSS		0x38
#define FLAG_AC		0x40000
/* Vectors that push an error code: 8, 10-14, 17, 21, 29, 30. */
#define ERRMASK		0x60227d00

_start:
/* Header read by the test: magic, then the addresses it needs. */
	.long	0x4341524f		/* "ORAC" */
	.long	entry32, entry64, stubs32, stubs64
	.long	loop32, loop64, user_start, user_end

/* One access, dispatched on op (%edx/%rdx): address in %ebx/%rbx, value
 * in %ecx/%rcx; the value read (or the landing page's ID) in %eax/%rax. */
.macro	OPS32
	cmp	$4, %edx
	jae	1f
	cmp	$1, %edx
	jb	10f
	je	11f
	movl	(%ebx), %eax
	ret
10:	movzbl	(%ebx), %eax
	ret
11:	movzwl	(%ebx), %eax
	ret
1:	cmp	$8, %edx
	je	18f
	xor	%eax, %eax
	cmp	$5, %edx
	jb	14f
	je	15f
	movl	%ecx, (%ebx)
	ret
14:	movb	%cl, (%ebx)
	ret
15:	movw	%cx, (%ebx)
	ret
18:	call	*%ebx
	ret
.endm

.macro	OPS64
	cmp	$4, %edx
	jae	1f
	cmp	$2, %edx
	jb	2f
	je	12f
	movq	(%rbx), %rax
	ret
2:	cmp	$1, %edx
	je	11f
	movzbl	(%rbx), %eax
	ret
11:	movzwl	(%rbx), %eax
	ret
12:	movl	(%rbx), %eax
	ret
1:	cmp	$8, %edx
	je	18f
	xor	%eax, %eax
	cmp	$6, %edx
	jb	3f
	je	16f
	movq	%rcx, (%rbx)
	ret
3:	cmp	$5, %edx
	je	15f
	movb	%cl, (%rbx)
	ret
15:	movw	%cx, (%rbx)
	ret
16:	movl	%ecx, (%rbx)
	ret
18:	call	*%rbx
	ret
.endm

/* ---- 32-bit code: protected mode (paging off, 32-bit, PAE) and
 * compatibility mode. */
	.code32
entry32:
	mov	$SEL_TSS, %ax		/* see TSS below */
	ltr	%ax
	testl	$1, P_FLAGS
	jz	loop32
	mov	P_PKRU, %eax
	xor	%ecx, %ecx
	xor	%edx, %edx
	.byte	0x0f, 0x01, 0xef	/* wrpkru */
loop32:
	mov	$KSTACK, %esp
	pushl	$2
	popfl
	mov	P_CUR, %eax
	cmp	P_NCASES, %eax
	jae	done32
	shl	$5, %eax
	mov	CASES(%eax), %ebx
	mov	CASES+8(%eax), %edx
	mov	CASES+16(%eax), %ecx
	mov	CASES+12(%eax), %edi
	test	$2, %edi
	jz	1f
	pushfl
	orl	$FLAG_AC, (%esp)
	popfl
1:	test	$1, %edi
	jnz	user32
	call	kop32
case_done32:
	mov	P_CUR, %edi
	shl	$5, %edi
	movl	$1, RESULTS(%edi)
	mov	%eax, RESULTS+24(%edi)
	movl	$0, RESULTS+28(%edi)
	incl	P_CUR
	jmp	loop32
user32:
	pushl	$UDS
	pushl	$USTACK
	pushfl
	pushl	$UCS32
	pushl	$uentry32
	iret
done32:
	hlt
	jmp	done32

kop32:	OPS32

/* ud2 on the user page: the access completed, value in %eax. */
uret32:
	jmp	case_done32

/* Exception stubs, 8 bytes apart: push the vector. */
	.balign	8
stubs32:
	.set	vec, 0
	.rept	32
	.balign	8
	pushl	$vec
	jmp	exc32
	.set	vec, vec + 1
	.endr
exc32:
	cmpl	$6, (%esp)
	jne	2f
	cmpl	$uud2_32, 4(%esp)
	je	uret32
2:	mov	(%esp), %eax
	xor	%edx, %edx
	mov	$ERRMASK, %ecx
	lea	4(%esp), %esi		/* the EIP of the frame */
	bt	%eax, %ecx
	jnc	1f
	mov	(%esi), %edx
	add	$4, %esi
1:	mov	P_CUR, %edi
	shl	$5, %edi
	movl	$2, RESULTS(%edi)
	mov	%eax, RESULTS+4(%edi)
	mov	%edx, RESULTS+8(%edi)
	movl	$0, RESULTS+12(%edi)
	mov	%cr2, %eax
	mov	%eax, RESULTS+16(%edi)
	movl	$0, RESULTS+20(%edi)
	mov	(%esi), %eax
	mov	%eax, RESULTS+24(%edi)
	movl	$0, RESULTS+28(%edi)
	incl	P_CUR
	jmp	loop32

/* ---- 64-bit code: long mode; its handlers also serve compatibility
 * mode and go on at P_RESUME_CS:P_RESUME_IP. */
	.code64
entry64:
	mov	$SEL_TSS, %ax
	ltr	%ax
	testl	$1, P_FLAGS
	jz	loop64
	mov	P_PKRU, %eax
	xor	%ecx, %ecx
	xor	%edx, %edx
	.byte	0x0f, 0x01, 0xef	/* wrpkru */
loop64:
	mov	$KSTACK, %rsp
	pushq	$2
	popfq
	mov	P_CUR, %rax
	cmp	P_NCASES, %rax
	jae	done64
	shl	$5, %rax
	mov	CASES(%rax), %rbx
	mov	CASES+8(%rax), %edx
	mov	CASES+16(%rax), %rcx
	mov	CASES+12(%rax), %edi
	test	$2, %edi
	jz	1f
	pushfq
	orl	$FLAG_AC, (%rsp)
	popfq
1:	test	$1, %edi
	jnz	user64
	call	kop64
case_done64:
	mov	P_CUR, %rdi
	shl	$5, %rdi
	movl	$1, RESULTS(%rdi)
	mov	%rax, RESULTS+24(%rdi)
	incq	P_CUR
	jmp	loop64
user64:
	pushq	$UDS
	pushq	$USTACK
	pushfq
	pushq	$UCS64
	mov	$uentry64, %eax		/* zero-extends: no 64-bit relocation */
	push	%rax
	iretq
done64:
	hlt
	jmp	done64

kop64:	OPS64

/* ud2 on the user page (64-bit or compatibility mode). */
uret64:
	mov	P_CUR, %rdi
	shl	$5, %rdi
	movl	$1, RESULTS(%rdi)
	mov	%rax, RESULTS+24(%rdi)
	jmp	resume64

	.balign	8
stubs64:
	.set	vec, 0
	.rept	32
	.balign	8
	pushq	$vec
	jmp	exc64
	.set	vec, vec + 1
	.endr
exc64:
	cmpq	$6, (%rsp)
	jne	2f
	cmpl	$0, 12(%rsp)
	jne	2f
	cmpl	$uud2_64, 8(%rsp)
	je	uret64
	cmpl	$uud2_32, 8(%rsp)
	je	uret64
2:	mov	(%rsp), %rax
	xor	%edx, %edx
	mov	$ERRMASK, %ecx
	lea	8(%rsp), %rsi		/* the RIP of the frame */
	bt	%eax, %ecx
	jnc	1f
	mov	(%rsi), %rdx
	add	$8, %rsi
1:	mov	P_CUR, %rdi
	shl	$5, %rdi
	movl	$2, RESULTS(%rdi)
	mov	%eax, RESULTS+4(%rdi)
	mov	%rdx, RESULTS+8(%rdi)
	mov	%cr2, %rax
	mov	%rax, RESULTS+16(%rdi)
	mov	(%rsi), %rax
	mov	%rax, RESULTS+24(%rdi)
resume64:
	incq	P_CUR
	mov	$KSTACK, %rsp
	pushq	P_RESUME_CS
	pushq	P_RESUME_IP
	lretq

/* ---- The user page: the only code the test maps with U/S=1. */
	.balign	4096
user_start:
	.code32
uentry32:
	call	uop32
uud2_32:
	ud2
uop32:	OPS32

	.code64
uentry64:
	call	uop64
uud2_64:
	ud2
uop64:	OPS64
	.balign	4096
user_end:
