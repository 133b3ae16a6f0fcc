package emulate

import (
	"hash/crc32"
	"math/bits"
	"sync"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// The VEX-encoded general-purpose instructions (BMI1, BMI2), ADCX/ADOX and
// CRC32 (SDM Vol. 2A/2B, each instruction's page).

// castagnoli is the CRC-32C table CRC32 needs, made at its first use.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// gprArg reads a register or (resolved) memory operand of n bytes.
func (e *Emulator) gprArg(s *State, m x86.Mode, inst *decode.Inst, a *decode.Arg, n uint8) (uint64, error) {
	if a.Kind == decode.ArgMem {
		if err := e.resolve(s, m, inst, a, uint16(n), true, false, &e.accs.A[0]); err != nil {
			return 0, err
		}
		e.accs.N = 1
	}
	return e.value(s, inst, a, &e.accs.A[0], n)
}

// execBMI executes ANDN, BEXTR, BLSI, BLSMSK, BLSR, BZHI, MULX, PDEP, PEXT,
// RORX, SARX, SHLX and SHRX. VEX in real or virtual-8086 mode is #UD.
func (e *Emulator) execBMI(s *State, m x86.Mode, inst *decode.Inst) error {
	if m == x86.ModeReal || m == x86.ModeVM86 {
		return x86.UD("VEX in real or virtual-8086 mode")
	}
	n := inst.OpSize
	w := uint64(8 * n)
	mask := sizeMask(n)
	a := inst.Args[:]
	// The r/m operand is the one that may be memory.
	rm := 1
	switch inst.Op {
	case decode.ANDN, decode.MULX, decode.PDEP, decode.PEXT:
		rm = 2
	}
	src, err := e.gprArg(s, m, inst, &a[rm], n)
	if err != nil {
		return err
	}
	reg := func(i int) uint64 { return s.regRead(a[i].Reg, n, false) }
	f := s.RFLAGS &^ x86.FlagsArith
	var r uint64
	zs := func(v uint64) uint64 { return szp(v, n) & (x86.FlagZF | x86.FlagSF) }
	switch inst.Op {
	case decode.ANDN:
		r = ^reg(1) & src & mask
		f |= zs(r)
	case decode.BEXTR:
		ctl := reg(2)
		start, length := ctl&0xFF, ctl>>8&0xFF
		if start < w {
			r = src >> start
			if length < w {
				r &= 1<<length - 1
			}
		}
		if r == 0 {
			f |= x86.FlagZF
		}
	case decode.BLSI:
		r = src & -src & mask
		f |= zs(r)
		if src != 0 {
			f |= x86.FlagCF
		}
	case decode.BLSMSK:
		r = (src ^ (src - 1)) & mask
		f |= szp(r, n) & x86.FlagSF
		if src == 0 {
			f |= x86.FlagCF
		}
	case decode.BLSR:
		r = src & (src - 1) & mask
		f |= zs(r)
		if src == 0 {
			f |= x86.FlagCF
		}
	case decode.BZHI:
		idx := reg(2) & 0xFF
		r = src
		if idx < w {
			r &= 1<<idx - 1
		}
		f |= zs(r)
		if idx > w-1 {
			f |= x86.FlagCF
		}
	case decode.MULX:
		hi, lo := mulWide(s.regRead(x86.RDX, n, false), src, n)
		// The low half goes to vvvv first, so that the high half wins
		// when both name the same register.
		s.regWrite(a[1].Reg, n, false, lo)
		s.regWrite(a[0].Reg, n, false, hi)
		return nil
	case decode.PDEP:
		r = pdep(reg(1), src, w)
	case decode.PEXT:
		r = pext(reg(1), src, w)
	case decode.RORX:
		c := uint(a[2].Imm) & uint(w-1)
		if n == 8 {
			r = bits.RotateLeft64(src, -int(c))
		} else {
			r = uint64(bits.RotateLeft32(uint32(src), -int(c)))
		}
	case decode.SARX, decode.SHLX, decode.SHRX:
		c := reg(2) & (w - 1)
		switch inst.Op {
		case decode.SARX:
			r = uint64(signExt(src, n)>>c) & mask
		case decode.SHLX:
			r = src << c & mask
		default:
			r = src >> c
		}
	}
	s.regWrite(a[0].Reg, n, false, r) // BLSI/BLSMSK/BLSR: Args[0] is vvvv

	switch inst.Op {
	case decode.PDEP, decode.PEXT, decode.RORX, decode.SARX, decode.SHLX, decode.SHRX:
	default:
		s.RFLAGS = f
	}
	return nil
}

// pdep deposits the low bits of src at the set bits of mask.
func pdep(src, mask, w uint64) uint64 {
	var r uint64
	k := uint(0)
	for i := uint(0); i < uint(w); i++ {
		if mask>>i&1 != 0 {
			r |= (src >> k & 1) << i
			k++
		}
	}
	return r
}

// pext extracts the bits of src at the set bits of mask into the low bits.
func pext(src, mask, w uint64) uint64 {
	var r uint64
	k := uint(0)
	for i := uint(0); i < uint(w); i++ {
		if mask>>i&1 != 0 {
			r |= (src >> i & 1) << k
			k++
		}
	}
	return r
}

// execADX executes ADCX (add with CF, only CF changes) and ADOX (add with
// OF, only OF changes).
func (e *Emulator) execADX(s *State, m x86.Mode, inst *decode.Inst) error {
	n := inst.OpSize
	src, err := e.gprArg(s, m, inst, &inst.Args[1], n)
	if err != nil {
		return err
	}
	flag := uint64(x86.FlagCF)
	if inst.Op == decode.ADOX {
		flag = x86.FlagOF
	}
	c := uint64(0)
	if s.RFLAGS&flag != 0 {
		c = 1
	}
	d := s.regRead(inst.Args[0].Reg, n, false)
	var r, carry uint64
	if n == 8 {
		r, carry = bits.Add64(d, src, c)
	} else {
		sum := d + src + c
		r, carry = sum&0xFFFFFFFF, sum>>32&1
	}
	s.regWrite(inst.Args[0].Reg, n, false, r)
	s.RFLAGS &^= flag
	if carry != 0 {
		s.RFLAGS |= flag
	}
	return nil
}

// execCRC32 executes CRC32 r32/r64, r/m8/16/32/64: the CRC-32C of the
// source accumulated into the low 32 bits of the destination (bit-reflected,
// no pre- or post-inversion), zero-extended.
func (e *Emulator) execCRC32(s *State, m x86.Mode, inst *decode.Inst) error {
	src := &inst.Args[1]
	n := argSize(inst, src)
	v, err := e.gprArg(s, m, inst, src, n)
	if err != nil {
		return err
	}
	b := e.buf[:n]
	putLE(b, v)
	crc := uint32(s.GPR[inst.Args[0].Reg&15])
	crc = ^crc32.Update(^crc, castagnoli(), b)
	s.regWrite(inst.Args[0].Reg, inst.OpSize, false, uint64(crc))
	return nil
}
