package emulate

import (
	"encoding/binary"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// execX87Soft executes FLD, FST and FSTP with a memory operand (m32fp,
// m64fp, m80fp) in software, where the host has no x87 unit to run them on
// (hostfpu.Available false): the x87 stack, with the masked and unmasked
// responses of SDM Vol. 1 §8.5 and §4.9.1: stack overflow and underflow set
// IE, SF and C1 and, when IM is masked, load or store the QNaN indefinite; a
// store rounds with FCW.RC and sets C1 when it rounded up; an unmasked IE,
// DE, OE or UE suppresses the load or store and sets ES so the next waiting
// x87 instruction raises #MF.
func (e *Emulator) execX87Soft(s *State, m x86.Mode, inst *decode.Inst) error {
	mi := inst.MemArg()
	if mi < 0 {
		return e.notEmulated(s, inst, "register form")
	}
	a := &inst.Args[mi]
	n := a.Mem.Size
	if n != 4 && n != 8 && n != 10 {
		return e.notEmulated(s, inst, "operand size")
	}
	if s.CR0&(x86.CR0EM|x86.CR0TS) != 0 {
		return nm("x87 with CR0.EM or CR0.TS set")
	}
	f, err := e.vecState(s, inst)
	if err != nil {
		return err
	}
	if f.FSW&FSWES != 0 {
		return e.x87Pending(s, inst)
	}
	load := inst.Op == decode.FLD
	acc := &e.accs.A[0]
	if err := e.resolve(s, m, inst, a, n, load, !load, acc); err != nil {
		return err
	}
	e.accs.N = 1
	b := e.buf2[:n]
	if load {
		if err := e.readAcc(acc, b); err != nil {
			return err
		}
	}
	// Last instruction and data pointers and opcode (SDM Vol. 1 §8.1.8).
	f.LastOpcode = uint16(inst.Opcode&7)<<8 | uint16(inst.ModRM)
	f.LastIP = s.RIP
	f.LastDP = acc.Offset
	s.Vec.MarkDirty()
	le := binary.LittleEndian
	if load {
		var v Ext80
		var exc uint16
		switch n {
		case 4:
			v, exc = Float32ToExt80(le.Uint32(b))
		case 8:
			v, exc = Float64ToExt80(le.Uint64(b))
		default:
			v = Ext80FromBytes(b)
		}
		if !f.stEmpty(7) { // the register that would become ST(0) is in use
			f.FSW |= FSWC1
			if f.x87Exception(FSWIE | FSWSF) {
				return nil
			}
			f.push(Ext80Indefinite)
			return nil
		}
		f.FSW &^= FSWC1
		if f.x87Exception(exc) {
			return nil
		}
		f.push(v)
		return nil
	}
	pop := inst.Op == decode.FSTP
	rc := uint8(f.FCW>>10) & 3
	var exc uint16
	var up bool
	if f.stEmpty(0) {
		f.FSW &^= FSWC1
		if f.x87Exception(FSWIE | FSWSF) {
			return nil
		}
		switch n {
		case 4:
			le.PutUint32(b, uint32(fmt32.indef))
		case 8:
			le.PutUint64(b, fmt64.indef)
		default:
			ib := Ext80Indefinite.Bytes()
			copy(b, ib[:])
		}
	} else {
		v := f.ST(0)
		switch n {
		case 4:
			var r uint32
			r, exc, up = Ext80ToFloat32(v, rc)
			le.PutUint32(b, r)
		case 8:
			var r uint64
			r, exc, up = Ext80ToFloat64(v, rc)
			le.PutUint64(b, r)
		default:
			bb := v.Bytes()
			copy(b, bb[:])
		}
		if exc&^f.FCW&(FSWIE|FSWDE|FSWOE|FSWUE) != 0 {
			// Unmasked: nothing is stored and nothing popped.
			f.x87Exception(exc)
			return nil
		}
	}
	if err := e.writeAcc(acc, b); err != nil {
		return err
	}
	f.x87Exception(exc)
	if up {
		f.FSW |= FSWC1
	} else {
		f.FSW &^= FSWC1
	}
	if pop {
		f.pop()
	}
	return nil
}
