package emulate

import (
	"encoding/binary"

	"walkvm/emulate/decode"
	"walkvm/emulate/internal/hostfpu"
	"walkvm/x86"
)

// SSE, MMX and AVX instructions with a memory operand beyond the plain
// moves run on the host's own vector unit: walkvm re-encodes the
// instruction with its memory operand at [RDI] (a buffer holding the
// guest's operand) and a GPR operand in RBX, loads the guest's x87/SSE/AVX
// state with XRSTOR, runs it from an executable page (hostfpu.JIT), and
// takes the state back. The result is the CPU's own, bit for bit.
//
// SIMD floating-point exceptions: the host runs with every exception masked
// and the guest's rounding control and DAZ (FTZ too, unless the guest
// unmasks underflow), so it cannot fault. The flags it raised decide: none
// unmasked in the guest's MXCSR, the result stands and the flags join
// MXCSR; one unmasked, the destination is not written, MXCSR gets the
// pre-computation flags (IE, DE, ZE) when one of those is unmasked, all
// raised flags otherwise (SDM Vol. 1 §11.5.1), and the instruction raises
// #XM (#UD with CR4.OSXMMEXCPT clear). An element with an unmasked overflow
// or underflow adds no PE: walkvm drops PE for scalar operands and keeps
// it for packed ones (the masked run cannot tell whether another element
// was inexact). An unmasked underflow is detected with a second run with
// FTZ set, which flags tiny results that are exact too. DPPS/DPPD stop at
// the stage (multiply or add) of an unmasked exception and report that
// stage's flags; walkvm reports all stages'.
//
// Alignment: a legacy SSE instruction with a 16-byte memory operand needs
// it 16-byte aligned (#GP(0)), except the SSE4.2 string compares; VEX
// instructions do not, except the non-temporal moves.

// vecHostSupported reports whether the host has the instruction's group.
func vecHostSupported(f *hostfpu.Features, inst *decode.Inst) bool {
	if inst.Prefix.VEX.Len != 0 {
		if !f.AVX {
			return false
		}
		if inst.Prefix.VEX.L != 0 {
			switch {
			case inst.Map == decode.Map0F38 && inst.Opcode >= 0xDC && inst.Opcode <= 0xDF:
				return f.VAES
			case inst.Map == decode.Map0F3A && inst.Opcode == 0x44:
				return f.VPCLMUL
			}
		}
		switch {
		case inst.Map == decode.Map0F38 && inst.Opcode >= 0xDB && inst.Opcode <= 0xDF, inst.Map == decode.Map0F3A && inst.Opcode == 0xDF:
			return f.AES
		case inst.Map == decode.Map0F3A && inst.Opcode == 0x44:
			return f.PCLMUL
		}
		return true
	}
	switch inst.Op {
	case decode.AESIMC, decode.AESENC, decode.AESENCLAST, decode.AESDEC, decode.AESDECLAST, decode.AESKEYGENASSIST:
		return f.SSE && f.AES
	case decode.PCLMULQDQ:
		return f.SSE && f.PCLMUL
	case decode.SHA1NEXTE, decode.SHA1MSG1, decode.SHA1MSG2, decode.SHA256RNDS2, decode.SHA256MSG1, decode.SHA256MSG2, decode.SHA1RNDS4:
		return f.SSE && f.SHA
	}
	return f.SSE
}

// vecAligned reports whether inst's memory operand of n bytes must be
// aligned on n.
func vecAligned(inst *decode.Inst, n uint16) bool {
	if inst.Prefix.VEX.Len != 0 {
		switch {
		case inst.Map == decode.Map0F && (inst.Opcode == 0x2B || inst.Opcode == 0xE7), // VMOVNTPS/PD, VMOVNTDQ
			inst.Map == decode.Map0F38 && inst.Opcode == 0x2A: // VMOVNTDQA
			return true
		}
		return false
	}
	switch inst.Op {
	case decode.PCMPESTRI, decode.PCMPESTRM, decode.PCMPISTRI, decode.PCMPISTRM:
		return false
	}
	return n == 16
}

// reencode writes inst's encoding for the host into b: the mandatory
// prefixes, REX (W, R) or a three-byte VEX, the opcode, ModRM with the
// memory operand at [RDI] (and ModRM.reg 3, RBX, when gpr), and the
// immediate.
func reencode(b []byte, inst *decode.Inst, m x86.Mode, gpr bool) []byte {
	p := &inst.Prefix
	reg := inst.ModRM >> 3 & 7
	rbit := p.R()
	if gpr {
		reg, rbit = 3, false
	}
	if p.VEX.Len != 0 {
		v := &p.VEX
		vvvv := v.VVVV
		if m != x86.ModeLong64 {
			vvvv &= 7
		}
		b1 := byte(0x60) | byte(inst.Map) // X, B not extended
		if !rbit {
			b1 |= 0x80
		}
		b2 := (^vvvv&15)<<3 | v.L<<2 | v.PP
		if v.W {
			b2 |= 0x80
		}
		b = append(b, 0xC4, b1, b2)
	} else {
		if p.OpSize {
			b = append(b, 0x66)
		}
		switch {
		case p.Repne:
			b = append(b, 0xF2)
		case p.Rep:
			b = append(b, 0xF3)
		}
		rex := byte(0)
		if p.W() && m == x86.ModeLong64 {
			rex |= 8
		}
		if rbit {
			rex |= 4
		}
		if rex != 0 {
			b = append(b, 0x40|rex)
		}
		switch inst.Map {
		case decode.Map0F:
			b = append(b, 0x0F)
		case decode.Map0F38:
			b = append(b, 0x0F, 0x38)
		case decode.Map0F3A:
			b = append(b, 0x0F, 0x3A)
		}
	}
	b = append(b, inst.Opcode, reg<<3|7)
	if inst.ImmLen == 1 {
		imm, found := byte(0), false
		for i := range inst.Args {
			if a := &inst.Args[i]; a.Kind == decode.ArgImm {
				imm, found = byte(a.Imm), true
			}
		}
		if !found { // the register in imm8[7:4] (VBLENDVPS and friends)
			for i := len(inst.Args) - 1; i >= 0; i-- {
				if a := &inst.Args[i]; a.Kind == decode.ArgXMM {
					imm = byte(a.Reg) << 4
					break
				}
			}
		}
		b = append(b, imm)
	}
	return b
}

// gprOperand returns the GPR operand ModRM.reg names, if any.
func gprOperand(inst *decode.Inst) (*decode.Arg, bool) {
	for i := range inst.Args {
		a := &inst.Args[i]
		if a.Kind == decode.ArgReg && a.Reg&7 == x86.Reg(inst.ModRM>>3&7) {
			return a, true
		}
	}
	return nil, false
}

// execVecHost runs an SSE, MMX or AVX instruction with a memory operand on
// the host.
func (e *Emulator) execVecHost(s *State, m x86.Mode, inst *decode.Inst) error {
	mi := inst.MemArg()
	if mi < 0 {
		return e.notEmulated(s, inst, "register form")
	}
	a := &inst.Args[mi]
	vex := inst.Prefix.VEX.Len != 0
	if a.Mem.VSIB {
		return e.notEmulated(s, inst, "gather")
	}
	mmx := false
	for i := range inst.Args {
		mmx = mmx || inst.Args[i].Kind == decode.ArgMMX
	}
	switch {
	case vex:
		if m == x86.ModeReal || m == x86.ModeVM86 {
			return x86.UD("VEX in real or virtual-8086 mode")
		}
		if s.CR4&x86.CR4OSXSAVE == 0 || s.XCR0&6 != 6 {
			return x86.UD("AVX not enabled (CR4.OSXSAVE, XCR0)")
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
	if vex && inst.Map == decode.Map0F && inst.Opcode == 0xAE { // VLDMXCSR, VSTMXCSR
		return e.execXState(s, m, inst)
	}
	if !e.vfeatOK {
		e.vfeat, e.vfeatOK = hostfpu.HostFeatures(), true
	}
	if !hostfpu.Available || !vecHostSupported(&e.vfeat, inst) {
		return e.notEmulated(s, inst, "the host cannot run it")
	}
	f, err := e.vecState(s, inst)
	if err != nil {
		return err
	}
	if vex && !f.HasYMM {
		return e.notEmulated(s, inst, "YMM state not loaded (use XSAVE)")
	}
	if mmx && f.x87PendingExc() {
		return e.x87Pending(s, inst)
	}
	n := a.Mem.Size
	if n == 0 || n > 64 {
		return e.notEmulated(s, inst, "operand size")
	}
	var align uint16
	if vecAligned(inst, n) {
		align = n
	}
	read, write := a.Mem.Use.Reads(), a.Mem.Use.Writes()
	acc := &e.accs.A[0]
	if err := e.accessAligned(s, m, a.Mem.Seg, ea(s, inst, &a.Mem), n, align, read, write, true, acc); err != nil {
		return err
	}
	e.accs.N = 1
	c := &e.vctx
	clear(c.Mem[:])
	if read {
		if err := e.readAcc(acc, c.Mem[:n]); err != nil {
			return err
		}
	}
	g, hasGPR := gprOperand(inst)
	code := reencode(e.vcode[:0], inst, m, hasGPR)
	// The state, with every SIMD exception masked and the flags clear.
	clear(c.Img[:XSAVEMinSize])
	if err := f.MarshalXSAVE(c.Img[:]); err != nil {
		return err
	}
	guest := f.MXCSR
	run := guest&^0x3F | 0x1F80
	if guest&(1<<11) == 0 { // underflow unmasked: no flush to zero
		run &^= 0x8000
	}
	binary.LittleEndian.PutUint32(c.Img[24:], run)
	c.GPR = [4]uint64{s.GPR[x86.RAX], s.GPR[x86.RCX], s.GPR[x86.RDX], 0}
	if hasGPR {
		c.GPR[3] = s.GPR[g.Reg&15]
	}
	c.Flags = 0x202 | s.RFLAGS&x86.FlagsArith
	e.vmem = c.Mem
	if err := e.jit.Vec(code, c); err != nil {
		return e.notEmulated(s, inst, err.Error())
	}
	raised := binary.LittleEndian.Uint32(c.Img[24:]) & 0x3F
	if guest&(1<<11) == 0 && raised&(1<<4) == 0 {
		// Underflow unmasked and not flagged: an exact tiny result does
		// not raise a masked underflow, but an unmasked one it does.
		// A second run with FTZ flags any tiny result.
		if tiny, err := e.vecTiny(code, c, f, s, hasGPR, g, run); err != nil {
			return err
		} else if tiny {
			raised |= 1 << 4
		}
	}
	if unmasked := raised &^ (guest >> 7) & 0x3F; unmasked != 0 {
		pre := raised & 7 // IE, DE, ZE
		flags := raised
		switch {
		case pre&unmasked != 0:
			flags = pre
		case unmasked&(1<<3|1<<4) != 0 && n <= 8:
			// An unmasked overflow or underflow delivers no rounded
			// result, so its element adds no PE (checked against the
			// host). With one element (a scalar operand) PE goes; a
			// packed instruction keeps it, which is right when another
			// element was inexact.
			flags &^= 1 << 5
		}
		f.MXCSR = guest | flags
		if mmx {
			mmxEnter(f) // the transition to MMX happens before the fault
		}
		s.Vec.MarkDirty()
		e.keepVec = true
		if s.CR4&x86.CR4OSXMMEXCPT == 0 {
			return x86.UD("unmasked SIMD floating-point exception with CR4.OSXMMEXCPT clear")
		}
		return &x86.Exception{Vector: x86.VectorXM, Reason: "unmasked SIMD floating-point exception"}
	}
	ptr := [3]uint64{uint64(f.LastOpcode), f.LastIP, f.LastDP}
	mask := f.MXCSRMask
	if err := f.UnmarshalXSAVE(c.Img[:]); err != nil {
		return err
	}
	f.LastOpcode, f.LastIP, f.LastDP = uint16(ptr[0]), ptr[1], ptr[2]
	f.MXCSR, f.MXCSRMask = guest|raised, mask
	s.Vec.MarkDirty()
	s.GPR[x86.RAX], s.GPR[x86.RCX], s.GPR[x86.RDX] = c.GPR[0], c.GPR[1], c.GPR[2]
	if hasGPR {
		s.GPR[g.Reg&15] = c.GPR[3]
	}
	s.RFLAGS = s.RFLAGS&^x86.FlagsArith | c.Flags&x86.FlagsArith
	if !write {
		return nil
	}
	if sz, maskReg, ok := maskedStore(inst, m); ok {
		// Only the elements whose mask bit (the element's sign bit in
		// the vvvv register) is set are written.
		for i := uint16(0); i < n/sz; i++ {
			lane := f.XMM[maskReg][:]
			off := i * sz
			if off >= 16 {
				lane, off = f.YMMH[maskReg][:], off-16
			}
			if lane[off+sz-1]&0x80 == 0 {
				continue
			}
			if err := e.writeAt(acc, int(i*sz), c.Mem[i*sz:(i+1)*sz]); err != nil {
				return err
			}
		}
		return nil
	}
	return e.writeAcc(acc, c.Mem[:n])
}

// vecTiny runs the instruction again, from the same state, with FTZ set and
// underflow masked: UE then says whether a result was tiny, exact or not.
// c is left as the first run left it.
func (e *Emulator) vecTiny(code []byte, c *hostfpu.VecContext, f *FPUState, s *State, hasGPR bool, g *decode.Arg, run uint32) (bool, error) {
	t := &e.vctx2
	t.Mem = e.vmem
	clear(t.Img[:XSAVEMinSize])
	if err := f.MarshalXSAVE(t.Img[:]); err != nil {
		return false, err
	}
	binary.LittleEndian.PutUint32(t.Img[24:], run|0x8000|1<<11)
	t.GPR = [4]uint64{s.GPR[x86.RAX], s.GPR[x86.RCX], s.GPR[x86.RDX], 0}
	if hasGPR {
		t.GPR[3] = s.GPR[g.Reg&15]
	}
	t.Flags = 0x202 | s.RFLAGS&x86.FlagsArith
	if err := e.jit.Vec(code, t); err != nil {
		return false, err
	}
	return binary.LittleEndian.Uint32(t.Img[24:])&(1<<4) != 0, nil
}

// maskedStore reports the element size and mask register of VMASKMOVPS/PD
// and VPMASKMOVD/Q stores.
func maskedStore(inst *decode.Inst, m x86.Mode) (uint16, x86.Reg, bool) {
	if inst.Prefix.VEX.Len == 0 || inst.Map != decode.Map0F38 {
		return 0, 0, false
	}
	mask := x86.Reg(inst.Prefix.VEX.VVVV & 15)
	if m != x86.ModeLong64 {
		mask &= 7
	}
	switch inst.Opcode {
	case 0x2E:
		return 4, mask, true
	case 0x2F:
		return 8, mask, true
	case 0x8E:
		if inst.Prefix.VEX.W {
			return 8, mask, true
		}
		return 4, mask, true
	}
	return 0, 0, false
}
