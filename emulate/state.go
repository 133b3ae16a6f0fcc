package emulate

import (
	"walkvm/emulate/decode"
	"walkvm/mmu"
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
	// PKRU is the protection-key rights register (user pages, CR4.PKE).
	PKRU uint32
	// PDPTEs are the PAE PDPTE registers, when the caller has them
	// (HasPDPTEs): what the walker uses in PAE paging instead of memory.
	PDPTEs    [4]uint64
	HasPDPTEs bool

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

// Mode is the operating mode the registers put the vCPU in.
func (s *State) Mode() x86.Mode {
	cs := &s.Seg[x86.CS]
	return x86.ModeOf(s.CR0, s.EFER, s.RFLAGS, cs.L, cs.DB)
}

// DecodeMode is the code-segment mode the decoder needs.
func (s *State) DecodeMode() decode.Mode { return decodeMode(s.Mode()) }

func decodeMode(m x86.Mode) decode.Mode { return decode.Mode(m.CodeSize()) }

// CPL is the current privilege level (x86.Mode.CPL): 0 in real mode, 3 in
// virtual-8086 mode, else SS.DPL.
func (s *State) CPL() uint8 { return s.Mode().CPL(s.Seg[x86.SS].DPL) }

// WalkerState is the state the page walker translates with, derived from
// these registers: mmu.Context.Reset takes it. Of RFLAGS only AC and VM
// reach the walker, so that a change of the arithmetic flags does not make
// the walker's precomputed context look stale.
func (s *State) WalkerState() mmu.State {
	cs := &s.Seg[x86.CS]
	return mmu.State{
		CR0: s.CR0, CR3: s.CR3, CR4: s.CR4, EFER: s.EFER,
		RFLAGS: s.RFLAGS & (x86.FlagAC | x86.FlagVM), CPL: s.CPL(),
		CSL: cs.L, CSD: cs.DB, PKRU: s.PKRU,
		PDPTEs: s.PDPTEs, HasPDPTEs: s.HasPDPTEs,
	}
}

// LinearBits is the width of a canonical linear address in 64-bit mode.
func (s *State) LinearBits() uint { return x86.PagingOf(s.CR0, s.CR4, s.EFER).LinearBits() }

// stackAddrSize is the address size of implicit stack accesses in bytes:
// 8 in 64-bit mode, else 4 or 2 by SS.B (SDM Vol. 1 §6.2.3).
func (s *State) stackAddrSize(m x86.Mode) uint8 {
	switch {
	case m == x86.ModeLong64:
		return 8
	case m == x86.ModeReal || m == x86.ModeVM86:
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
func gp0(m x86.Mode, reason string) *x86.Exception {
	e := x86.GP(0, reason)
	if m == x86.ModeReal {
		e.HasErrorCode = false
	}
	return e
}

// ss0 is #SS(0), likewise.
func ss0(m x86.Mode, reason string) *x86.Exception {
	e := x86.StackFault(reason)
	if m == x86.ModeReal {
		e.HasErrorCode = false
	}
	return e
}

// segFault is #SS(0) for SS-based accesses and #GP(0) for the others.
func segFault(m x86.Mode, seg x86.SegReg, reason string) *x86.Exception {
	if seg == x86.SS {
		return ss0(m, reason)
	}
	return gp0(m, reason)
}
