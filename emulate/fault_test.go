package emulate

import (
	"errors"
	"testing"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// prot32Seg is flat 32-bit protected mode with segment r replaced.
func prot32Seg(r x86.SegReg, seg x86.Segment) func() *State {
	return func() *State {
		s := prot32State()
		s.Seg[r] = seg
		return s
	}
}

func TestSegmentChecks(t *testing.T) {
	movStore := []byte{0x89, 0x03}      // movl %eax, (%ebx)
	movLoad := []byte{0x8b, 0x03}       // movl (%ebx), %eax
	ssLoad := []byte{0x36, 0x8b, 0x03}  // movl %ss:(%ebx), %eax
	csLoad := []byte{0x2e, 0x8b, 0x03}  // movl %cs:(%ebx), %eax
	csStore := []byte{0x2e, 0x89, 0x03} // movl %eax, %cs:(%ebx)
	expandDown := func(limit uint32, big bool) x86.Segment {
		s := dataSeg(0x10000, limit, big)
		s.Type = 7
		return s
	}
	readOnly := dataSeg(0, 0xFFFFFFFF, true)
	readOnly.Type = 1
	execOnly := codeSeg(0, 0xFFFFFFFF, true, false)
	execOnly.Type = 9
	null := x86.Segment{Unusable: true}
	runCases(t, []execCase{
		{name: "DS limit: last byte beyond is #GP(0)", st: prot32Seg(x86.DS, dataSeg(0, 0xFFF, true)), code: movStore,
			regs: regs{rbx: 0xFFD}, wantExc: x86.VectorGP + 1},
		{name: "DS limit: last byte at the limit", st: prot32Seg(x86.DS, dataSeg(0, 0xFFF, true)), code: movStore,
			regs: regs{rbx: 0xFFC, rax: 1}, wantMem: []memb{{0xFFC, le32(1)}}, wantFlags: noFlag},
		{name: "SS limit is #SS(0)", st: prot32Seg(x86.SS, dataSeg(0, 0xFFF, true)), code: ssLoad,
			regs: regs{rbx: 0x1000}, wantExc: x86.VectorSS + 1},
		{name: "expand-down: above the limit is valid", st: prot32Seg(x86.DS, expandDown(0xFFF, true)), code: movStore,
			regs: regs{rbx: 0x1000, rax: 2}, wantMem: []memb{{0x11000, le32(2)}}, wantFlags: noFlag},
		{name: "expand-down: at the limit is #GP(0)", st: prot32Seg(x86.DS, expandDown(0xFFF, true)), code: movStore,
			regs: regs{rbx: 0xFFF}, wantExc: x86.VectorGP + 1},
		{name: "expand-down 16-bit: past FFFF is #GP(0)", st: prot32Seg(x86.DS, expandDown(0xFFF, false)), code: movStore,
			regs: regs{rbx: 0xFFFE}, wantExc: x86.VectorGP + 1},
		{name: "read of an execute-only code segment is #GP(0)", st: prot32Seg(x86.CS, execOnly), code: csLoad,
			regs: regs{rbx: 0x100}, wantExc: x86.VectorGP + 1},
		{name: "read of a readable code segment", st: prot32State, code: csLoad,
			regs: regs{rbx: 0x100}, init: []memb{{0x100, le32(0x77)}}, wantRegs: regs{rax: 0x77}, wantFlags: noFlag},
		{name: "write to a code segment is #GP(0)", st: prot32State, code: csStore,
			regs: regs{rbx: 0x100}, wantExc: x86.VectorGP + 1},
		{name: "write to a read-only data segment is #GP(0)", st: prot32Seg(x86.DS, readOnly), code: movStore,
			regs: regs{rbx: 0x100}, wantExc: x86.VectorGP + 1},
		{name: "read of a read-only data segment", st: prot32Seg(x86.DS, readOnly), code: movLoad,
			regs: regs{rbx: 0x100}, init: []memb{{0x100, le32(0x66)}}, wantRegs: regs{rax: 0x66}, wantFlags: noFlag},
		{name: "null DS is #GP(0)", st: prot32Seg(x86.DS, null), code: movLoad,
			regs: regs{rbx: 0x100}, wantExc: x86.VectorGP + 1},
		{name: "real mode: write through CS is allowed", st: func() *State { return realState(0x100) }, code: []byte{0x2e, 0x88, 0x07},
			regs: regs{rbx: 0x10, rax: 0x5A}, wantMem: []memb{{0x1010, []byte{0x5A}}}, wantFlags: noFlag},
		{name: "64-bit: non-canonical is #GP(0)", st: long64State, code: []byte{0x89, 0x03},
			regs: regs{rbx: 0x0000800000000000}, wantExc: x86.VectorGP + 1},
		{name: "64-bit: non-canonical through rBP is #SS(0)", st: long64State, code: []byte{0x8b, 0x45, 0x00},
			regs: regs{rbp: 0xFFFF7FFFFFFFFFF0}, wantExc: x86.VectorSS + 1},
		{name: "64-bit: last byte non-canonical is #GP(0)", st: long64State, code: []byte{0x89, 0x03},
			regs: regs{rbx: 0x00007FFFFFFFFFFE}, wantExc: x86.VectorGP + 1},
		{name: "#AC at CPL 3 with CR0.AM and AC", st: func() *State {
			s := long64State()
			s.CR0 |= x86.CR0AM
			s.Seg[x86.SS].DPL = 3
			return s
		}, code: []byte{0x89, 0x03}, flags: x86.FlagAC, regs: regs{rbx: mm + 2}, wantExc: x86.VectorAC + 1},
	})
}

func TestPageCrossing(t *testing.T) {
	store := []byte{0xc7, 0x03, 0x78, 0x56, 0x34, 0x12} // movl $0x12345678, (%rbx)
	twoPages := func(s *State, m *testMem) {
		m.mapPage(0x2000, 0x2000, false)
		m.mapPage(0x5000, mmioBase, true)
		m.mapPage(0x6000, mmioBase+0x3000, true)
	}
	runCases(t, []execCase{
		{name: "data write split over two pages", st: long64State, code: store, regs: regs{rbx: 0x5FFE}, setup: twoPages,
			wantIO: []ioRec{wr(mmioBase+0xFFE, []byte{0x78, 0x56}), wr(mmioBase+0x3000, []byte{0x34, 0x12})}, wantFlags: noFlag},
		{name: "second page not present: #PF at its start, nothing written", st: long64State, code: store, regs: regs{rbx: 0x6FFE},
			setup: twoPages, wantExc: x86.VectorPF + 1, wantCode: x86.PFErrWrite, wantIO: []ioRec{},
			check: func(t *testing.T, s *State, m *testMem) {}},
		{name: "second page read-only", st: long64State, code: store, regs: regs{rbx: 0x5FFE},
			setup: func(s *State, m *testMem) {
				twoPages(s, m)
				m.mapPage(0x6000, mmioBase+0x3000, false)
			}, wantExc: x86.VectorPF + 1, wantCode: x86.PFErrWrite | x86.PFErrPresent, wantIO: []ioRec{}},
	})
	t.Run("fault address", func(t *testing.T) {
		s := long64State()
		m := newTestMem()
		m.mapPage(0x2000, 0x2000, false)
		m.mapPage(0x6000, 0x6000, true)
		m.put(0x2000, store)
		s.RIP, s.GPR[rbx] = 0x2000, 0x6FFE
		_, err := (&Emulator{Mem: m}).Step(s)
		var x *x86.Exception
		if !errors.As(err, &x) || x.Vector != x86.VectorPF || x.Addr != 0x7000 {
			t.Fatalf("got %v, want #PF at 0x7000", err)
		}
	})
}

func TestFetch(t *testing.T) {
	runCases(t, []execCase{
		{name: "ends at the page end: next page never walked", st: long64State, code: []byte{0x90}, rip: 0x2FFF,
			setup: func(s *State, m *testMem) { m.mapPage(0x2000, 0x2000, false) }, wantNE: true,
			check: func(t *testing.T, s *State, m *testMem) {
				for _, r := range m.trans {
					if r.LA >= 0x3000 {
						t.Errorf("walked %#x", r.LA)
					}
				}
			}},
		{name: "crosses into a missing page: #PF with I/D", st: long64State, code: []byte{0x89, 0x03}, rip: 0x2FFF,
			setup: func(s *State, m *testMem) { m.mapPage(0x2000, 0x2000, false) }, wantExc: x86.VectorPF + 1, wantCode: x86.PFErrFetch},
		{name: "crosses into another page frame", st: long64State, code: []byte{0xc7, 0x03, 0x78, 0x56, 0x34, 0x12}, rip: 0x2FFC,
			regs: regs{rbx: mm}, setup: func(s *State, m *testMem) {
				m.mapPage(0x2000, 0x2000, false)
				m.mapPage(0x3000, 0x7000, false)
				m.mapPage(mm, mm, true)
				m.put(0x7000, []byte{0x34, 0x12}) // the tail of the instruction
			}, wantIO: []ioRec{wr(mm, le32(0x12345678))}, wantFlags: noFlag},
		{name: "CS limit cuts the instruction: #GP(0)", st: prot32Seg(x86.CS, codeSeg(0, 0x2001, true, false)),
			code: []byte{0x8b, 0x45, 0x00}, wantExc: x86.VectorGP + 1},
		{name: "CS limit just fits", st: prot32Seg(x86.CS, codeSeg(0, 0x2002, true, false)),
			code: []byte{0x8b, 0x45, 0x00}, regs: regs{rbp: 0x100}, wantFlags: noFlag},
		{name: "real: IP wraps inside the instruction", st: func() *State { return realDataA000() }, code: []byte{0x8b}, rip: 0xFFFF,
			regs: regs{rbp: 0x10}, init: []memb{{0x1000, []byte{0x46, 0x04}}}, wantRIP: ptr(2), wantRegs: regs{rax: 0x1514}, wantFlags: noFlag},
		{name: "longer than 15 bytes: #GP(0)", st: long64State,
			code: []byte{0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90}, wantExc: x86.VectorGP + 1},
	})
	t.Run("intents", func(t *testing.T) {
		s := long64State()
		m := newTestMem()
		m.put(0x2000, []byte{0x89, 0x03})
		s.RIP, s.GPR[rbx] = 0x2000, mm
		if _, err := (&Emulator{Mem: m}).Step(s); err != nil {
			t.Fatal(err)
		}
		want := []transRec{{0x2000, Intent{Access: x86.AccessFetch, Commit: true}}, {mm, Intent{Access: x86.AccessWrite, Commit: true}}}
		if len(m.trans) != len(want) || m.trans[0] != want[0] || m.trans[1] != want[1] {
			t.Errorf("translations %+v, want %+v", m.trans, want)
		}
	})
}

func TestOtherModes(t *testing.T) {
	runCases(t, []execCase{
		{name: "vm86: segment base is selector*16", st: func() *State {
			s := realDataA000()
			s.CR0 |= x86.CR0PE
			s.RFLAGS |= x86.FlagVM
			return s
		}, code: []byte{0x89, 0x07}, regs: regs{rax: 0x4321, rbx: 0x20},
			wantIO: []ioRec{wr(mmioLow+0x20, le16(0x4321))}, wantFlags: noFlag},
		{name: "compat32: linear addresses wrap at 4 GiB", st: func() *State {
			s := compat32State()
			s.Seg[x86.DS].Base = 0xFFFFF000
			return s
		}, code: []byte{0x89, 0x03}, regs: regs{rax: 9, rbx: 0x1000 + 0x500},
			wantMem: []memb{{0x500, le32(9)}}, wantFlags: noFlag},
		{name: "prot32: EIP wraps at 4 GiB", st: prot32State, code: []byte{0x89, 0x03}, rip: 0xFFFFFFFE,
			regs: regs{rax: 1, rbx: 0x600}, wantRIP: ptr(0), wantMem: []memb{{0x600, le32(1)}}, wantFlags: noFlag,
			setup: func(s *State, m *testMem) {
				m.mapPage(0xFFFFF000, 0x7000, false)
				m.mapPage(0, 0, true)
			}},
	})
}

func TestModes(t *testing.T) {
	vm86 := realState(0x100)
	vm86.CR0 |= x86.CR0PE
	vm86.RFLAGS |= x86.FlagVM
	c16 := long64State()
	c16.Seg[x86.CS] = codeSeg(0, 0xFFFF, false, false)
	p16 := prot16State(0)
	p16.Seg[x86.SS].DPL = 3
	tests := []struct {
		s    *State
		mode x86.Mode
		cpl  uint8
	}{
		{realState(0), x86.ModeReal, 0},
		{vm86, x86.ModeVM86, 3},
		{p16, x86.ModeProtected16, 3},
		{prot32State(), x86.ModeProtected32, 0},
		{c16, x86.ModeCompat16, 0},
		{compat32State(), x86.ModeCompat32, 0},
		{long64State(), x86.ModeLong64, 0},
	}
	for _, tc := range tests {
		if m := tc.s.Mode(); m != tc.mode || tc.s.CPL() != tc.cpl {
			t.Errorf("mode %v cpl %d, want %v cpl %d", m, tc.s.CPL(), tc.mode, tc.cpl)
		}
	}
}

// Fetch reuses the decode of the last instruction when it reads the same
// bytes in the same mode, and decodes again when a byte of it changed,
// the mode changed, or the instruction now crosses into another page.
func TestFetchDecodeMemo(t *testing.T) {
	s := long64State()
	m := newTestMem()
	e := &Emulator{Mem: m}
	fetch := func(what string) *decode.Inst {
		t.Helper()
		inst, err := e.Fetch(s)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return inst
	}
	m.put(0x2000, []byte{0x89, 0x03}) // mov %eax,(%rbx)
	s.RIP = 0x2000
	if in := fetch("first"); in.Op != decode.MOV || in.Len != 2 || in.OpSize != 4 {
		t.Fatalf("first fetch %+v", in)
	}
	if in := fetch("again"); in.Op != decode.MOV || in.Len != 2 || string(e.InstBytes()) != "\x89\x03" {
		t.Fatalf("same bytes %+v % x", in, e.InstBytes())
	}
	// The bytes after the instruction do not matter; a byte of it does.
	m.put(0x2002, []byte{0x90})
	if in := fetch("next byte"); in.Op != decode.MOV || in.Len != 2 {
		t.Errorf("after the byte past it changed %+v", in)
	}
	m.put(0x2000, []byte{0x48, 0x89, 0x03}) // mov %rax,(%rbx)
	if in := fetch("changed"); in.Len != 3 || in.OpSize != 8 {
		t.Errorf("after the code changed %+v", in)
	}
	// The same bytes in 32-bit code: 0x48 is DEC EAX there.
	s32 := prot32Seg(x86.CS, codeSeg(0, 0xffffffff, true, false))()
	s32.RIP = 0x2000
	in, err := e.Fetch(s32)
	if err != nil || in.Len != 1 || in.Mode != decode.Mode32 {
		t.Errorf("in 32-bit code: %+v, %v", in, err)
	}
	// The same bytes split across two pages.
	m.mapPage(0x2000, 0x2000, false)
	m.mapPage(0x3000, 0x5000, false)
	m.put(0x2ffe, []byte{0x48, 0x89})
	m.put(0x5000, []byte{0x03})
	s.RIP = 0x2ffe
	if in := fetch("split"); in.Len != 3 || string(e.InstBytes()) != "\x48\x89\x03" {
		t.Errorf("across pages %+v % x", in, e.InstBytes())
	}
	m.put(0x5000, []byte{0x0b}) // mov %rcx,(%rbx)
	if in := fetch("split changed"); in.Args[1].Reg != x86.RCX {
		t.Errorf("after the second page's byte changed %+v", in)
	}
}
