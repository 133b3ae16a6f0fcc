package emulate

import (
	"walkvm/emulate/decode"
	"walkvm/x86"
)

// State is the guest CPU state the emulator reads and changes. The vCPU fills
// it from KVM_GET_REGS / KVM_GET_SREGS (and XCR0 from KVM_GET_XCRS) before a
// Step and writes it back afterwards. Vector state (x87, SSE, AVX) is loaded
// lazily through Vec: most MMIO instructions never touch it.
type State struct {
	GPR    [x86.NumGPR]uint64
	RIP    uint64
	RFLAGS uint64
	Seg    [x86.NumSeg]x86.Segment

	CR0, CR2, CR3, CR4 uint64
	EFER               uint64
	// XCR0 gates AVX (bits 1 and 2 must be set, with CR4.OSXSAVE).
	XCR0 uint64

	// Vec is the x87/SSE/AVX state, loaded on first use. Nil means the
	// caller cannot provide it: instructions that need it fail with a
	// *NotEmulatedError.
	Vec *Vector

	// GDTR, IDTR, LDTR and TR are the descriptor-table registers
	// (KVM_GET_SREGS gdt, idt, ldt, tr): segment loads read descriptors
	// through them, SGDT/SIDT/SLDT/STR store them.
	GDTR, IDTR TableReg
	LDTR, TR   x86.Segment
}

// TableReg is GDTR or IDTR: a linear base and a limit.
type TableReg struct {
	Base  uint64
	Limit uint16
}

// CPUMode is the processor operating mode (SDM Vol. 3A §2.2), with the
// code-segment size folded in where it matters.
type CPUMode uint8

// Operating modes.
const (
	ModeReal     CPUMode = iota // CR0.PE = 0
	ModeVM86                    // protected mode with RFLAGS.VM = 1
	ModeProt16                  // protected mode, CS.D = 0
	ModeProt32                  // protected mode, CS.D = 1
	ModeCompat16                // IA-32e compatibility mode, CS.D = 0
	ModeCompat32                // IA-32e compatibility mode, CS.D = 1
	ModeLong64                  // IA-32e 64-bit mode (EFER.LMA and CS.L)
)

var modeNames = [...]string{"real", "vm86", "prot16", "prot32", "compat16", "compat32", "long64"}

func (m CPUMode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "mode?"
}

// Mode returns the current operating mode.
func (s *State) Mode() CPUMode {
	switch {
	case s.CR0&x86.CR0PE == 0:
		return ModeReal
	case s.EFER&x86.EFERLMA != 0:
		cs := &s.Seg[x86.CS]
		switch {
		case cs.L:
			return ModeLong64
		case cs.DB:
			return ModeCompat32
		}
		return ModeCompat16
	case s.RFLAGS&x86.FlagVM != 0:
		return ModeVM86
	case s.Seg[x86.CS].DB:
		return ModeProt32
	}
	return ModeProt16
}

// DecodeMode is the code-segment mode the decoder needs.
func (m CPUMode) DecodeMode() decode.Mode {
	switch m {
	case ModeLong64:
		return decode.Mode64
	case ModeProt32, ModeCompat32:
		return decode.Mode32
	}
	return decode.Mode16
}

// Protected reports whether segment protection (types, limits in the
// protected-mode sense, null selectors) applies: not real mode, not VM86.
func (m CPUMode) Protected() bool { return m >= ModeProt16 }

// CPL is the current privilege level: 0 in real mode, 3 in virtual-8086
// mode, else SS.DPL, which is what KVM reports as the CPL (CS.DPL can differ
// from it in a conforming code segment; SDM Vol. 3A §5.5).
func (s *State) CPL() uint8 {
	switch s.Mode() {
	case ModeReal:
		return 0
	case ModeVM86:
		return 3
	}
	return s.Seg[x86.SS].DPL & 3
}

// LinearBits is the width of a canonical linear address in 64-bit mode.
func (s *State) LinearBits() uint {
	if s.CR4&x86.CR4LA57 != 0 {
		return 57
	}
	return 48
}

// stackAddrSize is the address size of implicit stack accesses in bytes:
// 8 in 64-bit mode, else 4 or 2 by SS.B (SDM Vol. 1 §6.2.3).
func (s *State) stackAddrSize(m CPUMode) uint8 {
	switch {
	case m == ModeLong64:
		return 8
	case m == ModeReal || m == ModeVM86:
		if s.Seg[x86.SS].DB {
			return 4 // "big" real mode stack; KVM reports it
		}
		return 2
	case s.Seg[x86.SS].DB:
		return 4
	}
	return 2
}

// addrMask is the mask of an address (or register-count) of n bytes.
func addrMask(n uint8) uint64 {
	switch n {
	case 2:
		return 0xFFFF
	case 4:
		return 0xFFFFFFFF
	}
	return ^uint64(0)
}

// sizeMask is the mask of an operand of n bytes (1, 2, 4 or 8).
func sizeMask(n uint8) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(n)) - 1
}

// regRead returns the low n bytes of a GPR (n = 1, 2, 4, 8), or bits 15:8
// when high is set (AH, CH, DH, BH).
func (s *State) regRead(r x86.Reg, n uint8, high bool) uint64 {
	v := s.GPR[r&15]
	if high {
		return (v >> 8) & 0xFF
	}
	return v & sizeMask(n)
}

// regWrite stores v into a GPR with the x86 rules: 8- and 16-bit writes keep
// the other bits, 32-bit writes zero-extend (SDM Vol. 1 §3.4.1.1).
func (s *State) regWrite(r x86.Reg, n uint8, high bool, v uint64) {
	p := &s.GPR[r&15]
	switch {
	case high:
		*p = *p&^0xFF00 | (v&0xFF)<<8
	case n == 1:
		*p = *p&^0xFF | v&0xFF
	case n == 2:
		*p = *p&^0xFFFF | v&0xFFFF
	case n == 4:
		*p = v & 0xFFFFFFFF
	default:
		*p = v
	}
}

// regWriteAddr updates a register used as an address or count of n bytes
// (rSI, rDI, rCX of string instructions, rSP): only the low n bytes change
// for 16-bit, 32-bit writes zero-extend.
func (s *State) regWriteAddr(r x86.Reg, n uint8, v uint64) {
	s.regWrite(r, n, false, v)
}

// gp0 is #GP(0) as the current mode delivers it: real mode pushes no error
// code.
func gp0(m CPUMode, reason string) *x86.Exception {
	e := x86.GP(0, reason)
	if m == ModeReal {
		e.HasErrorCode = false
	}
	return e
}

// ss0 is #SS(0), likewise.
func ss0(m CPUMode, reason string) *x86.Exception {
	e := x86.StackFault(reason)
	if m == ModeReal {
		e.HasErrorCode = false
	}
	return e
}

// segFault is #SS(0) for SS-based accesses and #GP(0) for the others.
func segFault(m CPUMode, seg x86.SegReg, reason string) *x86.Exception {
	if seg == x86.SS {
		return ss0(m, reason)
	}
	return gp0(m, reason)
}
