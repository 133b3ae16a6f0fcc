/* Ports and addresses of walkvm's devices, shared by every guest. */
#define COM1		0x3f8
#define DEBUG_EXIT_PORT	0xf4
#define TESTWIN_HIGH	0xff000000
#define TESTWIN_LOW	0xd0000
#define TESTWIN_SIZE	0x10000

/*
 * Report device (devices/report.go): structured events for the tests.
 * Write each argument as a dword to REPORT_PORT, then the event kind as a
 * byte to REPORT_EVENT_PORT. A dword read of REPORT_PORT gives REPORT_MAGIC.
 *   EV_EXCEPTION    vector, error code, CR2 lo, CR2 hi, RIP lo, RIP hi
 *   EV_STAGE        stage id (the guest reached it)
 *   EV_REFUSED      stage id, vector, error code (the host refused it)
 *   EV_UNSUPPORTED  stage id (the guest's CPUID lacks what it needs)
 *   EV_VALUE        tag, value lo, value hi
 */
#define REPORT_PORT		0xf0
#define REPORT_EVENT_PORT	0xf1
#define REPORT_MAGIC		0x50524b57
#define EV_EXCEPTION		1
#define EV_STAGE		2
#define EV_REFUSED		3
#define EV_UNSUPPORTED		4
#define EV_VALUE		5

/*
 * Verdicts written to DEBUG_EXIT_PORT: 0 pass; 1..63 a guest's own failed
 * check; STATUS_SKIPPED when the host refused (or the CPU lacks) a mode the
 * guest needs, after reporting which; STATUS_EXCEPTION + vector for an
 * exception the guest did not expect.
 */
#define STATUS_PASS		0
#define STATUS_SKIPPED		77
#define STATUS_EXCEPTION	0x80

/* Stage (mode and feature) ids, as package guest names them. */
#define STAGE_REAL	1	/* real mode */
#define STAGE_PROT32	2	/* protected mode, 32-bit code, paging off */
#define STAGE_PROT16	3	/* protected mode, 16-bit code */
#define STAGE_PAGING32	4	/* 32-bit paging, 4 KiB pages */
#define STAGE_PSE	5	/* 32-bit paging, 4 MiB pages */
#define STAGE_PSE36	6	/* 4 MiB page above 4 GiB */
#define STAGE_PAE	7	/* PAE paging */
#define STAGE_LONG	8	/* 64-bit mode, 4-level paging */
#define STAGE_COMPAT	9	/* compatibility mode */
#define STAGE_LA57	10	/* 5-level paging */
#define STAGE_1G	11	/* 1 GiB pages */
#define STAGE_X87	12	/* x87 on MMIO */
#define STAGE_AVX	13	/* AVX on MMIO */
#define STAGE_USER	14	/* CPL 3 */
#define STAGE_HIGHHALF	15	/* running in the higher half */
#define STAGE_SSE	16	/* SSE on MMIO */

/* Value tags (EV_VALUE). */
#define TAG_PSE36_READ	1	/* what a read through the PSE-36 page gave */

/*
 * Guest memory map (guests load at 0x1000, real-mode entry, CS=0; the image
 * must end below 0x10000 so real-mode code reaches all of it):
 *   0x00000  real-mode IVT
 *   0x00500  walkvm's GDT (guests load their own)
 *   0x01000  image; the real-mode stack is SS:SP = 0:0x1000, below it
 *   0x10000  long-mode tables     0x20000  32-bit paging tables
 *   0x28000  PAE tables           0x30000  64-bit TSS
 *   0x40000  scratch RAM pages    0x80000  protected/long-mode stack top
 */
#define LM_BASE		0x10000
#define P32_BASE	0x20000
#define PAE_BASE	0x28000
#define TSS_ADDR	0x30000
#define SCRATCH		0x40000
#define STACK_TOP	0x80000
