package emulate

import (
	"math/bits"

	"walkvm/x86"
)

// ALUOp names an arithmetic or logic operation whose RFLAGS effect the
// emulator computes. The first eight are in the order of the 00-3F opcode
// rows and of ModRM.reg in opcodes 80-83 (SDM Vol. 2D Table A-6).
type ALUOp uint8

// ALU operations.
const (
	ALUAdd ALUOp = iota
	ALUOr
	ALUAdc
	ALUSbb
	ALUAnd
	ALUSub
	ALUXor
	ALUCmp
	ALUTest // AND without a result
	ALUInc
	ALUDec
	ALUNeg
	numALUOps
)

var aluNames = [numALUOps]string{"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp", "test", "inc", "dec", "neg"}

func (o ALUOp) String() string {
	if o < numALUOps {
		return aluNames[o]
	}
	return "alu?"
}

// Writes reports whether the operation stores its result (CMP and TEST only
// set flags).
func (o ALUOp) Writes() bool { return o != ALUCmp && o != ALUTest }

// parityTable[b] is FlagPF when b has an even number of set bits.
var parityTable = func() (t [256]uint8) {
	for i := range t {
		if bits.OnesCount8(uint8(i))%2 == 0 {
			t[i] = x86.FlagPF
		}
	}
	return
}()

// szp returns ZF, SF and PF for a result of n bytes (already masked).
func szp(res uint64, n uint8) uint64 {
	f := uint64(parityTable[uint8(res)])
	if res == 0 {
		f |= x86.FlagZF
	}
	if res>>(8*uint(n)-1)&1 != 0 {
		f |= x86.FlagSF
	}
	return f
}

// ALU computes op on operands of n bytes (1, 2, 4 or 8) and returns the
// result, masked to n bytes (for CMP and TEST the difference and the AND
// that they compute but do not store), and the new RFLAGS. dst is the destination
// (first) operand, src the source; INC, DEC and NEG ignore src. The six
// status flags are set as the SDM defines them (Vol. 2 instruction pages);
// where it leaves one undefined (AF after AND, OR, XOR, TEST) the result is
// what Intel and AMD processors produce, 0. INC and DEC keep CF; the other
// bits of flags pass through unchanged.
func ALU(op ALUOp, n uint8, dst, src, flags uint64) (res, out uint64) {
	m := sizeMask(n)
	dst &= m
	src &= m
	sign := uint(8*n - 1)
	var f uint64
	switch op {
	case ALUAdd, ALUAdc, ALUInc:
		var c uint64
		switch op {
		case ALUAdc:
			c = flags & x86.FlagCF
		case ALUInc:
			src = 1
		}
		var carry uint64
		if n == 8 {
			res, carry = bits.Add64(dst, src, c)
		} else {
			sum := dst + src + c
			res, carry = sum&m, sum>>(8*uint(n))&1
		}
		if op == ALUInc {
			f = flags & x86.FlagCF
		} else {
			f = carry // FlagCF is bit 0
		}
		f |= (dst ^ src ^ res) & x86.FlagAF
		if ((dst^res)&(src^res))>>sign&1 != 0 {
			f |= x86.FlagOF
		}
	case ALUSub, ALUSbb, ALUCmp, ALUDec, ALUNeg:
		var b uint64
		switch op {
		case ALUSbb:
			b = flags & x86.FlagCF
		case ALUDec:
			src = 1
		case ALUNeg:
			dst, src = 0, dst
		}
		var borrow uint64
		if n == 8 {
			res, borrow = bits.Sub64(dst, src, b)
		} else {
			diff := dst - src - b
			res, borrow = diff&m, diff>>63 // dst, src < 2^32: a borrow wraps the whole word
		}
		switch op {
		case ALUDec:
			f = flags & x86.FlagCF
		case ALUNeg:
			if src != 0 {
				f = x86.FlagCF
			}
		default:
			f = borrow
		}
		f |= (dst ^ src ^ res) & x86.FlagAF
		if ((dst^src)&(dst^res))>>sign&1 != 0 {
			f |= x86.FlagOF
		}
	case ALUOr:
		res = dst | src
	case ALUAnd, ALUTest:
		res = dst & src
	case ALUXor:
		res = dst ^ src
	default:
		return dst, flags
	}
	f |= szp(res, n)
	return res, flags&^x86.FlagsArith | f
}

// BitOp names the bit-test instructions.
type BitOp uint8

// Bit-test operations, in the order of ModRM.reg 4-7 of 0F BA.
const (
	BitTest       BitOp = iota // BT
	BitSet                     // BTS
	BitReset                   // BTR
	BitComplement              // BTC
)

// BitTestOp tests bit (taken modulo the operand width of n bytes) of v, sets
// CF to it and returns the new value and RFLAGS. Only CF is defined; the
// emulator leaves OF, SF, AF and PF as they were (undefined by the SDM) and
// ZF unchanged (defined so).
func BitTestOp(op BitOp, n uint8, v, bit, flags uint64) (res, out uint64) {
	bit %= 8 * uint64(n)
	mask := uint64(1) << bit
	out = flags &^ x86.FlagCF
	if v&mask != 0 {
		out |= x86.FlagCF
	}
	switch op {
	case BitSet:
		v |= mask
	case BitReset:
		v &^= mask
	case BitComplement:
		v ^= mask
	}
	return v & sizeMask(n), out
}

// Cond evaluates condition code cc (the low nibble of Jcc/SETcc/CMOVcc,
// SDM Vol. 1 Appendix B) against RFLAGS.
func Cond(cc uint8, flags uint64) bool {
	var r bool
	switch cc >> 1 & 7 {
	case 0: // O
		r = flags&x86.FlagOF != 0
	case 1: // B
		r = flags&x86.FlagCF != 0
	case 2: // E
		r = flags&x86.FlagZF != 0
	case 3: // BE
		r = flags&(x86.FlagCF|x86.FlagZF) != 0
	case 4: // S
		r = flags&x86.FlagSF != 0
	case 5: // P
		r = flags&x86.FlagPF != 0
	case 6: // L
		r = (flags&x86.FlagSF != 0) != (flags&x86.FlagOF != 0)
	case 7: // LE
		r = flags&x86.FlagZF != 0 || (flags&x86.FlagSF != 0) != (flags&x86.FlagOF != 0)
	}
	return r != (cc&1 != 0)
}

// ShiftOp names the shift and rotate operations, in the order of ModRM.reg
// in opcodes C0, C1 and D0-D3 (group 2, SDM Vol. 2D Table A-6). /6 is an
// alias of SHL.
type ShiftOp uint8

// Shift and rotate operations.
const (
	ShiftROL ShiftOp = iota
	ShiftROR
	ShiftRCL
	ShiftRCR
	ShiftSHL
	ShiftSHR
	ShiftSAL // same as SHL
	ShiftSAR
)

// Shift shifts or rotates dst (n bytes) by count and returns the result and
// RFLAGS (SDM Vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR). The count is masked
// to 5 bits, 6 for 64-bit operands; a masked count of 0 changes nothing.
// The defined flags are exact: CF is the last bit shifted out (rotated into
// it), OF is defined for a count of 1, shifts set SF, ZF and PF from the
// result, rotates leave them. Where the SDM leaves a flag undefined the
// emulator chooses: OF is computed by the count-1 formula, AF is cleared by
// shifts, and CF of SHL/SHR by more than the operand width is the bit the
// 64-bit shift gives (0).
func Shift(op ShiftOp, n uint8, dst, count, flags uint64) (res, out uint64) {
	bits := uint(8 * n)
	m := sizeMask(n)
	dst &= m
	c := uint(count & 0x1F)
	if n == 8 {
		c = uint(count & 0x3F)
	}
	if c == 0 {
		return dst, flags
	}
	msb := func(v uint64) uint64 { return v >> (bits - 1) & 1 }
	cf := flags & x86.FlagCF
	var of uint64
	switch op {
	case ShiftROL, ShiftROR:
		r := c % bits
		if op == ShiftROL {
			res = (dst<<r | dst>>((bits-r)%bits)) & m
			cf = res & 1
			of = msb(res) ^ cf
		} else {
			res = (dst>>r | dst<<((bits-r)%bits)) & m
			cf = msb(res)
			of = msb(res) ^ res>>(bits-2)&1
		}
		if r == 0 {
			res = dst
		}
		out = flags &^ (x86.FlagCF | x86.FlagOF)
		out |= cf | of<<11
		return res, out
	case ShiftRCL, ShiftRCR:
		// Rotate the n*8+1-bit quantity CF:dst one bit at a time; the
		// count is at most 63.
		if n < 4 {
			c %= bits + 1
		}
		res = dst
		if op == ShiftRCR {
			of = msb(dst) ^ cf // from the operands before the rotate
		}
		for range c {
			if op == ShiftRCL {
				nc := msb(res)
				res = (res<<1 | cf) & m
				cf = nc
			} else {
				nc := res & 1
				res = res>>1 | cf<<(bits-1)
				cf = nc
			}
		}
		if op == ShiftRCL {
			of = msb(res) ^ cf
		}
		out = flags &^ (x86.FlagCF | x86.FlagOF)
		out |= cf | of<<11
		return res, out
	case ShiftSHL, ShiftSAL:
		var wide uint64
		if c < 64 {
			wide = dst << c
		}
		res = wide & m
		switch {
		case c <= bits && c < 64:
			cf = dst >> (bits - c) & 1
		default:
			cf = 0
		}
		of = msb(res) ^ cf
	case ShiftSHR:
		cf = dst >> (c - 1) & 1
		if c-1 >= 64 {
			cf = 0
		}
		res = dst >> c & m
		if c >= 64 {
			res = 0
		}
		of = msb(dst)
	case ShiftSAR:
		shift := 64 - bits
		sdst := int64(dst<<shift) >> shift
		cs := min(c, 63)
		cf = uint64(sdst>>(cs-1)) & 1
		res = uint64(sdst>>cs) & m
		of = 0
	default:
		return dst, flags
	}
	out = flags &^ x86.FlagsArith
	out |= cf | of<<11 | szp(res, n)
	return res, out
}
