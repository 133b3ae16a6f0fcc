package emulate

import (
	"testing"

	"walkvm/x86"
)

// TestALUTable checks hand-computed cases, independent of the host CPU.
func TestALUTable(t *testing.T) {
	const (
		C = x86.FlagCF
		P = x86.FlagPF
		A = x86.FlagAF
		Z = x86.FlagZF
		S = x86.FlagSF
		O = x86.FlagOF
	)
	tests := []struct {
		op        ALUOp
		n         uint8
		a, b, fin uint64
		res, fout uint64
	}{
		{ALUAdd, 1, 0xFF, 1, 0, 0, C | P | A | Z},
		{ALUAdd, 1, 0x7F, 1, 0, 0x80, A | S | O},
		{ALUAdd, 2, 0x8000, 0x8000, 0, 0, C | P | Z | O},
		{ALUAdd, 4, 0xFFFFFFFF, 0, 0, 0xFFFFFFFF, P | S},
		{ALUAdd, 8, 0xFFFFFFFFFFFFFFFF, 1, 0, 0, C | P | A | Z},
		{ALUAdc, 1, 0xFE, 1, C, 0, C | P | A | Z},
		{ALUAdc, 8, 0x7FFFFFFFFFFFFFFF, 0, C, 0x8000000000000000, P | A | S | O},
		{ALUSub, 1, 0, 1, 0, 0xFF, C | P | A | S},
		{ALUSub, 1, 0x80, 1, 0, 0x7F, A | O},
		{ALUSbb, 4, 5, 5, C, 0xFFFFFFFF, C | P | A | S},
		{ALUCmp, 2, 3, 3, C | S, 0, P | Z},
		{ALUAnd, 1, 0xF0, 0x0F, C | O, 0, P | Z},
		{ALUOr, 8, 1 << 63, 0, 0, 1 << 63, P | S},
		{ALUXor, 2, 0x0101, 0x0100, 0, 1, 0},
		{ALUTest, 4, 0x80000000, 0x80000000, 0, 0x80000000, P | S},
		{ALUInc, 1, 0xFF, 0, C, 0, C | P | A | Z},
		{ALUInc, 2, 0x7FFF, 0, 0, 0x8000, P | A | S | O},
		{ALUDec, 4, 0, 0, 0, 0xFFFFFFFF, P | A | S},
		{ALUDec, 1, 0x80, 0, C, 0x7F, C | A | O},
		{ALUNeg, 1, 0, 0, C, 0, P | Z},
		{ALUNeg, 1, 0x80, 0, 0, 0x80, C | S | O},
		{ALUNeg, 8, 1, 0, 0, ^uint64(0), C | P | A | S},
	}
	for _, tc := range tests {
		t.Run(tc.op.String(), func(t *testing.T) {
			keep := uint64(x86.FlagDF | x86.FlagIF | 2)
			res, f := ALU(tc.op, tc.n, tc.a, tc.b, tc.fin|keep)
			if res != tc.res || f != tc.fout|keep {
				t.Errorf("%v/%d %#x,%#x: got %#x flags %#x, want %#x flags %#x", tc.op, tc.n, tc.a, tc.b, res, f, tc.res, tc.fout|keep)
			}
		})
	}
}

func TestBitTestOp(t *testing.T) {
	tests := []struct {
		op      BitOp
		n       uint8
		v, bit  uint64
		res, cf uint64
	}{
		{BitTest, 2, 0x8000, 15, 0x8000, 1},
		{BitTest, 2, 0x8000, 31, 0x8000, 1}, // bit taken modulo 16
		{BitSet, 4, 0, 33, 2, 0},
		{BitReset, 8, ^uint64(0), 63, ^uint64(0) >> 1, 1},
		{BitComplement, 1, 0x0F, 3, 0x07, 1},
		{BitComplement, 1, 0x0F, 4, 0x1F, 0},
	}
	for _, tc := range tests {
		res, f := BitTestOp(tc.op, tc.n, tc.v, tc.bit, x86.FlagZF|x86.FlagCF*(1-tc.cf))
		if res != tc.res || f&x86.FlagCF != tc.cf || f&x86.FlagZF == 0 {
			t.Errorf("%d/%d %#x bit %d: got %#x flags %#x", tc.op, tc.n, tc.v, tc.bit, res, f)
		}
	}
}

func TestCond(t *testing.T) {
	// cc 0-15 with flags chosen so each condition's truth is known.
	tests := []struct {
		flags uint64
		true_ []uint8
	}{
		{0, []uint8{1, 3, 5, 7, 9, 0xB, 0xD, 0xF}},
		{x86.FlagZF, []uint8{1, 3, 4, 6, 9, 0xB, 0xD, 0xE}},
		{x86.FlagSF, []uint8{1, 3, 5, 7, 8, 0xB, 0xC, 0xE}},
		{x86.FlagSF | x86.FlagOF, []uint8{0, 3, 5, 7, 8, 0xB, 0xD, 0xF}},
		{x86.FlagCF | x86.FlagPF, []uint8{1, 2, 5, 6, 9, 0xA, 0xD, 0xF}},
	}
	for _, tc := range tests {
		var want [16]bool
		for _, c := range tc.true_ {
			want[c] = true
		}
		for cc := range uint8(16) {
			if got := Cond(cc, tc.flags); got != want[cc] {
				t.Errorf("flags %#x cc %#x: got %v", tc.flags, cc, got)
			}
		}
	}
}
