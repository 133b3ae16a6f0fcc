package decode

import (
	"encoding/hex"
	"errors"
	"testing"

	"walkvm/x86"
)

// FuzzDecode checks, for any bytes in any mode: Decode never panics; a
// decoded instruction is 1-15 bytes long, within the input, and decodes the
// same from exactly its own bytes, while every shorter prefix of it is
// ErrTruncated; errors are ErrTruncated only when fewer than 15 bytes were
// given, otherwise an *x86.Exception; operands are well formed; and any
// disagreement with x86asm falls in a known class (diff_test.go).
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		b, _ := hex.DecodeString(tc.hex)
		f.Add(b, uint8(tc.mode))
	}
	for _, tc := range decodeErrors {
		b, _ := hex.DecodeString(tc.hex)
		f.Add(b, uint8(tc.mode))
	}
	f.Fuzz(func(t *testing.T, b []byte, m uint8) {
		mode := [3]Mode{Mode16, Mode32, Mode64}[m%3]
		var in Inst
		err := Decode(b, mode, &in)
		if err != nil {
			var e *x86.Exception
			switch {
			case errors.Is(err, ErrTruncated):
				if len(b) >= MaxLen {
					t.Fatalf("% x: ErrTruncated with %d bytes", b, len(b))
				}
			case errors.As(err, &e):
				if e.Vector != x86.VectorUD && e.Vector != x86.VectorGP {
					t.Fatalf("% x: unexpected %v", b, e)
				}
			default:
				t.Fatalf("% x: error %v is neither ErrTruncated nor *x86.Exception", b, err)
			}
		} else {
			checkInst(t, b, mode, &in)
		}
		if len(b) >= MaxLen {
			c := diffCase{b: b[:MaxLen], mode: mode, ours: new(Inst)}
			if what := diffOutcome(&c); what != "" && classify(&c, what) == "" {
				t.Errorf("unclassified disagreement with x86asm: %s: %v", what, &c)
			}
		}
	})
}

func checkInst(t *testing.T, b []byte, mode Mode, in *Inst) {
	t.Helper()
	n := int(in.Len)
	if n < 1 || n > MaxLen || n > len(b) {
		t.Fatalf("% x: Len %d", b, n)
	}
	if in.Mode != mode || in.Op == Invalid {
		t.Fatalf("% x: mode %v op %v", b, in.Mode, in.Op)
	}
	var again Inst
	if err := Decode(b[:n], mode, &again); err != nil || again != *in {
		t.Fatalf("% x: decoding its own %d bytes gives %v\n%+v\nwant %+v", b, n, err, again, *in)
	}
	for k := 0; k < n; k++ {
		if err := Decode(b[:k], mode, &again); !errors.Is(err, ErrTruncated) {
			t.Fatalf("% x: the first %d of %d bytes give %v, want ErrTruncated", b, k, n, err)
		}
	}
	switch in.AddrSize {
	case 2, 4, 8:
	default:
		t.Fatalf("% x: AddrSize %d", b, in.AddrSize)
	}
	for i := range in.Args {
		a := &in.Args[i]
		switch a.Kind {
		case ArgMem:
			m := &a.Mem
			if m.Base != RegNone && m.Base > x86.R15 || m.Index != RegNone && m.Index > x86.R15 {
				t.Fatalf("% x: bad registers %+v", b, m)
			}
			if m.AddrSize != in.AddrSize || m.Seg > x86.GS || m.DefaultSeg > x86.GS {
				t.Fatalf("% x: bad memory operand %+v", b, m)
			}
			if m.RIPRel && (mode != Mode64 || m.Base != RegNone || m.Index != RegNone) {
				t.Fatalf("% x: bad rip-relative operand %+v", b, m)
			}
			if (m.Size == 0) != (m.Use == 0) && m.Size != 0 {
				t.Fatalf("% x: sized operand without access %+v", b, m)
			}
		case ArgReg:
			if a.Reg > x86.R15 || a.High && (a.Size != 1 || a.Reg > x86.RBX) {
				t.Fatalf("% x: bad register %+v", b, a)
			}
			if mode != Mode64 && a.Reg > x86.RDI {
				t.Fatalf("% x: r8-r15 outside 64-bit mode %+v", b, a)
			}
		}
	}
	if in.Prefix.Lock && (in.MemArg() < 0 || !in.Args[0].Mem.Use.Writes() && in.Args[0].Kind == ArgMem) {
		t.Fatalf("% x: LOCK accepted without a memory destination", b)
	}
	_ = in.String()
}
