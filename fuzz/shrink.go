package fuzz

import "math/rand/v2"

// Shrink returns a smaller program whose run still has class: without the
// fills, prefixes, vector setup and register values that do not matter
// (each zeroed), with at most budget runs. Every candidate is aimed again
// (Aim) at p's target, since dropping a prefix or a fill changes how the
// instruction addresses and where it sits.
func Shrink(p *Program, class string, run Runner, budget int) *Program {
	best := p.Clone()
	try := func(q *Program) bool {
		if budget <= 0 {
			return false
		}
		budget--
		if !Aim(q, rand.New(rand.NewPCG(1, 1))) {
			return false
		}
		if run(q).Class != class {
			return false
		}
		best = q
		return true
	}
	if len(best.Fills) > 0 {
		q := best.Clone()
		q.Fills = nil
		if !try(q) {
			for i := 0; i < len(best.Fills); {
				q := best.Clone()
				q.Fills = append(q.Fills[:i], q.Fills[i+1:]...)
				if !try(q) {
					i++
				}
			}
		}
	}
	for i := 0; i < prefixCount(best); {
		q := best.Clone()
		q.Insn = append(q.Insn[:i], q.Insn[i+1:]...)
		if !try(q) {
			i++
		}
	}
	if best.AVX {
		q := best.Clone()
		q.AVX = false
		try(q)
	}
	if best.Vector {
		q := best.Clone()
		q.Vector, q.AVX = false, false
		try(q)
	}
	long := best.Mode == ModeLong4 || best.Mode == ModeLong5
	for r := range best.Regs {
		if best.Regs[r] == 0 || r >= 8 && !long {
			continue // zero already, or not set outside 64-bit mode
		}
		q := best.Clone()
		q.Regs[r] = 0
		try(q)
	}
	return best
}

// prefixCount is the number of legacy and REX prefix bytes in front of
// the instruction's opcode (a VEX prefix ends them).
func prefixCount(p *Program) int {
	long := p.Mode == ModeLong4 || p.Mode == ModeLong5
	n := 0
	for _, b := range p.Insn {
		switch {
		case b == 0x66 || b == 0x67 || b == 0xF0 || b == 0xF2 || b == 0xF3,
			b == 0x26 || b == 0x2E || b == 0x36 || b == 0x3E || b == 0x64 || b == 0x65,
			long && b&0xF0 == 0x40:
			n++
		default:
			return n
		}
	}
	return n
}
