// Package selfcheck is the nested runner's own smoke test: it proves that
// the KVM it runs on can execute a guest with legacy 32-bit paging (CR4.PSE,
// a 4 MiB PDE, CR0.PG without EFER.LME) and deliver an MMIO exit for a
// linear address that the guest's page directory translates.
//
// On this project's hosts (PVM-backed /dev/kvm) legacy paging is refused,
// so the test skips and says what it saw. Under tests/nested/run
// (WALKVM_NESTED=1) it must pass.
package selfcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"walkvm/internal/kvmtest"
)

// Guest-physical layout. One memslot covers [0, memSize).
const (
	memSize    = 2 << 20
	codeBase   = 0x1000 // guest code, entered in 32-bit protected mode
	pdBase     = 0x3000 // page directory (CR3)
	gdtBase    = 0x4000
	idtBase    = 0x4100
	stackTop   = 0x8000
	gpHandler  = 0x1002 // label gp_handler below
	reportPort = 0xe9   // the #GP handler writes its vector here
	cr0WriteIP = 0x1025 // mov %eax,%cr0 that turns paging on
	mmioReadIP = 0x1028 // mov 0xff000010,%eax
	haltRIP    = 0x1030 // after the final hlt

	mmioLinear = 0xff000010 // read by the guest with paging on
	mmioGPA    = 0x80000010 // where PDE[0x3fc] sends it: outside every memslot
	mmioValue  = 0x5a5aa5a5 // returned to the guest, which copies it to EBX

	cr0PE   = 1 << 0
	cr0ET   = 1 << 4
	cr0PG   = 1 << 31
	cr4PSE  = 1 << 4
	eferLME = 1 << 8
	eferLMA = 1 << 10

	pdeP  = 1 << 0
	pdeRW = 1 << 1
	pdePS = 1 << 7 // 4 MiB page (needs CR4.PSE), SDM Vol. 3A 4.3
)

// guest is the flat image loaded at codeBase: the instructions in the
// comments (a .code32 file with labels _start, gp_handler, main) built with
//
//	gcc -m32 -c guest.S && ld -m elf_i386 -Ttext=0x1000 --oformat binary
var guest = []byte{
	// _start:
	// 1000  jmp main
	0xeb, 0x0a,
	// gp_handler: (IDT[13]; stack holds error code, EIP, CS, EFLAGS)
	// 1002  pop %ebx (error code)
	0x5b,
	// 1003  pop %ecx (faulting EIP)
	0x59,
	// 1004  mov $13,%eax
	0xb8, 0x0d, 0x00, 0x00, 0x00,
	// 1009  out %al,$0xe9
	0xe6, 0xe9,
	// 100b  hlt
	0xf4,
	// main:
	// 100c  mov %cr4,%eax
	0x0f, 0x20, 0xe0,
	// 100f  or $0x10,%eax (CR4.PSE)
	0x83, 0xc8, 0x10,
	// 1012  mov %eax,%cr4
	0x0f, 0x22, 0xe0,
	// 1015  mov $0x3000,%eax
	0xb8, 0x00, 0x30, 0x00, 0x00,
	// 101a  mov %eax,%cr3
	0x0f, 0x22, 0xd8,
	// 101d  mov %cr0,%eax
	0x0f, 0x20, 0xc0,
	// 1020  or $0x80000000,%eax
	0x0d, 0x00, 0x00, 0x00, 0x80,
	// 1025  mov %eax,%cr0 (CR0.PG, EFER.LME=0)
	0x0f, 0x22, 0xc0,
	// 1028  mov 0xff000010,%eax (MMIO read)
	0xa1, 0x10, 0x00, 0x00, 0xff,
	// 102d  mov %eax,%ebx
	0x89, 0xc3,
	// 102f  hlt
	0xf4,
}

// outcome is what one run of the guest showed.
type outcome struct {
	mmio     bool   // a 4-byte read exit at mmioGPA was seen
	refused  string // non-empty: the guest could not get to its MMIO read
	atPaging bool   // and it stopped at (or triple-faulted on) enabling paging
	regs     *kvm.Regs
	sregs    *kvm.Sregs
	mmioRIP  uint64
	exitSeen []string
}

func TestLegacy32BitPagingMMIO(t *testing.T) {
	nested := os.Getenv("WALKVM_NESTED") == "1"
	if !nested {
		kvmtest.Require(t)
	}
	out, err := runGuest(t)
	if err != nil {
		if !nested && errors.Is(err, os.ErrNotExist) {
			t.Skipf("no /dev/kvm: %v", err)
		}
		t.Fatal(err)
	}
	t.Logf("exits: %v", out.exitSeen)
	if out.refused != "" {
		if nested || !out.atPaging {
			t.Fatalf("guest did not reach its MMIO read: %s", out.refused)
		}
		t.Skipf("host KVM refuses legacy 32-bit paging: CR0.PG without EFER.LME -> %s", out.refused)
	}
	if !out.mmio {
		t.Fatalf("guest halted without the MMIO read at GPA %#x", mmioGPA)
	}
	if out.mmioRIP != mmioReadIP {
		t.Errorf("MMIO read exit RIP = %#x, want %#x (the mov)", out.mmioRIP, mmioReadIP)
	}
	if out.regs.RIP != haltRIP {
		t.Errorf("RIP at HLT = %#x, want %#x", out.regs.RIP, haltRIP)
	}
	if got := uint32(out.regs.RBX); got != mmioValue {
		t.Errorf("EBX = %#x, want the MMIO data %#x", got, mmioValue)
	}
	s := out.sregs
	if s.CR0&cr0PG == 0 || s.CR4&cr4PSE == 0 || s.EFER&(eferLME|eferLMA) != 0 || s.CR3 != pdBase {
		t.Errorf("not legacy 32-bit paging at HLT: CR0=%#x CR3=%#x CR4=%#x EFER=%#x",
			s.CR0, s.CR3, s.CR4, s.EFER)
	}
}

func runGuest(t *testing.T) (*outcome, error) {
	t.Helper()
	kvmFile, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { kvmFile.Close() })
	kvmFd := kvmFile.Fd()

	vmFd, err := kvm.CreateVM(kvmFd)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	t.Cleanup(func() { unix.Close(int(vmFd)) })

	mem, err := unix.Mmap(-1, 0, memSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap guest memory: %w", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	if err := kvm.SetUserMemoryRegion(vmFd, &kvm.UserspaceMemoryRegion{
		GuestPhysAddr: 0, MemorySize: memSize, UserspaceAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))),
	}); err != nil {
		return nil, fmt.Errorf("KVM_SET_USER_MEMORY_REGION: %w", err)
	}
	layout(mem)

	vcpuFd, err := kvm.CreateVCPU(vmFd, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU: %w", err)
	}
	t.Cleanup(func() { unix.Close(int(vcpuFd)) })
	runSize, err := kvm.GetVCPUMMmapSize(kvmFd)
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	runMem, err := unix.Mmap(int(vcpuFd), 0, int(runSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap kvm_run: %w", err)
	}
	t.Cleanup(func() { unix.Munmap(runMem) })
	run := (*kvm.RunData)(unsafe.Pointer(&runMem[0]))

	cpuid := &kvm.CPUID{Nent: 100, Entries: make([]kvm.CPUIDEntry2, 100)}
	if err := kvm.GetSupportedCPUID(kvmFd, cpuid); err != nil {
		return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
	}
	if err := kvm.SetCPUID2(vcpuFd, cpuid); err != nil {
		return nil, fmt.Errorf("KVM_SET_CPUID2: %w", err)
	}

	sregs, err := kvm.GetSregs(vcpuFd)
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	code := kvm.Segment{Limit: 0xffffffff, Selector: 0x08, Typ: 0xb, Present: 1, DB: 1, S: 1, G: 1}
	data := kvm.Segment{Limit: 0xffffffff, Selector: 0x10, Typ: 0x3, Present: 1, DB: 1, S: 1, G: 1}
	sregs.CS = code
	sregs.DS, sregs.ES, sregs.FS, sregs.GS, sregs.SS = data, data, data, data, data
	sregs.GDT = kvm.Descriptor{Base: gdtBase, Limit: 3*8 - 1}
	sregs.IDT = kvm.Descriptor{Base: idtBase, Limit: 32*8 - 1}
	sregs.CR0 = cr0PE | cr0ET
	sregs.CR3, sregs.CR4, sregs.EFER = 0, 0, 0
	if err := kvm.SetSregs(vcpuFd, sregs); err != nil {
		return nil, fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	if err := kvm.SetRegs(vcpuFd, &kvm.Regs{RIP: codeBase, RSP: stackTop, RFLAGS: 2}); err != nil {
		return nil, fmt.Errorf("KVM_SET_REGS: %w", err)
	}

	out := &outcome{}
	for i := 0; i < 16; i++ {
		if err := kvm.Run(vcpuFd); err != nil {
			return nil, fmt.Errorf("KVM_RUN: %w", err)
		}
		regs, err := kvm.GetRegs(vcpuFd)
		if err != nil {
			return nil, fmt.Errorf("KVM_GET_REGS: %w", err)
		}
		reason := kvm.ExitType(run.ExitReason)
		out.exitSeen = append(out.exitSeen, fmt.Sprintf("%v@%#x", reason, regs.RIP))
		switch reason {
		case kvm.EXITMMIO:
			// kvm_run.mmio: phys_addr u64, data [8]u8, len u32, is_write u8.
			gpa, n, write := run.Data[0], uint32(run.Data[2]), uint8(run.Data[2]>>32)
			if gpa != mmioGPA || n != 4 || write != 0 {
				return nil, fmt.Errorf("unexpected MMIO exit: gpa %#x len %d write %d at RIP %#x", gpa, n, write, regs.RIP)
			}
			out.mmio, out.mmioRIP = true, regs.RIP
			run.Data[1] = mmioValue
		case kvm.EXITIO:
			dir, size, port, _, _ := run.IO()
			if port != reportPort || dir != kvm.EXITIOOUT || size != 1 {
				return nil, fmt.Errorf("unexpected port I/O exit: port %#x dir %d size %d", port, dir, size)
			}
			// The #GP handler: EAX vector, EBX error code, ECX faulting EIP.
			eip := uint32(regs.RCX)
			out.refused = fmt.Sprintf("#GP(%#x) at EIP %#x (vector %d via IDT)",
				uint32(regs.RBX), eip, uint8(regs.RAX))
			if eip == cr0WriteIP {
				out.refused += " on mov %eax,%cr0"
				out.atPaging = true
			}
			return out, nil
		case kvm.EXITSHUTDOWN:
			out.refused = fmt.Sprintf("KVM_EXIT_SHUTDOWN (triple fault) at RIP %#x", regs.RIP)
			out.atPaging = !out.mmio
			return out, nil
		case kvm.EXITINTERNALERROR:
			out.refused = fmt.Sprintf("KVM_EXIT_INTERNAL_ERROR suberror %d at RIP %#x", uint32(run.Data[0]), regs.RIP)
			return out, nil
		case kvm.EXITHLT:
			out.regs = regs
			if out.sregs, err = kvm.GetSregs(vcpuFd); err != nil {
				return nil, fmt.Errorf("KVM_GET_SREGS: %w", err)
			}
			return out, nil
		case kvm.EXITINTR:
			// A signal interrupted KVM_RUN: run again.
		default:
			return nil, fmt.Errorf("unexpected exit %v at RIP %#x", reason, regs.RIP)
		}
	}
	return nil, fmt.Errorf("guest did not halt; exits: %v", out.exitSeen)
}

// layout writes the guest image, the page directory, the GDT and the IDT.
func layout(mem []byte) {
	copy(mem[codeBase:], guest)
	le := binary.LittleEndian
	// PDE[0]: identity-map [0, 4 MiB) for code, tables and stack.
	le.PutUint32(mem[pdBase+0*4:], 0x00000000|pdePS|pdeRW|pdeP)
	// PDE[0x3fc]: linear 0xff000000 -> physical 0x80000000, not identity,
	// so the exit GPA proves the guest's own translation was used.
	le.PutUint32(mem[pdBase+0x3fc*4:], 0x80000000|pdePS|pdeRW|pdeP)
	// GDT: null, flat 32-bit code (0x08), flat data (0x10).
	le.PutUint64(mem[gdtBase+0x08:], 0x00cf9a000000ffff)
	le.PutUint64(mem[gdtBase+0x10:], 0x00cf92000000ffff)
	// IDT[13] (#GP): 32-bit interrupt gate, selector 0x08, DPL 0, present.
	gate := uint64(gpHandler&0xffff) | 0x08<<16 | 0x8e<<40 | uint64(gpHandler>>16)<<48
	le.PutUint64(mem[idtBase+13*8:], gate)
}
