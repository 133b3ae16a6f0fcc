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

// ClassifyMode derives the mode from the special registers and RFLAGS.
func ClassifyMode(s *kvm.Sregs2, rflags uint64) Mode {
	switch {
	case s.CR0&x86.CR0PE == 0:
		return ModeReal
	case s.EFER&x86.EFERLMA != 0:
		la57 := s.CR4&x86.CR4LA57 != 0
		switch {
		case s.CS.L != 0 && la57:
			return ModeLong64LA57
		case s.CS.L != 0:
			return ModeLong64
		case la57:
			return ModeCompatLA57
		}
		return ModeCompat
	case rflags&x86.FlagVM != 0:
		return ModeVM86
	case s.CR0&x86.CR0PG != 0 && s.CR4&x86.CR4PAE != 0:
		return ModePAE
	case s.CR0&x86.CR0PG != 0:
		return ModePaging32
	case s.CS.DB != 0:
		return ModeProtected32
	}
	return ModeProtected16
}

// MarshalText renders the mode by name (JSON and text output).
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }
