package emulate

import (
	"math/rand/v2"
	"testing"

	"walkvm/emulate/internal/hostcpu"
	"walkvm/x86"
)

// TestALUHost compares ALU with the host CPU running the same instruction,
// for every operation and size, on edge values and random operands.
func TestALUHost(t *testing.T) {
	edges := []uint64{0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x0F, 0x10,
		0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000,
		0xFFFFFFFFFFFFFFFF, 0x123456789ABCDEF0}
	rng := rand.New(rand.NewPCG(1, 2))
	for op := ALUOp(0); op < numALUOps; op++ {
		for _, n := range []uint8{1, 2, 4, 8} {
			t.Run(op.String()+"/"+string('0'+rune(n)), func(t *testing.T) {
				check := func(a, b, f uint64) {
					f &= x86.FlagsArith
					res, out := ALU(op, n, a, b, f)
					hres, hout := hostcpu.ALU(int(op), n, a, b, f)
					mask := uint64(x86.FlagsArith)
					if op == ALUAnd || op == ALUOr || op == ALUXor || op == ALUTest {
						mask &^= x86.FlagAF // undefined by the SDM
					}
					if (op.Writes() && res != hres) || out&mask != hout&mask {
						t.Fatalf("%v/%d %#x,%#x flags %#x: got %#x flags %#x, host %#x flags %#x",
							op, n, a, b, f, res, out, hres, hout)
					}
				}
				for _, a := range edges {
					for _, b := range edges {
						check(a, b, 0)
						check(a, b, x86.FlagsArith)
					}
				}
				for range 2000 {
					check(rng.Uint64()>>rng.IntN(64), rng.Uint64()>>rng.IntN(64), rng.Uint64())
				}
			})
		}
	}
}

// TestShiftHost compares Shift with the host CPU on the flags the SDM
// defines: CF whenever the masked count is not 0 (for SHL/SHR only up to the
// operand width), OF for a count of 1, SF/ZF/PF of shifts; and the result.
func TestShiftHost(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	vals := []uint64{0, 1, 0x80, 0x81, 0x8000, 0x80000000, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0x5A5A5A5A5A5A5A5A}
	for op := ShiftOp(0); op <= ShiftSAR; op++ {
		for _, n := range []uint8{1, 2, 4, 8} {
			check := func(a, c, f uint64) {
				f &= x86.FlagsArith
				res, out := Shift(op, n, a, c, f)
				hres, hout := hostcpu.Shift(int(op), n, a, c, f)
				mc := c & 0x1F
				if n == 8 {
					mc = c & 0x3F
				}
				mask := uint64(0)
				if mc != 0 {
					mask |= x86.FlagCF
					if op >= ShiftSHL {
						mask |= x86.FlagSF | x86.FlagZF | x86.FlagPF
						if (op == ShiftSHL || op == ShiftSAL || op == ShiftSHR) && mc > uint64(8*n) {
							mask &^= x86.FlagCF
						}
					}
					if mc == 1 {
						mask |= x86.FlagOF
					}
				} else {
					mask = x86.FlagsArith // nothing may change
				}
				if res != hres || out&mask != hout&mask {
					t.Fatalf("shift %d/%d %#x by %d flags %#x: got %#x flags %#x, host %#x flags %#x (mask %#x)",
						op, n, a, c, f, res, out, hres, hout, mask)
				}
			}
			for _, a := range vals {
				for c := uint64(0); c < 70; c++ {
					check(a, c, 0)
					check(a, c, x86.FlagsArith)
				}
			}
			for range 3000 {
				check(rng.Uint64(), rng.Uint64()&0xFF, rng.Uint64())
			}
		}
	}
}
