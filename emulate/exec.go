package emulate

import (
	"math/bits"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Result says what a Step or Execute did.
type Result struct {
	// Iterations is the number of iterations a string instruction ran
	// (1 without REP; 0 for REP with rCX = 0).
	Iterations uint64
	// Done is false when MaxRep stopped a REP loop early: RIP was left at
	// the instruction so the guest re-executes it and continues.
	Done bool
	// Undefined is the set of RFLAGS status flags the SDM leaves
	// undefined for this execution (the instruction's Facts.Undefined
	// refined with its operands): a comparison with another
	// implementation masks them. DestUndefined says the destination
	// operand itself is undefined (BSF/BSR of 0, SHLD/SHRD by more than
	// the operand width).
	Undefined     uint64
	DestUndefined bool
}

// Step fetches, decodes and executes the instruction at CS:RIP, updating s
// and guest memory as the CPU would: registers, RFLAGS, RIP (past the
// instruction, wrapped to IP or EIP outside 64-bit mode) and RF cleared.
// Walks set accessed and dirty flags (Intent.Commit).
//
// Errors: an *x86.Exception is a fault the instruction raises; s is then as
// before the instruction except for completed iterations of a REP string
// instruction (RIP at the instruction, as the CPU leaves it). A
// *NotEmulatedError names an instruction or form walkvm does not execute;
// s is unchanged. Other errors come from Memory (host failures) and are
// wrapped as they are.
//
// Not modelled: single-step traps (RFLAGS.TF: the caller injects #DB),
// interrupt shadows, LOCK atomicity (one vCPU at a time is assumed to own
// an MMIO access), #AC beyond natural alignment of 2/4/8-byte operands.
func (e *Emulator) Step(s *State) (Result, error) {
	m := s.Mode()
	inst, err := e.fetch(s, m, true)
	if err != nil {
		return Result{}, err
	}
	return e.Execute(s, inst)
}

// Execute executes an instruction already decoded (by Fetch, or by the
// caller in the current mode) against s. See Step. The instruction's row in
// the table of facts (FactsOf) names its executor.
func (e *Emulator) Execute(s *State, inst *decode.Inst) (Result, error) {
	m := s.Mode()
	if inst.Mode != decodeMode(m) {
		return Result{}, e.notEmulated(s, inst, "decoded in "+inst.Mode.String()+" mode, CPU is in "+m.String())
	}
	f := FactsOf(inst.Op)
	if f.exec == nil {
		return Result{}, e.notEmulated(s, inst, "")
	}
	if f.Flags&FPrivileged != 0 && s.CPL() != 0 {
		return Result{}, gp0(m, inst.Op.String()+" at CPL > 0")
	}
	e.res = Result{Iterations: 1, Done: true, Undefined: f.Undefined}
	saved := *s
	// A fault leaves the state as it was: the registers here, the vector
	// state (when loaded) from a copy.
	vec := f.Flags&(FX87|FVector) != 0 && s.Vec != nil
	if vec {
		if _, err := s.Vec.State(); err != nil { // loaded now, so that the copy is of it
			return Result{}, err
		}
		e.fpuSave, e.fpuDirty = s.Vec.f, s.Vec.dirty
	}
	e.keepVec = false
	if err := f.exec(e, s, m, inst); err != nil {
		if f.Flags&FString != 0 {
			// Completed iterations stay, RIP at the instruction.
			return Result{Iterations: e.res.Iterations}, err
		}
		*s = saved
		if vec && !e.keepVec {
			s.Vec.f, s.Vec.dirty = e.fpuSave, e.fpuDirty
		}
		return Result{}, err
	}
	if !e.res.Done {
		return e.res, nil
	}
	if f.Flags&FBranch == 0 {
		s.RIP = nextRIP(s, inst)
	}
	s.RFLAGS &^= x86.FlagRF
	return e.res, nil
}

// nextRIP is the address of the next instruction, wrapped to the code size.
func nextRIP(s *State, inst *decode.Inst) uint64 {
	return (s.RIP + uint64(inst.Len)) & addrMask(uint8(inst.Mode)/8)
}

func (e *Emulator) notEmulated(s *State, inst *decode.Inst, reason string) error {
	ne := &NotEmulatedError{Op: inst.Op, RIP: s.RIP, Reason: reason}
	if inst == &e.inst {
		ne.Len = uint8(copy(ne.Bytes[:], e.ibuf[:e.ilen]))
	}
	return ne
}

func aluOpOf(op decode.Op) ALUOp {
	switch op {
	case decode.ADD:
		return ALUAdd
	case decode.OR:
		return ALUOr
	case decode.ADC:
		return ALUAdc
	case decode.SBB:
		return ALUSbb
	case decode.AND:
		return ALUAnd
	case decode.SUB:
		return ALUSub
	case decode.XOR:
		return ALUXor
	case decode.CMP:
		return ALUCmp
	case decode.INC:
		return ALUInc
	case decode.DEC:
		return ALUDec
	case decode.NEG:
		return ALUNeg
	}
	return ALUTest
}

// Operand plumbing. A memory operand is resolved once (with the write
// intent for a read-modify-write) into one of e.accs, then read and written
// through it, so an RMW translates once and faults before anything changes.

// resolve resolves a memory Arg for execution into acc.
func (e *Emulator) resolve(s *State, m x86.Mode, inst *decode.Inst, a *decode.Arg, n uint16, read, write bool, acc *MemRef) error {
	return e.access(s, m, a.Mem.Seg, operandOffset(s, inst, a), n, read, write, true, acc)
}

// readAcc reads the bytes of a resolved access into b (len(b) = acc.Size).
func (e *Emulator) readAcc(acc *MemRef, b []byte) error {
	p0 := acc.Pieces[0].Size
	if err := e.Mem.ReadPhys(acc.Pieces[0].GPA, b[:p0]); err != nil {
		return err
	}
	if acc.N > 1 {
		return e.Mem.ReadPhys(acc.Pieces[1].GPA, b[p0:acc.Size])
	}
	return nil
}

// writeAcc writes b through a resolved access.
func (e *Emulator) writeAcc(acc *MemRef, b []byte) error {
	p0 := acc.Pieces[0].Size
	if err := e.Mem.WritePhys(acc.Pieces[0].GPA, b[:p0]); err != nil {
		return err
	}
	if acc.N > 1 {
		return e.Mem.WritePhys(acc.Pieces[1].GPA, b[p0:acc.Size])
	}
	return nil
}

// readMem reads an n-byte little-endian integer (n <= 8).
func (e *Emulator) readMem(acc *MemRef, n uint8) (uint64, error) {
	b := e.buf[:n]
	if err := e.readAcc(acc, b); err != nil {
		return 0, err
	}
	var v uint64
	for i := int(n) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// writeMem writes an n-byte little-endian integer (n <= 8).
func (e *Emulator) writeMem(acc *MemRef, n uint8, v uint64) error {
	b := e.buf[:n]
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return e.writeAcc(acc, b)
}

// argSize is the width of an operand in bytes.
func argSize(inst *decode.Inst, a *decode.Arg) uint8 {
	switch a.Kind {
	case decode.ArgMem:
		return uint8(min(a.Mem.Size, 255))
	case decode.ArgReg:
		return a.Size
	}
	return inst.OpSize
}

// value reads a register, immediate or (resolved) memory operand of n bytes.
func (e *Emulator) value(s *State, inst *decode.Inst, a *decode.Arg, acc *MemRef, n uint8) (uint64, error) {
	switch a.Kind {
	case decode.ArgReg:
		return s.regRead(a.Reg, n, a.High), nil
	case decode.ArgImm:
		return uint64(a.Imm) & sizeMask(n), nil
	case decode.ArgMem:
		return e.readMem(acc, n)
	}
	return 0, e.notEmulated(s, inst, "operand kind "+a.Kind.String())
}

// store writes a register or (resolved) memory operand of n bytes.
func (e *Emulator) store(s *State, inst *decode.Inst, a *decode.Arg, acc *MemRef, n uint8, v uint64) error {
	switch a.Kind {
	case decode.ArgReg:
		s.regWrite(a.Reg, n, a.High, v)
		return nil
	case decode.ArgMem:
		return e.writeMem(acc, n, v)
	}
	return e.notEmulated(s, inst, "destination kind "+a.Kind.String())
}

// gprOperands checks that the first nargs operands are GPR, immediate or
// memory operands of an integer size, as the integer instructions need.
func (e *Emulator) gprOperands(s *State, inst *decode.Inst, nargs int) error {
	switch inst.OpSize {
	case 1, 2, 4, 8:
	default:
		return e.notEmulated(s, inst, "operand size")
	}
	for i := range nargs {
		switch inst.Args[i].Kind {
		case decode.ArgReg, decode.ArgImm, decode.ArgMem:
		default:
			return e.notEmulated(s, inst, "operand kind "+inst.Args[i].Kind.String())
		}
	}
	return nil
}

// resolveArgs resolves the memory operands among the first nargs for
// execution; writes[i] says whether operand i is written.
func (e *Emulator) resolveArgs(s *State, m x86.Mode, inst *decode.Inst, nargs int, n uint8, reads, writes [2]bool) error {
	for i := range nargs {
		a := &inst.Args[i]
		if a.Kind != decode.ArgMem {
			continue
		}
		if err := e.resolve(s, m, inst, a, uint16(n), reads[i], writes[i], &e.accs.A[i]); err != nil {
			return err
		}
	}
	return nil
}

// rmwDest checks the first nargs integer operands, resolves the
// destination as a read-modify-write and reads its value: the start of
// every instruction that updates its first operand in place.
func (e *Emulator) rmwDest(s *State, m x86.Mode, inst *decode.Inst, nargs int) (uint64, error) {
	if err := e.gprOperands(s, inst, nargs); err != nil {
		return 0, err
	}
	n := inst.OpSize
	if err := e.resolveArgs(s, m, inst, 1, n, [2]bool{true}, [2]bool{true}); err != nil {
		return 0, err
	}
	return e.value(s, inst, &inst.Args[0], &e.accs.A[0], n)
}

func (e *Emulator) execMov(s *State, m x86.Mode, inst *decode.Inst) error {
	if inst.Args[1].Kind == decode.ArgSeg && inst.Args[0].Kind != decode.ArgSeg {
		return e.execMovFromSeg(s, m, inst)
	}
	if inst.Args[0].Kind == decode.ArgSeg {
		return e.execMovToSeg(s, m, inst)
	}
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	n := inst.OpSize
	if err := e.resolveArgs(s, m, inst, 2, n, [2]bool{false, true}, [2]bool{true, false}); err != nil {
		return err
	}
	v, err := e.value(s, inst, &inst.Args[1], &e.accs.A[1], n)
	if err != nil {
		return err
	}
	return e.store(s, inst, &inst.Args[0], &e.accs.A[0], n, v)
}

// execMovFromSeg stores a segment selector (8C /r): 16 bits to memory, the
// operand size (zero-extended) to a register.
func (e *Emulator) execMovFromSeg(s *State, m x86.Mode, inst *decode.Inst) error {
	dst := &inst.Args[0]
	v := uint64(s.Seg[inst.Args[1].Seg%x86.NumSeg].Selector)
	switch dst.Kind {
	case decode.ArgReg:
		s.regWrite(dst.Reg, dst.Size, false, v)
		return nil
	case decode.ArgMem:
		if err := e.resolve(s, m, inst, dst, 2, false, true, &e.accs.A[0]); err != nil {
			return err
		}
		return e.writeMem(&e.accs.A[0], 2, v)
	}
	return e.notEmulated(s, inst, "operand kind "+dst.Kind.String())
}

func (e *Emulator) execMovExtend(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	dst, src := &inst.Args[0], &inst.Args[1]
	sn := argSize(inst, src)
	switch sn {
	case 1, 2, 4:
	default:
		return e.notEmulated(s, inst, "source size")
	}
	if src.Kind == decode.ArgMem {
		if err := e.resolve(s, m, inst, src, uint16(sn), true, false, &e.accs.A[1]); err != nil {
			return err
		}
	}
	v, err := e.value(s, inst, src, &e.accs.A[1], sn)
	if err != nil {
		return err
	}
	if inst.Op != decode.MOVZX {
		shift := 64 - 8*uint(sn)
		v = uint64(int64(v<<shift) >> shift)
	}
	return e.store(s, inst, dst, nil, inst.OpSize, v&sizeMask(inst.OpSize))
}

func (e *Emulator) execALU(s *State, m x86.Mode, inst *decode.Inst) error {
	op := aluOpOf(inst.Op)
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	n := inst.OpSize
	if err := e.resolveArgs(s, m, inst, 2, n, [2]bool{true, true}, [2]bool{op.Writes(), false}); err != nil {
		return err
	}
	a, err := e.value(s, inst, &inst.Args[0], &e.accs.A[0], n)
	if err != nil {
		return err
	}
	b, err := e.value(s, inst, &inst.Args[1], &e.accs.A[1], n)
	if err != nil {
		return err
	}
	r, f := ALU(op, n, a, b, s.RFLAGS)
	if op.Writes() {
		if err := e.store(s, inst, &inst.Args[0], &e.accs.A[0], n, r); err != nil {
			return err
		}
	}
	s.RFLAGS = f
	return nil
}

func (e *Emulator) execUnary(s *State, m x86.Mode, inst *decode.Inst) error {
	a, err := e.rmwDest(s, m, inst, 1)
	if err != nil {
		return err
	}
	n := inst.OpSize
	var r, f uint64
	if inst.Op == decode.NOT {
		r, f = ^a&sizeMask(n), s.RFLAGS
	} else {
		r, f = ALU(aluOpOf(inst.Op), n, a, 0, s.RFLAGS)
	}
	if err := e.store(s, inst, &inst.Args[0], &e.accs.A[0], n, r); err != nil {
		return err
	}
	s.RFLAGS = f
	return nil
}

func (e *Emulator) execShift(s *State, m x86.Mode, inst *decode.Inst) error {
	a, err := e.rmwDest(s, m, inst, 2)
	if err != nil {
		return err
	}
	n := inst.OpSize
	cnt, err := e.value(s, inst, &inst.Args[1], nil, 1)
	if err != nil {
		return err
	}
	op := ShiftSHL
	switch inst.Op {
	case decode.ROL:
		op = ShiftROL
	case decode.ROR:
		op = ShiftROR
	case decode.RCL:
		op = ShiftRCL
	case decode.RCR:
		op = ShiftRCR
	case decode.SHR:
		op = ShiftSHR
	case decode.SAR:
		op = ShiftSAR
	}
	r, f := Shift(op, n, a, cnt, s.RFLAGS)
	e.res.Undefined, e.res.DestUndefined = FactsOf(inst.Op).undefinedFor(inst, cnt, 0)
	// The destination is written back even for a count of 0, as KVM's
	// emulator does: the CPU's read-modify-write cycle is not skipped.
	if err := e.store(s, inst, &inst.Args[0], &e.accs.A[0], n, r); err != nil {
		return err
	}
	s.RFLAGS = f
	return nil
}

func (e *Emulator) execXchg(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	n := inst.OpSize
	if err := e.resolveArgs(s, m, inst, 2, n, [2]bool{true, true}, [2]bool{true, true}); err != nil {
		return err
	}
	a, err := e.value(s, inst, &inst.Args[0], &e.accs.A[0], n)
	if err != nil {
		return err
	}
	b, err := e.value(s, inst, &inst.Args[1], &e.accs.A[1], n)
	if err != nil {
		return err
	}
	// The memory operand (if any) is written first, so a device error
	// leaves the registers alone.
	first, second := 0, 1
	if inst.Args[1].Kind == decode.ArgMem {
		first, second = 1, 0
	}
	vals := [2]uint64{b, a}
	if err := e.store(s, inst, &inst.Args[first], &e.accs.A[first], n, vals[first]); err != nil {
		return err
	}
	return e.store(s, inst, &inst.Args[second], &e.accs.A[second], n, vals[second])
}

func (e *Emulator) execCmpxchg(s *State, m x86.Mode, inst *decode.Inst) error {
	d, err := e.rmwDest(s, m, inst, 2)
	if err != nil {
		return err
	}
	n := inst.OpSize
	dst, src := &inst.Args[0], &inst.Args[1]
	v, err := e.value(s, inst, src, nil, n)
	if err != nil {
		return err
	}
	acc := s.regRead(x86.RAX, n, false)
	_, f := ALU(ALUCmp, n, acc, d, s.RFLAGS)
	if acc == d {
		if err := e.store(s, inst, dst, &e.accs.A[0], n, v); err != nil {
			return err
		}
	} else {
		// The destination is written back with its own value (a memory
		// destination always sees a write cycle); the accumulator gets it.
		if dst.Kind == decode.ArgMem {
			if err := e.store(s, inst, dst, &e.accs.A[0], n, d); err != nil {
				return err
			}
		}
		s.regWrite(x86.RAX, n, false, d)
	}
	s.RFLAGS = f
	return nil
}

func (e *Emulator) execXadd(s *State, m x86.Mode, inst *decode.Inst) error {
	d, err := e.rmwDest(s, m, inst, 2)
	if err != nil {
		return err
	}
	n := inst.OpSize
	dst, src := &inst.Args[0], &inst.Args[1]
	v, err := e.value(s, inst, src, nil, n)
	if err != nil {
		return err
	}
	sum, f := ALU(ALUAdd, n, d, v, s.RFLAGS)
	// TEMP := SRC + DEST; SRC := DEST; DEST := TEMP: the destination is
	// written last, which matters when both are the same register.
	if dst.Kind == decode.ArgMem {
		if err := e.store(s, inst, dst, &e.accs.A[0], n, sum); err != nil {
			return err
		}
		s.regWrite(src.Reg, n, src.High, d)
	} else {
		s.regWrite(src.Reg, n, src.High, d)
		s.regWrite(dst.Reg, n, dst.High, sum)
	}
	s.RFLAGS = f
	return nil
}

func (e *Emulator) execBT(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	n := inst.OpSize
	if n == 1 {
		return e.notEmulated(s, inst, "byte operand")
	}
	dst, src := &inst.Args[0], &inst.Args[1]
	write := inst.Op != decode.BT
	if dst.Kind == decode.ArgMem {
		// resolve applies the bit-string displacement of a register offset.
		if err := e.resolve(s, m, inst, dst, uint16(n), true, write, &e.accs.A[0]); err != nil {
			return err
		}
	}
	v, err := e.value(s, inst, dst, &e.accs.A[0], n)
	if err != nil {
		return err
	}
	var bit uint64
	if src.Kind == decode.ArgImm {
		bit = uint64(src.Imm)
	} else {
		bit = s.GPR[src.Reg&15]
	}
	op := BitOp(0)
	switch inst.Op {
	case decode.BTS:
		op = BitSet
	case decode.BTR:
		op = BitReset
	case decode.BTC:
		op = BitComplement
	}
	r, f := BitTestOp(op, n, v, bit, s.RFLAGS)
	if write {
		if err := e.store(s, inst, dst, &e.accs.A[0], n, r); err != nil {
			return err
		}
	}
	s.RFLAGS = f
	return nil
}

// ccOf is the condition-code nibble of SETcc/CMOVcc.
func ccOf(inst *decode.Inst) uint8 { return inst.Opcode & 0xF }

func (e *Emulator) execSetcc(s *State, m x86.Mode, inst *decode.Inst) error {
	a := &inst.Args[0]
	if a.Kind != decode.ArgReg && a.Kind != decode.ArgMem {
		return e.notEmulated(s, inst, "operand kind "+a.Kind.String())
	}
	if a.Kind == decode.ArgMem {
		if err := e.resolve(s, m, inst, a, 1, false, true, &e.accs.A[0]); err != nil {
			return err
		}
	}
	var v uint64
	if Cond(ccOf(inst), s.RFLAGS) {
		v = 1
	}
	return e.store(s, inst, a, &e.accs.A[0], 1, v)
}

func (e *Emulator) execCmov(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	n := inst.OpSize
	// The source is read whatever the condition (SDM Vol. 2A CMOVcc).
	if err := e.resolveArgs(s, m, inst, 2, n, [2]bool{false, true}, [2]bool{false, false}); err != nil {
		return err
	}
	v, err := e.value(s, inst, &inst.Args[1], &e.accs.A[1], n)
	if err != nil {
		return err
	}
	dst := &inst.Args[0]
	if !Cond(ccOf(inst), s.RFLAGS) {
		// A 32-bit destination is zero-extended in 64-bit mode even when
		// nothing moves.
		v = s.regRead(dst.Reg, n, false)
	}
	s.regWrite(dst.Reg, n, false, v)
	return nil
}

// execPush handles PUSH r/m, PUSH reg, PUSH imm and PUSH with a segment
// register.
func (e *Emulator) execPush(s *State, m x86.Mode, inst *decode.Inst) error {
	n := stackOpSize(m, inst)
	a := &inst.Args[0]
	var v uint64
	switch a.Kind {
	case decode.ArgMem:
		if err := e.resolve(s, m, inst, a, uint16(n), true, false, &e.accs.A[0]); err != nil {
			return err
		}
	case decode.ArgReg, decode.ArgImm:
	case decode.ArgSeg:
		v = uint64(s.Seg[a.Seg%x86.NumSeg].Selector)
	default:
		return e.notEmulated(s, inst, "operand kind "+a.Kind.String())
	}
	sa := s.stackAddrSize(m)
	rsp := (s.GPR[x86.RSP] - uint64(n)) & addrMask(sa)
	acc := &e.accs.A[1]
	if err := e.access(s, m, x86.SS, rsp, uint16(n), false, true, true, acc); err != nil {
		return err
	}
	if a.Kind != decode.ArgSeg {
		var err error
		if v, err = e.value(s, inst, a, &e.accs.A[0], n); err != nil {
			return err
		}
		if a.Kind == decode.ArgImm {
			v = uint64(a.Imm) & sizeMask(n) // sign-extended to the stack width
		}
	}
	if err := e.writeMem(acc, n, v); err != nil {
		return err
	}
	s.regWriteAddr(x86.RSP, sa, rsp)
	return nil
}

// execPop handles POP r/m, POP reg and POP Sreg (a segment load of the
// slot's low 16 bits; the slot is the operand size).
func (e *Emulator) execPop(s *State, m x86.Mode, inst *decode.Inst) error {
	n := stackOpSize(m, inst)
	a := &inst.Args[0]
	if a.Kind == decode.ArgSeg {
		sa := s.stackAddrSize(m)
		acc := &e.accs.A[0]
		if err := e.stackAccess(s, m, s.GPR[x86.RSP], uint16(n), false, acc); err != nil {
			return err
		}
		v, err := e.readMem(acc, n)
		if err != nil {
			return err
		}
		seg := a.Seg % x86.NumSeg
		ns, err := e.loadSegment(s, m, seg, uint16(v))
		if err != nil {
			return err
		}
		s.Seg[seg] = ns
		s.regWriteAddr(x86.RSP, sa, (s.GPR[x86.RSP]&addrMask(sa))+uint64(n))
		return nil
	}
	if a.Kind != decode.ArgMem && a.Kind != decode.ArgReg {
		return e.notEmulated(s, inst, "operand kind "+a.Kind.String())
	}
	sa := s.stackAddrSize(m)
	old := s.GPR[x86.RSP]
	src := &e.accs.A[0]
	if err := e.access(s, m, x86.SS, old&addrMask(sa), uint16(n), true, false, true, src); err != nil {
		return err
	}
	// A memory destination based on rSP uses the incremented value.
	s.regWriteAddr(x86.RSP, sa, (old&addrMask(sa))+uint64(n))
	if a.Kind == decode.ArgMem {
		if err := e.resolve(s, m, inst, a, uint16(n), false, true, &e.accs.A[1]); err != nil {
			s.GPR[x86.RSP] = old
			return err
		}
	}
	v, err := e.readMem(src, n)
	if err != nil {
		s.GPR[x86.RSP] = old
		return err
	}
	if err := e.store(s, inst, a, &e.accs.A[1], n, v); err != nil {
		s.GPR[x86.RSP] = old
		return err
	}
	return nil
}

func (e *Emulator) execMovbe(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	mi := inst.MemArg()
	if mi < 0 {
		return x86.UD("movbe with a register operand")
	}
	n := inst.OpSize
	if n == 1 {
		return x86.UD("movbe with byte operands")
	}
	if err := e.resolveArgs(s, m, inst, 2, n, [2]bool{false, true}, [2]bool{true, false}); err != nil {
		return err
	}
	v, err := e.value(s, inst, &inst.Args[1], &e.accs.A[1], n)
	if err != nil {
		return err
	}
	v = bits.ReverseBytes64(v) >> (64 - 8*uint(n))
	return e.store(s, inst, &inst.Args[0], &e.accs.A[0], n, v)
}

// Rewind undoes the register effects of one completed iteration of inst
// (decoded at its own address) in s, so that Resolve gives the addresses it
// used, as its row's Rewind says: string instructions get rSI/rDI moved
// back by the element size (against DF) and rCX incremented under REP;
// PUSH, PUSHF and CALL get rSP incremented by the slot, PUSHA by eight
// slots, ENTER by its allocation and its pushed slots (rBP keeps the new
// frame pointer: the old one is in the memory it pushed), POP and POPF
// decremented. RIP is left to the caller, who knows
// whether the exit reported it at or past the instruction. Other
// instructions are left unchanged (their registers do not feed their
// addresses).
func Rewind(s *State, inst *decode.Inst) {
	m := s.Mode()
	switch FactsOf(inst.Op).Rewind {
	case RewindString:
		as := inst.AddrSize
		d := uint64(inst.OpSize)
		if s.RFLAGS&x86.FlagDF != 0 {
			d = -d
		}
		for i := range inst.Args {
			a := &inst.Args[i]
			if a.Kind == decode.ArgMem && (a.Mem.Base == x86.RSI || a.Mem.Base == x86.RDI) {
				r := a.Mem.Base
				s.regWriteAddr(r, as, s.GPR[r]-d)
			}
		}
		if inst.Prefix.Rep || inst.Prefix.Repne {
			s.regWriteAddr(x86.RCX, as, s.GPR[x86.RCX]+1)
		}
	case RewindEnter:
		// ENTER left rSP at rSP - slots×size - allocation (SDM Vol. 2A
		// ENTER; execEnter).
		level := enterLevel(inst)
		slots := uint64(1)
		if level > 0 {
			slots = level + 1
		}
		alloc := uint64(inst.Args[0].Imm) & 0xFFFF
		sa := s.stackAddrSize(m)
		s.regWriteAddr(x86.RSP, sa, s.GPR[x86.RSP]+slots*uint64(stackOpSize(m, inst))+alloc)
	case RewindPush, RewindPop, RewindPushAll:
		k := FactsOf(inst.Op).Rewind
		n := uint64(stackOpSize(m, inst))
		switch k {
		case RewindPop:
			n = -n
		case RewindPushAll:
			n *= 8
		}
		sa := s.stackAddrSize(m)
		s.regWriteAddr(x86.RSP, sa, s.GPR[x86.RSP]+n)
	}
}
