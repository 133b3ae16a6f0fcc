// Package decode turns x86 instruction bytes into an Inst: mnemonic, length,
// prefixes, operand and address size, and operands in Intel order with the
// memory operand spelled out (base, index, scale, displacement, segment,
// access size, read/write). It is the first stage of walkvm's MMIO emulator
// (fetch -> decode -> resolve -> execute) and knows nothing about guest
// state: it needs only the bytes and the code-segment Mode.
//
// Decode is table driven (one-byte, 0F, 0F38 and 0F3A maps, x87 escapes and
// VEX), in the spirit of KVM's emulate.c opcode tables, and allocates
// nothing: it fills an *Inst that the caller owns.
//
// Architectural faults are *x86.Exception: #UD for undefined encodings
// (Reason names the opcode), #GP(0) for an instruction longer than 15 bytes.
// Running out of bytes is ErrTruncated, so a fetcher that stopped at a page
// boundary can fetch more and decode again.
//
// README.md lists what is covered, the disagreement classes of the
// differential test against golang.org/x/arch/x86/x86asm, and benchmark
// numbers (about 80-110 ns and 0 allocations per decode).
package decode

import (
	"errors"

	"walkvm/x86"
)

// ErrTruncated reports that the bytes ran out before the instruction ended.
// It is not an architectural fault: the fetcher should supply more bytes (up
// to 15) and call Decode again. If the bytes stop at the end of a
// segment or at an unmapped page, the fault comes from the fetch, not from
// here.
var ErrTruncated = errors.New("decode: instruction truncated")

// MaxLen is the architectural limit on instruction length; a longer one
// raises #GP(0) (SDM Vol. 2A §2.3.11).
const MaxLen = 15

// Mode is the code-segment mode an instruction is decoded in. It sets the
// default operand and address size: CS.L=1 is Mode64 (IA-32e 64-bit mode),
// otherwise CS.D=1 is Mode32 and CS.D=0 (real mode, virtual-8086, 16-bit
// protected mode) is Mode16. The value is the default width in bits.
type Mode uint8

// Code-segment modes.
const (
	Mode16 Mode = 16
	Mode32 Mode = 32
	Mode64 Mode = 64
)

func (m Mode) String() string {
	switch m {
	case Mode16:
		return "16-bit"
	case Mode32:
		return "32-bit"
	case Mode64:
		return "64-bit"
	}
	return "invalid mode"
}

// Map is the opcode map the opcode byte belongs to (SDM Vol. 2D App. A).
type Map uint8

// Opcode maps. For VEX instructions Map is the one VEX.mmmmm selects.
const (
	MapOneByte Map = iota // primary map, including the x87 escapes D8-DF
	Map0F                 // two-byte map, 0F xx
	Map0F38               // three-byte map, 0F 38 xx
	Map0F3A               // three-byte map, 0F 3A xx
)

func (m Map) String() string {
	switch m {
	case MapOneByte:
		return "1-byte"
	case Map0F:
		return "0F"
	case Map0F38:
		return "0F38"
	case Map0F3A:
		return "0F3A"
	}
	return "map?"
}

// RegNone marks an absent base or index register in a Mem.
const RegNone x86.Reg = 0xFF

// ArgKind says what an Arg is.
type ArgKind uint8

// Operand kinds.
const (
	ArgNone ArgKind = iota // no operand in this slot
	ArgReg                 // general-purpose register: Reg, Size, High
	ArgSeg                 // segment register: Seg
	ArgXMM                 // vector register: Reg is 0-15, Size 16 (XMM) or 32 (YMM)
	ArgMMX                 // MMX register: Reg is 0-7
	ArgST                  // x87 stack register ST(i): Reg is i
	ArgCR                  // control register: Reg is the CR number
	ArgDR                  // debug register: Reg is the DR number
	ArgImm                 // immediate: Imm, Size is the encoded width
	ArgMem                 // memory: Mem
	ArgRel                 // relative branch: Imm is the displacement from the next instruction
)

var argKindNames = [...]string{"none", "reg", "seg", "xmm", "mmx", "st", "cr", "dr", "imm", "mem", "rel"}

func (k ArgKind) String() string {
	if int(k) < len(argKindNames) {
		return argKindNames[k]
	}
	return "argkind?"
}

// Arg is one operand. Which fields mean something depends on Kind.
type Arg struct {
	Kind ArgKind
	// Size is the width in bytes: of the register for ArgReg (1, 2, 4, 8),
	// ArgXMM (16, 32) and ArgSeg (2); the encoded width of an ArgImm or
	// ArgRel (1, 2, 4, 8). For ArgMem see Mem.Size.
	Size uint8
	// High is set for AH, CH, DH, BH (ArgReg, Size 1, no REX): Reg is then
	// the register that holds the byte (AH is RAX, High) and the operand is
	// bits 15:8 of it. With any REX prefix, byte registers 4-7 are SPL..DIL
	// and High is false.
	High bool
	// Reg numbers an ArgReg (x86.RAX..x86.R15), ArgXMM, ArgMMX, ArgST,
	// ArgCR or ArgDR.
	Reg x86.Reg
	// Seg is the register of an ArgSeg.
	Seg x86.SegReg
	// Imm is an ArgImm's value, or an ArgRel's displacement, sign-extended
	// to 64 bits from its encoded width (Size). Truncating it to the
	// operand size gives the SDM's sign-extended immediate (83 /0 ib,
	// REX.W C7); an unsigned use (port number, ENTER, RET imm16) masks it
	// to Size bytes.
	Imm int64
	// Mem describes an ArgMem.
	Mem Mem
}

// Use says whether an instruction reads and/or writes a memory operand.
// It is a set: UseRead|UseWrite is a read-modify-write.
type Use uint8

// Memory access bits.
const (
	UseRead  Use = 1 << 0
	UseWrite Use = 1 << 1
)

// Reads reports whether the operand is read.
func (a Use) Reads() bool { return a&UseRead != 0 }

// Writes reports whether the operand is written.
func (a Use) Writes() bool { return a&UseWrite != 0 }

func (a Use) String() string {
	switch a {
	case 0:
		return "none"
	case UseRead:
		return "read"
	case UseWrite:
		return "write"
	case UseRead | UseWrite:
		return "read-write"
	}
	return "use?"
}

// Mem is a memory operand: the effective address is
//
//	Base + Index*Scale + Disp (+ next-instruction RIP if RIPRel)
//
// truncated to AddrSize bytes, and the linear address adds the base of Seg.
type Mem struct {
	// Seg is the effective segment: the override if there is one, else
	// DefaultSeg. In 64-bit mode ES/CS/SS/DS overrides are ignored (SDM
	// Vol. 1 §3.3.7.1), so Seg stays DefaultSeg (or an earlier FS/GS)
	// and SegOverride is false for them; Inst.Prefix records the bytes.
	Seg x86.SegReg
	// DefaultSeg is the segment without an override: SS when the base is
	// rSP or rBP (and for [BP+..] in 16-bit addressing), ES for the
	// destination of a string instruction, DS otherwise.
	DefaultSeg x86.SegReg
	// SegOverride is set when a segment-override prefix chose Seg. The
	// ES:rDI operand of a string instruction cannot be overridden.
	SegOverride bool
	// Base and Index are x86.RAX..x86.R15 or RegNone. For 16- and 32-bit
	// address sizes only the low 16 or 32 bits of the registers are used.
	Base  x86.Reg
	Index x86.Reg
	// Scale is 1, 2, 4 or 8 (1 when there is no index).
	Scale uint8
	// VSIB marks the vector-index form of AVX2 gathers (VEX 0F38 90-93):
	// Index is then an XMM/YMM register number (0-15) whose elements
	// each give one address, and Size is the total number of bytes
	// gathered.
	VSIB bool
	// RIPRel marks RIP-relative addressing (64-bit mode, mod=00 r/m=101):
	// Base and Index are RegNone and Disp is relative to the address of the
	// next instruction, i.e. RIP + Inst.Len. With a 67 prefix the sum is
	// truncated to 32 bits like any other address.
	RIPRel bool
	// Disp is the displacement sign-extended from its encoded width; for
	// moffs (A0-A3) it is the absolute offset, zero-extended from the
	// address size.
	Disp int64
	// AddrSize is the address size in bytes: 2, 4 or 8.
	AddrSize uint8
	// Size is the number of bytes accessed: 1, 2, 4, 8, 10 (m80), 16, 32,
	// or the size of a state image (FXSAVE 512, FNSAVE 94/108, FLDENV
	// 14/28, descriptor-table register 6/10). It is 0 when the operand is
	// an address that is not accessed (LEA, prefetch and cache hints,
	// NOP r/m, CLFLUSH, INVLPG) and for the XSAVE family, whose image size
	// depends on XCR0 (Use is then set).
	Size uint16
	// Use says whether the instruction reads and/or writes this
	// operand. CMPXCHG is a read-write even when the comparison fails
	// (SDM: the destination is written back with its own value). It is 0
	// for an address that is not accessed.
	Use Use
}

// VEX holds the decoded fields of a VEX prefix (SDM Vol. 2A §2.3.5). The
// inverted bits (R, X, B, vvvv) are stored un-inverted.
type VEX struct {
	// Len is the prefix length: 0 (no VEX), 2 (C5) or 3 (C4).
	Len uint8
	// R, X, B extend ModRM.reg, SIB.index and ModRM.rm/SIB.base like REX.
	R, X, B bool
	// W is VEX.W (always false for C5).
	W bool
	// L is VEX.L: 0 for 128-bit, 1 for 256-bit vectors.
	L uint8
	// VVVV is the extra source register number (0-15), un-inverted. An
	// instruction that does not use it needs 1111b encoded (VVVV 0).
	// Outside 64-bit mode its top bit does not select a register.
	VVVV uint8
	// PP is the implied mandatory prefix: 0 none, 1 66, 2 F3, 3 F2.
	PP uint8
	// MMMMM is the implied leading opcode bytes: 1 0F, 2 0F38, 3 0F3A.
	MMMMM uint8
}

// Prefixes records the prefixes an instruction was decoded with.
type Prefixes struct {
	// Count is the number of legacy prefix bytes (F0 F2 F3 2E 36 3E 26 64
	// 65 66 67), counting repeats; REX and VEX are not counted.
	Count uint8
	// Lock is the F0 prefix. Decode rejects it (#UD) unless the
	// instruction allows LOCK and its destination is memory.
	Lock bool
	// Rep is F3 (REP, REPE/REPZ) and Repne is F2 (REPNE/REPNZ). If both
	// bytes appear the last one wins, so at most one is set. For SSE
	// instructions they are the mandatory prefix and carry no REP meaning.
	Rep   bool
	Repne bool
	// OpSize is the 66 prefix, AddrSize the 67 prefix.
	OpSize   bool
	AddrSize bool
	// Seg is the last segment-override prefix byte, valid when HasSeg.
	// In 64-bit mode ES/CS/SS/DS are null prefixes that neither apply
	// nor cancel an earlier FS/GS: Mem.Seg has the effective segment.
	Seg    x86.SegReg
	HasSeg bool
	// REX is the REX byte (0x40-0x4F) if one took effect: 64-bit mode and
	// immediately before the opcode. A REX followed by another prefix is
	// ignored (SDM Vol. 2A §2.2.1) and REX is then 0.
	REX uint8
	// VEX is the VEX prefix, if VEX.Len != 0. VEX excludes 66, F2, F3, F0
	// and REX prefixes (#UD).
	VEX VEX
}

// W reports REX.W or VEX.W.
func (p *Prefixes) W() bool { return p.REX&0x08 != 0 || p.VEX.W }

// R reports REX.R or VEX.R (extends ModRM.reg).
func (p *Prefixes) R() bool { return p.REX&0x04 != 0 || p.VEX.R }

// X reports REX.X or VEX.X (extends SIB.index).
func (p *Prefixes) X() bool { return p.REX&0x02 != 0 || p.VEX.X }

// B reports REX.B or VEX.B (extends ModRM.rm, SIB.base, opcode reg).
func (p *Prefixes) B() bool { return p.REX&0x01 != 0 || p.VEX.B }

// NumArgs is the number of operand slots in an Inst.
const NumArgs = 4

// Inst is a decoded instruction. Decode fills every field, so one Inst can
// be reused for many decodes.
type Inst struct {
	// Op is the mnemonic. Size-variant names collapse into one Op where the
	// SDM uses one opcode (MOVS covers MOVSB/W/D/Q, CBW covers CWDE/CDQE,
	// IRET covers IRETD/IRETQ); OpSize tells them apart.
	Op Op
	// Mode is the mode the instruction was decoded in.
	Mode Mode
	// Len is the instruction length in bytes, prefixes included (1-15).
	Len uint8
	// Map and Opcode are the opcode map and the opcode byte within it
	// (for x87, D8-DF; ModRM then selects the operation).
	Map    Map
	Opcode uint8
	// HasModRM and HasSIB say whether the encoding has a ModRM/SIB byte;
	// ModRM and SIB are then their raw values.
	HasModRM bool
	HasSIB   bool
	ModRM    uint8
	SIB      uint8
	// Prefix records the prefixes.
	Prefix Prefixes
	// OpSize is the operand size in bytes: 1, 2, 4, 8; 10 for an m80 x87
	// operand; 16 or 32 for XMM/YMM operations. For MOVZX/MOVSX/MOVSXD it
	// is the destination size (the source is Args[1]). For x87 memory
	// forms it is the memory operand size.
	OpSize uint8
	// AddrSize is the address size in bytes: 2, 4 or 8.
	AddrSize uint8
	// Args are the operands in Intel order, destination first; unused
	// slots are ArgNone. Implicit operands that the SDM writes in the
	// mnemonic (AL/AX/EAX/RAX of the accumulator forms, CL of shifts, DX of
	// IN/OUT, the string operands DS:rSI and ES:rDI) are listed; rCX of REP
	// and the stack of PUSH/POP are not. Every memory form has its Mem;
	// register and immediate operands are complete for the instructions
	// the emulator executes and best effort for the rest.
	Args [NumArgs]Arg
	// DispOffset and ImmOffset are the offsets of the displacement and the
	// (first) immediate within the instruction bytes, 0 when absent; DispLen
	// and ImmLen are their widths (ENTER's second immediate follows the
	// first).
	DispOffset, DispLen uint8
	ImmOffset, ImmLen   uint8
}

// MemArg returns the index in Args of the first memory operand, or -1.
func (i *Inst) MemArg() int {
	for n := range i.Args {
		if i.Args[n].Kind == ArgMem {
			return n
		}
	}
	return -1
}

// MemUse is the union of the accesses of all memory operands: what the
// MMIO path must do (read, write or read-modify-write). String
// instructions with two memory operands (MOVS) read one and write the other;
// look at each Arg to tell them apart.
func (i *Inst) MemUse() Use {
	var a Use
	for n := range i.Args {
		if i.Args[n].Kind == ArgMem {
			a |= i.Args[n].Mem.Use
		}
	}
	return a
}
