package emulate

import (
	"encoding/binary"

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

// vecAlign is the alignment a vector move demands of its memory operand
// (#GP(0) otherwise), 0 for none.
func vecAlign(inst *decode.Inst) uint16 {
	switch inst.Op {
	case decode.MOVDQA, decode.MOVAPS, decode.MOVAPD, decode.MOVNTDQ, decode.MOVNTPS, decode.MOVNTPD, decode.MOVNTDQA:
		return 16
	case decode.VMOVDQA, decode.VMOVAPS, decode.VMOVAPD:
		if inst.Prefix.VEX.L != 0 {
			return 32
		}
		return 16
	}
	return 0
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
		if err := e.accessAligned(s, m, a.Mem.Seg, ea(s, inst, &a.Mem), uint16(n), vecAlign(inst), !write, write, true, acc); err != nil {
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

// execX87 executes FLD, FST and FSTP with a memory operand (m32fp, m64fp,
// m80fp) on the x87 stack, with the masked and unmasked responses of SDM
// Vol. 1 §8.5 and §4.9.1: stack overflow and underflow set IE, SF and C1
// and, when IM is masked, load or store the QNaN indefinite; a store rounds
// with FCW.RC and sets C1 when it rounded up; an unmasked IE, DE, OE or UE
// suppresses the load or store and sets ES so the next waiting x87
// instruction raises #MF.
func (e *Emulator) execX87(s *State, m x86.Mode, inst *decode.Inst) error {
	mi := inst.MemArg()
	if mi < 0 {
		return e.notEmulated(s, inst, "register form")
	}
	a := &inst.Args[mi]
	n := a.Mem.Size
	if n != 4 && n != 8 && n != 10 {
		return e.notEmulated(s, inst, "operand size")
	}
	if s.CR0&(x86.CR0EM|x86.CR0TS) != 0 {
		return nm("x87 with CR0.EM or CR0.TS set")
	}
	f, err := e.vecState(s, inst)
	if err != nil {
		return err
	}
	if f.FSW&FSWES != 0 {
		return e.x87Pending(s, inst)
	}
	load := inst.Op == decode.FLD
	acc := &e.accs.A[0]
	if err := e.resolve(s, m, inst, a, n, load, !load, acc); err != nil {
		return err
	}
	e.accs.N = 1
	b := e.buf2[:n]
	if load {
		if err := e.readAcc(acc, b); err != nil {
			return err
		}
	}
	// Last instruction and data pointers and opcode (SDM Vol. 1 §8.1.8).
	f.LastOpcode = uint16(inst.Opcode&7)<<8 | uint16(inst.ModRM)
	f.LastIP = s.RIP
	f.LastDP = acc.Offset
	s.Vec.MarkDirty()
	le := binary.LittleEndian
	if load {
		var v Ext80
		var exc uint16
		switch n {
		case 4:
			v, exc = Float32ToExt80(le.Uint32(b))
		case 8:
			v, exc = Float64ToExt80(le.Uint64(b))
		default:
			v = Ext80FromBytes(b)
		}
		if !f.stEmpty(7) { // the register that would become ST(0) is in use
			f.FSW |= FSWC1
			if f.x87Exception(FSWIE | FSWSF) {
				return nil
			}
			f.push(Ext80Indefinite)
			return nil
		}
		f.FSW &^= FSWC1
		if f.x87Exception(exc) {
			return nil
		}
		f.push(v)
		return nil
	}
	pop := inst.Op == decode.FSTP
	rc := uint8(f.FCW>>10) & 3
	var exc uint16
	var up bool
	if f.stEmpty(0) {
		f.FSW &^= FSWC1
		if f.x87Exception(FSWIE | FSWSF) {
			return nil
		}
		switch n {
		case 4:
			le.PutUint32(b, uint32(fmt32.indef))
		case 8:
			le.PutUint64(b, fmt64.indef)
		default:
			ib := Ext80Indefinite.Bytes()
			copy(b, ib[:])
		}
	} else {
		v := f.ST(0)
		switch n {
		case 4:
			var r uint32
			r, exc, up = Ext80ToFloat32(v, rc)
			le.PutUint32(b, r)
		case 8:
			var r uint64
			r, exc, up = Ext80ToFloat64(v, rc)
			le.PutUint64(b, r)
		default:
			bb := v.Bytes()
			copy(b, bb[:])
		}
		if exc&^f.FCW&(FSWIE|FSWDE|FSWOE|FSWUE) != 0 {
			// Unmasked: nothing is stored and nothing popped.
			f.x87Exception(exc)
			return nil
		}
	}
	if err := e.writeAcc(acc, b); err != nil {
		return err
	}
	f.x87Exception(exc)
	if up {
		f.FSW |= FSWC1
	} else {
		f.FSW &^= FSWC1
	}
	if pop {
		f.pop()
	}
	return nil
}
