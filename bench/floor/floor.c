/*
 * floor: the smallest VMM that runs walkvm's bench guests, as the floor of
 * `vmm bench`. It opens /dev/kvm, creates one VM with walkvm's memory
 * layout, loads the RAM contents and entry registers that package bench
 * wrote to STATE (bench/state.go; the same boot.Load walkvm runs), and calls
 * KVM_RUN in a loop. It serves only:
 *   - MMIO windows at 0xff000000 and 0xd0000, 64 KiB each, RAM-like;
 *     any other MMIO reads all ones and drops writes;
 *   - port 0xf4, debug exit: a write of v ends the run with status v & 0xff;
 *   - the UART at 0x3f8-0x3ff: writes are discarded, reads give 0 (LSR says
 *     the transmitter is empty); any other port reads all ones.
 * A halt ends the run with status 0; anything else with status 125.
 *
 * usage: floor [-s] STATE
 *   -s  print "floor: exits=N loop_ns=T" to stderr at the end, T being the
 *       time from the first KVM_RUN to the last exit (CLOCK_MONOTONIC)
 *
 * Build: gcc -O2 -static -o floor floor.c (package bench does it, or
 * tests/nested/run for the nested KVM, which has no compiler)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define STATUS_FAILED 125

/* The STATE file, little-endian; package bench's state.go writes it. */
#define STATE_MAGIC "WVMFLOOR"
#define STATE_VERSION 1
struct state_header {
	char magic[8];
	uint32_t version;
	uint32_t nslots;  /* memslots that follow */
	uint32_t nchunks; /* RAM contents that follow the slots */
	uint32_t reserved;
	uint64_t mem_size;	    /* bytes of the one host mapping */
	uint64_t tss_addr;	    /* KVM_SET_TSS_ADDR */
	uint64_t identity_map_addr; /* KVM_SET_IDENTITY_MAP_ADDR */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
};
struct state_slot {
	uint64_t gpa, offset, size; /* offset into the host mapping */
};
struct state_chunk {
	uint64_t offset, len; /* len bytes follow */
};
_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs layout");
_Static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs layout");
_Static_assert(sizeof(struct state_header) == 8 + 16 + 24 + 144 + 312, "header layout");

#define WINDOW_SIZE 0x10000
static const uint64_t window_base[2] = {0xff000000, 0xd0000};
static uint8_t window[2][WINDOW_SIZE];

#define DEBUG_EXIT_PORT 0xf4
#define COM1 0x3f8
#define UART_LSR 5

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	exit(STATUS_FAILED);
}

static void fail(const char *msg)
{
	fprintf(stderr, "floor: %s\n", msg);
	exit(STATUS_FAILED);
}

static void read_full(FILE *f, void *p, size_t n)
{
	if (fread(p, 1, n, f) != n)
		fail("STATE is truncated");
}

static uint8_t *find_window(uint64_t gpa, uint32_t len)
{
	for (int i = 0; i < 2; i++)
		if (gpa >= window_base[i] && len <= WINDOW_SIZE && gpa - window_base[i] <= WINDOW_SIZE - len)
			return &window[i][gpa - window_base[i]];
	return NULL;
}

static int set_cpuid(int kvm, int vcpu)
{
	for (int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
		if (!c)
			fail("out of memory");
		c->nent = n;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0) {
			free(c);
			if (errno == E2BIG)
				continue;
			die("KVM_GET_SUPPORTED_CPUID");
		}
		if (ioctl(vcpu, KVM_SET_CPUID2, c) < 0)
			die("KVM_SET_CPUID2");
		free(c);
		return 0;
	}
	fail("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
	return -1;
}

int main(int argc, char **argv)
{
	int stats = 0;
	if (argc == 3 && strcmp(argv[1], "-s") == 0) {
		stats = 1;
		argv++;
		argc--;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: floor [-s] STATE\n");
		return 2;
	}

	FILE *f = fopen(argv[1], "rb");
	if (!f)
		die(argv[1]);
	struct state_header h;
	read_full(f, &h, sizeof(h));
	if (memcmp(h.magic, STATE_MAGIC, 8) != 0 || h.version != STATE_VERSION)
		fail("STATE: not a version 1 floor state file");
	if (h.nslots == 0 || h.nslots > 8 || h.mem_size == 0)
		fail("STATE: bad slot count or memory size");

	uint8_t *mem = mmap(NULL, h.mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap guest RAM");

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)h.tss_addr) < 0)
		die("KVM_SET_TSS_ADDR");
	uint64_t idmap = h.identity_map_addr;
	if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		die("KVM_SET_IDENTITY_MAP_ADDR");
	for (uint32_t i = 0; i < h.nslots; i++) {
		struct state_slot s;
		read_full(f, &s, sizeof(s));
		if (s.offset > h.mem_size || s.size > h.mem_size - s.offset)
			fail("STATE: memslot outside guest RAM");
		struct kvm_userspace_memory_region r = {
			.slot = i, .guest_phys_addr = s.gpa, .memory_size = s.size,
			.userspace_addr = (uint64_t)(uintptr_t)(mem + s.offset),
		};
		if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			die("KVM_SET_USER_MEMORY_REGION");
	}
	for (uint32_t i = 0; i < h.nchunks; i++) {
		struct state_chunk c;
		read_full(f, &c, sizeof(c));
		if (c.offset > h.mem_size || c.len > h.mem_size - c.offset)
			fail("STATE: RAM contents outside guest RAM");
		read_full(f, mem + c.offset, c.len);
	}
	fclose(f);

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	set_cpuid(kvm, vcpu);
	if (ioctl(vcpu, KVM_SET_SREGS, &h.sregs) < 0)
		die("KVM_SET_SREGS");
	if (ioctl(vcpu, KVM_SET_REGS, &h.regs) < 0)
		die("KVM_SET_REGS");

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t exits = 0;
	int status = -1;
	while (status < 0) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		exits++;
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO: {
			uint32_t len = run->mmio.len;
			if (len > sizeof(run->mmio.data))
				fail("MMIO exit longer than 8 bytes");
			uint8_t *w = find_window(run->mmio.phys_addr, len);
			if (run->mmio.is_write) {
				if (w)
					memcpy(w, run->mmio.data, len);
			} else if (w) {
				memcpy(run->mmio.data, w, len);
			} else {
				memset(run->mmio.data, 0xff, len);
			}
			break;
		}
		case KVM_EXIT_IO: {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;
			uint32_t n = (uint32_t)run->io.size * run->io.count;
			if (run->io.data_offset > (uint64_t)run_size || n > run_size - run->io.data_offset)
				fail("IO exit data outside kvm_run");
			uint16_t port = run->io.port;
			if (run->io.direction == KVM_EXIT_IO_OUT) {
				if (port == DEBUG_EXIT_PORT && n > 0)
					status = data[0];
			} else if (port >= COM1 && port < COM1 + 8) {
				memset(data, 0, n);
				if (port == COM1 + UART_LSR)
					memset(data, 0x60, n);
			} else {
				memset(data, 0xff, n);
			}
			break;
		}
		case KVM_EXIT_HLT:
			status = 0;
			break;
		default:
			fprintf(stderr, "floor: unexpected exit reason %u\n", run->exit_reason);
			return STATUS_FAILED;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (stats) {
		uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
		fprintf(stderr, "floor: exits=%llu loop_ns=%llu\n", (unsigned long long)exits, (unsigned long long)ns);
	}
	return status;
}
