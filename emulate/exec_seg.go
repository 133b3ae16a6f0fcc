package emulate

import (
	"encoding/binary"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// Segment loads (MOV Sreg, POP Sreg, LDS/LES/LFS/LGS/LSS) and the
// descriptor-table instructions (SGDT, SIDT, SLDT, STR, SMSW and their
// privileged loads).

// selFault is the fault of a segment load that names the selector: the
// error code is the selector with its RPL bits cleared (SDM Vol. 3A §6.13).
func selFault(vector uint8, sel uint16, reason string) *x86.Exception {
	return &x86.Exception{Vector: vector, ErrorCode: uint32(sel & 0xFFFC), HasErrorCode: true, Reason: reason}
}

// descriptor is a decoded 8-byte segment descriptor.
type descriptor struct {
	raw  uint64
	seg  x86.Segment
	addr uint64 // linear address of the descriptor
}

// readDescriptor reads the descriptor sel names from the GDT or LDT:
// #GP(selector) when it lies beyond the table's limit or the LDT is null.
// The read is an implicit supervisor access.
func (e *Emulator) readDescriptor(s *State, m x86.Mode, sel uint16, d *descriptor) error {
	base, limit := s.GDTR.Base, uint64(s.GDTR.Limit)
	if sel&4 != 0 {
		if s.LDTR.Unusable || s.LDTR.Selector&^3 == 0 {
			return selFault(x86.VectorGP, sel, "selector in a null LDT")
		}
		base, limit = s.LDTR.Base, uint64(s.LDTR.Limit)
	}
	idx := uint64(sel &^ 7)
	if idx+7 > limit {
		return selFault(x86.VectorGP, sel, "selector beyond the descriptor table limit")
	}
	la := base + idx
	if m != x86.ModeLong64 {
		la &= 0xFFFFFFFF
	}
	if err := e.implicitRW(m, la, e.buf[:8], false); err != nil {
		return err
	}
	raw := binary.LittleEndian.Uint64(e.buf[:8])
	d.raw, d.addr = raw, la
	d.seg = decodeDescriptor(raw, sel)
	return nil
}

// implicitRW reads or writes b at linear address la as an implicit
// supervisor access (descriptor tables), page by page.
func (e *Emulator) implicitRW(m x86.Mode, la uint64, b []byte, write bool) error {
	in := Intent{Access: x86.AccessImplicit, Commit: true}
	if write {
		in.Access |= x86.AccessWrite
	}
	for len(b) > 0 {
		k := min(uint64(len(b)), pageSize-la%pageSize)
		gpa, err := e.Mem.Translate(la, in)
		if err != nil {
			return err
		}
		if write {
			err = e.Mem.WritePhys(gpa, b[:k])
		} else {
			err = e.Mem.ReadPhys(gpa, b[:k])
		}
		if err != nil {
			return err
		}
		b, la = b[k:], la+k
		if m != x86.ModeLong64 {
			la &= 0xFFFFFFFF
		}
	}
	return nil
}

// decodeDescriptor turns a code or data descriptor into the hidden part of
// a segment register (SDM Vol. 3A §3.4.5, Figure 3-8).
func decodeDescriptor(raw uint64, sel uint16) x86.Segment {
	limit := uint32(raw&0xFFFF | raw>>32&0xF0000)
	g := raw>>55&1 != 0
	if g {
		limit = limit<<12 | 0xFFF
	}
	return x86.Segment{
		Base:     raw>>16&0xFFFFFF | raw>>32&0xFF000000,
		Limit:    limit,
		Selector: sel,
		Type:     uint8(raw >> 40 & 0xF),
		S:        raw>>44&1 != 0,
		DPL:      uint8(raw >> 45 & 3),
		Present:  raw>>47&1 != 0,
		L:        raw>>53&1 != 0,
		DB:       raw>>54&1 != 0,
		G:        g,
	}
}

// loadSegment computes what loading selector sel into seg gives (SDM Vol.
// 2A MOV, Vol. 3A §5.10 and §6.13): in real mode the base is sel*16 and the
// rest stays; in virtual-8086 mode the segment is a 64-KByte DPL-3 data
// segment at sel*16; in protected mode the descriptor is read and checked
// (null selectors, type, privilege, presence) and its accessed bit set.
// Nothing in s changes; the caller installs the result.
func (e *Emulator) loadSegment(s *State, m x86.Mode, seg x86.SegReg, sel uint16) (x86.Segment, error) {
	cur := s.Seg[seg]
	switch m {
	case x86.ModeReal:
		cur.Selector, cur.Base = sel, uint64(sel)<<4
		return cur, nil
	case x86.ModeVM86:
		return x86.Segment{Selector: sel, Base: uint64(sel) << 4, Limit: 0xFFFF, Type: 3, S: true, DPL: 3, Present: true}, nil
	}
	cpl := s.CPL()
	rpl := uint8(sel & 3)
	if sel&^3 == 0 { // null selector
		if seg == x86.SS && (m != x86.ModeLong64 || cpl == 3 || rpl != cpl) {
			return cur, gp0(m, "null selector loaded into SS")
		}
		return x86.Segment{Selector: sel, Unusable: true}, nil
	}
	var d descriptor
	if err := e.readDescriptor(s, m, sel, &d); err != nil {
		return cur, err
	}
	ns := d.seg
	code := ns.Type&8 != 0
	if seg == x86.SS {
		switch {
		case rpl != cpl:
			return cur, selFault(x86.VectorGP, sel, "SS selector RPL is not CPL")
		case !ns.S || code || ns.Type&2 == 0:
			return cur, selFault(x86.VectorGP, sel, "SS needs a writable data segment")
		case ns.DPL != cpl:
			return cur, selFault(x86.VectorGP, sel, "SS descriptor DPL is not CPL")
		case !ns.Present:
			return cur, selFault(x86.VectorSS, sel, "SS segment not present")
		}
	} else {
		switch {
		case !ns.S || code && ns.Type&2 == 0:
			return cur, selFault(x86.VectorGP, sel, "not a data or readable code segment")
		case (!code || ns.Type&4 == 0) && (rpl > ns.DPL || cpl > ns.DPL):
			return cur, selFault(x86.VectorGP, sel, "segment privilege check")
		case !ns.Present:
			return cur, selFault(x86.VectorNP, sel, "segment not present")
		}
	}
	if ns.Type&1 == 0 { // set the accessed bit, a locked implicit write
		ns.Type |= 1
		e.buf[0] = byte(d.raw>>40) | 1
		if err := e.implicitRW(m, d.addr+5, e.buf[:1], true); err != nil {
			return cur, err
		}
	}
	return ns, nil
}

// execLoadFar executes LDS, LES, LFS, LGS and LSS: a far pointer m16:16,
// m16:32 or m16:64 (offset, then selector) loads the segment register and
// the general register. The segment is loaded first: its faults leave the
// register alone.
func (e *Emulator) execLoadFar(s *State, m x86.Mode, inst *decode.Inst) error {
	a := &inst.Args[1]
	if a.Kind != decode.ArgMem {
		return x86.UD("far pointer load from a register")
	}
	n := inst.OpSize
	acc := &e.accs.A[0]
	if err := e.resolve(s, m, inst, a, uint16(n)+2, true, false, acc); err != nil {
		return err
	}
	b := e.buf2[:n+2]
	if err := e.readAcc(acc, b); err != nil {
		return err
	}
	seg := x86.DS
	switch inst.Op {
	case decode.LES:
		seg = x86.ES
	case decode.LFS:
		seg = x86.FS
	case decode.LGS:
		seg = x86.GS
	case decode.LSS:
		seg = x86.SS
	}
	ns, err := e.loadSegment(s, m, seg, uint16(le(b[n:n+2])))
	if err != nil {
		return err
	}
	s.Seg[seg] = ns
	s.regWrite(inst.Args[0].Reg, n, false, le(b[:n]))
	return nil
}

// execMovToSeg executes MOV Sreg, r/m16 (MOV CS is #UD at decode).
func (e *Emulator) execMovToSeg(s *State, m x86.Mode, inst *decode.Inst) error {
	seg := inst.Args[0].Seg % x86.NumSeg
	src := &inst.Args[1]
	if src.Kind == decode.ArgMem {
		if err := e.resolve(s, m, inst, src, 2, true, false, &e.accs.A[0]); err != nil {
			return err
		}
	}
	v, err := e.value(s, inst, src, &e.accs.A[0], 2)
	if err != nil {
		return err
	}
	ns, err := e.loadSegment(s, m, seg, uint16(v))
	if err != nil {
		return err
	}
	s.Seg[seg] = ns
	return nil
}

// umip raises #GP(0) for SGDT, SIDT, SLDT, SMSW and STR at CPL > 0 with
// CR4.UMIP set (SDM Vol. 3A §2.5).
func umip(s *State, m x86.Mode) error {
	if s.CR4&x86.CR4UMIP != 0 && s.CPL() > 0 {
		return gp0(m, "user-mode instruction prevention")
	}
	return nil
}

// execStoreSys executes SGDT, SIDT (limit, then a 32-bit base, or 64-bit
// in 64-bit mode), SLDT, STR (the selector) and SMSW (CR0's low 16 bits to
// memory, the operand size of CR0 to a register). SLDT and STR are #UD in
// real and virtual-8086 mode.
func (e *Emulator) execStoreSys(s *State, m x86.Mode, inst *decode.Inst) error {
	if err := umip(s, m); err != nil {
		return err
	}
	a := &inst.Args[0]
	var v uint64
	switch inst.Op {
	case decode.SGDT, decode.SIDT:
		if a.Kind != decode.ArgMem {
			return x86.UD("sgdt with a register operand")
		}
		t := s.GDTR
		if inst.Op == decode.SIDT {
			t = s.IDTR
		}
		size := uint16(6)
		if m == x86.ModeLong64 {
			size = 10
		}
		acc := &e.accs.A[0]
		if err := e.resolve(s, m, inst, a, size, false, true, acc); err != nil {
			return err
		}
		b := e.buf2[:size]
		binary.LittleEndian.PutUint16(b, t.Limit)
		putLE(b[2:], t.Base)
		return e.writeAcc(acc, b)
	case decode.SLDT, decode.STR:
		if !m.Protected() {
			return x86.UD(inst.Op.String() + " outside protected mode")
		}
		v = uint64(s.LDTR.Selector)
		if inst.Op == decode.STR {
			v = uint64(s.TR.Selector)
		}
	case decode.SMSW:
		v = s.CR0
	}
	if a.Kind == decode.ArgMem {
		if err := e.resolve(s, m, inst, a, 2, false, true, &e.accs.A[0]); err != nil {
			return err
		}
		return e.writeMem(&e.accs.A[0], 2, v)
	}
	s.regWrite(a.Reg, a.Size, false, v&sizeMask(a.Size))
	return nil
}

// execLoadSys executes LGDT, LIDT (a 24-bit base with a 16-bit operand
// size, 32-bit otherwise, 64-bit in 64-bit mode, where it must be
// canonical), LLDT, LTR (a descriptor from the GDT; LTR marks the TSS
// busy) and LMSW (CR0 bits 3:0; PE cannot be cleared). CPL 0 only (the row
// is FPrivileged); LLDT and LTR are #UD outside protected mode.
func (e *Emulator) execLoadSys(s *State, m x86.Mode, inst *decode.Inst) error {
	a := &inst.Args[0]
	switch inst.Op {
	case decode.LGDT, decode.LIDT:
		if a.Kind != decode.ArgMem {
			return x86.UD("lgdt with a register operand")
		}
		size := uint16(6)
		if m == x86.ModeLong64 {
			size = 10
		}
		acc := &e.accs.A[0]
		if err := e.resolve(s, m, inst, a, size, true, false, acc); err != nil {
			return err
		}
		b := e.buf2[:size]
		if err := e.readAcc(acc, b); err != nil {
			return err
		}
		t := TableReg{Limit: binary.LittleEndian.Uint16(b), Base: le(b[2:])}
		switch {
		case m == x86.ModeLong64:
			if !x86.IsCanonical(t.Base, s.LinearBits()) {
				return gp0(m, "non-canonical descriptor table base")
			}
		case (inst.Mode == decode.Mode16) != inst.Prefix.OpSize: // 16-bit operand size
			t.Base &= 0xFFFFFF
		}
		if inst.Op == decode.LGDT {
			s.GDTR = t
		} else {
			s.IDTR = t
		}
		return nil
	case decode.LMSW:
		v, err := e.sysSource(s, m, inst)
		if err != nil {
			return err
		}
		s.CR0 = s.CR0&^0xE | v&0xF | s.CR0&x86.CR0PE
		return nil
	}
	if !m.Protected() {
		return x86.UD(inst.Op.String() + " outside protected mode")
	}
	v, err := e.sysSource(s, m, inst)
	if err != nil {
		return err
	}
	sel := uint16(v)
	if sel&^3 == 0 {
		if inst.Op == decode.LTR {
			return gp0(m, "ltr with a null selector")
		}
		s.LDTR = x86.Segment{Selector: sel, Unusable: true}
		return nil
	}
	if sel&4 != 0 {
		return selFault(x86.VectorGP, sel, "system descriptor in the LDT")
	}
	var d descriptor
	if err := e.readDescriptor(s, m, sel, &d); err != nil {
		return err
	}
	ns := d.seg
	want := ns.Type == 2 // LDT
	if inst.Op == decode.LTR {
		want = ns.Type == 9 || ns.Type == 1 && m != x86.ModeLong64
	}
	if ns.S || !want {
		return selFault(x86.VectorGP, sel, "wrong descriptor type for "+inst.Op.String())
	}
	if !ns.Present {
		return selFault(x86.VectorNP, sel, "descriptor not present")
	}
	if m == x86.ModeLong64 { // 16-byte system descriptors: base 63:32 follows
		if err := e.implicitRW(m, d.addr+8, e.buf[:4], false); err != nil {
			return err
		}
		ns.Base |= uint64(binary.LittleEndian.Uint32(e.buf[:4])) << 32
	}
	if inst.Op == decode.LTR {
		ns.Type |= 2 // busy
		e.buf[0] = byte(d.raw>>40) | 2
		if err := e.implicitRW(m, d.addr+5, e.buf[:1], true); err != nil {
			return err
		}
		s.TR = ns
		return nil
	}
	s.LDTR = ns
	return nil
}

// sysSource reads the 16-bit r/m source of LLDT, LTR and LMSW.
func (e *Emulator) sysSource(s *State, m x86.Mode, inst *decode.Inst) (uint64, error) {
	a := &inst.Args[0]
	if a.Kind == decode.ArgMem {
		if err := e.resolve(s, m, inst, a, 2, true, false, &e.accs.A[0]); err != nil {
			return 0, err
		}
	}
	return e.value(s, inst, a, &e.accs.A[0], 2)
}

// probeDescriptor reads the descriptor sel names for LAR, LSL, VERR and
// VERW, which report an unusable selector in ZF instead of faulting: ok is
// false for a null selector, one in a null LDT or one beyond its table's
// limit. Page faults on the table are faults.
func (e *Emulator) probeDescriptor(s *State, m x86.Mode, sel uint16, d *descriptor) (bool, error) {
	if sel&^3 == 0 {
		return false, nil
	}
	base, limit := s.GDTR.Base, uint64(s.GDTR.Limit)
	if sel&4 != 0 {
		if s.LDTR.Unusable || s.LDTR.Selector&^3 == 0 {
			return false, nil
		}
		base, limit = s.LDTR.Base, uint64(s.LDTR.Limit)
	}
	if uint64(sel&^7)+7 > limit {
		return false, nil
	}
	la := base + uint64(sel&^7)
	if m != x86.ModeLong64 {
		la &= 0xFFFFFFFF
	}
	if err := e.implicitRW(m, la, e.buf[:8], false); err != nil {
		return false, err
	}
	d.raw = binary.LittleEndian.Uint64(e.buf[:8])
	d.addr = la
	d.seg = decodeDescriptor(d.raw, sel)
	return true, nil
}

// execLarLsl executes LAR (the access rights: the descriptor's second
// doubleword AND 00FFFF00H, FF00H for a 16-bit operand) and LSL (the
// limit, expanded by G). ZF says whether the selector was usable: present
// in its table, of a type the instruction accepts (code and data; LDT and
// TSS; call gates for LAR; 16-bit TSSs and gates not in IA-32e mode), and
// visible from CPL and RPL unless a conforming code segment (SDM Vol. 2A
// LAR, LSL). #UD in real and virtual-8086 mode.
func (e *Emulator) execLarLsl(s *State, m x86.Mode, inst *decode.Inst) error {
	if !m.Protected() {
		return x86.UD(inst.Op.String() + " outside protected mode")
	}
	v, err := e.gprArg(s, m, inst, &inst.Args[1], 2)
	if err != nil {
		return err
	}
	var d descriptor
	ok, err := e.probeDescriptor(s, m, uint16(v), &d)
	if err != nil {
		return err
	}
	if ok {
		ok = descriptorVisible(s, &d, uint16(v), inst.Op == decode.LAR, m.IA32e())
	}
	if !ok {
		s.RFLAGS &^= x86.FlagZF
		return nil
	}
	n := inst.OpSize
	r := d.raw >> 32 & 0x00FFFF00
	if inst.Op == decode.LSL {
		r = uint64(d.seg.Limit)
	}
	if n == 2 {
		r &= 0xFFFF
	}
	s.regWrite(inst.Args[0].Reg, n, false, r)
	s.RFLAGS |= x86.FlagZF
	return nil
}

// descriptorVisible applies LAR's and LSL's type and privilege checks.
func descriptorVisible(s *State, d *descriptor, sel uint16, lar, ia32e bool) bool {
	g := &d.seg
	if !g.S {
		switch g.Type {
		case 2, 9, 0xB: // LDT, available and busy TSS (32/64-bit)
		case 0xC: // 32/64-bit call gate
			if !lar {
				return false
			}
		case 1, 3: // 16-bit TSS
			if ia32e {
				return false
			}
		case 4, 5: // 16-bit call gate, task gate
			if ia32e || !lar {
				return false
			}
		default:
			return false
		}
	}
	conforming := g.S && g.Type&0xC == 0xC
	if !conforming && (s.CPL() > g.DPL || uint8(sel&3) > g.DPL) {
		return false
	}
	return true
}

// execVerrw executes VERR and VERW: ZF is set when the segment is readable
// (VERR: data, or readable code) or writable (VERW: writable data) from
// CPL and RPL (conforming code segments need no privilege check for VERR).
func (e *Emulator) execVerrw(s *State, m x86.Mode, inst *decode.Inst) error {
	if !m.Protected() {
		return x86.UD(inst.Op.String() + " outside protected mode")
	}
	v, err := e.gprArg(s, m, inst, &inst.Args[0], 2)
	if err != nil {
		return err
	}
	var d descriptor
	ok, err := e.probeDescriptor(s, m, uint16(v), &d)
	if err != nil {
		return err
	}
	g := &d.seg
	if ok {
		code := g.Type&8 != 0
		switch {
		case !g.S:
			ok = false
		case inst.Op == decode.VERR:
			ok = !code || g.Type&2 != 0
		default:
			ok = !code && g.Type&2 != 0
		}
		conforming := code && g.Type&4 != 0
		if ok && !(inst.Op == decode.VERR && conforming) && (s.CPL() > g.DPL || uint8(v&3) > g.DPL) {
			ok = false
		}
	}
	if ok {
		s.RFLAGS |= x86.FlagZF
	} else {
		s.RFLAGS &^= x86.FlagZF
	}
	return nil
}
