package emulate

import (
	"encoding/binary"

	"walkvm/emulate/decode"
	"walkvm/emulate/internal/hostfpu"
	"walkvm/x86"
)

// x87 memory forms (escapes D8-DF with a memory ModRM). The arithmetic,
// compare, load and store forms run on the host's own x87 unit
// (hostfpu): the guest's FCW (precision and rounding control, masks), FSW,
// tags and registers go in, the CPU's result comes out, exception flags,
// C0-C3, stack faults and the masked responses included. The environment
// and control forms (FLDENV, FNSTENV, FRSTOR, FNSAVE, FLDCW, FNSTCW, FNSTSW)
// have layouts that depend on the guest's mode and operand size and are
// done here.
//
// Exceptions: CR0.EM or CR0.TS is #NM; a pending unmasked exception (a
// flag set whose mask is clear) makes a waiting instruction raise
// #MF with CR0.NE (CR0.NE clear, the legacy FERR# path, is not emulated);
// an unmasked exception the instruction itself raises sets ES and B and,
// for a store, suppresses the store (the CPU's behaviour, which the host
// run reproduces); the #MF is the next waiting instruction's.

// x87 forms by escape and ModRM.reg.
type x87Form uint8

const (
	x87Host x87Form = iota
	x87Ldenv
	x87Stenv
	x87Rstor
	x87Save
	x87Ldcw
	x87Stcw
	x87Stsw
)

func x87FormOf(esc, reg uint8) x87Form {
	switch {
	case esc == 0xD9 && reg == 4:
		return x87Ldenv
	case esc == 0xD9 && reg == 5:
		return x87Ldcw
	case esc == 0xD9 && reg == 6:
		return x87Stenv
	case esc == 0xD9 && reg == 7:
		return x87Stcw
	case esc == 0xDD && reg == 4:
		return x87Rstor
	case esc == 0xDD && reg == 6:
		return x87Save
	case esc == 0xDD && reg == 7:
		return x87Stsw
	}
	return x87Host
}

// waits reports whether the form checks for a pending exception first:
// all but the no-wait control forms (SDM Vol. 1 §8.3.11).
func (k x87Form) waits() bool {
	switch k {
	case x87Stenv, x87Save, x87Stcw, x87Stsw:
		return false
	}
	return true
}

// updatesPointers reports whether the form records its instruction and
// data pointers and opcode (FIP, FDP, FOP): the non-control forms (SDM
// Vol. 1 §8.1.8).
func (k x87Form) updatesPointers() bool { return k == x87Host }

// x87PendingExc reports whether an unmasked exception is pending: an
// exception flag set in FSW whose mask bit in FCW is clear. The CPU derives
// ES from them: an image with ES set and nothing unmasked (which only
// FXRSTOR or XRSTOR can load) raises nothing (checked against the host).
func (f *FPUState) x87PendingExc() bool { return f.FSW&^f.FCW&fswExc != 0 }

// execX87 executes an x87 instruction with a memory operand.
func (e *Emulator) execX87(s *State, m x86.Mode, inst *decode.Inst) error {
	mi := inst.MemArg()
	if mi < 0 {
		if inst.Op == decode.FNSTSW && inst.Args[0].Kind == decode.ArgReg { // FNSTSW AX
			if s.CR0&(x86.CR0EM|x86.CR0TS) != 0 {
				return nm("x87 with CR0.EM or CR0.TS set")
			}
			f, err := e.vecState(s, inst)
			if err != nil {
				return err
			}
			s.regWrite(x86.RAX, 2, false, uint64(f.FSW))
			return nil
		}
		return e.notEmulated(s, inst, "register form")
	}
	esc, reg := inst.Opcode, inst.ModRM>>3&7
	k := x87FormOf(esc, reg)
	if k == x87Host && !hostfpu.HasX87(esc, reg) {
		if !hostfpu.Available && (inst.Op == decode.FLD || inst.Op == decode.FST || inst.Op == decode.FSTP) {
			return e.execX87Soft(s, m, inst)
		}
		return e.notEmulated(s, inst, "no host x87 unit to run it on")
	}
	if s.CR0&(x86.CR0EM|x86.CR0TS) != 0 {
		return nm("x87 with CR0.EM or CR0.TS set")
	}
	f, err := e.vecState(s, inst)
	if err != nil {
		return err
	}
	if k.waits() && f.x87PendingExc() {
		return e.x87Pending(s, inst)
	}
	// ES and B follow the flags and masks (the CPU derives them).
	f.setSummary()
	a := &inst.Args[mi]
	n := a.Mem.Size
	read, write := a.Mem.Use.Reads(), a.Mem.Use.Writes()
	acc := &e.accs.A[0]
	if err := e.resolve(s, m, inst, a, n, read, write, acc); err != nil {
		return err
	}
	e.accs.N = 1
	b := e.buf2[:n]
	if read {
		if err := e.readAcc(acc, b); err != nil {
			return err
		}
	}
	s.Vec.MarkDirty()
	switch k {
	case x87Host:
		return e.x87Host(s, inst, f, acc, esc, reg)
	case x87Ldcw:
		f.FCW = fcwLoad(binary.LittleEndian.Uint16(b))
		f.setSummary()
		return nil
	case x87Stcw:
		binary.LittleEndian.PutUint16(b, f.FCW)
		return e.writeAcc(acc, b)
	case x87Stsw:
		binary.LittleEndian.PutUint16(b, f.FSW)
		return e.writeAcc(acc, b)
	case x87Ldenv, x87Rstor:
		top := f.top()
		f.loadEnv(s, m, b, n)
		if k == x87Ldenv {
			// The registers stay; ST(i) follows the new TOP.
			f.rotate(top, f.top())
		} else {
			env := envSize(n)
			for i := range f.FPR {
				f.FPR[i] = [16]byte{}
				copy(f.FPR[i][:10], b[env+10*i:])
			}
		}
		f.setSummary()
		return nil
	case x87Stenv, x87Save:
		f.storeEnv(s, m, b, n)
		if k == x87Save {
			env := envSize(n)
			for i := range f.FPR {
				copy(b[env+10*i:env+10*i+10], f.FPR[i][:10])
			}
		}
		if err := e.writeAcc(acc, b); err != nil {
			return err
		}
		if k == x87Save {
			top := f.top()
			f.finit()
			f.rotate(top, 0)
		} else {
			f.FCW |= fswExc // FNSTENV masks every exception afterwards
			f.setSummary()
		}
		return nil
	}
	return e.notEmulated(s, inst, "")
}

// x87Host runs a form on the host's x87 unit.
func (e *Emulator) x87Host(s *State, inst *decode.Inst, f *FPUState, acc *MemRef, esc, reg uint8) error {
	n := int(acc.Size)
	img, mem := &e.fx.img, &e.fx.mem
	f.toFXImage(img)
	store := acc.Write
	const sentinel = 0x5A
	if store {
		e.fx.in = *img
		for i := range mem {
			mem[i] = sentinel
		}
	} else {
		copy(mem[:], e.buf2[:n])
	}
	hostfpu.X87(esc, reg, img, mem)
	stored := false
	if store {
		for i := range n {
			if mem[i] != sentinel {
				stored = true
			}
		}
		if !stored {
			// The result may be the sentinel itself: run again with
			// another one.
			out := *img
			*img = e.fx.in
			for i := range mem {
				mem[i] = ^byte(sentinel)
			}
			hostfpu.X87(esc, reg, img, mem)
			stored = mem[0] != ^byte(sentinel)
			*img = out
			if stored {
				for i := range n {
					mem[i] = sentinel
				}
			}
		}
	}
	f.fromFXImage(img)
	// The pointers and opcode are the guest's (SDM Vol. 1 §8.1.8, §8.1.9):
	// the offset of this instruction and of its operand, and the opcode's
	// low 11 bits (the escape's low three bits and ModRM).
	f.LastIP = s.RIP
	f.LastDP = acc.Offset
	f.LastOpcode = uint16(esc&7)<<8 | uint16(inst.ModRM)
	if stored {
		return e.writeAcc(acc, mem[:n])
	}
	return nil
}

// fxScratch is the image and operand of a host run.
type fxScratch struct {
	img, in [hostfpu.ImageSize]byte
	mem     [hostfpu.MemSize]byte
}

// toFXImage writes the x87 state as an FXSAVE64 image (MXCSR 1F80H: the
// SSE state plays no part).
func (f *FPUState) toFXImage(img *[hostfpu.ImageSize]byte) {
	clear(img[:160])
	le := binary.LittleEndian
	le.PutUint16(img[0:], f.FCW)
	le.PutUint16(img[2:], f.FSW)
	img[4] = f.FTWX
	le.PutUint16(img[6:], f.LastOpcode)
	le.PutUint64(img[8:], f.LastIP)
	le.PutUint64(img[16:], f.LastDP)
	le.PutUint32(img[24:], 0x1F80)
	for i := range f.FPR {
		copy(img[32+16*i:32+16*i+10], f.FPR[i][:10])
	}
}

// fromFXImage reads the x87 state back from an FXSAVE64 image.
func (f *FPUState) fromFXImage(img *[hostfpu.ImageSize]byte) {
	le := binary.LittleEndian
	f.FCW = le.Uint16(img[0:])
	f.FSW = le.Uint16(img[2:])
	f.FTWX = img[4]
	for i := range f.FPR {
		f.FPR[i] = [16]byte{}
		copy(f.FPR[i][:10], img[32+16*i:])
	}
}

// setSummary sets ES and B from the flags and masks: an unmasked flag is
// a pending exception.
func (f *FPUState) setSummary() {
	if f.FSW&^f.FCW&fswExc != 0 {
		f.FSW |= FSWES | FSWB
	} else {
		f.FSW &^= FSWES | FSWB
	}
}

// fcwLoad is the control word the CPU keeps of v: bit 6 reads as 1, bits
// 15:13 and 7 as 0 (checked against the host).
func fcwLoad(v uint16) uint16 { return v&0x1F3F | 0x40 }

// rotate re-indexes FPR (kept in stack order) for a TOP change from old to
// top, the physical registers staying where they are.
func (f *FPUState) rotate(old, top uint) {
	if old == top {
		return
	}
	var phys [8][16]byte
	for i := range uint(8) {
		phys[(old+i)&7] = f.FPR[i]
	}
	for i := range uint(8) {
		f.FPR[i] = phys[(top+i)&7]
	}
}

// finit is FNINIT: FCW 037FH, FSW 0, every register empty, pointers and
// opcode 0 (SDM Vol. 1 §8.1.10).
func (f *FPUState) finit() {
	f.FCW, f.FSW, f.FTWX = fcwInit, 0, 0
	f.LastOpcode, f.LastIP, f.LastDP = 0, 0, 0
}

// envSize is the size of the environment within an FLDENV/FNSTENV (14 or
// 28 bytes) or FRSTOR/FNSAVE (94 or 108 bytes) image.
func envSize(n uint16) int {
	if n == 14 || n == 94 {
		return 14
	}
	return 28
}

// fullTag is the x87 tag word: two bits per physical register, 11 empty,
// 01 zero, 10 special (NaN, infinity, denormal, unsupported), 00 valid
// (SDM Vol. 1 §8.1.7).
func (f *FPUState) fullTag() uint16 {
	var tw uint16
	top := f.top()
	for p := range uint(8) {
		var t uint16 = 3
		if f.FTWX>>p&1 != 0 {
			r := f.FPR[(p-top)&7]
			mant := binary.LittleEndian.Uint64(r[:8])
			exp := binary.LittleEndian.Uint16(r[8:]) & 0x7FFF
			switch {
			case exp == 0 && mant == 0:
				t = 1
			case exp == 0x7FFF, exp == 0, mant>>63 == 0:
				t = 2
			default:
				t = 0
			}
		}
		tw |= t << (2 * p)
	}
	return tw
}

// storeEnv writes the environment (SDM Vol. 1 Figures 8-9 to 8-12): the
// 14-byte layout for a 16-bit operand size, 28 bytes otherwise; protected
// mode (64-bit mode included) stores offsets and selectors, real and
// virtual-8086 mode 20- or 32-bit linear pointers. The selectors of the
// last instruction and operand are not kept in the state (an FXSAVE64
// image has none): walkvm stores 0, as processors that deprecate FCS and
// FDS do.
func (f *FPUState) storeEnv(s *State, m x86.Mode, b []byte, n uint16) {
	le := binary.LittleEndian
	clear(b[:envSize(n)])
	tw := f.fullTag()
	ip, dp, op := f.LastIP, f.LastDP, uint32(f.LastOpcode&0x7FF)
	if envSize(n) == 14 {
		le.PutUint16(b[0:], f.FCW)
		le.PutUint16(b[2:], f.FSW)
		le.PutUint16(b[4:], tw)
		if m.Protected() {
			le.PutUint16(b[6:], uint16(ip))
			le.PutUint16(b[10:], uint16(dp))
		} else {
			ip += s.Seg[x86.CS].Base
			dp += s.Seg[x86.DS].Base
			le.PutUint16(b[6:], uint16(ip))
			le.PutUint16(b[8:], uint16(ip>>16&0xF)<<12|uint16(op))
			le.PutUint16(b[10:], uint16(dp))
			le.PutUint16(b[12:], uint16(dp>>16&0xF)<<12)
		}
		return
	}
	// The upper halves of the 32-bit slots are reserved: the CPU writes
	// them as ones.
	for _, o := range []int{2, 6, 10, 26} {
		le.PutUint16(b[o:], 0xFFFF)
	}
	le.PutUint16(b[0:], f.FCW)
	le.PutUint16(b[4:], f.FSW)
	le.PutUint16(b[8:], tw)
	if m.Protected() {
		le.PutUint32(b[12:], uint32(ip))
		le.PutUint32(b[16:], op<<16)
		le.PutUint32(b[20:], uint32(dp))
	} else {
		ip += s.Seg[x86.CS].Base
		dp += s.Seg[x86.DS].Base
		le.PutUint32(b[12:], uint32(ip&0xFFFF))
		le.PutUint32(b[16:], uint32(ip>>16&0xFFFF)<<12|op)
		le.PutUint32(b[20:], uint32(dp&0xFFFF))
		le.PutUint32(b[24:], uint32(dp>>16&0xFFFF)<<12)
	}
}

// loadEnv reads the environment storeEnv writes. Tags other than empty are
// recomputed from the registers, as the CPU does; the pointers become
// offsets again (real mode: the linear pointers as they are).
func (f *FPUState) loadEnv(s *State, m x86.Mode, b []byte, n uint16) {
	le := binary.LittleEndian
	var tw uint16
	if envSize(n) == 14 {
		f.FCW = fcwLoad(le.Uint16(b[0:]))
		f.FSW = le.Uint16(b[2:])
		tw = le.Uint16(b[4:])
		if m.Protected() {
			f.LastIP, f.LastDP = uint64(le.Uint16(b[6:])), uint64(le.Uint16(b[10:]))
			f.LastOpcode = 0
		} else {
			w := le.Uint16(b[8:])
			f.LastIP = uint64(le.Uint16(b[6:])) | uint64(w>>12)<<16
			f.LastOpcode = w & 0x7FF
			f.LastDP = uint64(le.Uint16(b[10:])) | uint64(le.Uint16(b[12:])>>12)<<16
		}
	} else {
		f.FCW = fcwLoad(le.Uint16(b[0:]))
		f.FSW = le.Uint16(b[4:])
		tw = le.Uint16(b[8:])
		if m.Protected() {
			f.LastIP = uint64(le.Uint32(b[12:]))
			f.LastOpcode = uint16(le.Uint32(b[16:]) >> 16 & 0x7FF)
			f.LastDP = uint64(le.Uint32(b[20:]))
		} else {
			w := le.Uint32(b[16:])
			f.LastIP = uint64(le.Uint32(b[12:])&0xFFFF) | uint64(w>>12&0xFFFF)<<16
			f.LastOpcode = uint16(w & 0x7FF)
			f.LastDP = uint64(le.Uint32(b[20:])&0xFFFF) | uint64(le.Uint32(b[24:])>>12&0xFFFF)<<16
		}
	}
	f.FTWX = 0
	for p := range 8 {
		if tw>>(2*p)&3 != 3 {
			f.FTWX |= 1 << p
		}
	}
}
