package emulate

import (
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

func TestAddressRegs(t *testing.T) {
	const (
		ax = 1 << x86.RAX
		cx = 1 << x86.RCX
		bx = 1 << x86.RBX
		sp = 1 << x86.RSP
		bp = 1 << x86.RBP
		si = 1 << x86.RSI
		di = 1 << x86.RDI
	)
	for _, tc := range []struct {
		name string
		mode decode.Mode
		hex  string
		want uint16
		ok   bool
	}{
		{"mov (%ebx),%eax", decode.Mode32, "8b03", bx, true},
		{"mov %eax,0x10(%ebx,%ecx,4)", decode.Mode32, "89448b10", bx | cx, true},
		{"mov 0x10(%rip),%eax", decode.Mode64, "8b0510000000", 0, true},
		{"mov %eax,0x1000", decode.Mode32, "a300100000", 0, true},
		{"mov 0x8(%bx,%si),%ax", decode.Mode16, "8b4008", bx | si, true},
		{"mov %r9,(%r12)", decode.Mode64, "4d890c24", 1 << x86.R12, true},
		{"rep movsb", decode.Mode32, "f3a4", si | di, true},
		{"movsb", decode.Mode32, "a4", si | di, true},
		{"stos", decode.Mode64, "ab", di, true},
		{"push %eax", decode.Mode32, "50", sp, true},
		{"push (%ebx)", decode.Mode32, "ff33", bx | sp, true},
		{"pop (%ebx)", decode.Mode32, "8f03", bx | sp, true},
		{"leave", decode.Mode32, "c9", sp | bp, true},
		{"enter $8,$2", decode.Mode32, "c8080002", sp | bp, true},
		{"xlat", decode.Mode32, "d7", bx | ax, true},
		{"bt %ecx,(%ebx)", decode.Mode32, "0fa30b", bx | cx, true},
		{"bt $3,(%ebx)", decode.Mode32, "0fba2303", bx, true},
		{"vpgatherdd (vsib)", decode.Mode64, "c4e2759004a8", 0, false},
	} {
		b, _ := hex.DecodeString(tc.hex)
		var inst decode.Inst
		if err := decode.Decode(b, tc.mode, &inst); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, ok := AddressRegs(&inst)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: AddressRegs = %#x, %v; want %#x, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// addressRegsHold checks AddressRegs' promise for code in the state sel
// (fuzzState) with the general registers gpr: resolving inst (after
// Rewind, as a write exit's search does) gives the same accesses or the
// same fault when every register outside AddressRegs and every RFLAGS bit
// outside AddressFlags takes other values.
// It reports whether code decoded to an instruction with memory accesses.
func addressRegsHold(t *testing.T, code []byte, sel byte, gpr, other [x86.NumGPR]uint64, flags uint64) bool {
	t.Helper()
	s := fuzzState(sel)
	var inst decode.Inst
	if decode.Decode(code, s.DecodeMode(), &inst) != nil {
		return false
	}
	regs, ok := AddressRegs(&inst)
	if !ok {
		return false
	}
	resolve := func(g [x86.NumGPR]uint64, rflags uint64, rewind bool) (MemRefs, string) {
		st := *s
		st.GPR, st.RFLAGS = g, rflags
		if rewind {
			Rewind(&st, &inst)
		}
		e := &Emulator{Mem: &testMem{ram: make([]byte, 0), noLog: true}}
		var accs MemRefs
		if err := e.Resolve(&st, &inst, &accs); err != nil {
			return MemRefs{}, err.Error()
		}
		return accs, ""
	}
	mixed := gpr
	for r := range x86.NumGPR {
		if regs&(1<<r) == 0 {
			mixed[r] = other[r]
		}
	}
	any := false
	for _, rewind := range []bool{false, true} {
		a, aerr := resolve(gpr, s.RFLAGS, rewind)
		// The other flags' values, the defined bit 1 kept.
		b, berr := resolve(mixed, s.RFLAGS&AddressFlags|flags&^AddressFlags|2, rewind)
		if a != b || aerr != berr {
			t.Errorf("% x in state %d (rewind %v): AddressRegs %#x, but registers outside it change the accesses:\n  %+v %q\n  %+v %q",
				code, sel%6, rewind, regs, a, aerr, b, berr)
		}
		any = any || a.N > 0
	}
	return any
}

// TestAddressRegsProperty checks AddressRegs against Resolve and Rewind on
// random code in every mode, the other registers and RFLAGS bits outside
// AddressFlags changed.
func TestAddressRegsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	withAccesses := 0
	for range n {
		var code [15]byte
		for i := range code {
			code[i] = byte(r.Uint32())
		}
		var gpr, other [x86.NumGPR]uint64
		for i := range gpr {
			// Small values, so that most accesses pass the limit checks.
			gpr[i], other[i] = r.Uint64N(0x8000), r.Uint64N(0x8000)
		}
		if addressRegsHold(t, code[:], byte(r.Uint32()), gpr, other, r.Uint64()&0x3fffff) {
			withAccesses++
		}
	}
	// The property is only worth something where instructions access
	// memory.
	if withAccesses < n/4 {
		t.Errorf("only %d of %d random instructions access memory", withAccesses, n)
	}
}

func FuzzAddressRegs(f *testing.F) {
	f.Add([]byte{0x8b, 0x03}, byte(2), uint64(1), uint64(2))
	f.Add([]byte{0xf3, 0xa4}, byte(5), uint64(3), uint64(4))
	f.Add([]byte{0xd7}, byte(0), uint64(5), uint64(6))
	f.Fuzz(func(t *testing.T, code []byte, sel byte, seedA, seedB uint64) {
		if len(code) > 15 {
			code = code[:15]
		}
		r := rand.New(rand.NewPCG(seedA, seedB))
		var gpr, other [x86.NumGPR]uint64
		for i := range gpr {
			gpr[i], other[i] = r.Uint64N(0x8000), r.Uint64()
		}
		addressRegsHold(t, code, sel, gpr, other, r.Uint64()&0x3fffff)
	})
}
