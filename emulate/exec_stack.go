package emulate

import (
	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Stack instructions with more than one slot (PUSHA, POPA, ENTER, LEAVE),
// the flags image (PUSHF, POPF) and near branches (CALL, JMP, RET). Each
// resolves every stack access it makes before it writes anything, so a
// fault leaves memory alone; Execute restores the registers.

// stackAccess resolves size bytes of the stack at offset off (wrapped to
// the stack address size) into acc.
func (e *Emulator) stackAccess(s *State, m x86.Mode, off uint64, size uint16, write bool, acc *MemRef) error {
	return e.access(s, m, x86.SS, off&addrMask(s.stackAddrSize(m)), size, !write, write, true, acc)
}

// writeAt writes b at offset off within the resolved access acc (off+len(b)
// <= acc.Size).
func (e *Emulator) writeAt(acc *MemRef, off int, b []byte) error {
	p0 := int(acc.Pieces[0].Size)
	if off < p0 {
		k := min(len(b), p0-off)
		if err := e.Mem.WritePhys(acc.Pieces[0].GPA+uint64(off), b[:k]); err != nil {
			return err
		}
		b, off = b[k:], p0
	}
	if len(b) == 0 {
		return nil
	}
	return e.Mem.WritePhys(acc.Pieces[1].GPA+uint64(off-p0), b)
}

// writeSlot writes the n-byte value v at offset off within acc.
func (e *Emulator) writeSlot(acc *MemRef, off int, n uint8, v uint64) error {
	b := e.buf[:n]
	putLE(b, v)
	return e.writeAt(acc, off, b)
}

// execPusha pushes AX/EAX, CX, DX, BX, the original SP, BP, SI, DI (not
// valid in 64-bit mode; the decoder raises #UD there).
func (e *Emulator) execPusha(s *State, m x86.Mode, inst *decode.Inst) error {
	n := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	acc := &e.accs.A[0]
	top := (s.GPR[x86.RSP] - 8*uint64(n)) & addrMask(sa)
	if err := e.stackAccess(s, m, top, 8*uint16(n), true, acc); err != nil {
		return err
	}
	// Slot 7 (the highest address) holds AX, slot 0 DI.
	for i := range 8 {
		if err := e.writeSlot(acc, (7-i)*int(n), n, s.regRead(x86.Reg(i), n, false)); err != nil {
			return err
		}
	}
	s.regWriteAddr(x86.RSP, sa, top)
	return nil
}

// execPopa pops DI, SI, BP, (SP discarded), BX, DX, CX, AX.
func (e *Emulator) execPopa(s *State, m x86.Mode, inst *decode.Inst) error {
	n := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	acc := &e.accs.A[0]
	if err := e.stackAccess(s, m, s.GPR[x86.RSP], 8*uint16(n), false, acc); err != nil {
		return err
	}
	b := e.buf2[:8*n]
	if err := e.readAcc(acc, b); err != nil {
		return err
	}
	for i := range 8 {
		if i == int(x86.RSP) {
			continue
		}
		s.regWrite(x86.Reg(i), n, false, le(b[(7-i)*int(n):(8-i)*int(n)]))
	}
	s.regWriteAddr(x86.RSP, sa, s.GPR[x86.RSP]+8*uint64(n))
	return nil
}

// execEnter makes a stack frame (SDM Vol. 2A ENTER): push rBP, copy
// level-1 frame pointers from below rBP, push the new frame pointer, then
// rBP = the frame pointer and rSP drops by the allocation. Addresses and
// rBP/rSP wrap at the stack address size (like KVM's em_enter).
func (e *Emulator) execEnter(s *State, m x86.Mode, inst *decode.Inst) error {
	n := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	level := enterLevel(inst)
	alloc := uint64(inst.Args[0].Imm) & 0xFFFF
	slots := uint64(1)
	if level > 0 {
		slots = level + 1
	}
	rsp := s.GPR[x86.RSP]
	rbp := s.GPR[x86.RBP]
	top := (rsp - slots*uint64(n)) & addrMask(sa)
	wacc := &e.accs.A[0]
	if err := e.stackAccess(s, m, top, uint16(slots)*uint16(n), true, wacc); err != nil {
		return err
	}
	racc := &e.accs.A[1]
	if level > 1 {
		if err := e.stackAccess(s, m, rbp-(level-1)*uint64(n), uint16(level-1)*uint16(n), false, racc); err != nil {
			return err
		}
	}
	frame := (rsp - uint64(n)) & addrMask(sa)
	// The highest slot first: rBP.
	if err := e.writeSlot(wacc, int(slots-1)*int(n), n, rbp&sizeMask(n)); err != nil {
		return err
	}
	if level > 0 {
		for i := uint64(1); i < level; i++ {
			// [rBP - i*n] is at offset (level-1-i)*n within racc.
			b := e.buf2[:n]
			if err := e.readAt(racc, int(level-1-i)*int(n), b); err != nil {
				return err
			}
			if err := e.writeSlot(wacc, int(slots-1-i)*int(n), n, le(b)); err != nil {
				return err
			}
		}
		if err := e.writeSlot(wacc, 0, n, frame&sizeMask(n)); err != nil {
			return err
		}
	}
	// A write at the final stack pointer must be possible (SDM Vol. 2A
	// ENTER: #SS/#PF "if a write using the final value of the stack
	// pointer would cause" one). The CPU checks it after its pushes:
	// they stay in memory when it faults, the registers do not change.
	var probe MemRef
	if err := e.stackAccess(s, m, top-alloc, uint16(n), true, &probe); err != nil {
		return err
	}
	s.regWriteAddr(x86.RBP, sa, frame)
	s.regWriteAddr(x86.RSP, sa, top-alloc)
	return nil
}

// readAt reads len(b) bytes at offset off within the resolved access acc.
func (e *Emulator) readAt(acc *MemRef, off int, b []byte) error {
	p0 := int(acc.Pieces[0].Size)
	if off < p0 {
		k := min(len(b), p0-off)
		if err := e.Mem.ReadPhys(acc.Pieces[0].GPA+uint64(off), b[:k]); err != nil {
			return err
		}
		b, off = b[k:], p0
	}
	if len(b) == 0 {
		return nil
	}
	return e.Mem.ReadPhys(acc.Pieces[1].GPA+uint64(off-p0), b)
}

// execLeave: rSP = rBP (stack address size), then rBP = pop (operand size;
// a 16-bit pop writes BP only).
func (e *Emulator) execLeave(s *State, m x86.Mode, inst *decode.Inst) error {
	n := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	acc := &e.accs.A[0]
	if err := e.stackAccess(s, m, s.GPR[x86.RBP], uint16(n), false, acc); err != nil {
		return err
	}
	v, err := e.readMem(acc, n)
	if err != nil {
		return err
	}
	s.regWriteAddr(x86.RSP, sa, (s.GPR[x86.RBP]&addrMask(sa))+uint64(n))
	s.regWrite(x86.RBP, n, false, v)
	return nil
}

// flagsWritable is the RFLAGS bits POPF may change at all: the status
// flags, TF, IF, DF, IOPL, NT, AC and ID (not RF, VM, VIF, VIP, reserved).
const flagsWritable = x86.FlagsArith | x86.FlagTF | x86.FlagIF | x86.FlagDF | x86.FlagIOPL | x86.FlagNT | x86.FlagAC | x86.FlagID

// execPushf pushes RFLAGS with VM and RF cleared in the image (SDM Vol. 2B
// PUSHF); #GP(0) in virtual-8086 mode with IOPL < 3.
func (e *Emulator) execPushf(s *State, m x86.Mode, inst *decode.Inst) error {
	if m == x86.ModeVM86 && s.RFLAGS&x86.FlagIOPL != x86.FlagIOPL {
		return gp0(m, "pushf in virtual-8086 mode with IOPL < 3")
	}
	n := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	top := (s.GPR[x86.RSP] - uint64(n)) & addrMask(sa)
	acc := &e.accs.A[0]
	if err := e.stackAccess(s, m, top, uint16(n), true, acc); err != nil {
		return err
	}
	if err := e.writeMem(acc, n, s.RFLAGS&^(x86.FlagVM|x86.FlagRF)&sizeMask(n)); err != nil {
		return err
	}
	s.regWriteAddr(x86.RSP, sa, top)
	return nil
}

// execPopf pops RFLAGS (SDM Vol. 2B POPF): IOPL changes only at CPL 0, IF
// only when CPL <= IOPL; VM, VIF, VIP, RF and the reserved bits never; a
// 16-bit pop changes bits 15:0 only. In virtual-8086 mode IOPL must be 3
// (#GP(0); VME is not modelled).
func (e *Emulator) execPopf(s *State, m x86.Mode, inst *decode.Inst) error {
	iopl := s.RFLAGS & x86.FlagIOPL >> 12
	if m == x86.ModeVM86 && iopl != 3 {
		return gp0(m, "popf in virtual-8086 mode with IOPL < 3")
	}
	n := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	acc := &e.accs.A[0]
	if err := e.stackAccess(s, m, s.GPR[x86.RSP], uint16(n), false, acc); err != nil {
		return err
	}
	v, err := e.readMem(acc, n)
	if err != nil {
		return err
	}
	mask := uint64(flagsWritable)
	cpl := uint64(s.CPL())
	if m == x86.ModeVM86 || cpl > 0 {
		mask &^= x86.FlagIOPL
	}
	if m != x86.ModeVM86 && cpl > iopl {
		mask &^= x86.FlagIF
	}
	mask &= sizeMask(n)
	s.RFLAGS = s.RFLAGS&^mask | v&mask
	s.regWriteAddr(x86.RSP, sa, (s.GPR[x86.RSP]&addrMask(sa))+uint64(n))
	return nil
}

// branchTo sets RIP to target after the checks of a near branch: #GP(0)
// for a target beyond the CS limit (outside 64-bit mode) or non-canonical
// (in 64-bit mode). The target is already truncated to the operand size.
func branchTo(s *State, m x86.Mode, target uint64) error {
	if m == x86.ModeLong64 {
		if !x86.IsCanonical(target, s.LinearBits()) {
			return gp0(m, "branch to a non-canonical address")
		}
	} else if target > uint64(s.Seg[x86.CS].Limit) {
		return gp0(m, "branch beyond the CS limit")
	}
	s.RIP = target
	return nil
}

// execCallJmp executes near CALL and JMP, relative or indirect through a
// register or memory (SDM Vol. 2A CALL, JMP): the target is truncated to
// the operand size; CALL pushes the address of the next instruction. The
// push is resolved before anything is written.
func (e *Emulator) execCallJmp(s *State, m x86.Mode, inst *decode.Inst) error {
	n := inst.OpSize
	a := &inst.Args[0]
	next := nextRIP(s, inst)
	var target uint64
	switch a.Kind {
	case decode.ArgRel:
		target = next + uint64(a.Imm)
	case decode.ArgReg:
		target = s.regRead(a.Reg, n, false)
	case decode.ArgMem:
		if err := e.resolve(s, m, inst, a, uint16(n), true, false, &e.accs.A[0]); err != nil {
			return err
		}
		v, err := e.readMem(&e.accs.A[0], n)
		if err != nil {
			return err
		}
		target = v
	default:
		return e.notEmulated(s, inst, "operand kind "+a.Kind.String())
	}
	target &= sizeMask(n)
	if inst.Op == decode.JMP {
		return branchTo(s, m, target)
	}
	sn := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	top := (s.GPR[x86.RSP] - uint64(sn)) & addrMask(sa)
	acc := &e.accs.A[1]
	if err := e.stackAccess(s, m, top, uint16(sn), true, acc); err != nil {
		return err
	}
	if err := branchTo(s, m, target); err != nil {
		return err
	}
	if err := e.writeMem(acc, sn, next&sizeMask(sn)); err != nil {
		return err
	}
	s.regWriteAddr(x86.RSP, sa, top)
	return nil
}

// execRet executes near RET and RET imm16: pop the target, then release
// imm16 more bytes of stack.
func (e *Emulator) execRet(s *State, m x86.Mode, inst *decode.Inst) error {
	n := stackOpSize(m, inst)
	sa := s.stackAddrSize(m)
	acc := &e.accs.A[0]
	if err := e.stackAccess(s, m, s.GPR[x86.RSP], uint16(n), false, acc); err != nil {
		return err
	}
	target, err := e.readMem(acc, n)
	if err != nil {
		return err
	}
	if err := branchTo(s, m, target); err != nil {
		return err
	}
	rel := uint64(0)
	if inst.Args[0].Kind == decode.ArgImm {
		rel = uint64(inst.Args[0].Imm) & 0xFFFF
	}
	s.regWriteAddr(x86.RSP, sa, (s.GPR[x86.RSP]&addrMask(sa))+uint64(n)+rel)
	return nil
}
