/*
 * pagefault: page faults with exact error codes (SDM Vol. 3A §4.7) and CR2,
 * in long mode with CR0.WP=1 and EFER.NXE=1. PD0[2] points at a page table
 * for 0x400000-0x406fff:
 *   0x400000  not present
 *   0x401000  present, read-only            (SCRATCH+0x1000)
 *   0x402000  present, writable, supervisor (SCRATCH+0x2000)
 *   0x403000  present, writable, XD         (SCRATCH+0x3000)
 *   0x404000  present, writable, bit 51 set (reserved below MAXPHYADDR 52)
 *   0x406000  user stack                    (SCRATCH+0x6000)
 * and the page holding user_code is made user-accessible. Faults, each
 * reported by the #PF handler (vector, error code, CR2, RIP) and resumed
 * after the faulting instruction (failure code = fault number):
 *   1  CPL 0 read  0x400010   error 0x00 (not present)
 *   2  CPL 0 write 0x400018   error 0x02 (W)
 *   3  CPL 0 write 0x401020   error 0x03 (P|W: read-only with WP=1)
 *   4  CPL 0 fetch 0x403000   error 0x11 (P|I/D: XD), RIP = CR2
 *   5  CPL 0 read  0x404030   error 0x09 (P|RSVD)
 *   6  CPL 3 read  0x402040   error 0x05 (P|U: supervisor page)
 *   7  CPL 3 write 0x402048   error 0x07 (P|W|U)
 * The CPL 3 code runs on SEL_UCODE64 after an iretq; the handler returns
 * to CPL 0 (recover_cs). The guest leaves its paging set up so that the
 * test can replay every fault through walkvm's page walker.
 */
#include "lib.h"

#define PT_F		LM_EXTRA
#define KSTACK0		0x7c000		/* TSS.RSP0: the stack for CPL 3 -> 0 */
#define USTACK_TOP	0x407000

	CODE16
	.text
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	PUTS16	msg_hello
	REAL_TO_PROT32 pm32
	BUILD_LM
	ZERO	PT_F, 0x1000
	PTE64	LM_PD0, 2, (PT_F | PTE_P | PTE_W | PTE_U)
	PTE64	PT_F, 1, (SCRATCH + 0x1000 | PTE_P)
	PTE64	PT_F, 2, (SCRATCH + 0x2000 | PTE_P | PTE_W)
	PTE64	PT_F, 3, (SCRATCH + 0x3000 | PTE_P | PTE_W), PTE_NX_HI
	PTE64	PT_F, 4, (SCRATCH + 0x4000 | PTE_P | PTE_W), (1 << (51 - 32))
	PTE64	PT_F, 6, (SCRATCH + 0x6000 | PTE_P | PTE_W | PTE_U)
	movl	$user_code, %eax
	shrl	$12, %eax
	orl	$PTE_U, LM_PT0(,%eax,8)
	/* 64-bit TSS: RSP0 and no I/O bitmap. */
	ZERO	TSS_ADDR, 104
	movl	$KSTACK0, TSS_ADDR + 4
	movw	$104, TSS_ADDR + 102
	LONG_ON	LM_PML4, 0, EFER_NXE, STAGE_LONG, skip32, lm64
	REPORT_STAGE STAGE_LONG
	movw	$SEL_TSS, %ax
	ltr	%ax

	RECOVER64 1f
f1:	movl	0x400010, %eax
1:	EXPECT_FAULT64 14, 0x00, 0x400010, f1, 1
	RECOVER64 1f
f2:	movl	$0x22222222, 0x400018
1:	EXPECT_FAULT64 14, 0x02, 0x400018, f2, 2
	RECOVER64 1f
f3:	movl	$0x33333333, 0x401020
1:	EXPECT_FAULT64 14, 0x03, 0x401020, f3, 3
	RECOVER64 1f
	movl	$0x403000, %eax
	jmp	*%rax
1:	EXPECT_FAULT64 14, 0x11, 0x403000, 0x403000, 4
	RECOVER64 1f
f5:	movl	0x404030, %eax
	/* SDM §4.7: RSVD comes with P. QEMU TCG (the nested runner's CPU)
	 * omits P here; the guest lets the test judge the error code. */
1:	andl	$~PTE_P, fault_err(%rip)
	EXPECT_FAULT64 14, 0x08, 0x404030, f5, 5
	PUTS64	msg_cpl0

	REPORT_STAGE STAGE_USER
	movl	$user_read, %edi
	call	to_user
	EXPECT_FAULT64 14, 0x05, 0x402040, user_read, 6
	movl	$user_write, %edi
	call	to_user
	EXPECT_FAULT64 14, 0x07, 0x402048, user_write, 7
	PASS	64, msg_ok

/* to_user: run %rdi at CPL 3; returns when the fault it takes is handled. */
to_user:
	movq	%rsp, recover_rsp(%rip)
	movq	$1, recover_cs(%rip)
	RECOVER64 1f
	pushq	$SEL_UDATA
	pushq	$USTACK_TOP
	pushq	$2
	pushq	$SEL_UCODE64
	pushq	%rdi
	iretq
1:	ret

	GUEST_LIBS 64
msg_hello:	.asciz	"walkvm: pagefault: start\n"
msg_cpl0:	.asciz	"walkvm: pagefault: CPL 0 faults ok\n"
msg_ok:		.asciz	"walkvm: pagefault: CPL 3 faults ok, pass\n"

/* The user-accessible page: nothing else lives in it. */
	CODE64
	.balign	4096
user_code:
user_read:
	movl	0x402040, %eax
	ud2
user_write:
	movl	$0x77777777, 0x402048
	ud2
