package emulate

import (
	"encoding/binary"
	"errors"
	"testing"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// fuzzState builds a state of one of the modes from a selector byte.
func fuzzState(sel byte) *State {
	switch sel % 6 {
	case 0:
		return realState(0x100)
	case 1:
		return prot16State(0)
	case 2:
		return prot32State()
	case 3:
		return compat32State()
	case 4:
		s := realState(0x100)
		s.CR0 |= x86.CR0PE
		s.RFLAGS |= x86.FlagVM
		return s
	}
	return long64State()
}

// FuzzFetch fetches and decodes arbitrary bytes placed at the end of a page
// whose successor is unmapped: it must not panic, and a decoded instruction
// is at most 15 bytes, all of them fetched.
func FuzzFetch(f *testing.F) {
	f.Add([]byte{0x89, 0x03}, byte(5), uint16(0xFFE))
	f.Add([]byte{0xf3, 0xa5}, byte(2), uint16(0))
	f.Add([]byte{0xc5, 0xfe, 0x6f, 0x23}, byte(5), uint16(0xFFD))
	f.Add([]byte{0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90}, byte(0), uint16(0xFF0))
	f.Fuzz(func(t *testing.T, code []byte, sel byte, off uint16) {
		if len(code) > 32 {
			code = code[:32]
		}
		s := fuzzState(sel)
		m := newTestMem()
		m.noLog = true
		base := s.Seg[x86.CS].Base
		s.RIP = 0x3000 - base + uint64(off%0x1000)
		if s.Mode() == x86.ModeReal || s.Mode() == x86.ModeVM86 || s.Mode() == x86.ModeProtected16 {
			s.RIP &= 0xFFFF
		}
		la := (base + s.RIP) & 0xFFFFFFFF
		m.mapPage(la&^0xFFF, 0x3000, false)
		r := m.ram[0x3000+la&0xFFF:]
		copy(r[:min(len(r), 0x1000-int(la&0xFFF))], code)
		e := &Emulator{Mem: m}
		inst, err := e.Fetch(s)
		if err != nil {
			var x *x86.Exception
			if !errors.As(err, &x) {
				t.Fatalf("non-architectural fetch error %v", err)
			}
			return
		}
		if inst.Len == 0 || inst.Len > decode.MaxLen || int(inst.Len) != len(e.InstBytes()) {
			t.Fatalf("length %d, fetched %d", inst.Len, len(e.InstBytes()))
		}
		var acc MemRefs
		_ = e.Resolve(s, inst, &acc)
	})
}

// FuzzStep executes arbitrary bytes on a state drawn from the fuzz input:
// registers, flags, mode, vector state. It must never panic, and a step
// that faults or is not emulated leaves the state as it was (Step's
// contract): the registers, RIP, RFLAGS, segments, control registers and
// the vector state. A faulting REP string instruction keeps its completed
// iterations (rSI, rDI, rCX and the flags of CMPS/SCAS).
func FuzzStep(f *testing.F) {
	f.Add([]byte{0xf3, 0xa5}, []byte{1, 2, 3}, byte(5))
	f.Add([]byte{0x0f, 0xab, 0x03}, []byte{0xff, 0xff, 0xff, 0xff}, byte(2))
	f.Add([]byte{0xd9, 0x1b}, []byte{0}, byte(5))
	f.Add([]byte{0xc5, 0xfe, 0x7f, 0x2b}, []byte{0x10}, byte(3))
	f.Add([]byte{0xf7, 0x33}, []byte{0, 0, 0, 0, 0, 0, 0, 0}, byte(5))                   // div by zero
	f.Add([]byte{0xc8, 0x10, 0x00, 0x05}, []byte{0, 0, 0, 0, 0, 0, 0, 0}, byte(2))       // enter that faults
	f.Add([]byte{0x0f, 0xb2, 0x03}, []byte{0, 0, 0, 0, 0, 0, 0, 0}, byte(2))             // lss from 0
	f.Add([]byte{0xf3, 0xa5}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, byte(5)) // rep movs off the map
	f.Fuzz(func(t *testing.T, code, regBytes []byte, sel byte) {
		if len(code) > 16 {
			code = code[:16]
		}
		s := fuzzState(sel)
		m := newTestMem()
		m.noLog = true
		s.RIP = defaultRIP(s)
		for i := range s.GPR {
			var v uint64
			if len(regBytes) >= 8*(i+1) {
				v = binary.LittleEndian.Uint64(regBytes[8*i:])
			} else if i < len(regBytes) {
				v = uint64(regBytes[i]) << (regBytes[i] % 40)
			}
			s.GPR[i] = v
		}
		if len(regBytes) > 0 {
			s.RFLAGS |= uint64(regBytes[0]) & (x86.FlagsArith | x86.FlagDF)
			s.GPR[x86.RCX] &= 0xFFF // keep REP loops short
		}
		src := withVec(s)
		src.f.FSW = uint16(sel) << 8
		src.f.FTWX = sel
		la := (s.Seg[x86.CS].Base + s.RIP) & 0xFFFFFFFF
		m.put(la, code)
		e := &Emulator{Mem: m, MaxRep: 64}
		before := *s
		fpuBefore := src.f
		res, err := e.Step(s)
		var x *x86.Exception
		var ne *NotEmulatedError
		if !errors.As(err, &x) && !errors.As(err, &ne) {
			return
		}
		after := *s
		if ne == nil && res.Iterations > 0 && FactsOf(e.Inst().Op).Flags&FString != 0 {
			// Completed iterations of a REP string instruction stay.
			for _, r := range []x86.Reg{x86.RSI, x86.RDI, x86.RCX} {
				after.GPR[r] = before.GPR[r]
			}
			after.RFLAGS = after.RFLAGS&^x86.FlagsArith | before.RFLAGS&x86.FlagsArith
		}
		if after != before {
			t.Fatalf("% x: %v left the state changed:\nbefore %+v\nafter  %+v", code, err, before, *s)
		}
		if s.Vec.Loaded() {
			if f, _ := s.Vec.State(); *f != fpuBefore {
				t.Fatalf("% x: %v left the vector state changed", code, err)
			}
		}
	})
}
