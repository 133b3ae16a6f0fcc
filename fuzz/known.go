package fuzz

import "walkvm/x86"

// KnownCase is a hand-made program for a KVM behaviour that differs from
// the SDM, found before the fuzzer ran: it is run and written with every
// fuzzing run, so that its replay guest is at hand.
type KnownCase struct {
	Name    string
	SDM     string // what the SDM says the CPU does
	Program *Program
}

// Known returns the hand-made cases.
func Known() []KnownCase {
	regs := func(r x86.Reg, v uint64) (g [x86.NumGPR]uint64) { g[r] = v; return g }
	return []KnownCase{
		{
			Name: "pse36-bit36",
			SDM: "32-bit paging with PSE-36: a 4 MiB PDE's bits 20:13 are physical-address bits 39:32 up to MAXPHYADDR " +
				"(SDM Vol. 3A §4.3, Table 4-4), so this PDE maps linear 0x40000000 to GPA 0x10ff000000; KVM takes only bits 35:32",
			Program: &Program{Mode: ModePaging32, Insn: []byte{0xA1, 0x10, 0x00, 0x00, 0x40}, // mov 0x40000010,%eax
				Target: 0x40000010, TargetKind: "a 4 MiB page whose PDE sets physical-address bit 36",
				Patches: []Patch{{GPA: pd32 + 4*(0x40000000>>22), Val: 0xff000000 | 1<<17 | pteP | pteRW | ptePS, Size: 4}}},
		},
		{
			Name: "flat-limit-wrap",
			SDM: "a 4-byte read at offset 0xffffffff of a flat data segment (limit 0xffffffff) exceeds the limit: #GP(0) " +
				"(SDM Vol. 3A §5.3); KVM reads GPA 0xffffffff",
			Program: &Program{Mode: ModeProt32, Insn: []byte{0x8B, 0x03}, // mov (%ebx),%eax
				Regs: regs(x86.RBX, 0xffffffff), Target: 0xffffffff, TargetKind: "offset 0xffffffff of a flat segment"},
		},
		{
			Name: "mov-cs",
			SDM: "MOV to CS is #UD (SDM Vol. 2B MOV: \"the MOV instruction cannot be used to load the CS register\"), " +
				"raised before any memory access; KVM reads the memory operand first",
			Program: &Program{Mode: ModeProt32, Insn: []byte{0x8E, 0x0B}, // mov (%ebx),%cs
				Regs: regs(x86.RBX, 0xd0010), Target: 0xd0010, TargetKind: "low window"},
		},
		{
			Name: "mov-sreg6",
			SDM: "MOV Sreg with ModRM.reg 6 or 7 names no segment register: #UD (SDM Vol. 2B MOV), raised before any " +
				"memory access; KVM reads the memory operand first",
			Program: &Program{Mode: ModeProt32, Insn: []byte{0x8E, 0x33}, // mov (%ebx),%sreg6
				Regs: regs(x86.RBX, 0xd0020), Target: 0xd0020, TargetKind: "low window"},
		},
	}
}
