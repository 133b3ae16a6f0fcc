package fuzz

import (
	"encoding/binary"
	"math/rand/v2"

	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Generator makes programs from a seed: instructions from the decoder's
// own tables (decode.Forms), encoded with random prefixes, ModRM, SIB,
// displacements and immediates, their memory operand aimed at a target.
type Generator struct {
	rng *rand.Rand
	// forms are the rows with a memory operand or a stack access, by
	// decode mode.
	forms [3][]decode.Form
	avx   bool
}

// NewGenerator returns a generator for seed; avx says the host can run
// AVX guests (VEX rows are generated only then).
func NewGenerator(seed uint64, avx bool) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, 0x5a17)), avx: avx}
	decode.Forms(func(f *decode.Form) bool {
		if !f.Memory && emulate.FactsOf(f.Op).Stack == emulate.StackNone {
			return true
		}
		if f.VEX && !avx {
			return true
		}
		for i, dm := range []decode.Mode{decode.Mode16, decode.Mode32, decode.Mode64} {
			if f.Mode64 == 0 && dm == decode.Mode64 || f.Mode64 == 1 && dm != decode.Mode64 {
				continue
			}
			g.forms[i] = append(g.forms[i], *f)
		}
		return true
	})
	return g
}

func modeIndex(dm decode.Mode) int {
	switch dm {
	case decode.Mode16:
		return 0
	case decode.Mode32:
		return 1
	}
	return 2
}

// interesting register values, besides random ones.
var interesting = []uint64{0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
	0x100000000, 0x7fffffffffffffff, 0x8000000000000000, 0xffffffffffffffff}

func (g *Generator) value() uint64 {
	switch g.rng.IntN(3) {
	case 0:
		return interesting[g.rng.IntN(len(interesting))]
	case 1:
		return uint64(g.rng.IntN(0x100))
	}
	return g.rng.Uint64()
}

// Program generates one program in mode m; it retries until an encoding
// decodes and can be aimed.
func (g *Generator) Program(m Mode) *Program {
	for {
		if p := g.try(m); p != nil {
			return p
		}
	}
}

func (g *Generator) try(m Mode) *Program {
	dm := m.DecodeMode()
	forms := g.forms[modeIndex(dm)]
	f := &forms[g.rng.IntN(len(forms))]
	c := g.choice(dm)
	b, _ := f.Encode(dm, &c, nil)
	if b == nil {
		return nil
	}
	var inst decode.Inst
	if err := decode.Decode(b, dm, &inst); err != nil || (inst.Op != f.Op && inst.Op != f.OpW) {
		return nil
	}
	facts := emulate.FactsOf(inst.Op)
	p := &Program{Mode: m, Insn: append([]byte(nil), b[:inst.Len]...)}
	p.Vector = facts.Flags&(emulate.FVector|emulate.FX87) != 0 || facts.Class == emulate.ClassXState
	p.AVX = inst.Prefix.VEX.Len != 0
	if p.AVX && !g.avx {
		return nil
	}
	for r := range p.Regs {
		p.Regs[r] = g.value()
	}
	t := g.target(m)
	p.Target, p.TargetKind = t.addr, t.kind
	g.fill(p) // first: the fills move the instruction, which Aim needs in place
	if !Aim(p, g.rng) {
		return nil
	}
	return p
}

// choice draws the free parts of an encoding.
func (g *Generator) choice(dm decode.Mode) decode.Choice {
	r := g.rng
	c := decode.Choice{Mod: byte(r.IntN(3)), Reg: byte(r.IntN(8)), RM: byte(r.IntN(8)), SIB: byte(r.Uint32()),
		VVVV: byte(r.IntN(16)), W: r.IntN(3) == 0, L: r.IntN(2) == 0}
	if dm == decode.Mode64 && r.IntN(2) == 0 {
		c.REX = byte(r.IntN(8))
	}
	switch c.Mod {
	case 1:
		c.Disp = int32(int8(r.Uint32()))
	case 2:
		c.Disp = int32(r.IntN(0x20000)) - 0x10000
	default:
		c.Disp = int32(r.Uint32())
	}
	for i := range c.Tail {
		c.Tail[i] = byte(r.Uint32())
	}
	for _, pf := range []struct {
		b    byte
		odds int
	}{{0x66, 5}, {0x67, 7}, {0xF3, 10}, {0xF2, 12}, {0xF0, 20}} {
		if r.IntN(pf.odds) == 0 {
			c.Prefixes = append(c.Prefixes, pf.b)
		}
	}
	if r.IntN(6) == 0 {
		c.Prefixes = append(c.Prefixes, []byte{0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65}[r.IntN(6)])
	}
	r.Shuffle(len(c.Prefixes), func(i, j int) { c.Prefixes[i], c.Prefixes[j] = c.Prefixes[j], c.Prefixes[i] })
	return c
}

// A target is what a memory operand is aimed at.
type target struct {
	kind string
	addr uint64
}

// target draws an address for mode m: inside the MMIO windows, across
// their page boundaries and into unassigned space, across RAM/MMIO and
// MMIO/absent page boundaries (the special pages), across the top of a
// 64 KiB or 4 GiB segment, and past the canonical range.
func (g *Generator) target(m Mode) target {
	r := g.rng
	off := uint64(r.IntN(0xfff0))
	cross := 0xff8 + uint64(r.IntN(8))
	type t = target
	var ts []t
	ts = append(ts,
		t{"low window", 0xd0000 + off},
		t{"low window page boundary", 0xd0000 + uint64(r.IntN(16))<<12 + cross},
		t{"RAM into the PC hole", 0x9f000 + cross},
		t{"the PC hole into the low window", 0xcf000 + cross},
		t{"the PC hole", 0xa0000 + off},
	)
	switch m {
	case ModeReal:
		ts = append(ts, t{"low window, segment wrap", 0xd0000 + 0xfff8 + uint64(r.IntN(8))})
	default:
		ts = append(ts, t{"high window", 0xff000000 + off}, t{"high window page boundary", 0xff000000 + cross})
	}
	switch m {
	case ModeProt32, ModePaging32, ModePAE:
		ts = append(ts, t{"4 GiB wrap", 0xfffffff8 + uint64(r.IntN(8))})
	case ModeLong4:
		ts = append(ts, t{"canonical boundary", 0x00007ffffffff000 + cross}, t{"non-canonical", 0x0000800000000000 + off})
	case ModeLong5:
		ts = append(ts, t{"canonical boundary", 0x00fffffffffff000 + cross}, t{"non-canonical", 0x0100000000000000 + off})
	}
	if m.Paging() {
		i := uint64(r.IntN(len(specials)))
		ts = append(ts,
			t{"special page: " + specials[i].what, SpecialBase + i<<12 + uint64(r.IntN(0xff8))},
			t{"special page boundary: " + specials[i].what + " into " + specials[(i+1)%uint64(len(specials))].what, SpecialBase + i<<12 + cross})
	}
	return ts[r.IntN(len(ts))]
}

// writable reports whether the dword at linear a can be stored by a
// program's fill in mode m: it lies in MMIO, the PC hole or a writable
// special page, never on the program's code or tables.
func writable(m Mode, a uint64) bool {
	ok := func(x uint64) bool {
		switch {
		case x >= 0x9f000 && x < 0x110000:
			return m != ModeReal || x < 0x10fff0
		case m == ModeReal:
			return false
		case x >= 0xff000000 && x < 0xff010000, x >= 0xfffff000 && x <= 0xffffffff:
			return true
		case m.Paging() && x >= SpecialBase && x < SpecialBase+uint64(len(specials))<<12:
			s := specials[(x-SpecialBase)>>12]
			return s.present && s.writable
		}
		return false
	}
	return ok(a) && ok(a+3)
}

// fill stores random dwords around the target (those writable), so that
// the instruction reads data other than zeros.
func (g *Generator) fill(p *Program) {
	base := p.Target&^3 - 8
	for i := range uint64(8) {
		a := base + 4*i
		if writable(p.Mode, a) {
			p.Fills = append(p.Fills, Fill{Addr: a, Val: uint32(g.value())})
		}
	}
}

// Aim sets the registers (and in real mode the data segments, and for
// absolute and RIP-relative forms the displacement) so that the
// instruction's memory operands and stack reach p.Target; a second memory
// operand (MOVS, CMPS) goes 0x40 bytes further. It reports false for
// forms it cannot aim (VSIB, an index that is also the base, an absolute
// displacement too narrow for the target).
func Aim(p *Program, rng *rand.Rand) bool {
	var inst decode.Inst
	dm := p.Mode.DecodeMode()
	if err := decode.Decode(p.Insn, dm, &inst); err != nil {
		return false
	}
	segBase := uint64(0)
	if p.Mode == ModeReal {
		if p.Target < 0x8000 {
			return false
		}
		p.Seg = uint16((p.Target - 0x8000) >> 4)
		if p.TargetKind == "low window, segment wrap" {
			p.Seg = uint16((p.Target - 0xfff8) >> 4)
		}
		segBase = uint64(p.Seg) << 4
	}
	facts := emulate.FactsOf(inst.Op)
	at := p.InsnAddr()
	n := 0
	for i := range inst.Args {
		a := &inst.Args[i]
		if a.Kind != decode.ArgMem {
			continue
		}
		if p.Mode == ModeReal && a.Mem.Seg == x86.CS {
			return false // CS stays 0: the override cannot reach the target
		}
		t := p.Target + uint64(n)*0x40
		n++
		if facts.Flags&emulate.FBitString != 0 && inst.Args[1].Kind == decode.ArgReg {
			// The bit offset (in a register of its own) adds to the address.
			r := inst.Args[1].Reg
			if r == a.Mem.Base || r == a.Mem.Index {
				return false
			}
			p.Regs[r&15] = uint64(rng.IntN(64))
		}
		if !aimMem(p, &inst, &a.Mem, t-segBase, at, rng) {
			return false
		}
	}
	switch facts.Stack {
	case emulate.StackNone:
	case emulate.StackPop, emulate.StackPopAll, emulate.StackRet, emulate.StackRetFar, emulate.StackLeave:
		if inst.Op == decode.LEAVE {
			p.Regs[x86.RBP] = p.Target - segBase
		} else {
			p.Regs[x86.RSP] = p.Target - segBase
		}
	default:
		p.Regs[x86.RSP] = p.Target - segBase + 8 // the pushed slot ends at or below Target+8
	}
	if facts.Flags&emulate.FString != 0 && (inst.Prefix.Rep || inst.Prefix.Repne) {
		p.Regs[x86.RCX] = 1 + uint64(rng.IntN(3))
	}
	return n > 0 || facts.Stack != emulate.StackNone
}

// aimMem points one memory operand at offset off (linear minus the
// segment base).
func aimMem(p *Program, inst *decode.Inst, m *decode.Mem, off, at uint64, rng *rand.Rand) bool {
	if m.VSIB {
		return false
	}
	amask := ^uint64(0)
	switch m.AddrSize {
	case 2:
		amask = 0xffff
	case 4:
		amask = 0xffffffff
	}
	if off&^amask != 0 && !m.RIPRel {
		return false // the address size cannot reach the target
	}
	disp := uint64(m.Disp)
	switch {
	case m.RIPRel:
		return patchDisp(p, inst, off-(at+uint64(inst.Len)))
	case m.Base == decode.RegNone && m.Index == decode.RegNone:
		return patchDisp(p, inst, off)
	case m.Base != decode.RegNone && m.Base == m.Index:
		return false
	}
	want := off - disp
	if m.Index != decode.RegNone {
		v := uint64(rng.IntN(0x40))
		p.Regs[m.Index&15] = p.Regs[m.Index&15]&^amask | v&amask
		want -= v * uint64(m.Scale)
	}
	if m.Base == decode.RegNone {
		return false // an index without a base: the displacement would have to move
	}
	if inst.Op == decode.XLAT {
		al := uint64(rng.IntN(0x100))
		p.Regs[x86.RAX] = p.Regs[x86.RAX]&^0xff | al
		want -= al
	}
	p.Regs[m.Base&15] = p.Regs[m.Base&15]&^amask | want&amask
	return true
}

// patchDisp rewrites the instruction's displacement (or moffs) to v, if it
// fits its width.
func patchDisp(p *Program, inst *decode.Inst, v uint64) bool {
	o, n := int(inst.DispOffset), int(inst.DispLen)
	if n == 0 || o+n > len(p.Insn) {
		return false
	}
	switch n {
	case 1:
		if uint64(int64(int8(v))) != v && v > 0xff {
			return false
		}
		p.Insn[o] = byte(v)
	case 2:
		if v > 0xffff && uint64(int64(int16(v))) != v {
			return false
		}
		binary.LittleEndian.PutUint16(p.Insn[o:], uint16(v))
	case 4:
		if p.Mode.DecodeMode() == decode.Mode64 && uint64(int64(int32(v))) != v {
			return false
		}
		if v > 0xffffffff && uint64(int64(int32(v))) != v {
			return false
		}
		binary.LittleEndian.PutUint32(p.Insn[o:], uint32(v))
	case 8:
		binary.LittleEndian.PutUint64(p.Insn[o:], v)
	default:
		return false
	}
	return true
}
