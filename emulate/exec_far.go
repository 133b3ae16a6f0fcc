package emulate

import (
	"errors"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Far CALL, JMP and RET to a code segment at the current privilege level
// (SDM Vol. 2A CALL, JMP; Vol. 2B RET: "far call to the same privilege
// level", "far return to the same privilege level"). Call gates, task
// gates, TSSs and returns to an outer privilege level are not executed.

// errGate marks a far branch walkvm does not execute.
var errGate = errors.New("far branch through a gate, to a TSS or to another privilege level")

// loadCS computes the code segment a far branch to sel loads: in real and
// virtual-8086 mode the base is sel*16; in protected mode the descriptor
// must be a present code segment, conforming with DPL <= CPL or
// non-conforming with RPL <= CPL and DPL = CPL, and not both L and D in
// IA-32e mode. CS.RPL becomes the CPL.
func (e *Emulator) loadCS(s *State, m x86.Mode, sel uint16) (x86.Segment, error) {
	cur := s.Seg[x86.CS]
	switch m {
	case x86.ModeReal:
		cur.Selector, cur.Base = sel, uint64(sel)<<4
		return cur, nil
	case x86.ModeVM86:
		return x86.Segment{Selector: sel, Base: uint64(sel) << 4, Limit: 0xFFFF, Type: 0xB, S: true, DPL: 3, Present: true}, nil
	}
	if sel&^3 == 0 {
		return cur, gp0(m, "far branch to a null selector")
	}
	var d descriptor
	if err := e.readDescriptor(s, m, sel, &d); err != nil {
		return cur, err
	}
	ns := d.seg
	cpl := s.CPL()
	switch {
	case !ns.S:
		return cur, errGate
	case ns.Type&8 == 0:
		return cur, selFault(x86.VectorGP, sel, "far branch to a data segment")
	case ns.Type&4 != 0 && ns.DPL > cpl:
		return cur, selFault(x86.VectorGP, sel, "conforming code segment with DPL > CPL")
	case ns.Type&4 == 0 && (uint8(sel&3) > cpl || ns.DPL != cpl):
		return cur, selFault(x86.VectorGP, sel, "non-conforming code segment privilege check")
	case !ns.Present:
		return cur, selFault(x86.VectorNP, sel, "code segment not present")
	case m.IA32e() && ns.L && ns.DB:
		return cur, selFault(x86.VectorGP, sel, "code segment with both L and D")
	}
	if ns.Type&1 == 0 {
		ns.Type |= 1
		e.buf[0] = byte(d.raw>>40) | 1
		if err := e.implicitRW(m, d.addr+5, e.buf[:1], true); err != nil {
			return cur, err
		}
	}
	ns.Selector = sel&^3 | uint16(cpl)
	return ns, nil
}

// farTarget checks the offset against the new code segment: canonical for
// a 64-bit segment in IA-32e mode, within the limit otherwise (#GP(0)).
func farTarget(s *State, m x86.Mode, cs *x86.Segment, off uint64) error {
	if m.IA32e() && cs.L {
		if !x86.IsCanonical(off, s.LinearBits()) {
			return gp0(m, "far branch to a non-canonical offset")
		}
		return nil
	}
	if off > uint64(cs.Limit) {
		return gp0(m, "far branch beyond the code segment limit")
	}
	return nil
}

// farPointer reads the selector and offset of a far CALL or JMP: ptr16:16/32
// immediates, or m16:16/32/64 (offset, then selector).
func (e *Emulator) farPointer(s *State, m x86.Mode, inst *decode.Inst) (sel uint16, off uint64, err error) {
	n := inst.OpSize
	a := &inst.Args[0]
	switch a.Kind {
	case decode.ArgImm: // ptr16:16/32: selector in Args[0], offset in Args[1]
		return uint16(a.Imm), uint64(inst.Args[1].Imm) & sizeMask(inst.Args[1].Size), nil
	case decode.ArgMem:
		acc := &e.accs.A[0]
		if err := e.resolve(s, m, inst, a, uint16(n)+2, true, false, acc); err != nil {
			return 0, 0, err
		}
		e.accs.N = 1
		b := e.buf2[:n+2]
		if err := e.readAcc(acc, b); err != nil {
			return 0, 0, err
		}
		return uint16(le(b[n : n+2])), le(b[:n]), nil
	}
	return 0, 0, x86.UD("far branch without a far pointer")
}

// execFar executes far JMP and CALL.
func (e *Emulator) execFar(s *State, m x86.Mode, inst *decode.Inst) error {
	sel, off, err := e.farPointer(s, m, inst)
	if err != nil {
		return err
	}
	cs, err := e.loadCS(s, m, sel)
	if errors.Is(err, errGate) {
		return e.notEmulated(s, inst, err.Error())
	}
	if err != nil {
		return err
	}
	if err := farTarget(s, m, &cs, off); err != nil {
		return err
	}
	if inst.Op == decode.CALLF {
		// Push CS, then the return offset, each a slot of the operand
		// size (the selector zero-extended).
		n := inst.OpSize
		sa := s.stackAddrSize(m)
		top := (s.GPR[x86.RSP] - 2*uint64(n)) & addrMask(sa)
		acc := &e.accs.A[1]
		if err := e.stackAccess(s, m, top, 2*uint16(n), true, acc); err != nil {
			return err
		}
		if err := e.writeSlot(acc, int(n), n, uint64(s.Seg[x86.CS].Selector)); err != nil {
			return err
		}
		if err := e.writeSlot(acc, 0, n, nextRIP(s, inst)&sizeMask(n)); err != nil {
			return err
		}
		s.regWriteAddr(x86.RSP, sa, top)
	}
	s.Seg[x86.CS] = cs
	s.RIP = off
	return nil
}

// execRetf executes a far return to the same privilege level: pop the
// offset and CS (slots of the operand size), then release imm16 bytes. A
// selector whose RPL is below the CPL is #GP(selector).
func (e *Emulator) execRetf(s *State, m x86.Mode, inst *decode.Inst) error {
	n := inst.OpSize
	sa := s.stackAddrSize(m)
	acc := &e.accs.A[0]
	if err := e.stackAccess(s, m, s.GPR[x86.RSP], 2*uint16(n), false, acc); err != nil {
		return err
	}
	b := e.buf2[:2*n]
	if err := e.readAcc(acc, b); err != nil {
		return err
	}
	off, sel := le(b[:n]), uint16(le(b[n:n+2]))
	if m.Protected() {
		switch {
		case uint8(sel&3) > s.CPL():
			return e.notEmulated(s, inst, "far return to an outer privilege level")
		case uint8(sel&3) < s.CPL() && sel&^3 != 0:
			return selFault(x86.VectorGP, sel, "far return to an inner privilege level")
		}
	}
	rel := uint64(0)
	if inst.Args[0].Kind == decode.ArgImm {
		rel = uint64(inst.Args[0].Imm) & 0xFFFF
	}
	cs, err := e.loadCS(s, m, sel)
	if errors.Is(err, errGate) {
		return e.notEmulated(s, inst, err.Error())
	}
	if err != nil {
		return err
	}
	if err := farTarget(s, m, &cs, off); err != nil {
		return err
	}
	s.Seg[x86.CS] = cs
	s.RIP = off
	s.regWriteAddr(x86.RSP, sa, (s.GPR[x86.RSP]&addrMask(sa))+2*uint64(n)+rel)
	return nil
}
