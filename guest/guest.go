// Package guest holds walkvm's test guests: GNU assembler sources built into
// flat binaries and multiboot kernels by `go generate ./guest` (build.sh,
// GNU as/ld), committed, and embedded here with a manifest saying how to
// run each one.
//
// The guests share lib.h (their own GDT, IVT/IDT handlers that report
// exceptions, mode switches, page-table builders) and walkvm.h (ports,
// stage ids, verdicts, memory map). They report what happened through the
// report device (devices.Report, ports 0xf0-0xf3) and end with a verdict on
// the debug-exit port: 0 pass, 1..63 a failed check, devices.StatusSkipped
// when the host refused (or the CPU lacks) a mode they need,
// devices.StatusException+vector for an unexpected exception.
package guest

import (
	"embed"
	"fmt"
	"sort"
)

//go:generate sh build.sh

//go:embed *.bin *.elf mbmodule.txt
var images embed.FS

// Host features a guest may need (Guest.Needs, Guest.Optional).
const (
	NeedPaging32 = "paging32" // legacy 32-bit paging (CR0.PG without EFER.LME)
	NeedPAE      = "pae"      // legacy PAE paging
	NeedPSE36    = "pse36"    // CPUID 1 EDX[17]: 4 MiB pages above 4 GiB
	Need1G       = "1g"       // CPUID 0x80000001 EDX[26]: 1 GiB pages
	NeedLA57     = "la57"     // CPUID 7.0 ECX[16]: 5-level paging
	NeedAVX      = "avx"      // CPUID 1 ECX[28] and XSAVE
	// NeedCompletion: walkvm must complete in userspace the MMIO
	// instructions KVM's emulator gives up on (the own MMIO path).
	NeedCompletion = "userspace-completion"
)

// Guest describes one embedded guest. A flat image is loaded at Load and
// entered in Entry mode; a multiboot kernel is loaded as its headers say
// (vmm run tells them apart by their bytes).
type Guest struct {
	Name string
	// File is the image's file in this directory; empty: Name + ".bin".
	File  string
	Load  uint64 // GPA a flat image is linked for
	Entry string // entry mode of a flat image: real, protected or long
	// How the guest is run besides its image: Mem bytes of RAM (0: the
	// runner's default), VCPUs vCPUs (0: one), the command line Append,
	// the file Initrd in this directory as its module, and the debug-exit
	// form DebugExit ("qemu", or "" for walkvm's: see PassStatus).
	Mem       uint64
	VCPUs     int
	Append    string
	Initrd    string
	DebugExit string
	Checks    string // what it checks, for `vmm guests`
	// Needs are host features without which the guest cannot pass: where
	// one is missing the guest reports the stage refused or unsupported
	// and exits with devices.StatusSkipped (NeedCompletion: walkvm stops
	// at an emulation failure instead).
	Needs []string
	// Optional are features the guest uses where the host has them and
	// reports as refused or unsupported otherwise, passing all the same.
	Optional []string
	// Output is the text the guest's console ends with when it passes.
	Output string
}

var manifest = []Guest{
	{
		Name: "hello", Load: 0x1000, Entry: "real",
		Checks: "UART output; MMIO test window at 0xd0000 with six 16-bit addressing forms (disp16, bx+si+disp8, di+disp16, bx+di with 0x66, bp+disp8 via SS, si via DS)",
		Output: "walkvm: hello from real mode\nwalkvm: MMIO test window: 6 addressing forms ok\n",
	},
	{
		Name: "realmode", Load: 0x1000, Entry: "real",
		Checks: "real-mode MMIO (low window) with all 24 16-bit r/m forms (mod 00/01/10, disp16, a 64 KiB wrap), BP forms defaulting to SS, ES/FS/GS/SS/DS overrides, moffs16; a CS override reading and writing the PC hole at 0xa0000 (unassigned: all ones); #UD through the guest's IVT reported and resumed",
		Output: "walkvm: realmode: 30 addressing forms and a CS override ok\n",
	},
	{
		Name: "protmode", Load: 0x1000, Entry: "real",
		Checks: "protected mode without paging on the guest's own GDT: MMIO from 32-bit code (disp32, SIB, a window-based segment, 16-bit addressing via 0x67) and from a 16-bit code segment (a segment based at 0xff000000, 32-bit addressing via 0x67)",
		Output: "walkvm: protmode: 16-bit code ok\n",
	},
	{
		Name: "paging32", Load: 0x1000, Entry: "real",
		Checks:   "legacy 32-bit paging: MMIO through 4 KiB pages (identity and remapped) and 4 MiB pages (CR4.PSE); with PSE-36, a 4 MiB page whose PDE sets address bit 32: KVM_EXIT_MMIO at GPA 0x1_0000_0010, unassigned, reads all ones",
		Needs:    []string{NeedPaging32},
		Optional: []string{NeedPSE36},
		Output:   "walkvm: paging32: pass\n",
	},
	{
		Name: "pae", Load: 0x1000, Entry: "real",
		Checks: "legacy PAE paging: MMIO through 4 KiB pages (identity and remapped) and 2 MiB pages",
		Needs:  []string{NeedPAE},
		Output: "walkvm: pae: 2 MiB pages ok\n",
	},
	{
		Name: "long4", Load: 0x1000, Entry: "real",
		Checks:   "long mode, 4-level paging on the guest's own tables: MMIO through 4 KiB, 2 MiB and (where CPUID has them) 1 GiB pages; RIP-relative operands; code running in the higher half (0xffff800000000000) reaching a higher-half alias of the window RIP-relative and through a register; moffs A0-A3 with 64-bit offsets (byte, word, dword, qword)",
		Optional: []string{Need1G},
		Output:   "walkvm: long4: pass\n",
	},
	{
		Name: "la57", Load: 0x1000, Entry: "real",
		Checks: "5-level paging (CR4.LA57) where CPUID 7.0 ECX[16] has it: MMIO through 4 KiB and 2 MiB pages and through a second PML5 entry (a linear address canonical only with 57 bits); reports unsupported or refused otherwise",
		Needs:  []string{NeedLA57},
		Output: "walkvm: la57: 5-level paging ok, pass\n",
	},
	{
		Name: "compat", Load: 0x1000, Entry: "real",
		Checks: "compatibility mode (32-bit code segment under long mode, entered with lret, left with ljmp): MMIO with disp32, SIB and a window-based ES segment, and from 64-bit code before and after",
		Output: "walkvm: compat: back in 64-bit mode, pass\n",
	},
	{
		Name: "pagefault", Load: 0x1000, Entry: "real",
		Checks: "#PF error codes and CR2 in long mode (CR0.WP=1, EFER.NXE=1): not present (read, write), read-only write at CPL 0, XD fetch, reserved bit 51, user read and write of a supervisor page from CPL 3 code (iretq, TSS.RSP0); each reported and resumed; the test replays them through package mmu",
		Output: "walkvm: pagefault: CPL 3 faults ok, pass\n",
	},
	{
		Name: "mmiocross", Load: 0x1000, Entry: "real",
		Checks: "long mode, 4 KiB pages: a dword straddling two pages mapped to non-adjacent window pages; MMIO instructions whose bytes straddle non-contiguous code pages; rep stos/movs (RAM->MMIO, MMIO->RAM, MMIO->MMIO)/lods on MMIO, and std; rep stosw",
		Output: "walkvm: mmiocross: rep stos/movs/lods on MMIO ok, pass\n",
	},
	{
		Name: "x87mmio", Load: 0x1000, Entry: "real",
		Checks: "x87 with MMIO operands (KVM's emulator cannot, but for fnstcw and fnstsw: walkvm completes them in userspace): flds/fstps/fldl/fstpl with float<->double conversions, fild/fistp at 16, 32 and 64 bits, fldt/fstpt, fbld/fbstp, fnstcw/fldcw with a rounding change, fnstsw, fnstenv/fldenv, fiadd, fmul, fcomp, fnsave/frstor",
		Needs:  []string{NeedCompletion},
		Output: "walkvm: x87mmio: every x87 memory form on MMIO ok, pass\n",
	},
	{
		Name: "avxmmio", Load: 0x1000, Entry: "real",
		Checks: "vmovdqu/vmovdqa at 128 and 256 bits to and from MMIO, aligned and unaligned, then vaddps (256), vpaddd (128; 256 with AVX2) and vpxor (256, AVX2) with MMIO operands, after enabling OSFXSR/OSXSAVE and XCR0 x87|SSE|AVX; reports AVX unsupported (CPUID) or refused (a register-only VEX move faults) and skips",
		Needs:  []string{NeedAVX, NeedCompletion},
		Output: "walkvm: avxmmio: vmovdqu/vmovdqa 128/256 and arithmetic on MMIO ok, pass\n",
	},
	{
		Name: "ssemmio", Load: 0x1000, Entry: "real",
		Checks: "SSE with MMIO operands in long mode: movups/movdqa/movdqu both ways (KVM emulates them), movq/movss/movd loads; addps, mulpd, sqrtps, paddd, pshufd, pxor, cvtsi2sd, cvttss2si, ucomiss, ldmxcsr/stmxcsr with a rounding change, pmulld/pminud (SSE4.1), fxsave/fxrstor (walkvm completes what KVM gives up on); where CPUID lacks SSSE3, SSE4.1, SSE4.2 or XSAVE (walkvm's host vector unit needs them) the arithmetic is reported unsupported and passed over",
		Needs:  []string{NeedCompletion},
		Output: "walkvm: ssemmio: SSE moves, arithmetic, MXCSR and FXSAVE/FXRSTOR on MMIO ok, pass\n",
	},
	{
		Name: "roundtrip", Load: 0x1000, Entry: "real",
		Checks:   "real -> protected -> 32-bit paging -> off -> PAE -> off -> long -> compat -> long -> protected -> 16-bit protected -> real, MMIO in every stage; a stage the host refuses (#GP on the CR0.PG write) is caught, reported and passed over",
		Optional: []string{NeedPaging32, NeedPAE},
		Output:   "walkvm: roundtrip: real -> protected -> paging32 -> PAE -> long -> compat -> long -> protected -> 16-bit -> real, pass\n",
	},
	mbinfo("mbelf32", "mbelf32.elf", "a multiboot ELFCLASS32 EM_386 kernel, checking from 32-bit code: "),
	mbinfo("mbelf64", "mbelf64.elf", "a multiboot ELFCLASS64 kernel that enters long mode and checks from 64-bit code: "),
	mbinfo("mbelf64x32", "mbelf64x32.elf", "the 64-bit multiboot kernel as objcopy -O elf32-i386 makes it (as kvm-unit-tests ships its guests): "),
	mbinfo("mbaout", "mbaout.bin", "a flat multiboot image loaded by its header's address fields (the a.out kludge): "),
	{
		Name: "smp", File: "smp.elf", VCPUs: 4,
		Checks: "a multiboot kernel on 4 vCPUs: vCPU 0 starts the others with INIT and SIPI through its local APIC; each checks its APIC ID (CPUID leaves 1 and 0xB against the local APIC's), then all at once write, read back and increment their own slot of the MMIO test window (mov, incl, cmp on MMIO) and read every other vCPU's slot",
		Output: "walkvm: smp: every vCPU started by INIT/SIPI, MMIO on all at once, each checked the others, pass\n",
	},
	{
		Name: "pcdev", File: "pcdev.elf", Mem: 128 << 20, DebugExit: "qemu",
		Checks: "a multiboot kernel checking the PC devices kvm-unit-tests uses: fw_cfg (signature, ID, RAM size against mem_upper, CPU count against the ACPI MADT), the ACPI RSDP/RSDT/FADT and its PM timer, pc-testdev's scratch register, byte lanes and flush page, ISA IRQs 5 and 11 raised through pc-testdev's ports and delivered through the 8259 PICs to a long-mode IDT; exits through QEMU's form of the debug exit",
		Output: "walkvm: pcdev: fw_cfg, ACPI PM timer, pc-testdev ports and IRQs 5 and 11 through the PICs ok, pass\n",
	},
}

// mbinfoChecks is what the multiboot guests (mbinfo.S) check.
const mbinfoChecks = "the multiboot information walkvm's loader gives (EAX magic, flags, mem_lower/mem_upper against the command line, the command line's first word, one module with mbmodule.txt's bytes, page-aligned, the mmap's RAM and hole, everything outside the image and the areas kvm-unit-tests writes, boot_loader_name, CR0.PE without PG, IF clear)"

// mbinfo is one of the multiboot guests built from mbinfo.S, run as its
// header comment says.
func mbinfo(name, file, what string) Guest {
	return Guest{
		Name: name, File: file, Mem: 128 << 20, Append: "mbtest mem_upper=130048", Initrd: "mbmodule.txt",
		Checks: what + mbinfoChecks,
		Output: "walkvm: multiboot information ok, pass\n",
	}
}

// Default is the guest `vmm run` boots without an image.
const Default = "roundtrip"

// All lists the embedded guests by name.
func All() []Guest {
	g := append([]Guest(nil), manifest...)
	sort.Slice(g, func(i, j int) bool { return g[i].Name < g[j].Name })
	return g
}

// Lookup finds a guest by name.
func Lookup(name string) (Guest, error) {
	for _, g := range manifest {
		if g.Name == name {
			return g, nil
		}
	}
	return Guest{}, fmt.Errorf("no embedded guest named %q", name)
}

// FileName is the image's file in this directory.
func (g Guest) FileName() string {
	if g.File != "" {
		return g.File
	}
	return g.Name + ".bin"
}

// Image returns the guest's image.
func (g Guest) Image() ([]byte, error) {
	b, err := images.ReadFile(g.FileName())
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return b, nil
}

// InitrdData returns the guest's module (nil without one).
func (g Guest) InitrdData() ([]byte, error) {
	if g.Initrd == "" {
		return nil, nil
	}
	b, err := images.ReadFile(g.Initrd)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return b, nil
}

// PassStatus is the exit status of a pass: the guest writes 0 to the
// debug-exit port, which is status 0 in walkvm's form and 1 in QEMU's
// ((v<<1)|1). The skip status is StatusSkipped in both (QEMU's form of
// 38 is 77).
func (g Guest) PassStatus() int {
	if g.DebugExit == "qemu" {
		return 1
	}
	return 0
}

// Stage is a stage (mode or feature) id a guest reports (walkvm.h STAGE_*).
type Stage uint32

// Stages.
const (
	StageReal       Stage = 1
	StageProt32     Stage = 2
	StageProt16     Stage = 3
	StagePaging32   Stage = 4
	StagePSE        Stage = 5
	StagePSE36      Stage = 6
	StagePAE        Stage = 7
	StageLong       Stage = 8
	StageCompat     Stage = 9
	StageLA57       Stage = 10
	Stage1G         Stage = 11
	StageX87        Stage = 12
	StageAVX        Stage = 13
	StageUser       Stage = 14
	StageHigherHalf Stage = 15
	StageSSE        Stage = 16
)

var stageNames = [...]string{
	StageReal: "real mode", StageProt32: "32-bit protected mode", StageProt16: "16-bit protected mode",
	StagePaging32: "legacy 32-bit paging", StagePSE: "4 MiB pages (CR4.PSE)", StagePSE36: "PSE-36",
	StagePAE: "legacy PAE paging", StageLong: "long mode (4-level paging)", StageCompat: "compatibility mode",
	StageLA57: "5-level paging (CR4.LA57)", Stage1G: "1 GiB pages", StageX87: "x87", StageAVX: "AVX",
	StageUser: "CPL 3", StageHigherHalf: "the higher half", StageSSE: "SSE",
}

func (s Stage) String() string {
	if int(s) < len(stageNames) && stageNames[s] != "" {
		return stageNames[s]
	}
	return fmt.Sprintf("stage %d", uint32(s))
}

// Value tags of report value events (walkvm.h TAG_*).
const (
	TagPSE36Read = 1
)
