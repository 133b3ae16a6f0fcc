package decode

// Form is one row of the opcode tables with the constraints on the bytes
// around the opcode that lead the decoder to it: what an instruction
// generator (vmm fuzz) needs to build encodings from the decoder's own
// tables. Constraint fields hold -1 where the row accepts any value.
type Form struct {
	Op Op
	// OpW is the mnemonic with REX.W/VEX.W set where it differs.
	OpW    Op
	Map    Map
	Opcode byte
	// VEX says the row is in a VEX map (C4/C5 prefix).
	VEX bool
	// Prefix is the mandatory prefix (0x66, 0xF3, 0xF2; VEX.pp), 0 for
	// none, -1 where the row does not depend on it.
	Prefix int16
	// Reg and RM are the ModRM.reg and ModRM.rm the row needs; Mod is 0
	// for a row reached only by memory forms (mod != 11), 3 for one
	// reached only by register forms.
	Reg, RM, Mod int8
	// W and L are REX.W/VEX.W and VEX.L.
	W, L int8
	// Mode64 is 0 for a row invalid in 64-bit mode, 1 for one valid only
	// there.
	Mode64 int8
	// ModRM says the encoding has a ModRM byte; Memory that an operand is
	// memory (ModRM r/m, a string operand, moffs, XLAT).
	ModRM, Memory bool
	// NoVVVV says VEX.vvvv must be 1111b (no register there).
	NoVVVV bool
}

// Forms calls yield for every row of the legacy and VEX opcode maps, in
// map and opcode order, until yield returns false.
func Forms(yield func(*Form) bool) {
	buildTables()
	legacy := [...]*[256]entry{MapOneByte: &oneByte, Map0F: &twoByte, Map0F38: &three38, Map0F3A: &three3A}
	for m, t := range legacy {
		for op := range t {
			f := Form{Map: Map(m), Opcode: byte(op), Prefix: -1, Reg: -1, RM: -1, Mod: -1, W: -1, L: -1, Mode64: -1}
			if !walkForms(&t[op], f, yield) {
				return
			}
		}
	}
	for m := 1; m < len(vexMaps); m++ {
		for op := range vexMaps[m] {
			f := Form{Map: Map(m), Opcode: byte(op), VEX: true, Prefix: -1, Reg: -1, RM: -1, Mod: -1, W: -1, L: -1, Mode64: -1}
			if !walkForms(&vexMaps[m][op], f, yield) {
				return
			}
		}
	}
}

// memKinds are the operand kinds that can be memory.
const memKinds = 1<<kE | 1<<kM | 1<<kW | 1<<kQ | 1<<kMV | 1<<kEr | 1<<kX | 1<<kY | 1<<kO | 1<<kXlat | 1<<kXdi | 1<<kYr

// walkForms follows the dispatch nodes below e, narrowing f, and yields
// every leaf.
func walkForms(e *entry, f Form, yield func(*Form) bool) bool {
	if e.kind == nLeaf {
		if e.op == Invalid {
			return true
		}
		f.Op, f.OpW = e.op, e.opW
		fl := e.flags
		f.NoVVVV = fl&fNoVVVV != 0
		f.ModRM = f.ModRM || fl&fModRM != 0
		switch {
		case fl&fI64 != 0:
			f.Mode64 = 0
		case fl&fO64 != 0:
			f.Mode64 = 1
		}
		switch {
		case fl&fW0 != 0:
			f.W = 0
		case fl&fW1 != 0:
			f.W = 1
		}
		switch {
		case fl&fL0 != 0:
			f.L = 0
		case fl&fL1 != 0:
			f.L = 1
		}
		if fl&fVEX != 0 && !f.VEX {
			return true // a VEX-only row of a legacy map: reached through the VEX maps
		}
		for _, a := range e.args {
			if memKinds&(1<<a.kind()) != 0 && f.Mod != 3 {
				f.Memory = true
			}
		}
		return yield(&f)
	}
	for i := range e.sub {
		g := f
		switch e.kind {
		case nReg:
			g.Reg, g.ModRM = int8(i), true
		case nMod:
			g.Mod, g.ModRM = int8(3*i), true
		case nRM:
			g.RM, g.ModRM = int8(i), true
		case nPfx:
			g.Prefix = [4]int16{0, 0x66, 0xF3, 0xF2}[i]
		case nMode:
			g.Mode64 = int8(i)
		case nW:
			g.W = int8(i)
		case nL:
			g.L = int8(i)
		}
		if !walkForms(&e.sub[i], g, yield) {
			return false
		}
	}
	return true
}

// Choice is what Form.Encode leaves to its caller: the parts of the
// encoding the row does not fix.
type Choice struct {
	// Prefixes are legacy prefixes (66, 67, F0, F2, F3, segment
	// overrides) in front of the mandatory prefix; Encode drops those the
	// row's mandatory prefix or VEX exclude.
	Prefixes []byte
	// REX holds REX.R, X, B in bits 2:0 (64-bit mode only) and, for a VEX
	// encoding, VEX.R, X, B; W is REX.W or VEX.W and L VEX.L where the row
	// leaves them free.
	REX  byte
	W, L bool
	VVVV byte
	// Mod (0-2 for memory, 3 for a register), Reg and RM fill the ModRM
	// byte where the row leaves them free; SIB is used when RM is 100b
	// and Mod is not 3 with 32- or 64-bit addressing.
	Mod, Reg, RM, SIB byte
	// Disp is the displacement, as wide as Mod and the addressing need.
	Disp int32
	// Tail follows the displacement: immediates (Decode says how many of
	// its bytes the instruction takes).
	Tail [8]byte
}

// Encode appends to b the bytes of an instruction of row f in mode with
// c's choices, and the offset of its displacement (-1 for none). It
// returns nil when the row cannot be encoded in mode (a 64-bit-only row
// outside it, REX.W or VEX outside what the mode allows). The result
// decodes to f's row unless c breaks a constraint the row has beyond its
// encoding (LOCK, VEX.vvvv); the caller decodes it and keeps the first
// Inst.Len bytes.
func (f *Form) Encode(mode Mode, c *Choice, b []byte) ([]byte, int) {
	m64 := mode == Mode64
	if f.Mode64 == 0 && m64 || f.Mode64 == 1 && !m64 {
		return nil, -1
	}
	w := c.W
	if f.W >= 0 {
		w = f.W == 1
	}
	if w && !m64 && !f.VEX {
		return nil, -1
	}
	addr16 := mode == Mode16
	for _, p := range c.Prefixes {
		switch {
		case p == 0x67:
			if mode != Mode64 {
				addr16 = !addr16
			}
		case f.VEX && (p == 0x66 || p == 0xF0 || p == 0xF2 || p == 0xF3):
			continue
		case f.Prefix >= 0 && (p == 0x66 || p == 0xF2 || p == 0xF3):
			continue
		}
		b = append(b, p)
	}
	if f.VEX {
		rxb := c.REX & 7
		if !m64 {
			rxb = 0 // R and X must read as 1 outside 64-bit mode, and B is ignored
		}
		pp := byte(0)
		switch f.Prefix {
		case 0x66:
			pp = 1
		case 0xF3:
			pp = 2
		case 0xF2:
			pp = 3
		}
		vvvv := c.VVVV & 15
		if f.NoVVVV {
			vvvv = 0
		}
		if !m64 {
			vvvv &= 7
		}
		l := c.L
		if f.L >= 0 {
			l = f.L == 1
		}
		b1 := ^rxb<<5&0xE0 | byte(f.Map)
		b2 := ^vvvv&15<<3 | pp
		if w {
			b2 |= 0x80
		}
		if l {
			b2 |= 4
		}
		b = append(b, 0xC4, b1, b2)
	} else {
		if f.Prefix > 0 {
			b = append(b, byte(f.Prefix))
		}
		if m64 && (c.REX&7 != 0 || w) {
			rex := 0x40 | c.REX&7
			if w {
				rex |= 8
			}
			b = append(b, rex)
		}
		switch f.Map {
		case Map0F:
			b = append(b, 0x0F)
		case Map0F38:
			b = append(b, 0x0F, 0x38)
		case Map0F3A:
			b = append(b, 0x0F, 0x3A)
		}
	}
	b = append(b, f.Opcode)
	disp := -1
	if f.ModRM {
		mod, reg, rm := c.Mod&3, c.Reg&7, c.RM&7
		switch f.Mod {
		case 0:
			mod %= 3
		case 3:
			mod = 3
		}
		if f.Reg >= 0 {
			reg = byte(f.Reg)
		}
		if f.RM >= 0 {
			rm = byte(f.RM)
		}
		b = append(b, mod<<6|reg<<3|rm)
		var n int
		switch {
		case mod == 3:
		case addr16:
			switch {
			case mod == 1:
				n = 1
			case mod == 2, rm == 6:
				n = 2
			}
		default:
			base := rm
			if rm == 4 {
				b = append(b, c.SIB)
				base = c.SIB & 7
			}
			switch {
			case mod == 1:
				n = 1
			case mod == 2, base == 5:
				n = 4
			}
		}
		if n > 0 {
			disp = len(b)
			for i := range n {
				b = append(b, byte(c.Disp>>(8*i)))
			}
		}
	}
	return append(b, c.Tail[:]...), disp
}
