package decode

import "walkvm/x86"

// VEX decoding (SDM Vol. 2A §2.3). The maps mirror the legacy ones with
// VEX.pp as the mandatory prefix and VEX.mmmmm as the escape bytes.

var vexMaps = [4]*[256]entry{nil, &vex0F, &vex0F38, &vex0F3A}

// decodeVEX decodes a C4/C5-prefixed instruction; d.pos is at the prefix.
func (d *decoder) decodeVEX(c byte) error {
	in := d.inst
	p := &in.Prefix
	// VEX with 66, F2, F3, LOCK or REX is #UD (SDM Vol. 2A §2.3.2).
	if p.Lock || p.OpSize || p.Rep || p.Repne || p.REX != 0 {
		return x86.UD("decode: VEX after a LOCK/66/F2/F3/REX prefix")
	}
	v := &p.VEX
	if c == 0xC5 {
		if err := d.need(3); err != nil {
			return err
		}
		b1 := d.b[d.pos+1]
		v.Len = 2
		v.R = b1&0x80 == 0
		v.VVVV = ^b1 >> 3 & 15
		v.L = b1 >> 2 & 1
		v.PP = b1 & 3
		v.MMMMM = 1
		d.pos += 2
	} else {
		if err := d.need(4); err != nil {
			return err
		}
		b1, b2 := d.b[d.pos+1], d.b[d.pos+2]
		v.Len = 3
		v.R = b1&0x80 == 0
		v.X = b1&0x40 == 0
		v.B = b1&0x20 == 0
		v.MMMMM = b1 & 31
		v.W = b2&0x80 != 0
		v.VVVV = ^b2 >> 3 & 15
		v.L = b2 >> 2 & 1
		v.PP = b2 & 3
		d.pos += 3
	}
	if !d.mode64 {
		// Outside 64-bit mode VEX.B is ignored (SDM Vol. 2A §2.3.5,
		// Figure 2-9); R and X are 1 by construction. The top bit of
		// vvvv stays: an unused vvvv must still be 1111b, and operand
		// decoding ignores the bit.
		v.B = false
	}
	if v.MMMMM == 0 || v.MMMMM > 3 {
		return x86.UD("decode: reserved VEX.mmmmm")
	}
	in.Map = Map(v.MMMMM)
	in.Opcode = d.b[d.pos]
	d.pos++
	e := &vexMaps[v.MMMMM][in.Opcode]
	return d.finish(e)
}

// vexCheck applies the VEX field constraints of a leaf.
func (d *decoder) vexCheck(e *entry) error {
	v := &d.inst.Prefix.VEX
	if v.Len == 0 {
		if e.flags&fVEX != 0 {
			return d.undefined("needs a VEX prefix")
		}
		return nil
	}
	if e.flags&fNoVVVV != 0 && v.VVVV != 0 {
		return d.undefined("VEX.vvvv must be 1111b")
	}
	if e.flags&fL0 != 0 && v.L != 0 {
		return d.undefined("VEX.L must be 0")
	}
	if e.flags&fL1 != 0 && v.L != 1 {
		return d.undefined("VEX.L must be 1")
	}
	if e.flags&fW0 != 0 && v.W {
		return d.undefined("VEX.W must be 0")
	}
	if e.flags&fW1 != 0 && !v.W {
		return d.undefined("VEX.W must be 1")
	}
	return nil
}

var vex0F, vex0F38, vex0F3A [256]entry

// VEX leaf constructors. Unless a row uses VEX.vvvv (an NDS/NDD operand
// Hx/By), vvvv must be 1111b (SDM Vol. 2A §2.3.6); fNoVVVV is added for
// every leaf without an H or B operand.
func vx(op Op, osize uint8, flags uint32, args ...spec) entry {
	e := lo(op, osize, flags|fVEX, args...)
	uses := false
	for _, a := range args {
		if a.kind() == kH || a.kind() == kBv {
			uses = true
		}
	}
	if !uses {
		e.flags |= fNoVVVV
	}
	return e
}

// v is a vector-sized VEX leaf.
func v(op Op, flags uint32, args ...spec) entry { return vx(op, zX, flags, args...) }

// vp is a VEX row defined for one VEX.pp value (0 none, 1 66, 2 F3, 3 F2).
func vp(pp int, e entry) entry {
	var s [4]entry
	s[pp] = e
	return pfx(s[0], s[1], s[2], s[3])
}

// Common VEX row shapes; VEXOTHER names what walkvm does not execute.
const vo = VEXOTHER

func nds(f uint32) entry     { return vp(1, v(vo, f, oVx, oHx, oWx)) } // 66: Vx, Hx, Wx
func un66(f uint32) entry    { return vp(1, v(vo, f, oVx, oWx)) }      // 66: Vx, Wx
func ndsImm(f uint32) entry  { return vp(1, v(vo, f, oVx, oHx, oWx, oIb)) }
func shiftX(f uint32) entry  { return vp(1, v(vo, f, oVx, oHx, oWdq)) } // count in xmm/m128
func psd(ps, pd entry) entry { return pfx(ps, pd, ud, ud) }
func arith4() entry {
	return pfx(v(vo, 0, oVx, oHx, oWx), v(vo, 0, oVx, oHx, oWx), vx(vo, z4, 0, oVx, oHx, oWd), vx(vo, z8, 0, oVx, oHx, oWq))
}

// vshift builds the VEX 0F 71-73 groups: 66, register only, vvvv is the
// destination (NDD).
func vshift(regs ...int) entry {
	var s [8]entry
	for _, r := range regs {
		s[r] = mr(ud, vp(1, v(vo, 0, oHx, oUx, oIb)))
	}
	return grp(s[:]...)
}

func mkVEX0F() (t [256]entry) {
	// Moves walkvm executes.
	t[0x10] = pfx(v(VMOVUPS, 0, oVx, oWx), v(VMOVUPD, 0, oVx, oWx),
		mr(vx(vo, z4, 0, oVx, oMd), vx(vo, z16, 0, oVdq, oHdq, oUdq)),
		mr(vx(vo, z8, 0, oVx, oMq), vx(vo, z16, 0, oVdq, oHdq, oUdq)))
	t[0x11] = pfx(v(VMOVUPS, fMW, oWx, oVx), v(VMOVUPD, fMW, oWx, oVx),
		mr(vx(vo, z4, fMW, oMd, oVx), vx(vo, z16, 0, oUdq, oHdq, oVdq)),
		mr(vx(vo, z8, fMW, oMq, oVx), vx(vo, z16, 0, oUdq, oHdq, oVdq)))
	t[0x12] = pfx(mr(vx(vo, z8, fL0, oVdq, oHdq, oMq), vx(vo, z16, fL0, oVdq, oHdq, oUdq)),
		mr(vx(vo, z8, fL0, oVdq, oHdq, oMq), ud),
		v(vo, 0, oVx, oWx), v(vo, 0, oVx, oWdup))
	t[0x13] = psd(mr(vx(vo, z8, fL0|fMW, oMq, oVdq), ud), mr(vx(vo, z8, fL0|fMW, oMq, oVdq), ud))
	t[0x14] = psd(v(vo, 0, oVx, oHx, oWx), v(vo, 0, oVx, oHx, oWx))
	t[0x15] = t[0x14]
	t[0x16] = pfx(mr(vx(vo, z8, fL0, oVdq, oHdq, oMq), vx(vo, z16, fL0, oVdq, oHdq, oUdq)),
		mr(vx(vo, z8, fL0, oVdq, oHdq, oMq), ud), v(vo, 0, oVx, oWx), ud)
	t[0x17] = t[0x13]
	t[0x28] = psd(v(VMOVAPS, 0, oVx, oWx), v(VMOVAPD, 0, oVx, oWx))
	t[0x29] = psd(v(VMOVAPS, fMW, oWx, oVx), v(VMOVAPD, fMW, oWx, oVx))
	t[0x2A] = pfx(ud, ud, vx(vo, z4, 0, oVdq, oHdq, oEy), vx(vo, z8, 0, oVdq, oHdq, oEy))
	t[0x2B] = psd(mr(v(vo, fMW, oMx, oVx), ud), mr(v(vo, fMW, oMx, oVx), ud))
	t[0x2C] = pfx(ud, ud, vx(vo, z4, 0, oGy, oWd), vx(vo, z8, 0, oGy, oWq))
	t[0x2D] = t[0x2C]
	t[0x2E] = psd(vx(vo, z4, 0, oVdq, oWd), vx(vo, z8, 0, oVdq, oWq))
	t[0x2F] = t[0x2E]
	t[0x50] = psd(mr(ud, v(vo, 0, oGy, oUx)), mr(ud, v(vo, 0, oGy, oUx)))
	t[0x51] = pfx(v(vo, 0, oVx, oWx), v(vo, 0, oVx, oWx), vx(vo, z4, 0, oVdq, oHdq, oWd), vx(vo, z8, 0, oVdq, oHdq, oWq))
	t[0x52] = pfx(v(vo, 0, oVx, oWx), ud, vx(vo, z4, 0, oVdq, oHdq, oWd), ud)
	t[0x53] = t[0x52]
	for op := 0x54; op <= 0x57; op++ {
		t[op] = psd(v(vo, 0, oVx, oHx, oWx), v(vo, 0, oVx, oHx, oWx))
	}
	for _, op := range []int{0x58, 0x59, 0x5C, 0x5D, 0x5E, 0x5F} {
		t[op] = arith4()
	}
	t[0x5A] = pfx(v(vo, 0, oVx, oWhx), v(vo, 0, oVdq, oWx), vx(vo, z4, 0, oVdq, oHdq, oWd), vx(vo, z8, 0, oVdq, oHdq, oWq))
	t[0x5B] = pfx(v(vo, 0, oVx, oWx), v(vo, 0, oVx, oWx), v(vo, 0, oVx, oWx), ud)
	for op := 0x60; op <= 0x6D; op++ {
		t[op] = nds(0)
	}
	t[0x6E] = vp(1, vx(VMOVD, zY, fL0, oVdq, oEy).w(VMOVQ))
	t[0x6F] = pfx(ud, v(VMOVDQA, 0, oVx, oWx), v(VMOVDQU, 0, oVx, oWx), ud)
	t[0x70] = pfx(ud, v(vo, 0, oVx, oWx, oIb), v(vo, 0, oVx, oWx, oIb), v(vo, 0, oVx, oWx, oIb))
	t[0x71] = vshift(2, 4, 6)
	t[0x72] = vshift(2, 4, 6)
	t[0x73] = vshift(2, 3, 6, 7)
	t[0x74], t[0x75], t[0x76] = nds(0), nds(0), nds(0)
	t[0x77] = vp(0, node(nL, l(VZEROUPPER, fVEX|fNoVVVV), l(VZEROALL, fVEX|fNoVVVV)))
	t[0x7C] = pfx(ud, v(vo, 0, oVx, oHx, oWx), ud, v(vo, 0, oVx, oHx, oWx))
	t[0x7D] = t[0x7C]
	t[0x7E] = pfx(ud, vx(VMOVD, zY, fL0|fMW, oEy, oVdq).w(VMOVQ), vx(VMOVQ, z8, fL0, oVdq, oWq), ud)
	t[0x7F] = pfx(ud, v(VMOVDQA, fMW, oWx, oVx), v(VMOVDQU, fMW, oWx, oVx), ud)
	t[0xAE] = vp(0, mr(grp(ud, ud, vx(vo, z4, fL0|fMR, oMd), vx(vo, z4, fL0|fMW, oMd)), ud))
	t[0xC2] = pfx(v(vo, 0, oVx, oHx, oWx, oIb), v(vo, 0, oVx, oHx, oWx, oIb),
		vx(vo, z4, 0, oVdq, oHdq, oWd, oIb), vx(vo, z8, 0, oVdq, oHdq, oWq, oIb))
	t[0xC4] = vp(1, vx(vo, z16, fL0, oVdq, oHdq, oEwR, oIb))
	t[0xC5] = vp(1, mr(ud, vx(vo, z16, fL0, oGd, oUdq, oIb)))
	t[0xC6] = psd(v(vo, 0, oVx, oHx, oWx, oIb), v(vo, 0, oVx, oHx, oWx, oIb))
	t[0xD0] = pfx(ud, v(vo, 0, oVx, oHx, oWx), ud, v(vo, 0, oVx, oHx, oWx))
	t[0xD1], t[0xD2], t[0xD3] = shiftX(0), shiftX(0), shiftX(0)
	t[0xD4], t[0xD5] = nds(0), nds(0)
	t[0xD6] = vp(1, vx(VMOVQ, z8, fL0|fMW, oWq, oVdq))
	t[0xD7] = vp(1, mr(ud, v(vo, 0, oGd, oUx)))
	for op := 0xD8; op <= 0xDF; op++ {
		t[op] = nds(0)
	}
	t[0xE0], t[0xE1], t[0xE2] = nds(0), shiftX(0), shiftX(0)
	t[0xE3], t[0xE4], t[0xE5] = nds(0), nds(0), nds(0)
	t[0xE6] = pfx(ud, v(vo, 0, oVdq, oWx), v(vo, 0, oVx, oWhx), v(vo, 0, oVdq, oWx))
	t[0xE7] = vp(1, mr(v(vo, fMW, oMx, oVx), ud))
	for op := 0xE8; op <= 0xEF; op++ {
		t[op] = nds(0)
	}
	t[0xF0] = vp(3, mr(v(vo, 0, oVx, oMx), ud))
	t[0xF1], t[0xF2], t[0xF3] = shiftX(0), shiftX(0), shiftX(0)
	t[0xF4], t[0xF5], t[0xF6] = nds(0), nds(0), nds(0)
	t[0xF7] = vp(1, mr(ud, vx(vo, z16, fL0|fMW, oXdidq, oVdq, oUdq)))
	for op := 0xF8; op <= 0xFE; op++ {
		t[op] = nds(0)
	}
	return t
}

func mkVEX0F38() (t [256]entry) {
	for op := 0x00; op <= 0x0B; op++ {
		t[op] = nds(0)
	}
	t[0x0C], t[0x0D] = nds(fW0), nds(fW0)
	t[0x0E], t[0x0F] = un66(fW0), un66(fW0)
	t[0x13] = vp(1, v(vo, fW0, oVx, oWhx))
	t[0x16] = nds(fW0 | fL1)
	t[0x17] = un66(0)
	t[0x18] = vp(1, vx(vo, zX, fW0, oVx, oWd))
	t[0x19] = vp(1, vx(vo, zX, fW0|fL1, oVx, oWq))
	t[0x1A] = vp(1, mr(vx(vo, zX, fW0|fL1, oVx, oMdq), ud))
	t[0x1C], t[0x1D], t[0x1E] = un66(0), un66(0), un66(0)
	ext := [6]spec{oWhx, oWqx, oWex, oWhx, oWqx, oWhx}
	for i, w := range ext {
		t[0x20+i] = vp(1, v(vo, 0, oVx, w))
		t[0x30+i] = vp(1, v(vo, 0, oVx, w))
	}
	t[0x28], t[0x29] = nds(0), nds(0)
	t[0x2A] = vp(1, mr(v(vo, 0, oVx, oMx), ud))
	t[0x2B] = nds(0)
	t[0x2C] = vp(1, mr(v(vo, fW0, oVx, oHx, oMx), ud))
	t[0x2D] = t[0x2C]
	t[0x2E] = vp(1, mr(v(vo, fW0|fMW, oMx, oHx, oVx), ud))
	t[0x2F] = t[0x2E]
	t[0x36] = nds(fW0 | fL1)
	t[0x37] = nds(0)
	for op := 0x38; op <= 0x40; op++ {
		t[op] = nds(0)
	}
	t[0x41] = vp(1, vx(vo, z16, fL0, oVdq, oWdq))
	t[0x45] = nds(0)
	t[0x46] = nds(fW0)
	t[0x47] = nds(0)
	t[0x58] = vp(1, vx(vo, zX, fW0, oVx, oWd))
	t[0x59] = vp(1, vx(vo, zX, fW0, oVx, oWq))
	t[0x5A] = vp(1, mr(vx(vo, zX, fW0|fL1, oVx, oMdq), ud))
	t[0x78] = vp(1, vx(vo, zX, fW0, oVx, oWb))
	t[0x79] = vp(1, vx(vo, zX, fW0, oVx, oWw))
	t[0x8C] = vp(1, mr(v(vo, 0, oVx, oHx, oMx), ud))
	t[0x8E] = vp(1, mr(v(vo, fMW, oMx, oHx, oVx), ud))
	// Gathers: VSIB memory, the index is a vector register.
	for op := 0x90; op <= 0x93; op++ {
		t[op] = vp(1, mr(v(vo, fMR, oVx, oMVx, oHx), ud))
	}
	// FMA: packed rows Vx,Hx,Wx; scalar rows Vx,Hx,W by VEX.W.
	for _, base := range []int{0x90, 0xA0, 0xB0} {
		for op := base + 6; op <= base+0xF; op++ {
			if op&1 == 1 && op >= base+9 {
				t[op] = vp(1, vx(vo, zWs, 0, oVdq, oHdq, oWs))
			} else {
				t[op] = nds(0)
			}
		}
	}
	t[0xDB] = vp(1, vx(vo, z16, fL0, oVdq, oWdq))
	for op := 0xDC; op <= 0xDF; op++ {
		t[op] = vp(1, vx(vo, z16, fL0, oVdq, oHdq, oWdq))
	}
	// BMI1/BMI2 (GPR operands).
	t[0xF2] = vp(0, vx(ANDN, zY, fL0, oGy, oBy, oEy))
	t[0xF3] = vp(0, grp(ud, vx(BLSR, zY, fL0, oBy, oEy), vx(BLSMSK, zY, fL0, oBy, oEy), vx(BLSI, zY, fL0, oBy, oEy)))
	t[0xF5] = pfx(vx(BZHI, zY, fL0, oGy, oEy, oBy), ud, vx(PEXT, zY, fL0, oGy, oBy, oEy), vx(PDEP, zY, fL0, oGy, oBy, oEy))
	t[0xF6] = vp(3, vx(MULX, zY, fL0, oGy, oBy, oEy))
	t[0xF7] = pfx(vx(BEXTR, zY, fL0, oGy, oEy, oBy), vx(SHLX, zY, fL0, oGy, oEy, oBy),
		vx(SARX, zY, fL0, oGy, oEy, oBy), vx(SHRX, zY, fL0, oGy, oEy, oBy))
	return t
}

func mkVEX0F3A() (t [256]entry) {
	t[0x00] = vp(1, v(vo, fW1|fL1, oVx, oWx, oIb))
	t[0x01] = t[0x00]
	t[0x02] = ndsImm(fW0)
	t[0x04] = vp(1, v(vo, fW0, oVx, oWx, oIb))
	t[0x05] = t[0x04]
	t[0x06] = ndsImm(fW0 | fL1)
	t[0x08] = vp(1, v(vo, 0, oVx, oWx, oIb))
	t[0x09] = t[0x08]
	t[0x0A] = vp(1, vx(vo, z4, 0, oVdq, oHdq, oWd, oIb))
	t[0x0B] = vp(1, vx(vo, z8, 0, oVdq, oHdq, oWq, oIb))
	for op := 0x0C; op <= 0x0F; op++ {
		t[op] = ndsImm(0)
	}
	t[0x14] = vp(1, vx(vo, z16, fL0|fMW, oEbR, oVdq, oIb))
	t[0x15] = vp(1, vx(vo, z16, fL0|fMW, oEwR, oVdq, oIb))
	t[0x16] = vp(1, vx(vo, z16, fL0|fMW, oEy, oVdq, oIb))
	t[0x17] = vp(1, vx(vo, z16, fL0|fMW, oEd, oVdq, oIb))
	t[0x18] = vp(1, vx(vo, z32, fW0|fL1, oVqq, oHqq, oWdq, oIb))
	t[0x19] = vp(1, vx(vo, z32, fW0|fL1|fMW, oWdq, oVqq, oIb))
	t[0x1D] = vp(1, v(vo, fW0|fMW, oWhx, oVx, oIb))
	t[0x20] = vp(1, vx(vo, z16, fL0, oVdq, oHdq, oEbR, oIb))
	t[0x21] = vp(1, vx(vo, z16, fL0, oVdq, oHdq, oWd, oIb))
	t[0x22] = vp(1, vx(vo, z16, fL0, oVdq, oHdq, oEy, oIb))
	t[0x38] = t[0x18]
	t[0x39] = t[0x19]
	t[0x40] = ndsImm(0)
	t[0x41] = vp(1, vx(vo, z16, fL0, oVdq, oHdq, oWdq, oIb))
	t[0x42] = ndsImm(0)
	t[0x44] = vp(1, vx(vo, z16, fL0, oVdq, oHdq, oWdq, oIb))
	t[0x46] = ndsImm(fW0 | fL1)
	t[0x4A] = vp(1, v(vo, fW0, oVx, oHx, oWx, oLx))
	t[0x4B], t[0x4C] = t[0x4A], t[0x4A]
	for op := 0x60; op <= 0x63; op++ {
		t[op] = vp(1, vx(vo, z16, fL0, oVdq, oWdq, oIb))
	}
	t[0xDF] = vp(1, vx(vo, z16, fL0, oVdq, oWdq, oIb))
	t[0xF0] = vp(3, vx(RORX, zY, fL0, oGy, oEy, oIb))
	return t
}
