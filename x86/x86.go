// Package x86 names the architectural state that walkvm's MMU and emulator
// share: control-register and EFER bits, RFLAGS bits, segment registers,
// exception vectors and the #PF error code, in the SDM's words. It is also
// the one place that classifies that state: the operating mode (ModeOf),
// the paging mode (PagingOf, CheckModeRegs), what an access is for (Access)
// and MAXPHYADDR from CPUID (MaxPhyAddr).
//
// It depends on nothing else in walkvm and holds only pure functions of
// register values, so every other package can use it without pulling in
// KVM.
package x86

import "fmt"

// CR0 bits (SDM Vol. 3A §2.5).
const (
	CR0PE = 1 << 0  // protection enable
	CR0MP = 1 << 1  // monitor coprocessor
	CR0EM = 1 << 2  // x87 emulation
	CR0TS = 1 << 3  // task switched
	CR0ET = 1 << 4  // extension type
	CR0NE = 1 << 5  // numeric error
	CR0WP = 1 << 16 // write protect
	CR0AM = 1 << 18 // alignment mask
	CR0NW = 1 << 29 // not write-through
	CR0CD = 1 << 30 // cache disable
	CR0PG = 1 << 31 // paging
)

// CR4 bits (SDM Vol. 3A §2.5).
const (
	CR4VME        = 1 << 0
	CR4PVI        = 1 << 1
	CR4TSD        = 1 << 2
	CR4DE         = 1 << 3
	CR4PSE        = 1 << 4 // 4-MByte pages in 32-bit paging
	CR4PAE        = 1 << 5
	CR4MCE        = 1 << 6
	CR4PGE        = 1 << 7
	CR4PCE        = 1 << 8
	CR4OSFXSR     = 1 << 9
	CR4OSXMMEXCPT = 1 << 10
	CR4UMIP       = 1 << 11
	CR4LA57       = 1 << 12 // 5-level paging
	CR4VMXE       = 1 << 13
	CR4FSGSBASE   = 1 << 16
	CR4PCIDE      = 1 << 17
	CR4OSXSAVE    = 1 << 18
	CR4SMEP       = 1 << 20
	CR4SMAP       = 1 << 21
	CR4PKE        = 1 << 22
	CR4CET        = 1 << 23
	CR4PKS        = 1 << 24
)

// IA32_EFER bits (SDM Vol. 3A §2.2.1).
const (
	EFERSCE = 1 << 0
	EFERLME = 1 << 8
	EFERLMA = 1 << 10
	EFERNXE = 1 << 11
)

// RFLAGS bits (SDM Vol. 1 §3.4.3).
const (
	FlagCF   = 1 << 0
	FlagPF   = 1 << 2
	FlagAF   = 1 << 4
	FlagZF   = 1 << 6
	FlagSF   = 1 << 7
	FlagTF   = 1 << 8
	FlagIF   = 1 << 9
	FlagDF   = 1 << 10
	FlagOF   = 1 << 11
	FlagIOPL = 3 << 12
	FlagNT   = 1 << 14
	FlagRF   = 1 << 16
	FlagVM   = 1 << 17
	FlagAC   = 1 << 18
	FlagVIF  = 1 << 19
	FlagVIP  = 1 << 20
	FlagID   = 1 << 21

	// FlagsArith are the six status flags an ALU instruction defines.
	FlagsArith = FlagCF | FlagPF | FlagAF | FlagZF | FlagSF | FlagOF
)

// Reg numbers a general-purpose register as ModRM.reg/REX encode it.
type Reg uint8

// General-purpose registers in encoding order.
const (
	RAX Reg = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
	NumGPR = 16
)

var gprNames = [NumGPR]string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

func (r Reg) String() string {
	if int(r) < len(gprNames) {
		return gprNames[r]
	}
	return fmt.Sprintf("reg%d", uint8(r))
}

// SegReg numbers a segment register as the Sreg field of ModRM encodes it.
type SegReg uint8

// Segment registers in encoding order (SDM Vol. 2A §3.1.1.3, "Sreg").
const (
	ES SegReg = iota
	CS
	SS
	DS
	FS
	GS
	NumSeg = 6
)

var segNames = [NumSeg]string{"es", "cs", "ss", "ds", "fs", "gs"}

func (s SegReg) String() string {
	if int(s) < len(segNames) {
		return segNames[s]
	}
	return fmt.Sprintf("seg%d", uint8(s))
}

// Segment is the hidden part of a segment register as KVM reports it.
type Segment struct {
	Base     uint64
	Limit    uint32 // byte granular (KVM expands G)
	Selector uint16
	Type     uint8 // descriptor type field, 4 bits
	S        bool  // code/data (true) or system
	DPL      uint8
	Present  bool
	DB       bool // default operation size / big
	L        bool // 64-bit code segment
	G        bool
	Unusable bool
}

// Exception vectors (SDM Vol. 3A Table 6-1).
const (
	VectorDE = 0
	VectorDB = 1
	VectorBP = 3
	VectorOF = 4
	VectorBR = 5
	VectorUD = 6
	VectorNM = 7
	VectorDF = 8
	VectorTS = 10
	VectorNP = 11
	VectorSS = 12
	VectorGP = 13
	VectorPF = 14
	VectorMF = 16
	VectorAC = 17
	VectorXM = 19
)

var vectorNames = map[uint8]string{
	VectorDE: "#DE", VectorDB: "#DB", VectorBP: "#BP", VectorOF: "#OF", VectorBR: "#BR",
	VectorUD: "#UD", VectorNM: "#NM", VectorDF: "#DF", VectorTS: "#TS", VectorNP: "#NP",
	VectorSS: "#SS", VectorGP: "#GP", VectorPF: "#PF", VectorMF: "#MF", VectorAC: "#AC",
	VectorXM: "#XM",
}

// VectorName is the SDM mnemonic of an exception vector ("#PF").
func VectorName(v uint8) string {
	if n, ok := vectorNames[v]; ok {
		return n
	}
	return fmt.Sprintf("vector %d", v)
}

// #PF error code bits (SDM Vol. 3A §4.7, Figure 4-12).
const (
	PFErrPresent  = 1 << 0 // P: the fault was a protection violation, not a not-present entry
	PFErrWrite    = 1 << 1 // W/R
	PFErrUser     = 1 << 2 // U/S
	PFErrReserved = 1 << 3 // RSVD
	PFErrFetch    = 1 << 4 // I/D
	PFErrPK       = 1 << 5 // protection key
	PFErrSS       = 1 << 6 // shadow stack
)

// Exception is an architectural fault an instruction raises. Functions that
// model the CPU return it as an error; callers tell it apart from walkvm's own
// failures with errors.As and inject it into the guest.
type Exception struct {
	Vector       uint8
	ErrorCode    uint32
	HasErrorCode bool
	// Addr is the faulting linear address; for #PF it is what CR2 receives.
	Addr uint64
	// Reason says why, for logs and traces; it is not architectural.
	Reason string
}

func (e *Exception) Error() string {
	s := VectorName(e.Vector)
	if e.HasErrorCode {
		s += fmt.Sprintf("(%#x)", e.ErrorCode)
	}
	if e.Vector == VectorPF {
		s += fmt.Sprintf(" at %#x", e.Addr)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// PageFault builds a #PF for linear address la.
func PageFault(la uint64, code uint32, reason string) *Exception {
	return &Exception{Vector: VectorPF, ErrorCode: code, HasErrorCode: true, Addr: la, Reason: reason}
}

// GP builds a #GP with error code code (0 for most memory faults).
func GP(code uint32, reason string) *Exception {
	return &Exception{Vector: VectorGP, ErrorCode: code, HasErrorCode: true, Reason: reason}
}

// StackFault builds a #SS(0), the stack-segment flavour of a #GP.
func StackFault(reason string) *Exception {
	return &Exception{Vector: VectorSS, HasErrorCode: true, Reason: reason}
}

// UD builds a #UD.
func UD(reason string) *Exception {
	return &Exception{Vector: VectorUD, Reason: reason}
}

// IsCanonical reports whether la is canonical for a linear-address width of
// bits (48 with 4-level paging, 57 with LA57).
func IsCanonical(la uint64, bits uint) bool {
	shift := 64 - bits
	return uint64(int64(la<<shift)>>shift) == la
}
