// Package trace is what walkvm reports about a run: the statistics of each
// vCPU (exits, the own MMIO path's verdicts, walks, unassigned accesses, the
// modes in order) and the per-exit trace that `vmm run -trace` writes.
package trace

import (
	"fmt"

	"walkvm/kvm"
	"walkvm/x86"
)

// Mode is the vCPU's operating and paging mode as walkvm reports it.
type Mode uint8

// The modes an exit is classified into.
const (
	ModeReal        Mode = iota // CR0.PE = 0
	ModeVM86                    // virtual-8086 mode
	ModeProtected16             // protected mode without paging, CS.D = 0
	ModeProtected32             // protected mode without paging, CS.D = 1
	ModePaging32                // 32-bit paging
	ModePAE                     // PAE paging
	ModeLong64                  // 64-bit mode, 4-level paging
	ModeLong64LA57              // 64-bit mode, 5-level paging
	ModeCompat                  // compatibility mode, 4-level paging
	ModeCompatLA57              // compatibility mode, 5-level paging
	numModes
)

var modeNames = [numModes]string{"real", "vm86", "protected16", "protected32", "paging32", "pae",
	"long64", "long64-la57", "compat", "compat-la57"}

func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ClassifyMode labels the operating mode (x86.ModeOf) and paging mode
// (x86.PagingOf) of the special registers and RFLAGS for reports: paging
// is named in legacy protected mode, 5-level paging in IA-32e mode.
func ClassifyMode(s *kvm.Sregs2, rflags uint64) Mode {
	op := x86.ModeOf(s.CR0, s.EFER, rflags, s.CS.L != 0, s.CS.DB != 0)
	paging := x86.PagingOf(s.CR0, s.CR4, s.EFER)
	switch op {
	case x86.ModeReal:
		return ModeReal
	case x86.ModeVM86:
		return ModeVM86
	case x86.ModeLong64:
		if paging == x86.Paging5Level {
			return ModeLong64LA57
		}
		return ModeLong64
	case x86.ModeCompat16, x86.ModeCompat32:
		if paging == x86.Paging5Level {
			return ModeCompatLA57
		}
		return ModeCompat
	}
	switch {
	case paging == x86.PagingPAE:
		return ModePAE
	case paging == x86.Paging32:
		return ModePaging32
	case op == x86.ModeProtected32:
		return ModeProtected32
	}
	return ModeProtected16
}

// MarshalText renders the mode by name (JSON and text output).
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }
