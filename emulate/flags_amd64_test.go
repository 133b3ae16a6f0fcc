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
					if !op.Writes() {
						hres = a & sizeMask(n) // the host leaves the register; ALU returns dst
					}
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
