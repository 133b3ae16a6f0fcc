package emulate

import (
	"encoding/binary"
	"math/bits"
)

// x87 status word bits (SDM Vol. 1 §8.1.3, Figure 8-4).
const (
	FSWIE  = 1 << 0 // invalid operation
	FSWDE  = 1 << 1 // denormal operand
	FSWZE  = 1 << 2 // zero divide
	FSWOE  = 1 << 3 // overflow
	FSWUE  = 1 << 4 // underflow
	FSWPE  = 1 << 5 // precision
	FSWSF  = 1 << 6 // stack fault
	FSWES  = 1 << 7 // exception summary
	FSWC0  = 1 << 8
	FSWC1  = 1 << 9
	FSWC2  = 1 << 10
	FSWTop = 7 << 11
	FSWC3  = 1 << 14
	FSWB   = 1 << 15 // busy (mirrors ES)

	fswExc = FSWIE | FSWDE | FSWZE | FSWOE | FSWUE | FSWPE // the six exception flags

	fcwInit = 0x037F // FNINIT: all exceptions masked, 64-bit precision, nearest
)

// x87 rounding control, FCW bits 11:10 (SDM Vol. 1 §4.8.4, Table 4-8).
const (
	RoundNearest = 0
	RoundDown    = 1 // toward -infinity
	RoundUp      = 2 // toward +infinity
	RoundZero    = 3
)

// Ext80 is an x87 double-extended-precision value: a 64-bit significand
// with an explicit integer bit and a sign+15-bit exponent (SDM Vol. 1
// §4.2.2, Figure 4-3).
type Ext80 struct {
	Mant uint64
	SE   uint16 // bit 15 sign, bits 14:0 biased exponent
}

// Ext80Indefinite is the QNaN floating-point indefinite (SDM Vol. 1 §4.8.3.7).
var Ext80Indefinite = Ext80{Mant: 0xC000000000000000, SE: 0xFFFF}

// Bytes is the 10-byte memory image.
func (e Ext80) Bytes() (b [10]byte) {
	binary.LittleEndian.PutUint64(b[:], e.Mant)
	binary.LittleEndian.PutUint16(b[8:], e.SE)
	return
}

// Ext80FromBytes reads a 10-byte memory image.
func Ext80FromBytes(b []byte) Ext80 {
	if len(b) < 10 {
		return Ext80{}
	}
	return Ext80{Mant: binary.LittleEndian.Uint64(b), SE: binary.LittleEndian.Uint16(b[8:])}
}

// binary format of a store target: precision p (with the hidden bit),
// exponent bias and width.
type floatFmt struct {
	p      uint // significand bits including the hidden one
	ebits  uint
	bias   int
	indef  uint64
	quietB uint64 // quiet-NaN bit of the fraction
}

var (
	fmt32 = floatFmt{p: 24, ebits: 8, bias: 127, indef: 0xFFC00000, quietB: 1 << 22}
	fmt64 = floatFmt{p: 53, ebits: 11, bias: 1023, indef: 0xFFF8000000000000, quietB: 1 << 51}
)

// Float32ToExt80 converts binary32 bits to extended precision, exactly, as
// FLD m32fp does, and returns the exception flags it raises: IE for an SNaN
// (the result is then the QNaN the masked response delivers), DE for a
// denormal.
func Float32ToExt80(v uint32) (Ext80, uint16) { return toExt(uint64(v), fmt32) }

// Float64ToExt80 is Float32ToExt80 for binary64 (FLD m64fp).
func Float64ToExt80(v uint64) (Ext80, uint16) { return toExt(v, fmt64) }

func toExt(v uint64, f floatFmt) (Ext80, uint16) {
	fbits := f.p - 1
	sign := uint16(v>>(fbits+f.ebits)&1) << 15
	exp := int(v >> fbits & (1<<f.ebits - 1))
	frac := v & (1<<fbits - 1)
	switch {
	case exp == 1<<f.ebits-1: // infinity or NaN
		e := Ext80{Mant: 1<<63 | frac<<(63-fbits), SE: sign | 0x7FFF}
		if frac != 0 && frac&f.quietB == 0 {
			e.Mant |= 1 << 62
			return e, FSWIE
		}
		return e, 0
	case exp == 0 && frac == 0:
		return Ext80{SE: sign}, 0
	case exp == 0: // denormal: normalize
		lz := uint(bits.LeadingZeros64(frac))
		m := frac << lz
		e := 1 - f.bias - int(lz-(63-fbits)) + 16383
		return Ext80{Mant: m, SE: sign | uint16(e)}, FSWDE
	}
	return Ext80{Mant: 1<<63 | frac<<(63-fbits), SE: sign | uint16(exp-f.bias+16383)}, 0
}

// Ext80ToFloat32 rounds an extended value to binary32 under rounding control
// rc, as FST m32fp does with exceptions masked, and returns the bits, the
// exception flags (IE, OE, UE, PE) and whether the magnitude was rounded up
// (the C1 bit). An SNaN becomes its QNaN; unsupported encodings
// (pseudo-NaN, pseudo-infinity, unnormal) are invalid and give the
// indefinite.
func Ext80ToFloat32(e Ext80, rc uint8) (uint32, uint16, bool) {
	v, exc, up := fromExt(e, rc, fmt32)
	return uint32(v), exc, up
}

// Ext80ToFloat64 is Ext80ToFloat32 for binary64 (FST m64fp).
func Ext80ToFloat64(e Ext80, rc uint8) (uint64, uint16, bool) { return fromExt(e, rc, fmt64) }

func fromExt(e Ext80, rc uint8, f floatFmt) (uint64, uint16, bool) {
	fbits := f.p - 1
	neg := e.SE&0x8000 != 0
	var sign uint64
	if neg {
		sign = 1 << (fbits + f.ebits)
	}
	expMax := uint64(1<<f.ebits - 1)
	exp := int(e.SE & 0x7FFF)
	m := e.Mant
	switch {
	case exp == 0x7FFF:
		if m&(1<<63) == 0 { // pseudo-infinity, pseudo-NaN
			return f.indef, FSWIE, false
		}
		if m<<1 == 0 {
			return sign | expMax<<fbits, 0, false
		}
		var exc uint16
		if m&(1<<62) == 0 {
			exc = FSWIE // SNaN
		}
		frac := m>>(63-fbits)&(1<<fbits-1) | f.quietB
		return sign | expMax<<fbits | frac, exc, false
	case exp == 0 && m == 0:
		return sign, 0, false
	case exp != 0 && m&(1<<63) == 0: // unnormal
		return f.indef, FSWIE, false
	}
	// A finite value m * 2^(E-63). Extended denormals (exp 0) and
	// pseudo-denormals have E = -16382 like the smallest normal.
	E := exp - 16383
	if exp == 0 {
		E = -16382
	}
	// Normalize so that bit 63 is set (extended denormals lack it).
	lz := bits.LeadingZeros64(m)
	m <<= uint(lz)
	E -= lz
	emin := 1 - f.bias
	emax := f.bias
	sh := 64 - int(f.p) // bits to drop for a normal result
	tiny := E < emin
	if tiny {
		sh += emin - E
	}
	kept, inexact, up := roundShift(m, sh, rc, neg)
	var exc uint16
	if inexact {
		exc |= FSWPE
	}
	if tiny {
		// The x87 detects tininess after rounding (checked against the
		// host): a value that rounds up to the smallest normal at the
		// target precision with an unbounded exponent is not tiny.
		k, _, _ := roundShift(m, 64-int(f.p), rc, neg)
		if inexact && !(E == emin-1 && k>>f.p != 0) {
			exc |= FSWUE
		}
		// kept is the denormal fraction; a carry into bit fbits makes it
		// the smallest normal, which the encoding expresses by itself.
		return sign | kept, exc, up
	}
	if kept>>f.p != 0 { // rounding carried out: 1.111.. -> 10.000..
		kept >>= 1
		E++
	}
	if E > emax {
		exc |= FSWOE | FSWPE
		maxFinite := (expMax-1)<<fbits | (1<<fbits - 1)
		inf := expMax << fbits
		switch {
		case rc == RoundNearest, rc == RoundUp && !neg, rc == RoundDown && neg:
			return sign | inf, exc, true
		}
		return sign | maxFinite, exc, false
	}
	return sign | uint64(E+f.bias)<<fbits | kept&(1<<fbits-1), exc, up
}

// roundShift drops the low sh bits of m, rounding with rc for a value of
// sign neg, and reports whether bits were lost and whether the magnitude was
// rounded up.
func roundShift(m uint64, sh int, rc uint8, neg bool) (kept uint64, inexact, up bool) {
	if sh <= 0 {
		return m, false, false
	}
	// cmp is the discarded part against one half ulp: -1, 0, +1.
	var cmp int
	switch {
	case sh > 64:
		kept, inexact, cmp = 0, m != 0, -1
		if m == 0 {
			cmp = -2
		}
	default:
		var rem, half uint64
		if sh == 64 {
			kept, rem, half = 0, m, 1<<63
		} else {
			kept, rem, half = m>>uint(sh), m&(1<<uint(sh)-1), 1<<uint(sh-1)
		}
		inexact = rem != 0
		switch {
		case rem > half:
			cmp = 1
		case rem == half:
			cmp = 0
		default:
			cmp = -1
		}
	}
	if !inexact {
		return kept, false, false
	}
	switch rc {
	case RoundNearest:
		up = cmp > 0 || cmp == 0 && kept&1 != 0
	case RoundDown:
		up = neg
	case RoundUp:
		up = !neg
	}
	if up {
		kept++
	}
	return kept, true, up
}

// x87 stack helpers. FPR is in stack order (FXSAVE), FTWX by physical
// register: ST(i) is physical register (TOP+i) mod 8.

func (f *FPUState) top() uint { return uint(f.FSW>>11) & 7 }

func (f *FPUState) setTop(t uint) { f.FSW = f.FSW&^FSWTop | uint16(t&7)<<11 }

// stEmpty reports whether ST(i) is tagged empty.
func (f *FPUState) stEmpty(i uint) bool { return f.FTWX>>((f.top()+i)&7)&1 == 0 }

// ST returns ST(i).
func (f *FPUState) ST(i uint) Ext80 { return Ext80FromBytes(f.FPR[i&7][:10]) }

// push makes e the new ST(0): TOP decrements, the old ST(i) becomes ST(i+1),
// and the register that becomes ST(0) is tagged valid.
func (f *FPUState) push(e Ext80) {
	copy(f.FPR[1:], f.FPR[:7])
	f.FPR[0] = [16]byte{}
	b := e.Bytes()
	copy(f.FPR[0][:], b[:])
	t := (f.top() - 1) & 7
	f.setTop(t)
	f.FTWX |= 1 << t
}

// pop tags ST(0) empty and increments TOP. The register's contents stay
// where FXSAVE would show them: as ST(7).
func (f *FPUState) pop() {
	t := f.top()
	f.FTWX &^= 1 << t
	r0 := f.FPR[0]
	copy(f.FPR[:7], f.FPR[1:])
	f.FPR[7] = r0
	f.setTop(t + 1)
}

// x87Exception records exception flags exc in FSW and reports whether one
// of them is unmasked (FCW bits 5:0 clear), in which case the instruction
// must not complete its store and ES/B are set so the next x87 instruction
// raises #MF (SDM Vol. 1 §8.7).
func (f *FPUState) x87Exception(exc uint16) (unmasked bool) {
	f.FSW |= exc
	if exc&^f.FCW&fswExc != 0 {
		f.FSW |= FSWES | FSWB
		return true
	}
	return false
}
