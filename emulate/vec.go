package emulate

import (
	"walkvm/emulate/decode"
	"walkvm/x86"
)

// nm is #NM, device not available.
func nm(reason string) *x86.Exception {
	return &x86.Exception{Vector: x86.VectorNM, Reason: reason}
}

// vecState returns the loaded vector state or a *NotEmulatedError when the
// caller provides none.
func (e *Emulator) vecState(s *State, inst *decode.Inst) (*FPUState, error) {
	if s.Vec == nil {
		return nil, e.notEmulated(s, inst, "no vector state available")
	}
	f, err := s.Vec.State()
	if err != nil {
		return nil, err
	}
	return f, nil
}

// vecMoveSize is the number of bytes a vector move copies.
func vecMoveSize(inst *decode.Inst) uint8 {
	switch inst.Op {
	case decode.MOVSS:
		return 4
	case decode.MOVSD:
		return 8
	case decode.MOVD, decode.MOVQ, decode.VMOVD, decode.VMOVQ:
		for i := 0; i < 2; i++ {
			a := &inst.Args[i]
			switch a.Kind {
			case decode.ArgMem:
				return uint8(a.Mem.Size)
			case decode.ArgReg:
				return a.Size
			}
		}
		return 8 // MOVQ xmm, xmm and mm, mm
	}
	if inst.Prefix.VEX.Len != 0 && inst.Prefix.VEX.L != 0 {
		return 32
	}
	return 16
}

// execVecMove executes the SSE, AVX and MMX data moves: MOVD/MOVQ (XMM and
// MMX forms, and VMOVD/VMOVQ), MOVSS/MOVSD, MOVDQU/MOVDQA/MOVUPS/MOVAPS/MOVUPD/MOVAPD, the non-temporal
// MOVNTDQ/MOVNTPS/MOVNTPD/MOVNTDQA, LDDQU, and VEX-encoded
// VMOVDQU/VMOVDQA/VMOVUPS/VMOVAPS/VMOVUPD/VMOVAPD at 128 and 256 bits.
// A legacy-SSE write to an XMM register leaves bits 255:128 of the YMM
// register alone; a VEX.128 write zeroes them (SDM Vol. 1 §14.1.3); MOVD and
// MOVQ into an XMM register zero the bytes above the ones they move.
func (e *Emulator) execVecMove(s *State, m x86.Mode, inst *decode.Inst) error {
	vex := inst.Prefix.VEX.Len != 0
	dst, src := &inst.Args[0], &inst.Args[1]
	mmx := dst.Kind == decode.ArgMMX || src.Kind == decode.ArgMMX
	for _, a := range []*decode.Arg{dst, src} {
		switch a.Kind {
		case decode.ArgXMM, decode.ArgMMX, decode.ArgMem, decode.ArgReg:
		default:
			return e.notEmulated(s, inst, "operand kind "+a.Kind.String())
		}
	}
	// Availability checks (SDM Vol. 2 §2.5 tables 2-20 ff, Vol. 1 §14.3).
	switch {
	case vex:
		if m == x86.ModeReal || m == x86.ModeVM86 {
			return x86.UD("VEX in real or virtual-8086 mode")
		}
		if s.CR4&x86.CR4OSXSAVE == 0 || s.XCR0&6 != 6 {
			return x86.UD("AVX not enabled (CR4.OSXSAVE, XCR0)")
		}
		if inst.Prefix.VEX.VVVV != 0 {
			return x86.UD("VEX.vvvv must be 1111b")
		}
	case mmx:
		if s.CR0&x86.CR0EM != 0 {
			return x86.UD("MMX with CR0.EM set")
		}
	default:
		if s.CR0&x86.CR0EM != 0 || s.CR4&x86.CR4OSFXSR == 0 {
			return x86.UD("SSE not enabled (CR0.EM, CR4.OSFXSR)")
		}
	}
	if s.CR0&x86.CR0TS != 0 {
		return nm("CR0.TS set")
	}
	f, err := e.vecState(s, inst)
	if err != nil {
		return err
	}
	n := vecMoveSize(inst)
	switch n {
	case 4, 8, 16, 32:
	default:
		return e.notEmulated(s, inst, "operand size")
	}
	if n == 32 && !f.HasYMM || vex && dst.Kind == decode.ArgXMM && !f.HasYMM {
		return e.notEmulated(s, inst, "YMM state not loaded (use XSAVE)")
	}
	if mmx && f.FSW&FSWES != 0 {
		return e.x87Pending(s, inst)
	}
	// Resolve the memory operand (there is at most one).
	acc := &e.accs.A[0]
	e.accs.N = 0
	if mi := inst.MemArg(); mi >= 0 {
		a := &inst.Args[mi]
		write := mi == 0
		if err := e.accessAligned(s, m, a.Mem.Seg, ea(s, inst, &a.Mem), uint16(n), operandAlign(inst, a), !write, write, true, acc); err != nil {
			return err
		}
		e.accs.N = 1
	}
	b := e.buf2[:n]
	switch src.Kind {
	case decode.ArgXMM:
		r := src.Reg & 15
		copy(b, f.XMM[r][:])
		if n == 32 {
			copy(b[16:], f.YMMH[r][:])
		}
	case decode.ArgMMX:
		mmxEnter(f)
		copy(b, f.FPR[src.Reg&7][:8])
	case decode.ArgReg:
		v := s.regRead(src.Reg, n, false)
		for i := range b {
			b[i] = byte(v >> (8 * i))
		}
	case decode.ArgMem:
		if err := e.readAcc(acc, b); err != nil {
			return err
		}
	}
	switch dst.Kind {
	case decode.ArgXMM:
		r := dst.Reg & 15
		x := &f.XMM[r]
		copy(x[:], b)
		// MOVD and MOVQ zero the rest of the register; MOVSS and MOVSD
		// only when loading from memory (a register source merges).
		if n < 16 && (src.Kind != decode.ArgXMM || inst.Op == decode.MOVQ || inst.Op == decode.VMOVQ) {
			clear(x[n:])
		}
		switch {
		case n == 32:
			copy(f.YMMH[r][:], b[16:])
		case vex:
			f.YMMH[r] = [16]byte{}
		}
		s.Vec.MarkDirty()
	case decode.ArgMMX:
		mmxEnter(f)
		r := &f.FPR[dst.Reg&7]
		copy(r[:8], b)
		if n < 8 {
			clear(r[n:8])
		}
		r[8], r[9] = 0xFF, 0xFF // MMX writes set bits 79:64 (SDM Vol. 1 §9.5)
		s.Vec.MarkDirty()
	case decode.ArgReg:
		var v uint64
		for i := int(n) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		s.regWrite(dst.Reg, n, false, v)
	case decode.ArgMem:
		if err := e.writeAcc(acc, b); err != nil {
			return err
		}
	}
	if mmx {
		s.Vec.MarkDirty() // mmxEnter changed TOP and the tags
	}
	return nil
}

// mmxEnter performs the x87-to-MMX transition of any MMX instruction: TOP
// becomes 0 and every register is tagged valid (SDM Vol. 1 §9.5.1). FPR is
// kept in stack order, so it is rotated into physical order, which TOP = 0
// makes the same.
func mmxEnter(f *FPUState) {
	t := f.top()
	if t != 0 {
		var phys [8][16]byte
		for i := range uint(8) {
			phys[(t+i)&7] = f.FPR[i]
		}
		f.FPR = phys
		f.setTop(0)
	}
	f.FTWX = 0xFF
}

// x87Pending reports the pending unmasked x87 exception a waiting x87 (or
// MMX) instruction raises first: #MF with CR0.NE, else the legacy FERR#
// signal, which is not emulated.
func (e *Emulator) x87Pending(s *State, inst *decode.Inst) error {
	if s.CR0&x86.CR0NE != 0 {
		return &x86.Exception{Vector: x86.VectorMF, Reason: "pending unmasked x87 exception"}
	}
	return e.notEmulated(s, inst, "pending x87 exception with CR0.NE clear (FERR#)")
}
