package emulate

import (
	"walkvm/emulate/decode"
	"walkvm/x86"
)

// execString runs MOVS, STOS, LODS, CMPS and SCAS with or without a REP
// prefix (SDM Vol. 2B "REP/REPE/REPZ/REPNE/REPNZ"):
//
//   - the count is CX, ECX or RCX by the address size, and so are the
//     pointers SI/ESI/RSI and DI/EDI/RDI (16-bit pointers wrap and keep the
//     upper bits of the register; 32-bit ones zero-extend);
//   - the source is DS:rSI (segment overridable), the destination ES:rDI
//     (never overridden); each pointer moves by the element size, down when
//     DF is set;
//   - with rCX = 0 nothing is accessed; the count is checked before each
//     iteration and decremented after it; CMPS and SCAS also stop when ZF
//     is 0 (REPE) or 1 (REPNE) after an iteration; for the other three F2
//     acts as F3;
//   - each iteration translates its own accesses, so a loop that crosses
//     into an unmapped page faults with the registers of the iterations
//     done and RIP at the instruction, like the CPU.
//
// At most MaxRep iterations run per call; if the loop is not finished RIP
// stays at the instruction (Result.Done false) and the guest re-executes it.
func (e *Emulator) execString(s *State, m x86.Mode, inst *decode.Inst) error {
	n := inst.OpSize
	switch n {
	case 1, 2, 4, 8:
	default:
		return e.notEmulated(s, inst, "element size")
	}
	as := inst.AddrSize
	amask := addrMask(as)
	var src, dst *decode.Arg
	for i := range inst.Args {
		a := &inst.Args[i]
		if a.Kind != decode.ArgMem {
			continue
		}
		switch a.Mem.Base {
		case x86.RSI:
			src = a
		case x86.RDI:
			dst = a
		}
	}
	op := inst.Op
	needSrc := op == decode.MOVS || op == decode.LODS || op == decode.CMPS
	needDst := op != decode.LODS
	if needSrc && src == nil || needDst && dst == nil {
		return e.notEmulated(s, inst, "string operands")
	}
	delta := uint64(n)
	if s.RFLAGS&x86.FlagDF != 0 {
		delta = -delta
	}
	rep := inst.Prefix.Rep || inst.Prefix.Repne
	maxRep := e.MaxRep
	if maxRep == 0 {
		maxRep = DefaultMaxRep
	}
	iters := &e.res.Iterations
	*iters = 0
	for {
		if rep {
			if s.GPR[x86.RCX]&amask == 0 {
				break
			}
			if *iters == maxRep {
				e.res.Done = false
				return nil
			}
		}
		if err := e.stringIteration(s, m, inst, src, dst, n); err != nil {
			return err
		}
		if needSrc {
			s.regWriteAddr(x86.RSI, as, s.GPR[x86.RSI]+delta)
		}
		if needDst {
			s.regWriteAddr(x86.RDI, as, s.GPR[x86.RDI]+delta)
		}
		*iters++
		if !rep {
			break
		}
		s.regWriteAddr(x86.RCX, as, s.GPR[x86.RCX]-1)
		if op == decode.CMPS || op == decode.SCAS {
			zf := s.RFLAGS&x86.FlagZF != 0
			if inst.Prefix.Rep && !zf || inst.Prefix.Repne && zf {
				break
			}
		}
	}
	return nil
}

// stringIteration performs one element of a string instruction. All of its
// accesses are translated before any is performed, so a fault on the
// destination does not follow a device read of the source.
func (e *Emulator) stringIteration(s *State, m x86.Mode, inst *decode.Inst, src, dst *decode.Arg, n uint8) error {
	sacc, dacc := &e.accs.A[0], &e.accs.A[0]
	e.accs.N = 0
	if src != nil {
		if err := e.memAccess(s, m, inst, &src.Mem, uint16(n), true, false, true, sacc); err != nil {
			return err
		}
		e.accs.N = 1
		dacc = &e.accs.A[1]
	}
	if dst != nil {
		write := inst.Op == decode.MOVS || inst.Op == decode.STOS
		if err := e.memAccess(s, m, inst, &dst.Mem, uint16(n), !write, write, true, dacc); err != nil {
			return err
		}
		e.accs.N++
	}
	switch inst.Op {
	case decode.MOVS:
		b := e.buf2[:n]
		if err := e.readAcc(sacc, b); err != nil {
			return err
		}
		return e.writeAcc(dacc, b)
	case decode.STOS:
		return e.writeMem(dacc, n, s.regRead(x86.RAX, n, false))
	case decode.LODS:
		v, err := e.readMem(sacc, n)
		if err != nil {
			return err
		}
		s.regWrite(x86.RAX, n, false, v)
		return nil
	case decode.CMPS:
		a, err := e.readMem(sacc, n)
		if err != nil {
			return err
		}
		b, err := e.readMem(dacc, n)
		if err != nil {
			return err
		}
		_, s.RFLAGS = ALU(ALUCmp, n, a, b, s.RFLAGS)
		return nil
	case decode.SCAS:
		b, err := e.readMem(dacc, n)
		if err != nil {
			return err
		}
		_, s.RFLAGS = ALU(ALUCmp, n, s.regRead(x86.RAX, n, false), b, s.RFLAGS)
		return nil
	}
	return e.notEmulated(s, inst, "")
}
