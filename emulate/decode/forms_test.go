package decode

import (
	"math/rand/v2"
	"testing"
)

// Every row Forms yields is reached again by decoding what Encode builds
// for it: in some mode the row allows, for some choice of the free parts,
// the decoder lands on the row's mnemonic (and memory rows on a memory
// operand).
func TestFormsEncode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var n, mem int
	Forms(func(f *Form) bool {
		n++
		if f.Memory {
			mem++
		}
		modes := []Mode{Mode16, Mode32, Mode64}
		ok := false
		var inst Inst
		var last error
		for try := 0; try < 60 && !ok; try++ {
			mode := modes[try%3]
			c := Choice{Mod: byte(rng.IntN(3)), Reg: byte(rng.IntN(8)), RM: byte(rng.IntN(8)), SIB: byte(rng.Uint32()),
				Disp: int32(rng.Uint32()), VVVV: 15, REX: byte(rng.IntN(8))}
			if !f.Memory {
				c.Mod = 3
			}
			for i := range c.Tail {
				c.Tail[i] = byte(rng.Uint32())
			}
			b, _ := f.Encode(mode, &c, nil)
			if b == nil {
				continue
			}
			if last = Decode(b, mode, &inst); last != nil {
				continue
			}
			if inst.Op != f.Op && inst.Op != f.OpW {
				continue
			}
			ok = !f.Memory || inst.MemArg() >= 0 || hasMem(&inst)
		}
		if !ok {
			t.Errorf("row %v (map %v opcode %#x prefix %#x reg %d mod %d W %d L %d mode64 %d vex %v): never decoded back (last: %v)",
				f.Op, f.Map, f.Opcode, f.Prefix, f.Reg, f.Mod, f.W, f.L, f.Mode64, f.VEX, last)
		}
		return true
	})
	t.Logf("%d rows, %d with a memory operand", n, mem)
	if n < 500 || mem < 300 {
		t.Errorf("only %d rows, %d with memory", n, mem)
	}
}

func hasMem(in *Inst) bool {
	for i := range in.Args {
		if in.Args[i].Kind == ArgMem {
			return true
		}
	}
	return false
}
