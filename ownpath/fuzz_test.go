package ownpath

import (
	"testing"

	"walkvm/emulate"
	"walkvm/emulate/decode"
	"walkvm/kvm"
	"walkvm/x86"
)

var fuzzModes = []string{"real", "prot32", "long64"}

// fuzzRegs fills the GPRs from seed with addresses inside the test
// path's RAM (1 MiB), RSP in the upper half.
func fuzzRegs(s *emulate.State, seed uint64) {
	for r := range s.GPR {
		s.GPR[r] = (seed*uint64(2*r+1) + uint64(r)<<12) & 0x7fff
	}
	s.GPR[x86.RSP] = 0xe000 + seed&0xff0
}

// firstWrite executes the instruction at the path's RIP on a copy and
// returns it, the state after it and its first write (nil when it wrote
// nothing or did not execute).
func firstWrite(t *testing.T, p *Path) (*decode.Inst, *emulate.Effects, []byte, uint64) {
	t.Helper()
	e := &emulate.Emulator{Mem: &p.search, MaxRep: 1}
	s := p.exit.st
	s.Vec = nil
	inst, err := e.Fetch(&s)
	if err != nil {
		return nil, nil, nil, 0
	}
	in := *inst
	fx := new(emulate.Effects)
	if err := e.ExecuteOnCopy(&s, &in, nil, fx); err != nil || len(fx.Writes) == 0 {
		return nil, nil, nil, 0
	}
	return &in, fx, fx.WriteData(0), fx.Writes[0].GPA
}

// addrRegsRewound reports whether rewinding the state after inst gives back
// the registers its addresses were computed from: otherwise a write exit
// alone (registers after the instruction) cannot name the access, and the
// path relies on the instruction's read exit (pendingRMW) instead.
func addrRegsRewound(pre, post *emulate.State, inst *decode.Inst, start uint64) bool {
	s := *post
	s.RIP = start
	emulate.Rewind(&s, inst)
	same := func(r x86.Reg) bool { return r == decode.RegNone || s.GPR[r&15] == pre.GPR[r&15] }
	for i := range inst.Args {
		if a := &inst.Args[i]; a.Kind == decode.ArgMem && (!same(a.Mem.Base) || !same(a.Mem.Index)) {
			return false
		}
	}
	f := emulate.FactsOf(inst.Op)
	if f.Stack != emulate.StackNone && !same(x86.RSP) {
		return false
	}
	if f.Flags&emulate.FString != 0 && (!same(x86.RCX) || !same(x86.RSI) || !same(x86.RDI)) {
		return false
	}
	return s.Seg == pre.Seg
}

// FuzzWriteExit plays KVM: the instruction (after arbitrary code bytes) is
// executed, its first write becomes a write exit with the registers after
// it, and the backward search must find an instruction that makes exactly
// that access. Instructions whose address registers the search cannot
// rewind are left to the read exit and skipped.
func FuzzWriteExit(f *testing.F) {
	for _, c := range []struct {
		before, insn []byte
		mode         uint8
		seed         uint64
	}{
		{[]byte{0xb0, 0x66}, []byte{0x89, 0x07}, 2, 0x12345666},                   // mov %eax,(%rdi) after mov $0x66,%al
		{[]byte{0x90}, []byte{0xf3, 0xab}, 2, 3},                                  // rep stos
		{[]byte{0xb0, 0x26}, []byte{0x89, 0x07}, 1, 0xaabbcc26},                   // an ES-override-like byte before
		{nil, []byte{0x26, 0x89, 0x40, 0x02}, 0, 0xbeef},                          // 16-bit bx+si with ES
		{nil, []byte{0xc7, 0x07, 0x78, 0x56, 0x34, 0x12}, 2, 0},                   // immediate store
		{nil, []byte{0x9c}, 2, 0x40},                                              // pushf
		{nil, []byte{0xff, 0x36}, 2, 0x77},                                        // push (%rsi)
		{[]byte{0x0f}, []byte{0x66, 0x89, 0x44, 0x24, 0x08}, 1, 0x1234},           // mov %ax,8(%esp)
		{[]byte{0xb8, 0x66, 0x66, 0x66, 0x66}, []byte{0x89, 0x07}, 1, 0x5a5a5a5a}, // prefix-like immediate bytes
	} {
		f.Add(c.before, c.insn, c.mode, c.seed)
	}
	f.Fuzz(func(t *testing.T, before, insn []byte, modeSel uint8, seed uint64) {
		if len(before) > 20 || len(insn) == 0 || len(insn) > 16 {
			return
		}
		code := append(append([]byte(nil), before...), insn...)
		p := newTestPath(t, fuzzModes[int(modeSel)%len(fuzzModes)], code)
		start := uint64(0x1000 + len(before))
		p.exit.st.RIP = start
		fuzzRegs(&p.exit.st, seed)
		pre := p.exit.st
		inst, fx, data, gpa := firstWrite(t, p)
		if inst == nil || inst.Op == decode.CALL || !addrRegsRewound(&pre, &fx.State, inst, start) {
			return
		}
		if segStackOp(inst) || multiSlot(inst) {
			return
		}
		// KVM's first fragment: at most 8 bytes, within the page.
		n := min(len(data), 8, int(0x1000-gpa&0xfff))
		exit := &kvm.MMIOExit{PhysAddr: gpa, Len: uint32(n), IsWrite: 1}
		copy(exit.Data[:], data[:n])
		p.exit.st = fx.State
		p.exit.st.Vec = nil
		var win writeWindow
		var ms writeMatches
		p.findWrite(&win, exit, n, &ms)
		if ms.n == 0 {
			t.Fatalf("% x (%v) at %#x wrote %d bytes % x at GPA %#x; no instruction ending at RIP %#x matches",
				insn, inst.Op, start, n, data[:n], gpa, fx.State.RIP)
		}
		if ms.pick < 0 || ms.pick >= ms.n {
			t.Fatalf("picked match %d of %d", ms.pick, ms.n)
		}
		if m := ms.chosen(); !ms.ambiguous && !isKVMFragment(&m.acc, gpa, n) {
			t.Fatalf("match at %#x (%+v) does not cover KVM's %d bytes at %#x", m.start, m.acc, n, gpa)
		}
	})
}

// FuzzReadExit plays KVM: the instruction is executed, its first data read
// becomes a read exit (at most 8 bytes, within the page), and the path
// must agree with it; an exit where the instruction reads nothing must be
// a disagreement.
func FuzzReadExit(f *testing.F) {
	f.Add([]byte{0x8b, 0x03}, uint8(2), uint64(0xd0000))
	f.Add([]byte{0x8b, 0x47, 0x10}, uint8(0), uint64(0x20))
	f.Add([]byte{0xf3, 0xa5}, uint8(1), uint64(7))             // rep movs
	f.Add([]byte{0x03, 0x44, 0x8b, 0x7c}, uint8(1), uint64(9)) // add 0x7c(%ebx,%ecx,4),%eax
	f.Add([]byte{0x8f, 0x00}, uint8(2), uint64(0x31))          // pop (%rax)
	f.Add([]byte{0x0f, 0xb6, 0x06}, uint8(0), uint64(0x4d))    // movzbw (%bp)
	f.Fuzz(func(t *testing.T, code []byte, modeSel uint8, seed uint64) {
		if len(code) == 0 || len(code) > 16 {
			return
		}
		p := newTestPath(t, fuzzModes[int(modeSel)%len(fuzzModes)], code)
		p.exit.st.RIP = 0x1000
		fuzzRegs(&p.exit.st, seed)
		rec := &readRecorder{m: &p.search}
		e := &emulate.Emulator{Mem: rec, MaxRep: 1}
		s := p.exit.st
		s.Vec = nil
		inst, err := e.Fetch(&s)
		if err != nil {
			return
		}
		rec.on = true
		in := *inst
		if _, err := e.Execute(&s, &in); err != nil || rec.n == 0 || segStackOp(&in) || multiSlot(&in) {
			return
		}
		gpa := rec.gpa[0]
		n := min(rec.len[0], 8, int(0x1000-gpa&0xfff))
		exit := &kvm.MMIOExit{PhysAddr: gpa, Len: uint32(n)}
		if err := p.readExit(exit, n); err != nil || p.stats.MMIO.Agreed != 1 {
			t.Fatalf("% x (%v) read %d bytes at GPA %#x first: %v (agreed %d)", code, in.Op, n, gpa, err, p.stats.MMIO.Agreed)
		}
		// An exit at a GPA the instruction does not read.
		far := gpa ^ 0x80000
		for i := range rec.n {
			if far+8 > rec.gpa[i] && far < rec.gpa[i]+uint64(rec.len[i]) {
				return
			}
		}
		if err := p.readExit(&kvm.MMIOExit{PhysAddr: far, Len: uint32(n)}, n); err == nil {
			t.Fatalf("% x (%v): a read exit at GPA %#x, which it does not read, agreed", code, in.Op, far)
		}
	})
}

// readRecorder is guest memory that notes the data reads an execution
// makes (page walks do not come through ReadPhys), and drops writes.
type readRecorder struct {
	m   *searchMem
	on  bool
	n   int
	gpa [8]uint64
	len [8]int
}

func (r *readRecorder) Translate(la uint64, in emulate.Intent) (uint64, error) {
	return r.m.Translate(la, in)
}

func (r *readRecorder) ReadPhys(gpa uint64, b []byte) error {
	if r.on && r.n < len(r.gpa) {
		r.gpa[r.n], r.len[r.n] = gpa, len(b)
		r.n++
	}
	return r.m.ReadPhys(gpa, b)
}

func (r *readRecorder) WritePhys(gpa uint64, b []byte) error { return nil }

// segStackOp reports PUSH Sreg and POP Sreg with an operand size above 16
// bits. The SDM leaves their memory access to the CPU (a zero-extended
// slot or a 16-bit move; KVM's emulator moves 16 bits) and emulate's
// executor accesses the whole slot where its resolver names 16 bits, so
// the executor's access is no stand-in for KVM's exit.
func segStackOp(inst *decode.Inst) bool {
	return (inst.Op == decode.PUSH || inst.Op == decode.POP) && inst.Args[0].Kind == decode.ArgSeg && inst.OpSize > 2
}

// multiSlot reports PUSHA, POPA and ENTER: several stack slots, each its own
// access (and KVM exit) where the resolver names one access for them all,
// so the path does not match their exits on an MMIO stack.
func multiSlot(inst *decode.Inst) bool {
	switch emulate.FactsOf(inst.Op).Stack {
	case emulate.StackPushAll, emulate.StackPopAll, emulate.StackEnter:
		return true
	}
	return false
}
