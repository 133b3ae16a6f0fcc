package decode

import (
	"errors"
	"fmt"

	"walkvm/x86"
)

//go:generate go run mkops.go

// ErrMode reports a Mode other than Mode16, Mode32 or Mode64.
var ErrMode = errors.New("decode: invalid mode")

// Decode decodes the instruction at the start of b in mode and fills inst.
// It returns ErrTruncated if b ends before the instruction does, an
// *x86.Exception (#UD, or #GP(0) past 15 bytes) for an encoding the CPU
// rejects, and nil otherwise. Bytes after the instruction are ignored. It
// allocates nothing unless it fails with an exception.
func Decode(b []byte, mode Mode, inst *Inst) error {
	*inst = Inst{}
	switch mode {
	case Mode16, Mode32, Mode64:
	default:
		return ErrMode
	}
	inst.Mode = mode
	buildTables()
	d := decoder{b: b, inst: inst, mode64: mode == Mode64}
	return d.decode()
}

// decoder is the per-call scratch state; it lives on Decode's stack.
type decoder struct {
	b      []byte
	inst   *Inst
	pos    int
	mode64 bool

	// effective segment override (64-bit mode ignores ES/CS/SS/DS)
	seg    x86.SegReg
	hasSeg bool

	mod, reg, rm uint8 // ModRM fields, reg and rm without REX/VEX extension
	memDone      bool  // the r/m memory operand has been decoded into mem
	mem          Mem
}

// tooLong is #GP(0) for an instruction over 15 bytes, built per call: an
// *x86.Exception is a value the caller may keep.
func tooLong() error { return x86.GP(0, "decode: instruction longer than 15 bytes") }

// need checks that n more bytes exist: past 15 it is #GP(0), past the end
// of b it is ErrTruncated.
func (d *decoder) need(n int) error {
	if d.pos+n > MaxLen {
		return tooLong()
	}
	if d.pos+n > len(d.b) {
		return ErrTruncated
	}
	return nil
}

func (d *decoder) undefined(what string) error {
	in := d.inst
	switch in.Map {
	case MapOneByte:
		return x86.UD(fmt.Sprintf("decode: %s: opcode %02x", what, in.Opcode))
	default:
		return x86.UD(fmt.Sprintf("decode: %s: opcode %v %02x", what, in.Map, in.Opcode))
	}
}

func (d *decoder) decode() error {
	in := d.inst
	p := &in.Prefix

	// Legacy prefixes in any order and number, then REX (64-bit mode) if
	// it is the last byte before the opcode (SDM Vol. 2A §2.1, §2.2.1).
prefixes:
	for {
		if err := d.need(1); err != nil {
			return err
		}
		c := d.b[d.pos]
		switch c {
		case 0xF0:
			p.Lock = true
		case 0xF2:
			p.Repne, p.Rep = true, false
		case 0xF3:
			p.Rep, p.Repne = true, false
		case 0x66:
			p.OpSize = true
		case 0x67:
			p.AddrSize = true
		case 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65:
			s := segPrefix(c)
			p.Seg, p.HasSeg = s, true
			// In 64-bit mode ES/CS/SS/DS overrides are null prefixes
			// (SDM Vol. 1 §3.3.7.1; AMD APM Vol. 3 §1.2.4): they do not
			// cancel an earlier FS/GS.
			if !d.mode64 || s >= x86.FS {
				d.seg, d.hasSeg = s, true
			}
		default:
			if d.mode64 && c&0xF0 == 0x40 {
				p.REX = c
				d.pos++
				continue
			}
			break prefixes
		}
		p.REX = 0 // a REX followed by a legacy prefix is ignored
		p.Count++
		d.pos++
	}

	c := d.b[d.pos]
	tab := &oneByte
	in.Map = MapOneByte
	switch c {
	case 0x0F:
		d.pos++
		if err := d.need(1); err != nil {
			return err
		}
		c = d.b[d.pos]
		tab = &twoByte
		in.Map = Map0F
		if c == 0x38 || c == 0x3A {
			d.pos++
			if err := d.need(1); err != nil {
				return err
			}
			if c == 0x38 {
				tab, in.Map = &three38, Map0F38
			} else {
				tab, in.Map = &three3A, Map0F3A
			}
			c = d.b[d.pos]
		}
	case 0xC4, 0xC5, 0x62:
		// VEX (C4, C5) and EVEX (62) in 64-bit mode, or elsewhere when
		// the next byte has mod=11: LES/LDS/BOUND need a memory operand
		// (SDM Vol. 2A §2.3.5).
		if err := d.need(2); err != nil {
			return err
		}
		if d.mode64 || d.b[d.pos+1]>>6 == 3 {
			in.Opcode = c
			if c == 0x62 {
				return x86.UD("decode: EVEX prefix (AVX-512 is not supported)")
			}
			return d.decodeVEX(c)
		}
	}
	in.Opcode = c
	d.pos++
	return d.finish(&tab[c])
}

func segPrefix(c byte) x86.SegReg {
	switch c {
	case 0x26:
		return x86.ES
	case 0x2E:
		return x86.CS
	case 0x36:
		return x86.SS
	case 0x3E:
		return x86.DS
	case 0x64:
		return x86.FS
	}
	return x86.GS
}

// readModRM reads the ModRM byte if it has not been read.
func (d *decoder) readModRM() error {
	in := d.inst
	if in.HasModRM {
		return nil
	}
	if err := d.need(1); err != nil {
		return err
	}
	m := d.b[d.pos]
	d.pos++
	in.HasModRM, in.ModRM = true, m
	d.mod, d.reg, d.rm = m>>6, m>>3&7, m&7
	return nil
}

// finish walks the dispatch nodes from e to a leaf and decodes the rest of
// the instruction: ModRM, SIB, displacement, immediates, operands.
func (d *decoder) finish(e *entry) error {
	in := d.inst
	p := &in.Prefix
	for e.kind != nLeaf {
		var i int
		switch e.kind {
		case nReg, nMod, nRM:
			if err := d.readModRM(); err != nil {
				return err
			}
			switch e.kind {
			case nReg:
				i = int(d.reg)
			case nMod:
				if d.mod == 3 {
					i = 1
				}
			case nRM:
				i = int(d.rm)
			}
		case nPfx:
			switch {
			case p.VEX.Len != 0:
				i = int(p.VEX.PP)
			case p.Repne:
				i = 3
			case p.Rep:
				i = 2
			case p.OpSize:
				i = 1
			}
		case nMode:
			if d.mode64 {
				i = 1
			}
		case nW:
			if p.W() {
				i = 1
			}
		case nL:
			i = int(p.VEX.L)
		}
		e = &e.sub[i]
	}
	if e.op == Invalid {
		return d.undefined("undefined encoding")
	}
	if e.flags&fI64 != 0 && d.mode64 {
		return d.undefined("invalid in 64-bit mode")
	}
	if e.flags&fO64 != 0 && !d.mode64 {
		return d.undefined("valid only in 64-bit mode")
	}
	if err := d.vexCheck(e); err != nil {
		return err
	}
	in.Op = e.op
	if e.opW != Invalid && p.W() {
		in.Op = e.opW
	}

	// Operand size (SDM Vol. 1 §3.6, Vol. 2A §2.2.1.2).
	osz := uint8(4)
	if in.Mode == Mode16 {
		osz = 2
	}
	if p.OpSize {
		osz = 6 - osz // 2 <-> 4
	}
	if d.mode64 {
		switch {
		case p.W():
			osz = 8
		case e.flags&fF64 != 0:
			osz = 8
		case e.flags&fD64 != 0 && !p.OpSize:
			osz = 8
		}
	}
	in.OpSize = osz
	// Address size.
	switch in.Mode {
	case Mode16:
		in.AddrSize = 2
		if p.AddrSize {
			in.AddrSize = 4
		}
	case Mode32:
		in.AddrSize = 4
		if p.AddrSize {
			in.AddrSize = 2
		}
	default:
		in.AddrSize = 8
		if p.AddrSize {
			in.AddrSize = 4
		}
	}

	// ModRM and the memory operand come before any immediate.
	if e.flags&fModRM != 0 {
		if err := d.readModRM(); err != nil {
			return err
		}
	}
	if in.HasModRM && d.mod != 3 && e.flags&fModIgn == 0 {
		if err := d.decodeMem(e.flags&fVSIB != 0); err != nil {
			return err
		}
	}

	if p.Lock {
		// LOCK needs a lockable instruction with a memory destination
		// (SDM LOCK: #UD otherwise).
		if e.flags&fLock == 0 || !d.memDone || !e.args[0].isRM() {
			return d.undefined("LOCK prefix not allowed")
		}
	}

	for n, a := range e.args {
		if a == 0 {
			break
		}
		if err := d.operand(e, n, a); err != nil {
			return err
		}
	}
	if e.osize != zNone {
		in.OpSize = uint8(d.size(e, int(e.osize)))
	}

	if e.flags&fVSIB != 0 {
		// Gathers: #UD if any two of destination, index and mask are the
		// same register (SDM Vol. 2B VGATHERDPS, VPGATHERDD).
		dst, idx, mask := in.Args[0].Reg, in.Args[1].Mem.Index, in.Args[2].Reg
		if dst == idx || dst == mask || idx == mask {
			return d.undefined("gather with repeated registers")
		}
	}

	// Fix-ups the tables cannot express.
	if in.Map == MapOneByte {
		switch in.Opcode {
		case 0x90:
			// 90 is NOP (F3 90 PAUSE) unless REX.B makes it XCHG r8, rAX.
			if !p.B() {
				in.Op = NOP
				if p.Rep {
					in.Op = PAUSE
				}
				in.Args[0], in.Args[1] = Arg{}, Arg{}
			}
		case 0x8E:
			if d.reg == 1 { // MOV CS, r/m is #UD (SDM MOV)
				return d.undefined("MOV to CS")
			}
		}
	}
	in.Len = uint8(d.pos)
	return nil
}

// size resolves a size code for this instruction.
func (d *decoder) size(e *entry, z int) int {
	in := d.inst
	switch z {
	case z1:
		return 1
	case z2:
		return 2
	case z4:
		return 4
	case z8:
		return 8
	case z10:
		return 10
	case z16:
		return 16
	case z32:
		return 32
	case z512:
		return 512
	case zV:
		return int(in.OpSize)
	case zZ:
		if in.OpSize == 2 {
			return 2
		}
		return 4
	case zY:
		if d.mode64 && in.Prefix.W() {
			return 8
		}
		return 4
	case zX:
		return 16 << in.Prefix.VEX.L
	case zHX:
		return 8 << in.Prefix.VEX.L
	case zQX:
		return 4 << in.Prefix.VEX.L
	case zEX:
		return 2 << in.Prefix.VEX.L
	case zP:
		return 2 + int(in.OpSize)
	case zPI:
		if in.OpSize == 2 {
			return 4
		}
		return 6
	case zS:
		if d.mode64 {
			return 10
		}
		return 6
	case zA:
		return 2 * int(in.OpSize)
	case zEnv:
		if in.OpSize == 2 {
			return 14
		}
		return 28
	case zSave:
		if in.OpSize == 2 {
			return 94
		}
		return 108
	case zAddr:
		return int(in.AddrSize)
	case zMd:
		if d.mode64 {
			return 8
		}
		return 4
	case zDup:
		return 8 << (2 * in.Prefix.VEX.L)
	case zWs:
		if in.Prefix.VEX.W {
			return 8
		}
		return 4
	case z64B:
		return 64
	case zVSIB:
		// Bytes gathered: dword-index forms (90, 92) fill a whole vector;
		// qword-index forms (91, 93) with dword elements fill half of one.
		if in.Opcode&1 == 1 && !in.Prefix.VEX.W {
			return 8 << in.Prefix.VEX.L
		}
		return 16 << in.Prefix.VEX.L
	}
	return 0
}

// decodeMem decodes the ModRM memory form (mod != 11): SIB and
// displacement (SDM Vol. 2A §2.1.5, Tables 2-1 to 2-3; §2.2.1.6 for
// RIP-relative addressing).
func (d *decoder) decodeMem(vsib bool) error {
	in := d.inst
	p := &in.Prefix
	// Built in place, field by field: assembling a local Mem and copying it
	// whole made the CPU wait on store forwarding (narrow stores, wide
	// loads), a fifth of the decode time.
	m := &d.mem
	m.Base, m.Index, m.Scale, m.DefaultSeg, m.AddrSize = RegNone, RegNone, 1, x86.DS, in.AddrSize
	var dispLen int
	if vsib && (in.AddrSize == 2 || d.rm != 4) {
		// VSIB needs a SIB byte and 32/64-bit addressing (SDM Vol. 2A
		// §2.3.12).
		return d.undefined("VSIB without a SIB byte")
	}
	if in.AddrSize == 2 {
		// 16-bit addressing: Table 2-1.
		switch d.rm {
		case 0:
			m.Base, m.Index = x86.RBX, x86.RSI
		case 1:
			m.Base, m.Index = x86.RBX, x86.RDI
		case 2:
			m.Base, m.Index, m.DefaultSeg = x86.RBP, x86.RSI, x86.SS
		case 3:
			m.Base, m.Index, m.DefaultSeg = x86.RBP, x86.RDI, x86.SS
		case 4:
			m.Base = x86.RSI
		case 5:
			m.Base = x86.RDI
		case 6:
			if d.mod == 0 {
				dispLen = 2
			} else {
				m.Base, m.DefaultSeg = x86.RBP, x86.SS
			}
		case 7:
			m.Base = x86.RBX
		}
		switch d.mod {
		case 1:
			dispLen = 1
		case 2:
			dispLen = 2
		}
	} else {
		// 32/64-bit addressing: Tables 2-2 and 2-3.
		base := d.rm
		switch {
		case d.rm == 4:
			if err := d.need(1); err != nil {
				return err
			}
			sib := d.b[d.pos]
			d.pos++
			in.HasSIB, in.SIB = true, sib
			base = sib & 7
			idx := sib >> 3 & 7
			if p.X() {
				idx |= 8
			}
			switch {
			case vsib:
				if !d.mode64 {
					idx &= 7
				}
				m.Index, m.VSIB = x86.Reg(idx), true
				m.Scale = 1 << (sib >> 6)
			case idx != 4: // rSP cannot be an index; REX.X makes it R12
				m.Index = x86.Reg(idx)
				m.Scale = 1 << (sib >> 6)
			}
			if base == 5 && d.mod == 0 {
				dispLen = 4 // no base
			} else {
				m.Base = x86.Reg(base)
			}
		case d.rm == 5 && d.mod == 0:
			dispLen = 4
			m.RIPRel = d.mode64
		default:
			m.Base = x86.Reg(base)
		}
		if m.Base != RegNone {
			if p.B() {
				m.Base |= 8 // R12/R13 default to DS like any other base
			} else if base == 4 || base == 5 {
				m.DefaultSeg = x86.SS // rSP/rBP-based: SS (SDM Vol. 1 §3.7.4)
			}
		}
		switch d.mod {
		case 1:
			dispLen = 1
		case 2:
			dispLen = 4
		}
	}
	if dispLen > 0 {
		if err := d.need(dispLen); err != nil {
			return err
		}
		in.DispOffset, in.DispLen = uint8(d.pos), uint8(dispLen)
		m.Disp = d.readSigned(dispLen)
	}
	m.Seg = m.DefaultSeg
	if d.hasSeg {
		m.Seg, m.SegOverride = d.seg, true
	}
	d.memDone = true
	return nil
}

// readSigned reads an n-byte little-endian value, sign-extended; the
// caller has checked the bytes are there.
func (d *decoder) readSigned(n int) int64 {
	b := d.b[d.pos : d.pos+n]
	d.pos += n
	switch n {
	case 1:
		return int64(int8(b[0]))
	case 2:
		return int64(int16(uint16(b[0]) | uint16(b[1])<<8))
	case 4:
		return int64(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return int64(v)
}

// vecRegSize is the width of a vector register operand: YMM for a
// 256-bit spec or a VEX.L=1 vector, else XMM (scalar specs name XMM).
func (d *decoder) vecRegSize(a spec) uint8 {
	switch a.size() {
	case z32:
		return 32
	case zX:
		return 16 << d.inst.Prefix.VEX.L
	}
	return 16
}

// gpr makes a, a zeroed Arg filled in place to spare a copy of the large
// struct, general-purpose register n of size bytes. Without REX, byte
// registers 4-7 are AH, CH, DH, BH (SDM Vol. 2A §2.2.1.2, Table 3-1).
func (d *decoder) gpr(a *Arg, n uint8, size int) {
	a.Kind, a.Size, a.Reg = ArgReg, uint8(size), x86.Reg(n)
	if size == 1 && n >= 4 && n < 8 && d.inst.Prefix.REX == 0 && d.inst.Prefix.VEX.Len == 0 {
		a.Reg, a.High = x86.Reg(n-4), true
	}
}

// vvvv is the VEX.vvvv register number; outside 64-bit mode only XMM0-7
// and eight GPRs exist, so its top bit is ignored there.
func (d *decoder) vvvv() uint8 {
	if d.mode64 {
		return d.inst.Prefix.VEX.VVVV
	}
	return d.inst.Prefix.VEX.VVVV & 7
}

func (d *decoder) regExt() uint8 {
	if d.inst.Prefix.R() {
		return d.reg | 8
	}
	return d.reg
}

func (d *decoder) rmExt() uint8 {
	if d.inst.Prefix.B() {
		return d.rm | 8
	}
	return d.rm
}

// memArg turns the decoded memory form into operand n.
func (d *decoder) memArg(a *Arg, e *entry, n int, size int) {
	a.Kind = ArgMem
	copyMem(&a.Mem, &d.mem)
	if e.flags&fMN != 0 {
		a.Mem.Size, a.Mem.Use = 0, 0
	} else {
		a.Mem.Size = uint16(size)
		a.Mem.Use = accessFor(e, n)
	}
}

// copyMem copies the address part of a Mem field by field, for the same
// store-forwarding reason as decodeMem.
func copyMem(dst, src *Mem) {
	dst.Seg, dst.DefaultSeg, dst.SegOverride = src.Seg, src.DefaultSeg, src.SegOverride
	dst.Base, dst.Index, dst.Scale, dst.RIPRel = src.Base, src.Index, src.Scale, src.RIPRel
	dst.Disp, dst.AddrSize, dst.VSIB = src.Disp, src.AddrSize, src.VSIB
}

// accessFor derives the access to a memory operand in slot n from the
// table flags, like KVM's DstMem|Mov / NoWrite: a destination is
// read-modify-write unless fMW (written only) or fMR (read only); a source
// is read.
func accessFor(e *entry, n int) Use {
	switch {
	case n != 0:
		return UseRead
	case e.flags&fMW != 0:
		return UseWrite
	case e.flags&fMR != 0:
		return UseRead
	}
	return UseRead | UseWrite
}

// implicitMem builds the memory operand of a string instruction, XLAT or
// MASKMOVQ.
func (d *decoder) implicitMem(e *entry, n int, base x86.Reg, seg x86.SegReg, overridable bool, size int) Arg {
	in := d.inst
	m := Mem{Base: base, Index: RegNone, Scale: 1, Seg: seg, DefaultSeg: seg, AddrSize: in.AddrSize, Size: uint16(size)}
	if overridable && d.hasSeg {
		m.Seg, m.SegOverride = d.seg, true
	}
	m.Use = accessFor(e, n)
	return Arg{Kind: ArgMem, Mem: m}
}

// operand fills Args[n] from spec a, reading immediates as it goes.
func (d *decoder) operand(e *entry, n int, a spec) error {
	in := d.inst
	p := &in.Prefix
	size := d.size(e, a.size())
	arg := &in.Args[n]
	switch a.kind() {
	case kE, kEr, kM, kW, kQ, kMV:
		if d.mod != 3 {
			d.memArg(arg, e, n, size)
			return nil
		}
		switch a.kind() {
		case kM, kMV:
			return d.undefined("register operand where memory is required")
		case kE:
			d.gpr(arg, d.rmExt(), size)
		case kEr:
			d.gpr(arg, d.rmExt(), d.size(e, zY))
		case kW:
			*arg = Arg{Kind: ArgXMM, Reg: x86.Reg(d.rmExt()), Size: d.vecRegSize(a)}
		case kQ:
			*arg = Arg{Kind: ArgMMX, Reg: x86.Reg(d.rm), Size: 8}
		}
	case kR, kRc:
		if d.mod != 3 && a.kind() == kR {
			return d.undefined("memory operand where a register is required")
		}
		d.gpr(arg, d.rmExt(), size)
	case kU:
		if d.mod != 3 {
			return d.undefined("memory operand where a register is required")
		}
		*arg = Arg{Kind: ArgXMM, Reg: x86.Reg(d.rmExt()), Size: d.vecRegSize(a)}
	case kN:
		if d.mod != 3 {
			return d.undefined("memory operand where a register is required")
		}
		*arg = Arg{Kind: ArgMMX, Reg: x86.Reg(d.rm), Size: 8}
	case kG:
		d.gpr(arg, d.regExt(), size)
	case kS:
		if d.reg > 5 {
			return d.undefined("segment register 6/7")
		}
		*arg = Arg{Kind: ArgSeg, Seg: x86.SegReg(d.reg), Size: 2}
	case kC:
		switch d.regExt() {
		case 0, 2, 3, 4, 8:
		default: // SDM Vol. 2B MOV CR: #UD for CR1, CR5-CR7, CR9-CR15
			return d.undefined("reserved control register")
		}
		*arg = Arg{Kind: ArgCR, Reg: x86.Reg(d.regExt()), Size: uint8(size)}
	case kD:
		if d.regExt() > 7 { // DR8-DR15 do not exist (SDM Vol. 2B MOV DR: #UD)
			return d.undefined("debug register above DR7")
		}
		*arg = Arg{Kind: ArgDR, Reg: x86.Reg(d.regExt()), Size: uint8(size)}
	case kV:
		*arg = Arg{Kind: ArgXMM, Reg: x86.Reg(d.regExt()), Size: d.vecRegSize(a)}
	case kP:
		*arg = Arg{Kind: ArgMMX, Reg: x86.Reg(d.reg), Size: 8}
	case kH:
		*arg = Arg{Kind: ArgXMM, Reg: x86.Reg(d.vvvv()), Size: d.vecRegSize(a)}
	case kBv:
		d.gpr(arg, d.vvvv(), size)
	case kL:
		if err := d.need(1); err != nil {
			return err
		}
		in.ImmOffset, in.ImmLen = uint8(d.pos), 1
		r := d.b[d.pos] >> 4
		d.pos++
		if !d.mode64 {
			r &= 7
		}
		*arg = Arg{Kind: ArgXMM, Reg: x86.Reg(r), Size: d.vecRegSize(a)}
	case kI, kJ:
		if a.kind() == kJ && e.flags&fF64 != 0 && d.mode64 && a.size() == zZ {
			size = 4 // near branches ignore 66 in 64-bit mode (Intel)
		}
		if a.size() == zV {
			size = int(in.OpSize) // MOV r, imm64 with REX.W
		}
		if err := d.need(size); err != nil {
			return err
		}
		if in.ImmLen == 0 {
			in.ImmOffset, in.ImmLen = uint8(d.pos), uint8(size)
		}
		k := ArgImm
		if a.kind() == kJ {
			k = ArgRel
		}
		*arg = Arg{Kind: k, Size: uint8(size), Imm: d.readSigned(size)}
	case kA:
		// ptr16:16 / ptr16:32: the offset, then the selector.
		if err := d.need(size); err != nil {
			return err
		}
		in.ImmOffset, in.ImmLen = uint8(d.pos), uint8(size)
		off := d.readSigned(size - 2)
		sel := d.readSigned(2)
		*arg = Arg{Kind: ArgImm, Size: 2, Imm: sel & 0xFFFF}
		if n+1 < NumArgs {
			in.Args[n+1] = Arg{Kind: ArgImm, Size: uint8(size - 2), Imm: off}
		}
	case kO:
		// moffs: an absolute offset as wide as the address size.
		as := int(in.AddrSize)
		if err := d.need(as); err != nil {
			return err
		}
		in.DispOffset, in.DispLen = uint8(d.pos), uint8(as)
		off := d.readSigned(as)
		if as < 8 {
			off &= 1<<(8*as) - 1
		}
		m := Mem{Base: RegNone, Index: RegNone, Scale: 1, Disp: off, Seg: x86.DS, DefaultSeg: x86.DS, AddrSize: in.AddrSize, Size: uint16(size)}
		if d.hasSeg {
			m.Seg, m.SegOverride = d.seg, true
		}
		m.Use = accessFor(e, n)
		*arg = Arg{Kind: ArgMem, Mem: m}
	case kZ:
		r := in.Opcode & 7
		if p.B() {
			r |= 8
		}
		d.gpr(arg, r, size)
	case kFix:
		d.gpr(arg, uint8(a.reg()), size)
	case kSeg:
		*arg = Arg{Kind: ArgSeg, Seg: x86.SegReg(a.reg()), Size: 2}
	case kX:
		*arg = d.implicitMem(e, n, x86.RSI, x86.DS, true, size)
	case kY:
		*arg = d.implicitMem(e, n, x86.RDI, x86.ES, false, size)
	case kXdi:
		*arg = d.implicitMem(e, n, x86.RDI, x86.DS, true, size)
	case kXlat:
		*arg = d.implicitMem(e, n, x86.RBX, x86.DS, true, size)
	case kYr:
		*arg = d.implicitMem(e, n, x86.Reg(d.regExt()), x86.ES, false, size)
	case kST0:
		*arg = Arg{Kind: ArgST, Reg: 0, Size: 10}
	case kSTi:
		*arg = Arg{Kind: ArgST, Reg: x86.Reg(d.rm), Size: 10}
	case kOne:
		*arg = Arg{Kind: ArgImm, Size: 1, Imm: 1}
	}
	return nil
}
