package x86

import "fmt"

// Mode is the processor's operating mode (SDM Vol. 3A §2.2, Figure 2-3)
// with the code-segment size folded in where it sets the default operand
// and address size. ModeOf is the one place it is derived.
type Mode uint8

// Operating modes.
const (
	ModeReal        Mode = iota // CR0.PE = 0
	ModeVM86                    // protected mode with RFLAGS.VM = 1
	ModeProtected16             // protected mode, CS.D = 0
	ModeProtected32             // protected mode, CS.D = 1
	ModeCompat16                // IA-32e compatibility mode, CS.D = 0
	ModeCompat32                // IA-32e compatibility mode, CS.D = 1
	ModeLong64                  // IA-32e 64-bit mode: EFER.LMA = 1 and CS.L = 1
	numModes
)

var modeNames = [numModes]string{"real", "vm86", "protected16", "protected32", "compat16", "compat32", "long64"}

func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ModeOf derives the operating mode from CR0.PE, IA32_EFER.LMA, RFLAGS.VM
// and the code segment's L and D bits. In IA-32e mode RFLAGS.VM is ignored
// (virtual-8086 mode does not exist there) and CS.L selects 64-bit mode
// (SDM Vol. 3A §2.2, §5.2.1).
func ModeOf(cr0, efer, rflags uint64, csL, csD bool) Mode {
	switch {
	case cr0&CR0PE == 0:
		return ModeReal
	case efer&EFERLMA != 0:
		switch {
		case csL:
			return ModeLong64
		case csD:
			return ModeCompat32
		}
		return ModeCompat16
	case rflags&FlagVM != 0:
		return ModeVM86
	case csD:
		return ModeProtected32
	}
	return ModeProtected16
}

// Protected reports whether segment protection (descriptor types, limits
// in the protected-mode sense, null selectors) applies: neither real nor
// virtual-8086 mode.
func (m Mode) Protected() bool { return m >= ModeProtected16 && m < numModes }

// IA32e reports whether the mode is an IA-32e sub-mode (EFER.LMA = 1).
func (m Mode) IA32e() bool { return m == ModeCompat16 || m == ModeCompat32 || m == ModeLong64 }

// CodeSize is the default operand and address size of code in the mode, in
// bits: 64 in 64-bit mode, else 32 or 16 by CS.D. Real and virtual-8086
// mode take 16 whatever CS.D holds.
func (m Mode) CodeSize() uint8 {
	switch m {
	case ModeLong64:
		return 64
	case ModeProtected32, ModeCompat32:
		return 32
	}
	return 16
}

// CPL is the current privilege level in the mode, given SS.DPL: 0 in real
// mode, 3 in virtual-8086 mode, else SS.DPL, which is what KVM reports as
// the CPL (CS.DPL can differ from it in a conforming code segment; SDM
// Vol. 3A §5.5).
func (m Mode) CPL(ssDPL uint8) uint8 {
	switch m {
	case ModeReal:
		return 0
	case ModeVM86:
		return 3
	}
	return ssDPL & 3
}

// Paging is the paging mode (SDM Vol. 3A §4.1.1, Table 4-1). PagingOf is
// the one place it is derived.
type Paging uint8

// Paging modes.
const (
	PagingNone   Paging = iota // CR0.PG = 0: linear addresses are physical
	Paging32                   // 32-bit paging
	PagingPAE                  // PAE paging
	Paging4Level               // 4-level paging
	Paging5Level               // 5-level paging
	numPagings
)

var pagingNames = [numPagings]string{"no paging", "32-bit paging", "PAE paging", "4-level paging", "5-level paging"}

func (p Paging) String() string {
	if p < numPagings {
		return pagingNames[p]
	}
	return fmt.Sprintf("paging(%d)", uint8(p))
}

// Levels is the number of paging-structure levels (PAE counts the PDPT);
// 0 without paging.
func (p Paging) Levels() int {
	switch p {
	case Paging32:
		return 2
	case PagingPAE:
		return 3
	case Paging4Level:
		return 4
	case Paging5Level:
		return 5
	}
	return 0
}

// LinearBits is the width of a canonical linear address: 57 with 5-level
// paging, else 48. It matters in 64-bit mode only.
func (p Paging) LinearBits() uint {
	if p == Paging5Level {
		return 57
	}
	return 48
}

// PagingOf derives the paging mode from CR0.PG, CR4.PAE, IA32_EFER.LMA
// and CR4.LA57 in the SDM's order (Table 4-1). It does not check that the
// combination is one a CPU can be in; CheckModeRegs does.
func PagingOf(cr0, cr4, efer uint64) Paging {
	switch {
	case cr0&CR0PG == 0:
		return PagingNone
	case cr4&CR4PAE == 0:
		return Paging32
	case efer&EFERLMA == 0:
		return PagingPAE
	case cr4&CR4LA57 != 0:
		return Paging5Level
	}
	return Paging4Level
}

// CheckModeRegs reports the combinations of CR0, CR4 and IA32_EFER a CPU
// cannot be in, because MOV to CR0/CR4 and WRMSR refuse them: CR0.PG
// without CR0.PE, EFER.LMA without CR0.PG and CR4.PAE, and EFER.LME with
// CR0.PG but not EFER.LMA (SDM Vol. 3A §2.5, §9.8.5).
func CheckModeRegs(cr0, cr4, efer uint64) error {
	pe := cr0&CR0PE != 0
	pg := cr0&CR0PG != 0
	pae := cr4&CR4PAE != 0
	lma := efer&EFERLMA != 0
	lme := efer&EFERLME != 0
	switch {
	case pg && !pe:
		return fmt.Errorf("CR0 %#x has PG without PE", cr0)
	case lma && !(pg && pae):
		return fmt.Errorf("EFER.LMA with CR0 %#x CR4 %#x (needs PG and PAE)", cr0, cr4)
	case lme && pg && !lma:
		return fmt.Errorf("EFER %#x has LME and CR0.PG but not LMA", efer)
	}
	return nil
}
