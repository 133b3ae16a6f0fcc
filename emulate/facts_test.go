package emulate

import (
	"testing"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// TestFactsTable checks the table's rows against each other: every executed
// instruction has a class, string instructions rewind as strings, stack
// instructions rewind by their stack use, undefined masks are status
// flags, and the data operand exists.
func TestFactsTable(t *testing.T) {
	for op := decode.Op(0); int(op) < decode.NumOps; op++ {
		f := FactsOf(op)
		if f.exec != nil && f.Class == ClassNone {
			t.Errorf("%v is executed but has no class", op)
		}
		if f.Flags&FString != 0 && f.Rewind != RewindString {
			t.Errorf("%v: string instruction with rewind %d", op, f.Rewind)
		}
		switch f.Stack {
		case StackPush:
			if f.Rewind != RewindPush {
				t.Errorf("%v pushes but rewinds with %d", op, f.Rewind)
			}
		case StackPop:
			if f.Rewind != RewindPop {
				t.Errorf("%v pops but rewinds with %d", op, f.Rewind)
			}
		}
		if f.Undefined&^x86.FlagsArith != 0 {
			t.Errorf("%v: undefined mask %#x beyond the status flags", op, f.Undefined)
		}
		if f.DataArg < -1 || f.DataArg >= decode.NumArgs {
			t.Errorf("%v: data operand %d", op, f.DataArg)
		}
	}
	if FactsOf(decode.Op(decode.NumOps+5)) != FactsOf(decode.Invalid) {
		t.Error("an out-of-range Op does not get the empty row")
	}
}

// TestUndefinedFor checks the operand-dependent rules on the SDM's cases.
func TestUndefinedFor(t *testing.T) {
	inst := func(op decode.Op, n uint8) *decode.Inst { return &decode.Inst{Op: op, OpSize: n} }
	cases := []struct {
		op         decode.Op
		n          uint8
		count, src uint64
		want       uint64
		dest       bool
	}{
		{decode.SHL, 4, 0, 0, 0, false},
		{decode.SHL, 4, 32, 0, 0, false}, // masked to 0
		{decode.SHL, 4, 1, 0, x86.FlagAF, false},
		{decode.SHL, 4, 2, 0, x86.FlagAF | x86.FlagOF, false},
		{decode.SHL, 1, 8, 0, x86.FlagAF | x86.FlagOF | x86.FlagCF, false},
		{decode.SAR, 1, 8, 0, x86.FlagAF | x86.FlagOF, false},
		{decode.ROL, 8, 1, 0, 0, false},
		{decode.RCR, 2, 17, 0, x86.FlagOF, false},
		{decode.SHLD, 2, 17, 0, x86.FlagsArith, true},
		{decode.SHRD, 2, 16, 0, x86.FlagAF | x86.FlagOF, false},
		{decode.SHRD, 8, 0x40, 0, 0, false},
		{decode.BSF, 4, 0, 0, undefScan, true},
		{decode.BSR, 4, 0, 1, undefScan, false},
		{decode.MUL, 8, 0, 0, undefMul, false},
		{decode.AND, 8, 0, 0, x86.FlagAF, false},
	}
	for _, c := range cases {
		got, dest := FactsOf(c.op).undefinedFor(inst(c.op, c.n), c.count, c.src)
		if got != c.want || dest != c.dest {
			t.Errorf("%v/%d count %d src %d: undefined %#x dest %v, want %#x %v", c.op, c.n, c.count, c.src, got, dest, c.want, c.dest)
		}
	}
}
