package emulate

import (
	"encoding/binary"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// The state instructions: LDMXCSR/STMXCSR, FXSAVE/FXRSTOR (SDM Vol. 1
// §10.5.1, Table 10-2 and 10-3) and XSAVE/XSAVEOPT/XRSTOR of the
// components walkvm holds (x87, SSE, AVX: XCR0 bits 0-2; SDM Vol. 1
// Chapter 13, standard format only).

// mxcsrMask is the MXCSR_MASK of the state (the processor's supported
// MXCSR bits): FFBFH when the image gave none (SDM Vol. 1 §11.6.6).
func (f *FPUState) mxcsrMask() uint32 {
	if f.MXCSRMask == 0 {
		return 0xFFBF
	}
	return f.MXCSRMask
}

// sseAvailable checks what every SSE instruction checks: CR0.EM or
// CR4.OSFXSR clear is #UD, CR0.TS is #NM.
func sseAvailable(s *State) error {
	if s.CR0&x86.CR0EM != 0 || s.CR4&x86.CR4OSFXSR == 0 {
		return x86.UD("SSE not enabled (CR0.EM, CR4.OSFXSR)")
	}
	if s.CR0&x86.CR0TS != 0 {
		return nm("CR0.TS set")
	}
	return nil
}

// execXState executes LDMXCSR, STMXCSR, FXSAVE, FXRSTOR, XSAVE, XSAVEOPT
// and XRSTOR with their memory operand.
func (e *Emulator) execXState(s *State, m x86.Mode, inst *decode.Inst) error {
	mi := inst.MemArg()
	if mi < 0 {
		return x86.UD(inst.Op.String() + " with a register operand")
	}
	a := &inst.Args[mi]
	op := inst.Op
	if inst.Prefix.VEX.Len != 0 { // VLDMXCSR, VSTMXCSR (VEX 0F AE /2 /3)
		op = decode.LDMXCSR
		if inst.ModRM>>3&7 == 3 {
			op = decode.STMXCSR
		}
	}
	xs := op == decode.XSAVE || op == decode.XSAVEOPT || op == decode.XRSTOR
	switch {
	case xs:
		if s.CR4&x86.CR4OSXSAVE == 0 {
			return x86.UD("XSAVE with CR4.OSXSAVE clear")
		}
		if s.CR0&x86.CR0TS != 0 {
			return nm("CR0.TS set")
		}
	case op == decode.FXSAVE || op == decode.FXRSTOR:
		// CR4.OSFXSR only decides whether the SSE part is saved; CR0.EM
		// and CR0.TS are #NM (SDM Vol. 2A FXSAVE).
		if s.CR0&(x86.CR0EM|x86.CR0TS) != 0 {
			return nm("FXSAVE with CR0.EM or CR0.TS set")
		}
	default:
		if err := sseAvailable(s); err != nil {
			return err
		}
	}
	f, err := e.vecState(s, inst)
	if err != nil {
		return err
	}
	var rfbm uint64
	size := a.Mem.Size
	align := uint16(16)
	switch {
	case xs:
		rfbm = s.XCR0 & (s.GPR[x86.RDX]<<32 | s.GPR[x86.RAX]&0xFFFFFFFF)
		if rfbm&^7 != 0 {
			return e.notEmulated(s, inst, "state components beyond x87, SSE and AVX")
		}
		size, align = XSAVEMinSize, 64
	case op == decode.LDMXCSR || op == decode.STMXCSR:
		size, align = 4, 0
	}
	load := op == decode.LDMXCSR || op == decode.FXRSTOR || op == decode.XRSTOR
	// The saves write only parts of their area (and XSAVE only part of
	// the header): they read it first and write it back whole.
	rmw := !load && op != decode.STMXCSR
	acc := &e.accs.A[0]
	if err := e.accessAligned(s, m, a.Mem.Seg, operandOffset(s, inst, a), size, align, load || rmw, !load, true, acc); err != nil {
		return err
	}
	e.accs.N = 1
	b := e.buf2[:size]
	if load || rmw {
		if err := e.readAcc(acc, b); err != nil {
			return err
		}
	}
	le := binary.LittleEndian
	w64 := inst.Prefix.W() && m == x86.ModeLong64
	switch op {
	case decode.LDMXCSR:
		v := le.Uint32(b)
		if v&^f.mxcsrMask() != 0 {
			return gp0(m, "reserved MXCSR bits")
		}
		f.MXCSR = v
		s.Vec.MarkDirty()
		return nil
	case decode.STMXCSR:
		le.PutUint32(b, f.MXCSR)
		return e.writeAcc(acc, b)
	case decode.FXSAVE:
		f.fxsaveLegacy(s, m, b, w64, 7)
		return e.writeAcc(acc, b)
	case decode.FXRSTOR:
		if le.Uint32(b[24:])&^f.mxcsrMask() != 0 {
			return gp0(m, "reserved MXCSR bits")
		}
		f.fxrstorLegacy(s, m, b, w64, 7)
		s.Vec.MarkDirty()
		return nil
	case decode.XSAVE, decode.XSAVEOPT:
		f.fxsaveLegacy(s, m, b, w64, rfbm)
		bv := le.Uint64(b[xsaveHeader:])
		inuse := f.xinuse()
		bv = bv&^rfbm | inuse&rfbm
		le.PutUint64(b[xsaveHeader:], bv)
		if rfbm&xstateAVX != 0 {
			for i := range f.YMMH {
				copy(b[xsaveYMMHi128+16*i:], f.YMMH[i][:])
			}
		}
		return e.writeAcc(acc, b)
	case decode.XRSTOR:
		bv, comp := le.Uint64(b[xsaveHeader:]), le.Uint64(b[xsaveHeader+8:])
		if comp&xcompCompacted != 0 {
			// The compacted format (XSAVEC) places the components it
			// has in XCOMP_BV order after the header: for x87, SSE and
			// AVX that is the standard layout.
			if comp&^xcompCompacted&^s.XCR0 != 0 || bv&^comp != 0 || !allZero(b[xsaveHeader+16:xsaveHeader+64]) {
				return gp0(m, "XRSTOR compacted header: XCOMP_BV beyond XCR0, XSTATE_BV beyond XCOMP_BV or reserved bytes set")
			}
			if comp&^xcompCompacted&^7 != 0 {
				return e.notEmulated(s, inst, "compacted area with components beyond x87, SSE and AVX")
			}
		} else if bv&^s.XCR0 != 0 || comp != 0 || !allZero(b[xsaveHeader+16:xsaveHeader+24]) {
			// The standard format checks header bytes 23:8 only (SDM
			// Vol. 1 §13.8.1).
			return gp0(m, "XRSTOR header: XSTATE_BV beyond XCR0, or bytes 23:8 not zero")
		}
		if rfbm&(xstateSSE|xstateAVX) != 0 && le.Uint32(b[24:])&^f.mxcsrMask() != 0 {
			return gp0(m, "reserved MXCSR bits")
		}
		f.fxrstorLegacy(s, m, b, w64, rfbm&bv|rfbm&(xstateSSE|xstateAVX)<<8)
		if rfbm&xstateX87 != 0 && bv&xstateX87 == 0 {
			f.finit()
			f.FPR = [8][16]byte{}
		}
		if rfbm&xstateSSE != 0 && bv&xstateSSE == 0 {
			f.XMM = [16][16]byte{}
		}
		if rfbm&xstateAVX != 0 {
			if bv&xstateAVX != 0 {
				for i := range f.YMMH {
					copy(f.YMMH[i][:], b[xsaveYMMHi128+16*i:])
				}
			} else {
				f.YMMH = [16][16]byte{}
			}
		}
		s.Vec.MarkDirty()
		return nil
	}
	return e.notEmulated(s, inst, "")
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// xinuse is which of the x87, SSE and AVX components are not in their
// initial configuration (SDM Vol. 1 §13.6): XSAVE writes it as XSTATE_BV.
func (f *FPUState) xinuse() uint64 {
	var u uint64
	if f.FCW != fcwInit || f.FSW != 0 || f.FTWX != 0 || f.LastOpcode != 0 || f.LastIP != 0 || f.LastDP != 0 || f.FPR != [8][16]byte{} {
		u |= xstateX87
	}
	if f.XMM != [16][16]byte{} {
		u |= xstateSSE
	}
	if f.YMMH != [16][16]byte{} {
		u |= xstateAVX
	}
	return u
}

// xmmCount is the number of XMM registers a legacy-area save or restore
// covers: 16 in 64-bit mode, 8 elsewhere.
func xmmCount(m x86.Mode) int {
	if m == x86.ModeLong64 {
		return 16
	}
	return 8
}

// fxsaveLegacy writes the legacy region of an FXSAVE or XSAVE image: the
// x87 part when parts has bit 0, the XMM registers with bit 1, MXCSR and
// MXCSR_MASK with bit 1 or 2. w64 selects the 64-bit pointer format (REX.W);
// otherwise the pointers are 32-bit offsets with selectors, which walkvm
// stores as 0 (the state keeps none).
func (f *FPUState) fxsaveLegacy(s *State, m x86.Mode, b []byte, w64 bool, parts uint64) {
	le := binary.LittleEndian
	if parts&xstateX87 != 0 {
		le.PutUint16(b[0:], f.FCW)
		le.PutUint16(b[2:], f.FSW)
		b[4], b[5] = f.FTWX, 0
		le.PutUint16(b[6:], f.LastOpcode)
		if w64 {
			le.PutUint64(b[8:], f.LastIP)
			le.PutUint64(b[16:], f.LastDP)
		} else {
			le.PutUint64(b[8:], f.LastIP&0xFFFFFFFF)
			le.PutUint64(b[16:], f.LastDP&0xFFFFFFFF)
		}
		for i := range f.FPR {
			copy(b[32+16*i:32+16*i+16], f.FPR[i][:10])
			clear(b[32+16*i+10 : 32+16*i+16])
		}
	}
	if parts&(xstateSSE|xstateAVX) != 0 {
		le.PutUint32(b[24:], f.MXCSR)
		le.PutUint32(b[28:], f.mxcsrMask())
	}
	if parts&xstateSSE != 0 {
		for i := range xmmCount(m) {
			copy(b[xsaveXMM+16*i:], f.XMM[i][:])
		}
	}
}

// fxrstorLegacy loads the legacy region: the x87 part with bit 0 of parts,
// the XMM registers with bit 1, MXCSR with bit 9 or 10 (the caller's
// shifted SSE/AVX request bits; FXRSTOR passes 7, which loads it too).
func (f *FPUState) fxrstorLegacy(s *State, m x86.Mode, b []byte, w64 bool, parts uint64) {
	le := binary.LittleEndian
	if parts&xstateX87 != 0 {
		f.FCW = fcwLoad(le.Uint16(b[0:]))
		f.FSW = le.Uint16(b[2:])
		f.FTWX = b[4]
		f.LastOpcode = le.Uint16(b[6:]) & 0x7FF
		if w64 {
			f.LastIP, f.LastDP = le.Uint64(b[8:]), le.Uint64(b[16:])
		} else {
			f.LastIP, f.LastDP = uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[16:]))
		}
		for i := range f.FPR {
			f.FPR[i] = [16]byte{}
			copy(f.FPR[i][:10], b[32+16*i:])
		}
		f.setSummary()
	}
	if parts&(xstateSSE|xstateAVX|(xstateSSE|xstateAVX)<<8) != 0 {
		f.MXCSR = le.Uint32(b[24:])
	}
	if parts&xstateSSE != 0 {
		for i := range xmmCount(m) {
			copy(f.XMM[i][:], b[xsaveXMM+16*i:])
		}
	}
}
