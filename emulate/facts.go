package emulate

import (
	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Facts is an instruction's row in the table of instruction facts: what
// every stage of the MMIO path needs to know about it beyond its encoding,
// in one place. KVM's emulate.c keeps the same facts in one opcode_table
// row (I(DstMem | SrcReg | ModRM | Lock, em_add)); walkvm's decoder keeps the
// per-encoding part (operand specs, LOCK, read/write of the memory operand:
// decode.Arg.Mem.Use) and this table the per-instruction part, which the
// resolver (Resolve), the executor (Execute), the rewinder (Rewind) and the
// vCPU's write-exit search all read.
type Facts struct {
	// Class groups the instruction for the differential test against the
	// CPU and for the documentation.
	Class Class
	// Flags are the instruction's properties (FString, FBranch, ...).
	Flags FactFlags
	// Stack is its implicit stack access, if any.
	Stack StackUse
	// Rewind says how to undo its register effects once it completed
	// (a write exit arrives after the instruction finished).
	Rewind RewindKind
	// Align is the alignment the first memory operand needs (#GP(0)
	// otherwise): 0 for none, AlignOperand for the operand's own size,
	// else bytes.
	Align uint16
	// Undefined is the mask of RFLAGS status flags the SDM leaves
	// undefined whenever the instruction executes; UndefRule adds the
	// ones that depend on the operands (a shift count, a zero source).
	// Result.Undefined gives the mask of one execution.
	Undefined uint64
	UndefRule UndefRule
	// DataArg is the operand whose register or immediate value the
	// instruction stores unchanged (MOV, MOVNTI, STOS), or -1: a write
	// exit's data can be checked against it.
	DataArg int8

	exec execFn
}

// execFn executes one instruction; see Execute.
type execFn func(e *Emulator, s *State, m x86.Mode, inst *decode.Inst) error

// Class names a group of instructions that are tested together.
type Class uint8

// Instruction classes.
const (
	ClassNone    Class = iota
	ClassMov           // MOV, MOVZX, MOVSX, MOVSXD, MOVNTI, MOVBE
	ClassALU           // ADD ... CMP, TEST, INC, DEC, NEG, NOT
	ClassShift         // ROL ... SAR, SHLD, SHRD
	ClassMulDiv        // MUL, IMUL, DIV, IDIV
	ClassBit           // BT, BTS, BTR, BTC, BSF, BSR, TZCNT, LZCNT, POPCNT
	ClassCond          // SETcc, CMOVcc
	ClassXchg          // XCHG, XADD, CMPXCHG, CMPXCHG8B, CMPXCHG16B
	ClassString        // MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS
	ClassStack         // PUSH, POP, PUSHA, POPA, PUSHF, POPF, ENTER, LEAVE
	ClassBranch        // CALL, JMP, RET, far forms
	ClassSegment       // LDS, LES, LFS, LGS, LSS, MOV Sreg, BOUND, XLAT
	ClassSystem        // SGDT, SIDT, LGDT, LIDT, SLDT, STR, LLDT, LTR, SMSW, LMSW
	ClassX87           // x87 memory forms
	ClassSSE           // MMX and SSE-SSE4.2 memory forms
	ClassAVX           // VEX-encoded memory forms
	ClassXState        // FXSAVE, FXRSTOR, XSAVE, XSAVEOPT, XRSTOR, LDMXCSR, STMXCSR
	ClassDirect        // MOVDIRI, MOVDIR64B
	NumClasses
)

var classNames = [NumClasses]string{"none", "mov", "alu", "shift", "muldiv", "bit", "cond", "xchg", "string",
	"stack", "branch", "segment", "system", "x87", "sse", "avx", "xstate", "direct"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "class?"
}

// FactFlags are properties of an instruction.
type FactFlags uint16

// Instruction properties.
const (
	// FString: a string instruction. REP/REPE/REPNE repeat it with rCX;
	// rSI/rDI advance by the element size per iteration; a write exit
	// may arrive with RIP still at the instruction while iterations
	// remain.
	FString FactFlags = 1 << iota
	// FBranch: the instruction sets RIP itself (CALL, JMP, RET).
	FBranch
	// FBitString: a register bit offset addresses a bit string beyond
	// the memory operand (BT, BTS, BTR, BTC).
	FBitString
	// FXlat: the effective address adds AL (XLAT).
	FXlat
	// FX87, FVector: the instruction uses the x87 or the SSE/AVX state.
	FX87
	FVector
	// FPrivileged: CPL 0 only (#GP(0) otherwise).
	FPrivileged
	// FDescriptor: the instruction reads a segment descriptor from the
	// GDT or LDT (segment loads).
	FDescriptor
	// FCmovSrc: the source is read whatever the condition (CMOVcc).
	FCmovSrc
)

// StackUse is an instruction's implicit use of the stack (SS:rSP).
type StackUse uint8

// Stack uses.
const (
	StackNone    StackUse = iota
	StackPush             // writes one slot below rSP (PUSH, PUSHF, CALL)
	StackPop              // reads one slot at rSP (POP, POPF)
	StackPushAll          // PUSHA: eight slots
	StackPopAll           // POPA: eight slots
	StackEnter            // ENTER: pushes rBP and the frame pointers
	StackLeave            // LEAVE: reads one slot at rBP
	StackRet              // RET: reads the return address at rSP
	StackRetFar           // RETF: reads offset and selector
	StackPushFar          // CALLF: pushes CS and the return offset
)

// RewindKind says how Rewind undoes an instruction's register effects.
type RewindKind uint8

// Rewind kinds.
const (
	RewindNone    RewindKind = iota // its registers do not feed its addresses
	RewindString                    // one element back on rSI/rDI, rCX + 1 under REP
	RewindPush                      // rSP up by the pushed size
	RewindPop                       // rSP down by the popped size
	RewindPushAll                   // rSP up by eight slots (PUSHA)
	RewindEnter                     // rSP up by the allocation and the pushed slots (ENTER)
)

// AlignOperand in Facts.Align means the memory operand must be aligned on
// its own size (MOVAPS, MOVDQA, CMPXCHG16B, MOVDIR64B's destination).
const AlignOperand = 0xFFFF

// UndefRule names how an instruction's undefined flags depend on its
// operands (SDM Vol. 2 "Flags Affected" of each instruction).
type UndefRule uint8

// Undefined-flag rules.
const (
	UndefStatic UndefRule = iota // Undefined alone
	// UndefShift: SHL/SHR/SAR with a masked count of 0 change nothing;
	// otherwise AF is undefined, OF for counts above 1, and CF of
	// SHL/SHR for counts of at least the operand width.
	UndefShift
	// UndefRotate: ROL/ROR/RCL/RCR leave OF undefined for masked counts
	// above 1.
	UndefRotate
	// UndefShiftDouble: SHLD/SHRD with a count of 0 change nothing; AF is
	// undefined, OF for counts above 1; a count above the operand width
	// leaves the result and every flag undefined.
	UndefShiftDouble
	// UndefBitScan: BSF/BSR leave the destination undefined when the
	// source is 0.
	UndefBitScan
)

// Undefined flag masks.
const (
	undefLogic  = x86.FlagAF                                                     // AND, OR, XOR, TEST
	undefMul    = x86.FlagSF | x86.FlagZF | x86.FlagAF | x86.FlagPF              // MUL, IMUL
	undefDiv    = x86.FlagsArith                                                 // DIV, IDIV
	undefBit    = x86.FlagOF | x86.FlagSF | x86.FlagAF | x86.FlagPF              // BT*
	undefScan   = x86.FlagCF | x86.FlagOF | x86.FlagSF | x86.FlagAF | x86.FlagPF // BSF, BSR
	undefCount  = x86.FlagOF | x86.FlagSF | x86.FlagAF | x86.FlagPF              // TZCNT, LZCNT
	undefCmpx8b = 0                                                              // CMPXCHG8B: ZF only, the rest unchanged
)

// factTable is indexed by decode.Op. It is filled once by init and only
// read afterwards.
var factTable [decode.NumOps]Facts

// FactsOf returns the row of op. Ops without a row have Class ClassNone
// and are not executed.
func FactsOf(op decode.Op) *Facts {
	if int(op) < len(factTable) {
		return &factTable[op]
	}
	return &factTable[decode.Invalid]
}

// Executes reports whether Execute runs the instruction (some forms of it
// may still be *NotEmulatedError, see the README).
func (f *Facts) Executes() bool { return f.exec != nil }

func init() { fillFacts(&factTable) }

// fillFacts writes every row.
func fillFacts(t *[decode.NumOps]Facts) {
	for i := range t {
		t[i].DataArg = -1
	}
	set := func(ops []decode.Op, f Facts) {
		for _, op := range ops {
			if f.DataArg == 0 {
				f.DataArg = -1
			}
			t[op] = f
		}
	}
	ex := func(c Class, fn execFn) Facts { return Facts{Class: c, exec: fn} }
	with := func(f Facts, mod func(*Facts)) Facts { mod(&f); return f }

	// Data movement.
	mov := ex(ClassMov, (*Emulator).execMov)
	mov.DataArg = 1
	t[decode.MOV] = mov
	t[decode.MOVNTI] = mov
	set([]decode.Op{decode.MOVZX, decode.MOVSX, decode.MOVSXD}, ex(ClassMov, (*Emulator).execMovExtend))
	t[decode.MOVBE] = ex(ClassMov, (*Emulator).execMovbe)
	t[decode.MOVBE].DataArg = -1

	// Arithmetic and logic.
	set([]decode.Op{decode.ADD, decode.ADC, decode.SUB, decode.SBB, decode.CMP}, ex(ClassALU, (*Emulator).execALU))
	set([]decode.Op{decode.AND, decode.OR, decode.XOR, decode.TEST}, with(ex(ClassALU, (*Emulator).execALU), func(f *Facts) { f.Undefined = undefLogic }))
	set([]decode.Op{decode.INC, decode.DEC, decode.NEG, decode.NOT}, ex(ClassALU, (*Emulator).execUnary))
	set([]decode.Op{decode.SHL, decode.SHR, decode.SAL, decode.SAR}, with(ex(ClassShift, (*Emulator).execShift), func(f *Facts) { f.UndefRule = UndefShift }))
	set([]decode.Op{decode.ROL, decode.ROR, decode.RCL, decode.RCR}, with(ex(ClassShift, (*Emulator).execShift), func(f *Facts) { f.UndefRule = UndefRotate }))
	set([]decode.Op{decode.SHLD, decode.SHRD}, with(ex(ClassShift, (*Emulator).execShiftDouble), func(f *Facts) { f.UndefRule = UndefShiftDouble }))
	set([]decode.Op{decode.MUL, decode.IMUL}, with(ex(ClassMulDiv, (*Emulator).execMul), func(f *Facts) { f.Undefined = undefMul }))
	set([]decode.Op{decode.DIV, decode.IDIV}, with(ex(ClassMulDiv, (*Emulator).execDiv), func(f *Facts) { f.Undefined = undefDiv }))

	// Bits.
	set([]decode.Op{decode.BT, decode.BTS, decode.BTR, decode.BTC}, with(ex(ClassBit, (*Emulator).execBT), func(f *Facts) {
		f.Undefined, f.Flags = undefBit, FBitString
	}))
	set([]decode.Op{decode.BSF, decode.BSR}, with(ex(ClassBit, (*Emulator).execBitScan), func(f *Facts) {
		f.Undefined, f.UndefRule = undefScan, UndefBitScan
	}))
	set([]decode.Op{decode.TZCNT, decode.LZCNT}, with(ex(ClassBit, (*Emulator).execBitScan), func(f *Facts) { f.Undefined = undefCount }))
	t[decode.POPCNT] = ex(ClassBit, (*Emulator).execBitScan)

	// Conditions.
	set([]decode.Op{decode.SETO, decode.SETNO, decode.SETB, decode.SETAE, decode.SETE, decode.SETNE, decode.SETBE, decode.SETA,
		decode.SETS, decode.SETNS, decode.SETP, decode.SETNP, decode.SETL, decode.SETGE, decode.SETLE, decode.SETG}, ex(ClassCond, (*Emulator).execSetcc))
	set([]decode.Op{decode.CMOVO, decode.CMOVNO, decode.CMOVB, decode.CMOVAE, decode.CMOVE, decode.CMOVNE, decode.CMOVBE, decode.CMOVA,
		decode.CMOVS, decode.CMOVNS, decode.CMOVP, decode.CMOVNP, decode.CMOVL, decode.CMOVGE, decode.CMOVLE, decode.CMOVG},
		with(ex(ClassCond, (*Emulator).execCmov), func(f *Facts) { f.Flags = FCmovSrc }))

	// Exchanges.
	t[decode.XCHG] = ex(ClassXchg, (*Emulator).execXchg)
	t[decode.CMPXCHG] = ex(ClassXchg, (*Emulator).execCmpxchg)
	t[decode.XADD] = ex(ClassXchg, (*Emulator).execXadd)
	set([]decode.Op{decode.CMPXCHG8B, decode.CMPXCHG16B}, with(ex(ClassXchg, (*Emulator).execCmpxchgDouble), func(f *Facts) {
		f.Undefined = undefCmpx8b
	}))
	t[decode.CMPXCHG16B].Align = AlignOperand

	// Strings. INS and OUTS are port I/O: listed for the resolver and the
	// rewinder, executed by the vCPU's port path, not here.
	str := Facts{Class: ClassString, Flags: FString, Rewind: RewindString, DataArg: -1, exec: (*Emulator).execString}
	set([]decode.Op{decode.MOVS, decode.LODS, decode.CMPS, decode.SCAS}, str)
	stos := str
	stos.DataArg = 1
	t[decode.STOS] = stos
	set([]decode.Op{decode.INS, decode.OUTS}, with(str, func(f *Facts) { f.exec = nil }))

	// Stack.
	t[decode.PUSH] = Facts{Class: ClassStack, Stack: StackPush, Rewind: RewindPush, DataArg: -1, exec: (*Emulator).execPush}
	t[decode.POP] = Facts{Class: ClassStack, Stack: StackPop, Rewind: RewindPop, DataArg: -1, exec: (*Emulator).execPop}
	t[decode.PUSHF] = Facts{Class: ClassStack, Stack: StackPush, Rewind: RewindPush, DataArg: -1, exec: (*Emulator).execPushf}
	t[decode.POPF] = Facts{Class: ClassStack, Stack: StackPop, Rewind: RewindPop, DataArg: -1, exec: (*Emulator).execPopf}
	t[decode.PUSHA] = Facts{Class: ClassStack, Stack: StackPushAll, Rewind: RewindPushAll, DataArg: -1, exec: (*Emulator).execPusha}
	t[decode.POPA] = Facts{Class: ClassStack, Stack: StackPopAll, DataArg: -1, exec: (*Emulator).execPopa}
	t[decode.ENTER] = Facts{Class: ClassStack, Stack: StackEnter, Rewind: RewindEnter, DataArg: -1, exec: (*Emulator).execEnter}
	t[decode.LEAVE] = Facts{Class: ClassStack, Stack: StackLeave, DataArg: -1, exec: (*Emulator).execLeave}

	// Branches: CALL and JMP execute their indirect memory forms.
	t[decode.CALL] = Facts{Class: ClassBranch, Flags: FBranch, Stack: StackPush, Rewind: RewindPush, DataArg: -1, exec: (*Emulator).execCallJmp}
	t[decode.JMP] = Facts{Class: ClassBranch, Flags: FBranch, DataArg: -1, exec: (*Emulator).execCallJmp}
	t[decode.RET] = Facts{Class: ClassBranch, Flags: FBranch, Stack: StackRet, DataArg: -1, exec: (*Emulator).execRet}
	t[decode.RETF] = Facts{Class: ClassBranch, Flags: FBranch | FDescriptor, Stack: StackRetFar, DataArg: -1, exec: (*Emulator).execRetf}
	t[decode.CALLF] = Facts{Class: ClassBranch, Flags: FBranch | FDescriptor, Stack: StackPushFar, DataArg: -1, exec: (*Emulator).execFar}
	t[decode.JMPF] = Facts{Class: ClassBranch, Flags: FBranch | FDescriptor, DataArg: -1, exec: (*Emulator).execFar}

	// Segments.
	set([]decode.Op{decode.LDS, decode.LES, decode.LFS, decode.LGS, decode.LSS},
		Facts{Class: ClassSegment, Flags: FDescriptor, DataArg: -1, exec: (*Emulator).execLoadFar})
	t[decode.BOUND] = Facts{Class: ClassSegment, DataArg: -1, exec: (*Emulator).execBound}
	t[decode.XLAT] = Facts{Class: ClassSegment, Flags: FXlat, DataArg: -1, exec: (*Emulator).execXlat}

	// Descriptor-table registers.
	set([]decode.Op{decode.SGDT, decode.SIDT, decode.SLDT, decode.STR, decode.SMSW}, Facts{Class: ClassSystem, DataArg: -1, exec: (*Emulator).execStoreSys})
	set([]decode.Op{decode.LGDT, decode.LIDT, decode.LLDT, decode.LTR, decode.LMSW},
		Facts{Class: ClassSystem, Flags: FPrivileged, DataArg: -1, exec: (*Emulator).execLoadSys})
	t[decode.LLDT].Flags |= FDescriptor
	set([]decode.Op{decode.LAR, decode.LSL}, Facts{Class: ClassSystem, Flags: FDescriptor, DataArg: -1, exec: (*Emulator).execLarLsl})
	set([]decode.Op{decode.VERR, decode.VERW}, Facts{Class: ClassSystem, Flags: FDescriptor, DataArg: -1, exec: (*Emulator).execVerrw})
	t[decode.LTR].Flags |= FDescriptor

	// x87.
	set([]decode.Op{decode.FADD, decode.FMUL, decode.FCOM, decode.FCOMP, decode.FSUB, decode.FSUBR, decode.FDIV, decode.FDIVR,
		decode.FIADD, decode.FIMUL, decode.FICOM, decode.FICOMP, decode.FISUB, decode.FISUBR, decode.FIDIV, decode.FIDIVR,
		decode.FLD, decode.FST, decode.FSTP, decode.FILD, decode.FIST, decode.FISTP, decode.FISTTP, decode.FBLD, decode.FBSTP,
		decode.FLDENV, decode.FLDCW, decode.FNSTENV, decode.FNSTCW, decode.FRSTOR, decode.FNSAVE, decode.FNSTSW},
		Facts{Class: ClassX87, Flags: FX87, DataArg: -1, exec: (*Emulator).execX87})

	// BMI1, BMI2, ADX, CRC32.
	bmi := func(c Class, undef uint64) Facts {
		return Facts{Class: c, Undefined: undef, DataArg: -1, exec: (*Emulator).execBMI}
	}
	t[decode.ANDN] = bmi(ClassBit, x86.FlagAF|x86.FlagPF)
	t[decode.BEXTR] = bmi(ClassBit, x86.FlagAF|x86.FlagSF|x86.FlagPF)
	set([]decode.Op{decode.BLSI, decode.BLSMSK, decode.BLSR, decode.BZHI}, bmi(ClassBit, x86.FlagAF|x86.FlagPF))
	set([]decode.Op{decode.PDEP, decode.PEXT}, bmi(ClassBit, 0))
	t[decode.MULX] = bmi(ClassMulDiv, 0)
	set([]decode.Op{decode.RORX, decode.SARX, decode.SHLX, decode.SHRX}, bmi(ClassShift, 0))
	set([]decode.Op{decode.ADCX, decode.ADOX}, Facts{Class: ClassALU, DataArg: -1, exec: (*Emulator).execADX})
	t[decode.CRC32] = Facts{Class: ClassALU, DataArg: -1, exec: (*Emulator).execCRC32}

	// Direct stores.
	t[decode.MOVDIRI] = Facts{Class: ClassDirect, DataArg: 1, exec: (*Emulator).execMov}
	t[decode.MOVDIR64B] = Facts{Class: ClassDirect, Align: AlignOperand, DataArg: -1, exec: (*Emulator).execMovdir64b}

	// State saves and restores.
	set([]decode.Op{decode.LDMXCSR, decode.STMXCSR, decode.FXSAVE, decode.FXRSTOR, decode.XSAVE, decode.XSAVEOPT, decode.XRSTOR},
		Facts{Class: ClassXState, Flags: FVector, DataArg: -1, exec: (*Emulator).execXState})

	// SSE, MMX and AVX instructions run on the host's vector unit (the
	// moves below have their own executor).
	for op := decode.MOVUPS; op <= decode.PCMPISTRI; op++ {
		t[op] = Facts{Class: ClassSSE, Flags: FVector, DataArg: -1, exec: (*Emulator).execVecHost}
	}
	for _, op := range []decode.Op{decode.EMMS, decode.MASKMOVQ, decode.MASKMOVDQU} {
		t[op] = Facts{Class: ClassSSE, Flags: FVector, DataArg: -1}
	}
	t[decode.VEXOTHER] = Facts{Class: ClassAVX, Flags: FVector, DataArg: -1, exec: (*Emulator).execVecHost}

	// SSE, MMX and AVX moves.
	vmove := Facts{Class: ClassSSE, Flags: FVector, DataArg: -1, exec: (*Emulator).execVecMove}
	set([]decode.Op{decode.MOVD, decode.MOVQ, decode.MOVSS, decode.MOVSD, decode.MOVDQU, decode.MOVUPS, decode.MOVUPD, decode.LDDQU}, vmove)
	set([]decode.Op{decode.MOVDQA, decode.MOVAPS, decode.MOVAPD, decode.MOVNTDQ, decode.MOVNTPS, decode.MOVNTPD, decode.MOVNTDQA},
		with(vmove, func(f *Facts) { f.Align = AlignOperand }))
	vmove.Class = ClassAVX
	set([]decode.Op{decode.VMOVD, decode.VMOVQ, decode.VMOVDQU, decode.VMOVUPS, decode.VMOVUPD}, vmove)
	set([]decode.Op{decode.VMOVDQA, decode.VMOVAPS, decode.VMOVAPD}, with(vmove, func(f *Facts) { f.Align = AlignOperand }))
}

// Undefined returns the RFLAGS bits the SDM leaves undefined for inst with
// the operand values the executor saw: count is the shift count (as
// encoded, before masking), src the source of a bit scan. It also reports
// whether the destination itself is undefined.
func (f *Facts) undefinedFor(inst *decode.Inst, count, src uint64) (uint64, bool) {
	u := f.Undefined
	n := uint64(inst.OpSize)
	switch f.UndefRule {
	case UndefShift, UndefRotate:
		c := count & 0x1F
		if n == 8 {
			c = count & 0x3F
		}
		switch {
		case c == 0:
			return 0, false
		case f.UndefRule == UndefRotate:
			if c > 1 {
				u |= x86.FlagOF
			}
		default:
			u |= x86.FlagAF
			if c > 1 {
				u |= x86.FlagOF
			}
			if c >= 8*n && inst.Op != decode.SAR {
				u |= x86.FlagCF
			}
		}
	case UndefShiftDouble:
		c := count & 0x1F
		if n == 8 {
			c = count & 0x3F
		}
		switch {
		case c == 0:
			return 0, false
		case c > 8*n:
			return x86.FlagsArith, true
		}
		u |= x86.FlagAF
		if c > 1 {
			u |= x86.FlagOF
		}
	case UndefBitScan:
		if src == 0 {
			return u, true
		}
	}
	return u, false
}
