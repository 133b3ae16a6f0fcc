package emulate

import (
	"math/bits"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Integer instructions beyond the simple ALU forms: double shifts,
// multiply and divide, bit scans, CMPXCHG8B/16B, XLAT.

// de is #DE, the divide error (no error code).
func de(reason string) *x86.Exception { return &x86.Exception{Vector: x86.VectorDE, Reason: reason} }

// execShiftDouble executes SHLD and SHRD (SDM Vol. 2B): the destination
// shifted by the count (CL or imm8, masked to 5 bits, 6 for 64-bit
// operands) with bits from the source filling in. A count of 0 changes
// nothing; CF is the last bit shifted out of the destination, OF (count 1)
// whether the sign changed, SF/ZF/PF follow the result. A count beyond the
// operand width (16-bit operands only) leaves result and flags undefined:
// walkvm shifts the 48-bit dest:src:dest concatenation (QEMU's choice).
func (e *Emulator) execShiftDouble(s *State, m x86.Mode, inst *decode.Inst) error {
	d, err := e.rmwDest(s, m, inst, 3)
	if err != nil {
		return err
	}
	n := inst.OpSize
	src := s.regRead(inst.Args[1].Reg, n, inst.Args[1].High)
	cnt, err := e.value(s, inst, &inst.Args[2], nil, 1)
	if err != nil {
		return err
	}
	e.res.Undefined, e.res.DestUndefined = FactsOf(inst.Op).undefinedFor(inst, cnt, 0)
	c := uint(cnt & 0x1F)
	if n == 8 {
		c = uint(cnt & 0x3F)
	}
	w := 8 * uint(n)
	if c == 0 {
		return e.store(s, inst, &inst.Args[0], &e.accs.A[0], n, d)
	}
	shl := inst.Op == decode.SHLD
	var r, cf uint64
	switch n {
	case 8:
		if shl {
			r, cf = d<<c|src>>(64-c), d>>(64-c)&1
		} else {
			r, cf = d>>c|src<<(64-c), d>>(c-1)&1
		}
	case 4:
		if shl {
			wide := d<<32 | src
			r, cf = wide>>(32-c), wide>>(64-c)&1
		} else {
			wide := src<<32 | d
			r, cf = wide>>c, wide>>(c-1)&1
		}
	default:
		// dest:src:dest, so that counts past 16 keep shifting dest in.
		wide := d<<32 | src<<16 | d
		if shl {
			r, cf = wide>>(32-c), wide>>(48-c)&1
		} else {
			r, cf = wide>>c, wide>>(c-1)&1
		}
	}
	r &= sizeMask(n)
	f := s.RFLAGS &^ x86.FlagsArith
	f |= cf | szp(r, n)
	if (r^d)>>(w-1)&1 != 0 {
		f |= x86.FlagOF
	}
	if err := e.store(s, inst, &inst.Args[0], &e.accs.A[0], n, r); err != nil {
		return err
	}
	s.RFLAGS = f
	return nil
}

// srcOperand resolves and reads the r/m source of a one-operand MUL/DIV or
// of a two/three-operand form (operand i).
func (e *Emulator) srcOperand(s *State, m x86.Mode, inst *decode.Inst, i int, n uint8) (uint64, error) {
	a := &inst.Args[i]
	if a.Kind == decode.ArgMem {
		if err := e.resolve(s, m, inst, a, uint16(n), true, false, &e.accs.A[0]); err != nil {
			return 0, err
		}
	}
	return e.value(s, inst, a, &e.accs.A[0], n)
}

// signExt sign-extends the low n bytes of v.
func signExt(v uint64, n uint8) int64 {
	sh := 64 - 8*uint(n)
	return int64(v<<sh) >> sh
}

// execMul executes MUL and the three IMUL forms (SDM Vol. 2A). The
// one-operand forms multiply the accumulator into AX, DX:AX, EDX:EAX or
// RDX:RAX and set CF and OF when the high half is significant; IMUL r, r/m
// (and imm) keeps the low half and sets CF and OF when it lost bits. SF,
// ZF, AF and PF are undefined: walkvm sets SF, ZF and PF from the low half
// and clears AF.
func (e *Emulator) execMul(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 1); err != nil {
		return err
	}
	n := inst.OpSize
	var lo, hi uint64
	var overflow bool
	if inst.Args[1].Kind == decode.ArgNone { // one operand
		src, err := e.srcOperand(s, m, inst, 0, n)
		if err != nil {
			return err
		}
		a := s.regRead(x86.RAX, n, false)
		if inst.Op == decode.MUL {
			hi, lo = mulWide(a, src, n)
			overflow = hi != 0
		} else {
			hi, lo = imulWide(a, src, n)
			overflow = hi != uint64(signExt(lo, n)>>63)&sizeMask(n)
		}
		switch n {
		case 1:
			s.regWrite(x86.RAX, 2, false, hi<<8|lo)
		default:
			s.regWrite(x86.RAX, n, false, lo)
			s.regWrite(x86.RDX, n, false, hi)
		}
	} else {
		a, err := e.srcOperand(s, m, inst, 1, n)
		if err != nil {
			return err
		}
		b := s.regRead(inst.Args[0].Reg, n, false)
		if inst.Args[2].Kind == decode.ArgImm {
			b = uint64(inst.Args[2].Imm) & sizeMask(n)
		}
		hi, lo = imulWide(a, b, n)
		overflow = hi != uint64(signExt(lo, n)>>63)&sizeMask(n)
		s.regWrite(inst.Args[0].Reg, n, false, lo)
	}
	f := s.RFLAGS &^ x86.FlagsArith
	if overflow {
		f |= x86.FlagCF | x86.FlagOF
	}
	s.RFLAGS = f | szp(lo, n)&(x86.FlagZF|x86.FlagSF|x86.FlagPF)
	return nil
}

// mulWide multiplies n-byte unsigned values into high and low halves.
func mulWide(a, b uint64, n uint8) (hi, lo uint64) {
	if n == 8 {
		return bits.Mul64(a, b)
	}
	p := (a & sizeMask(n)) * (b & sizeMask(n))
	return p >> (8 * n) & sizeMask(n), p & sizeMask(n)
}

// imulWide multiplies n-byte signed values into high and low halves (each
// n bytes, two's complement).
func imulWide(a, b uint64, n uint8) (hi, lo uint64) {
	x, y := signExt(a, n), signExt(b, n)
	if n == 8 {
		h, l := bits.Mul64(uint64(x), uint64(y))
		// Signed correction of the unsigned product's high half.
		if x < 0 {
			h -= uint64(y)
		}
		if y < 0 {
			h -= uint64(x)
		}
		return h, l
	}
	p := x * y
	return uint64(p>>(8*n)) & sizeMask(n), uint64(p) & sizeMask(n)
}

// execDiv executes DIV and IDIV (SDM Vol. 2A): AX, DX:AX, EDX:EAX or
// RDX:RAX divided by the operand into quotient (AL/AX/EAX/RAX) and
// remainder (AH/DX/EDX/RDX). A zero divisor or a quotient that does not fit
// is #DE before anything changes. Every status flag is undefined; walkvm
// leaves them as they were.
func (e *Emulator) execDiv(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 1); err != nil {
		return err
	}
	n := inst.OpSize
	d, err := e.srcOperand(s, m, inst, 0, n)
	if err != nil {
		return err
	}
	if d == 0 {
		return de("divide by zero")
	}
	var hi, lo uint64
	if n == 1 {
		ax := s.regRead(x86.RAX, 2, false)
		hi, lo = ax>>8, ax&0xFF
	} else {
		hi, lo = s.regRead(x86.RDX, n, false), s.regRead(x86.RAX, n, false)
	}
	var q, r uint64
	if inst.Op == decode.DIV {
		if hi >= d {
			return de("quotient too large")
		}
		if n == 8 {
			q, r = bits.Div64(hi, lo, d)
		} else {
			v := hi<<(8*n) | lo
			q, r = v/d, v%d
		}
	} else {
		var ok bool
		q, r, ok = idiv(hi, lo, d, n)
		if !ok {
			return de("quotient out of range")
		}
	}
	if n == 1 {
		s.regWrite(x86.RAX, 2, false, (r&0xFF)<<8|q&0xFF)
	} else {
		s.regWrite(x86.RAX, n, false, q)
		s.regWrite(x86.RDX, n, false, r)
	}
	return nil
}

// idiv divides the signed 2n-byte hi:lo by the signed n-byte d, truncating
// toward zero; ok is false when the quotient does not fit in n bytes.
func idiv(hi, lo, d uint64, n uint8) (q, r uint64, ok bool) {
	w := 8 * uint(n)
	neg := hi>>(w-1)&1 != 0
	// |dividend| as a 128-bit (mh:ml) value of 2n bytes.
	var mh, ml uint64
	if n == 8 {
		mh, ml = hi, lo
		if neg {
			var b uint64
			ml, b = bits.Sub64(0, ml, 0)
			mh, _ = bits.Sub64(0, mh, b)
		}
	} else {
		v := int64(hi<<w|lo) << (64 - 2*w) >> (64 - 2*w) // sign-extended 2n bytes
		if v < 0 {
			v = -v
		}
		ml = uint64(v)
	}
	dv := signExt(d, n)
	dneg := dv < 0
	dm := uint64(dv)
	if dneg {
		dm = -dm
	}
	if mh >= dm {
		return 0, 0, false
	}
	qm, rm := bits.Div64(mh, ml, dm)
	limit := uint64(1) << (w - 1) // magnitude of the most negative quotient
	if neg != dneg {
		if qm > limit {
			return 0, 0, false
		}
		q = -qm
	} else {
		if qm >= limit {
			return 0, 0, false
		}
		q = qm
	}
	r = rm
	if neg {
		r = -rm
	}
	return q & sizeMask(n), r & sizeMask(n), true
}

// execBitScan executes BSF, BSR, TZCNT, LZCNT and POPCNT (SDM Vol. 2A/2B).
// BSF/BSR of 0 set ZF and leave the destination alone (AMD documents it,
// Intel processors do it; the SDM calls the destination undefined); the
// other status flags are undefined and left as they were. TZCNT/LZCNT
// return the width for 0 and set CF for a zero source and ZF for a zero
// result; POPCNT clears every status flag but ZF (zero source).
func (e *Emulator) execBitScan(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	n := inst.OpSize
	src, err := e.srcOperand(s, m, inst, 1, n)
	if err != nil {
		return err
	}
	src &= sizeMask(n)
	w := uint64(8 * n)
	_, e.res.DestUndefined = FactsOf(inst.Op).undefinedFor(inst, 0, src)
	dst := &inst.Args[0]
	f := s.RFLAGS
	var r uint64
	switch inst.Op {
	case decode.BSF, decode.BSR:
		if src == 0 {
			s.RFLAGS = f | x86.FlagZF
			return nil
		}
		if inst.Op == decode.BSF {
			r = uint64(bits.TrailingZeros64(src))
		} else {
			r = uint64(bits.Len64(src) - 1)
		}
		f &^= x86.FlagZF
	case decode.TZCNT, decode.LZCNT:
		if inst.Op == decode.TZCNT {
			r = min(uint64(bits.TrailingZeros64(src)), w)
		} else {
			r = w - uint64(bits.Len64(src))
		}
		f &^= x86.FlagCF | x86.FlagZF
		if src == 0 {
			f |= x86.FlagCF
		}
		if r == 0 {
			f |= x86.FlagZF
		}
	case decode.POPCNT:
		r = uint64(bits.OnesCount64(src))
		f &^= x86.FlagsArith
		if src == 0 {
			f |= x86.FlagZF
		}
	}
	s.regWrite(dst.Reg, n, false, r)
	s.RFLAGS = f
	return nil
}

// execCmpxchgDouble executes CMPXCHG8B and CMPXCHG16B (SDM Vol. 2A): the
// memory operand is compared with EDX:EAX (RDX:RAX); equal, it receives
// ECX:EBX (RCX:RBX) and ZF is set; otherwise ZF is cleared and the
// accumulator pair receives the operand (a 32-bit pair zero-extends in
// 64-bit mode). The operand is written in both cases (with its own value
// when they differ), as the CPU's locked cycle does. Other flags are
// unchanged. CMPXCHG16B needs a 16-byte aligned operand (#GP(0)).
func (e *Emulator) execCmpxchgDouble(s *State, m x86.Mode, inst *decode.Inst) error {
	a := &inst.Args[0]
	if a.Kind != decode.ArgMem {
		return x86.UD("cmpxchg8b with a register operand")
	}
	size := a.Mem.Size
	h := uint8(size / 2)
	acc := &e.accs.A[0]
	if err := e.accessAligned(s, m, a.Mem.Seg, ea(s, inst, &a.Mem), size, operandAlign(inst, a), true, true, true, acc); err != nil {
		return err
	}
	b := e.buf2[:size]
	if err := e.readAcc(acc, b); err != nil {
		return err
	}
	lo, hi := le(b[:h]), le(b[h:])
	if lo == s.regRead(x86.RAX, h, false) && hi == s.regRead(x86.RDX, h, false) {
		putLE(b[:h], s.regRead(x86.RBX, h, false))
		putLE(b[h:], s.regRead(x86.RCX, h, false))
		if err := e.writeAcc(acc, b); err != nil {
			return err
		}
		s.RFLAGS |= x86.FlagZF
		return nil
	}
	if err := e.writeAcc(acc, b); err != nil {
		return err
	}
	s.regWrite(x86.RAX, h, false, lo)
	s.regWrite(x86.RDX, h, false, hi)
	s.RFLAGS &^= x86.FlagZF
	return nil
}

// le reads a little-endian integer of len(b) <= 8 bytes.
func le(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// putLE writes v little-endian into b.
func putLE(b []byte, v uint64) {
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
}

// execXlat executes XLAT: AL <- [seg:rBX + AL] (ea adds AL for the row's
// FXlat).
func (e *Emulator) execXlat(s *State, m x86.Mode, inst *decode.Inst) error {
	a := &inst.Args[0]
	if err := e.resolve(s, m, inst, a, 1, true, false, &e.accs.A[0]); err != nil {
		return err
	}
	v, err := e.readMem(&e.accs.A[0], 1)
	if err != nil {
		return err
	}
	s.regWrite(x86.RAX, 1, false, v)
	return nil
}

// execBound executes BOUND r, m (not in 64-bit mode): #BR unless the
// signed register lies within the signed pair [lower, upper] at m.
func (e *Emulator) execBound(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := e.gprOperands(s, inst, 2); err != nil {
		return err
	}
	a := &inst.Args[1]
	if a.Kind != decode.ArgMem {
		return x86.UD("bound with a register operand")
	}
	n := inst.OpSize
	acc := &e.accs.A[0]
	if err := e.resolve(s, m, inst, a, uint16(2*n), true, false, acc); err != nil {
		return err
	}
	b := e.buf2[:2*n]
	if err := e.readAcc(acc, b); err != nil {
		return err
	}
	v := signExt(s.regRead(inst.Args[0].Reg, n, false), n)
	lower, upper := signExt(le(b[:n]), n), signExt(le(b[n:]), n)
	if v < lower || v > upper {
		return &x86.Exception{Vector: x86.VectorBR, Reason: "bound range exceeded"}
	}
	return nil
}

// execMovdir64b executes MOVDIR64B (SDM Vol. 2B): 64 bytes from the m512
// source to ES:[r], which must be 64-byte aligned (#GP(0)), as one 64-byte
// write. The source is read first.
func (e *Emulator) execMovdir64b(s *State, m x86.Mode, inst *decode.Inst) error {
	dst, src := &inst.Args[0], &inst.Args[1]
	if dst.Kind != decode.ArgMem || src.Kind != decode.ArgMem {
		return x86.UD("movdir64b with a register source")
	}
	sacc, dacc := &e.accs.A[0], &e.accs.A[1]
	if err := e.resolve(s, m, inst, src, 64, true, false, sacc); err != nil {
		return err
	}
	if err := e.accessAligned(s, m, dst.Mem.Seg, ea(s, inst, &dst.Mem), 64, 64, false, true, true, dacc); err != nil {
		return err
	}
	e.accs.N = 2
	b := e.buf2[:64]
	if err := e.readAcc(sacc, b); err != nil {
		return err
	}
	return e.writeAcc(dacc, b)
}
