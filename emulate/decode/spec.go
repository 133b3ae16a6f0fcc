package decode

// This file defines the vocabulary of the opcode tables: operand
// specifications in the SDM's notation (Vol. 2D App. A.2: Eb, Gv, Iz, ...),
// table flags in the spirit of KVM emulate.c (DstMem|SrcReg|ModRM|Lock), and
// the constructors the tables are written with.

// spec describes one operand of a table entry: kind | size<<8 | reg<<16.
type spec uint32

// Operand kinds.
const (
	kNone = iota
	kE    // ModRM r/m: GPR or memory
	kM    // ModRM r/m: memory only (mod=11 is #UD)
	kR    // ModRM r/m: GPR only (mod!=11 is #UD)
	kRc   // ModRM r/m: GPR, mod ignored (MOV to/from CR/DR)
	kG    // ModRM reg: GPR
	kS    // ModRM reg: segment register
	kC    // ModRM reg: control register
	kD    // ModRM reg: debug register
	kV    // ModRM reg: XMM/YMM
	kW    // ModRM r/m: XMM/YMM or memory
	kU    // ModRM r/m: XMM/YMM only
	kP    // ModRM reg: MMX
	kQ    // ModRM r/m: MMX or memory
	kN    // ModRM r/m: MMX only
	kH    // VEX.vvvv: XMM/YMM
	kBv   // VEX.vvvv: GPR
	kL    // imm8[7:4]: XMM/YMM (VEX four-operand forms)
	kI    // immediate
	kJ    // relative branch displacement
	kA    // far pointer immediate (ptr16:16, ptr16:32)
	kO    // moffs: memory at an absolute offset
	kZ    // GPR in opcode bits 2:0 (+REX.B)
	kFix  // fixed GPR (reg field), e.g. AL, rAX, CL, DX
	kSeg  // fixed segment register (reg field)
	kX    // string source DS:rSI (overridable)
	kY    // string destination ES:rDI
	kST0  // x87 ST(0)
	kSTi  // x87 ST(i), i = ModRM.rm
	kOne  // the constant 1 (D0-D3 shifts)
	kMV   // ModRM r/m with VSIB (memory only; index is a vector)
	kXlat // XLAT's DS:[rBX+AL]
	kXdi  // MASKMOVQ's DS:rDI (overridable)
	kEr   // ModRM r/m: a 32/64-bit GPR (y) or memory of the spec size (PEXTRB r32/m8)
	kYr   // ES:[ModRM.reg], the register an address of the address size (MOVDIR64B)
)

// Size codes: fixed byte counts, or rules resolved per instruction.
const (
	zNone = iota
	z1    // byte
	z2    // word
	z4    // doubleword
	z8    // quadword
	z10   // m80 (x87 extended, packed BCD)
	z16   // m128
	z32   // m256
	z512  // FXSAVE image
	zV    // operand size: 2, 4, 8
	zZ    // min(operand size, 4): Iz, Ez of MOVSXD, rel16/32
	zY    // 4, or 8 with REX.W in 64-bit mode (SDM "y")
	zX    // vector: 16, or 32 with VEX.L
	zHX   // half vector: 8, or 16 with VEX.L
	zQX   // quarter vector: 4, or 8 with VEX.L
	zEX   // eighth vector: 2, or 4 with VEX.L
	zP    // far pointer: 2 + operand size (m16:16, m16:32, m16:64)
	zPI   // far pointer immediate: 2 + min(operand size, 4)
	zS    // pseudo-descriptor: 6, or 10 in 64-bit mode
	zA    // BOUND pair: 2 * operand size
	zEnv  // x87 environment: 14 or 28
	zSave // x87 state: 94 or 108
	zVar  // accessed, size not fixed by the encoding (XSAVE family)
	zAddr // address size (moffs offset, JrCXZ counter)
	zMd   // 4, or 8 in 64-bit mode (MOV CR/DR, VMREAD/VMWRITE)
	zDup  // VMOVDDUP: 8, or 32 with VEX.L
	zWs   // scalar by VEX.W: 4, or 8 with W1 (FMA scalars)
	zVSIB // bytes gathered by a VSIB gather
	z64B  // 64 bytes (MOVDIR64B)
)

func (s spec) kind() int       { return int(s & 0xFF) }
func (s spec) size() int       { return int(s >> 8 & 0xFF) }
func (s spec) reg() int        { return int(s >> 16 & 0xFF) }
func (s spec) usesModRM() bool { return modrmKinds&(1<<s.kind()) != 0 }
func (s spec) isRM() bool      { return rmKinds&(1<<s.kind()) != 0 }

const modrmKinds = 1<<kYr | 1<<kEr | 1<<kE | 1<<kM | 1<<kR | 1<<kRc | 1<<kG | 1<<kS | 1<<kC | 1<<kD | 1<<kV | 1<<kW | 1<<kU | 1<<kP | 1<<kQ | 1<<kN | 1<<kSTi | 1<<kMV
const rmKinds = 1<<kE | 1<<kM | 1<<kW | 1<<kQ | 1<<kMV | 1<<kEr

// Operand specifications in SDM notation, prefixed with o.
const (
	oEb    = spec(kE | z1<<8)
	oEw    = spec(kE | z2<<8)
	oEd    = spec(kE | z4<<8)
	oEq    = spec(kE | z8<<8)
	oEv    = spec(kE | zV<<8)
	oEy    = spec(kE | zY<<8)
	oEz    = spec(kE | zZ<<8)
	oEbR   = spec(kEr | z1<<8)
	oEwR   = spec(kEr | z2<<8)
	oGb    = spec(kG | z1<<8)
	oGw    = spec(kG | z2<<8)
	oGd    = spec(kG | z4<<8)
	oGv    = spec(kG | zV<<8)
	oGy    = spec(kG | zY<<8)
	oGz    = spec(kG | zZ<<8)
	oM0    = spec(kM | zNone<<8) // address only (LEA, hints)
	oMb    = spec(kM | z1<<8)
	oMw    = spec(kM | z2<<8)
	oMd    = spec(kM | z4<<8)
	oMq    = spec(kM | z8<<8)
	oMv    = spec(kM | zV<<8)
	oMy    = spec(kM | zY<<8)
	oMt    = spec(kM | z10<<8)
	oMdq   = spec(kM | z16<<8)
	oMx    = spec(kM | zX<<8)
	oMp    = spec(kM | zP<<8)
	oMs    = spec(kM | zS<<8)
	oMa    = spec(kM | zA<<8)
	oMe    = spec(kM | zEnv<<8)
	oMst   = spec(kM | zSave<<8)
	oMfx   = spec(kM | z512<<8)
	oMvr   = spec(kM | zVar<<8)
	oRv    = spec(kR | zV<<8)
	oRy    = spec(kR | zY<<8)
	oRd    = spec(kR | z4<<8)
	oRq    = spec(kR | z8<<8)
	oCy    = spec(kC | zMd<<8)
	oDy    = spec(kD | zMd<<8)
	oRCy   = spec(kRc | zMd<<8)
	oEMd   = spec(kE | zMd<<8)
	oGMd   = spec(kG | zMd<<8)
	oRMd   = spec(kR | zMd<<8)
	oRa    = spec(kR | zAddr<<8)
	oXlat  = spec(kXlat | z1<<8)
	oXdiq  = spec(kXdi | z8<<8)
	oXdidq = spec(kXdi | z16<<8)
	oSw    = spec(kS | z2<<8)
	oIb    = spec(kI | z1<<8)
	oIw    = spec(kI | z2<<8)
	oIz    = spec(kI | zZ<<8)
	oIv    = spec(kI | zV<<8)
	oI1    = spec(kOne | z1<<8)
	oJb    = spec(kJ | z1<<8)
	oJz    = spec(kJ | zZ<<8)
	oAp    = spec(kA | zPI<<8)
	oOb    = spec(kO | z1<<8)
	oOv    = spec(kO | zV<<8)
	oZb    = spec(kZ | z1<<8)
	oZv    = spec(kZ | zV<<8)
	oZy    = spec(kZ | zY<<8)
	oAL    = spec(kFix | z1<<8 | 0<<16)
	oCL    = spec(kFix | z1<<8 | 1<<16)
	oAX    = spec(kFix | z2<<8 | 0<<16)
	oDX    = spec(kFix | z2<<8 | 2<<16)
	oRAX   = spec(kFix | zV<<8 | 0<<16) // rAX at the operand size
	oEAX   = spec(kFix | zZ<<8 | 0<<16) // AX or EAX (IN/OUT)
	oCXa   = spec(kFix | zAddr<<8 | 1<<16)
	oXb    = spec(kX | z1<<8)
	oXv    = spec(kX | zV<<8)
	oXz    = spec(kX | zZ<<8)
	oYb    = spec(kY | z1<<8)
	oYv    = spec(kY | zV<<8)
	oYz    = spec(kY | zZ<<8)
	oST0   = spec(kST0 | z10<<8)
	oSTi   = spec(kSTi | z10<<8)
	oES    = spec(kSeg | z2<<8 | 0<<16)
	oCS    = spec(kSeg | z2<<8 | 1<<16)
	oSS    = spec(kSeg | z2<<8 | 2<<16)
	oDS    = spec(kSeg | z2<<8 | 3<<16)
	oFS    = spec(kSeg | z2<<8 | 4<<16)
	oGS    = spec(kSeg | z2<<8 | 5<<16)

	oVx   = spec(kV | zX<<8)
	oVdq  = spec(kV | z16<<8)
	oVqq  = spec(kV | z32<<8)
	oWx   = spec(kW | zX<<8)
	oWdq  = spec(kW | z16<<8)
	oWqq  = spec(kW | z32<<8)
	oWq   = spec(kW | z8<<8)
	oWd   = spec(kW | z4<<8)
	oWw   = spec(kW | z2<<8)
	oWb   = spec(kW | z1<<8)
	oWhx  = spec(kW | zHX<<8)
	oWqx  = spec(kW | zQX<<8)
	oWex  = spec(kW | zEX<<8)
	oUx   = spec(kU | zX<<8)
	oUdq  = spec(kU | z16<<8)
	oHx   = spec(kH | zX<<8)
	oHdq  = spec(kH | z16<<8)
	oLx   = spec(kL | zX<<8)
	oBy   = spec(kBv | zY<<8)
	oPq   = spec(kP | z8<<8)
	oQq   = spec(kQ | z8<<8)
	oQd   = spec(kQ | z4<<8)
	oNq   = spec(kN | z8<<8)
	oMVx  = spec(kMV | zVSIB<<8)
	oWdup = spec(kW | zDup<<8)
	oWs   = spec(kW | zWs<<8)
	oHqq  = spec(kH | z32<<8)
	oYr   = spec(kYr | z64B<<8)
	oM64B = spec(kM | z64B<<8)
)

// Entry kinds: a leaf names an instruction; the others dispatch on a part
// of the encoding to one of sub.
const (
	nLeaf = iota
	nReg  // ModRM.reg selects sub[0..7]
	nMod  // sub[0] for memory, sub[1] for mod=11
	nRM   // ModRM.rm selects sub[0..7]
	nPfx  // mandatory prefix: sub[0] none, sub[1] 66, sub[2] F3, sub[3] F2
	nMode // sub[0] outside 64-bit mode, sub[1] in 64-bit mode
	nW    // sub[0] W=0, sub[1] W=1 (REX.W / VEX.W)
	nL    // sub[0] VEX.L=0, sub[1] VEX.L=1
)

// Entry flags.
const (
	fLock   = 1 << iota // LOCK allowed (with a memory destination)
	fMR                 // the memory operand is only read
	fMW                 // the memory operand is only written
	fMN                 // the memory operand is an address, not accessed
	fD64                // default 64-bit operand size in 64-bit mode (66 gives 16)
	fF64                // 64-bit operand size in 64-bit mode, 66 ignored
	fI64                // invalid in 64-bit mode
	fO64                // valid only in 64-bit mode
	fVEX                // needs a VEX prefix
	fNoVVVV             // VEX.vvvv must be 1111b
	fL0                 // VEX.L must be 0
	fModRM              // derived: an operand uses ModRM
	fModIgn             // derived: ModRM.mod is ignored (MOV CR/DR)
	fVSIB               // derived: a VSIB memory operand
	fW0                 // VEX.W must be 0
	fW1                 // VEX.W must be 1
	fL1                 // VEX.L must be 1
)

// entry is one row of an opcode table.
type entry struct {
	op    Op
	opW   Op // the mnemonic when REX.W/VEX.W is set, if different
	kind  uint8
	osize uint8 // size code of Inst.OpSize; zNone means zV
	flags uint32
	args  [NumArgs]spec
	sub   []entry
}

// l builds a leaf.
func l(op Op, flags uint32, args ...spec) entry {
	e := entry{op: op, flags: flags}
	copy(e.args[:], args)
	for _, a := range args {
		if a.usesModRM() {
			e.flags |= fModRM
		}
		switch a.kind() {
		case kRc:
			e.flags |= fModIgn
		case kMV:
			e.flags |= fVSIB
		}
	}
	return e
}

// lo builds a leaf with an explicit OpSize code.
func lo(op Op, osize uint8, flags uint32, args ...spec) entry {
	e := l(op, flags, args...)
	e.osize = osize
	return e
}

// w sets the REX.W/VEX.W mnemonic of a leaf.
func (e entry) w(op Op) entry { e.opW = op; return e }

func node(kind uint8, sub ...entry) entry { return entry{kind: kind, sub: sub} }

// grp dispatches on ModRM.reg; missing trailing entries are #UD.
func grp(sub ...entry) entry {
	s := make([]entry, 8)
	copy(s, sub)
	return entry{kind: nReg, sub: s}
}

// rmg dispatches on ModRM.rm.
func rmg(sub ...entry) entry {
	s := make([]entry, 8)
	copy(s, sub)
	return entry{kind: nRM, sub: s}
}

// mr dispatches on memory (m) versus register (r) forms.
func mr(m, r entry) entry { return node(nMod, m, r) }

// pfx dispatches on the mandatory prefix.
func pfx(none, p66, f3, f2 entry) entry { return node(nPfx, none, p66, f3, f2) }

// m64 dispatches on 64-bit mode.
func m64(legacy, long entry) entry { return node(nMode, legacy, long) }

// ww dispatches on REX.W/VEX.W.
func ww(w0, w1 entry) entry { return node(nW, w0, w1) }

// ud is an undefined encoding.
var ud = entry{}
