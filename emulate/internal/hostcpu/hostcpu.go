//go:build amd64

// Package hostcpu runs single instructions on the host CPU so that the
// emulator's tests can use it as an oracle for RFLAGS and x87 conversions.
// It is amd64 only and imported only by tests.
package hostcpu

//go:generate sh -c "python3 gen.py && gofmt -w alu_amd64.go"

// flagsIn are the RFLAGS bits a caller may pass in: the status flags.
const flagsIn = 0x8D5 // CF PF AF ZF SF OF

// ALU runs operation op (numbered like emulate.ALUOp: add or adc sbb and sub
// xor cmp test inc dec neg) on operands of n bytes with the status flags of
// flags, and returns the destination register afterwards (masked to n bytes)
// and the status flags.
func ALU(op int, n uint8, dst, src, flags uint64) (res, out uint64) {
	var i int
	switch n {
	case 1:
		i = 0
	case 2:
		i = 1
	case 4:
		i = 2
	default:
		i = 3
	}
	res, out = aluFuncs[op][i](dst, src, flags&flagsIn|2)
	if n < 8 {
		res &= 1<<(8*uint(n)) - 1
	}
	return res, out & flagsIn
}

type x87Frame struct {
	In  [16]byte
	Out [16]byte
	FCW uint16
	FSW uint16
}

func fst32(p *x87Frame)
func fst64(p *x87Frame)
func fld32(p *x87Frame)
func fld64(p *x87Frame)

// FST converts an 80-bit extended value to binary32 (n = 4) or binary64
// (n = 8) with FSTP under control word fcw (keep the exceptions masked), and
// returns the stored bytes and the status word the store produced.
func FST(ext [10]byte, n int, fcw uint16) (out [8]byte, fsw uint16) {
	var f x87Frame
	copy(f.In[:], ext[:])
	f.FCW = fcw
	if n == 4 {
		fst32(&f)
	} else {
		fst64(&f)
	}
	copy(out[:], f.Out[:n])
	return out, f.FSW
}

// FLD loads a binary32 (n = 4) or binary64 (n = 8) value with FLD and
// returns the 80-bit register and the status word after the load.
func FLD(src [8]byte, n int, fcw uint16) (ext [10]byte, fsw uint16) {
	var f x87Frame
	copy(f.In[:], src[:n])
	f.FCW = fcw
	if n == 4 {
		fld32(&f)
	} else {
		fld64(&f)
	}
	copy(ext[:], f.Out[:10])
	return ext, f.FSW
}

// Shift runs shift or rotate op (numbered like emulate.ShiftOp: rol ror rcl
// rcr shl shr sal sar) on an operand of n bytes with count in CL.
func Shift(op int, n uint8, dst, count, flags uint64) (res, out uint64) {
	i := map[uint8]int{1: 0, 2: 1, 4: 2, 8: 3}[n]
	res, out = shiftFuncs[op][i](dst, count&0xFF, flags&flagsIn|2)
	if n < 8 {
		res &= 1<<(8*uint(n)) - 1
	}
	return res, out & flagsIn
}
