package emulate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"walkvm/x86"
)

// memb is bytes at a guest-physical address.
type memb struct {
	gpa uint64
	b   []byte
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le64b(v uint64) []byte {
	return binary.LittleEndian.AppendUint64(nil, v)
}

const (
	mm     = mmioBase + 0x100 // an MMIO register used by most cases
	cF     = x86.FlagCF
	pF     = x86.FlagPF
	aF     = x86.FlagAF
	zF     = x86.FlagZF
	sF     = x86.FlagSF
	oF     = x86.FlagOF
	arith  = x86.FlagsArith
	noFlag = ^uint64(0) // wantFlags value meaning "do not check"
)

type execCase struct {
	name  string
	st    func() *State
	code  []byte
	rip   uint64 // 0: the mode's default (0x100 in real mode, else 0x2000)
	regs  map[x86.Reg]uint64
	flags uint64
	init  []memb
	setup func(s *State, m *testMem)

	wantRegs  map[x86.Reg]uint64
	wantFlags uint64 // compared on the status flags; noFlag skips
	wantMem   []memb
	wantIO    []ioRec // nil skips; []ioRec{} demands no device access
	wantRIP   *uint64 // nil: the instruction's end
	wantExc   int     // vector+1 of the expected fault, 0 for none
	wantCode  uint32  // error code when wantExc
	wantNE    bool    // a *NotEmulatedError
	check     func(t *testing.T, s *State, m *testMem)
}

func defaultRIP(s *State) uint64 {
	if s.Mode() == x86.ModeReal {
		return 0x100
	}
	return 0x2000
}

func runCase(t *testing.T, tc execCase) {
	t.Helper()
	s := tc.st()
	m := newTestMem()
	s.RIP = tc.rip
	if s.RIP == 0 {
		s.RIP = defaultRIP(s)
	}
	for r, v := range tc.regs {
		s.GPR[r] = v
	}
	s.RFLAGS |= tc.flags
	for _, mb := range tc.init {
		m.put(mb.gpa, mb.b)
	}
	if tc.setup != nil {
		tc.setup(s, m)
	}
	la := s.Seg[x86.CS].Base + s.RIP
	if s.Mode() != x86.ModeLong64 {
		la &= 0xFFFFFFFF
	}
	if !m.paging {
		m.put(la, tc.code)
	} else if p, ok := m.pages[la>>12]; ok {
		m.put(p.gpa|la&0xFFF, tc.code)
	}
	before := *s
	m.log = nil
	e := &Emulator{Mem: m}
	_, err := e.Step(s)
	switch {
	case tc.wantExc != 0:
		var x *x86.Exception
		if !errors.As(err, &x) || int(x.Vector)+1 != tc.wantExc || x.ErrorCode != tc.wantCode {
			t.Fatalf("got error %v, want %s(%#x)", err, x86.VectorName(uint8(tc.wantExc-1)), tc.wantCode)
		}
		if s.RIP != before.RIP {
			t.Errorf("RIP moved to %#x on a fault", s.RIP)
		}
	case tc.wantNE:
		var ne *NotEmulatedError
		if !errors.As(err, &ne) {
			t.Fatalf("got error %v, want *NotEmulatedError", err)
		}
		if s.GPR != before.GPR || s.RIP != before.RIP {
			t.Errorf("state changed on a not-emulated instruction")
		}
	case err != nil:
		t.Fatalf("Step: %v", err)
	default:
		want := before.RIP + uint64(len(tc.code))
		if tc.wantRIP != nil {
			want = *tc.wantRIP
		}
		if s.RIP != want {
			t.Errorf("RIP = %#x, want %#x", s.RIP, want)
		}
	}
	for r, v := range tc.wantRegs {
		if s.GPR[r] != v {
			t.Errorf("%v = %#x, want %#x", r, s.GPR[r], v)
		}
	}
	if tc.wantFlags != noFlag && tc.wantExc == 0 && !tc.wantNE {
		if got := s.RFLAGS & arith; got != tc.wantFlags {
			t.Errorf("flags = %#x, want %#x", got, tc.wantFlags)
		}
	}
	for _, mb := range tc.wantMem {
		if got := m.get(mb.gpa, len(mb.b)); !bytes.Equal(got, mb.b) {
			t.Errorf("memory at %#x = % x, want % x", mb.gpa, got, mb.b)
		}
	}
	if tc.wantIO != nil {
		if len(m.log) != len(tc.wantIO) {
			t.Errorf("device accesses %+v, want %+v", m.log, tc.wantIO)
		} else {
			for i, r := range tc.wantIO {
				g := m.log[i]
				if g.GPA != r.GPA || g.Write != r.Write || !bytes.Equal(g.Data, r.Data) {
					t.Errorf("device access %d = %+v, want %+v", i, g, r)
				}
			}
		}
	}
	if tc.check != nil {
		tc.check(t, s, m)
	}
}

func runCases(t *testing.T, cases []execCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runCase(t, tc) })
	}
}

func rd(gpa uint64, b []byte) ioRec { return ioRec{GPA: gpa, Data: b} }
func wr(gpa uint64, b []byte) ioRec { return ioRec{GPA: gpa, Write: true, Data: b} }

type regs = map[x86.Reg]uint64

const (
	rax = x86.RAX
	rcx = x86.RCX
	rdx = x86.RDX
	rbx = x86.RBX
	rsp = x86.RSP
	rbp = x86.RBP
	rsi = x86.RSI
	rdi = x86.RDI
)

func TestMov(t *testing.T) {
	runCases(t, []execCase{
		{name: "movl %eax, 0x10(%ebx,%ecx,4)", st: prot32State, code: []byte{0x89, 0x44, 0x8b, 0x10},
			regs: regs{rax: 0xDEADBEEF, rbx: mmioBase, rcx: 0xC}, wantFlags: noFlag,
			wantIO: []ioRec{wr(mmioBase+0x40, le32(0xDEADBEEF))}},
		{name: "movl 0xfee00020, %edx", st: prot32State, code: []byte{0x8b, 0x15, 0x20, 0x00, 0xe0, 0xfe},
			regs: regs{rdx: 0xFFFFFFFF_00000000}, init: []memb{{mmioBase + 0x20, le32(0x11223344)}}, wantFlags: noFlag,
			wantRegs: regs{rdx: 0x11223344}, wantIO: []ioRec{rd(mmioBase+0x20, le32(0x11223344))}},
		{name: "movl 0xfee00010, %eax (moffs)", st: prot32State, code: []byte{0xa1, 0x10, 0x00, 0xe0, 0xfe},
			init: []memb{{mmioBase + 0x10, le32(7)}}, wantRegs: regs{rax: 7}, wantFlags: noFlag},
		{name: "movabs 0xfee00008, %al", st: long64State, code: []byte{0xa0, 0x08, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00},
			regs: regs{rax: 0x1234}, init: []memb{{mmioBase + 8, []byte{0xAB}}}, wantRegs: regs{rax: 0x12AB}, wantFlags: noFlag},
		{name: "movabs %rax, 0xfee00008", st: long64State, code: []byte{0x48, 0xa3, 0x08, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00},
			regs: regs{rax: 0x0102030405060708}, wantFlags: noFlag,
			wantIO: []ioRec{wr(mmioBase+8, le64b(0x0102030405060708))}},
		{name: "mov %ah, (%rbx)", st: long64State, code: []byte{0x88, 0x23},
			regs: regs{rax: 0xA5B6, rbx: mm}, wantIO: []ioRec{wr(mm, []byte{0xA5})}, wantFlags: noFlag},
		{name: "mov %sil, (%rbx)", st: long64State, code: []byte{0x40, 0x88, 0x33},
			regs: regs{rsi: 0x1122, rbx: mm}, wantIO: []ioRec{wr(mm, []byte{0x22})}, wantFlags: noFlag},
		{name: "movb (%rbx), %bh", st: long64State, code: []byte{0x8a, 0x3b},
			regs: regs{rbx: mm}, init: []memb{{mm, []byte{0x77}}}, wantRegs: regs{rbx: mm&^0xFF00 | 0x7700}, wantFlags: noFlag},
		{name: "movb (%rbx), %dil", st: long64State, code: []byte{0x40, 0x8a, 0x3b},
			regs: regs{rbx: mm, rdi: 0xFFFF}, init: []memb{{mm, []byte{0x77}}}, wantRegs: regs{rdi: 0xFF77}, wantFlags: noFlag},
		{name: "movq $-1, (%rbx)", st: long64State, code: []byte{0x48, 0xc7, 0x03, 0xff, 0xff, 0xff, 0xff},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, le64b(^uint64(0)))}, wantFlags: noFlag},
		{name: "movl 0x1000(%rip), %eax", st: long64State, code: []byte{0x8b, 0x05, 0x00, 0x10, 0x00, 0x00},
			rip: 0x3000, // next RIP + 0x1000 = 0x4006
			setup: func(s *State, m *testMem) {
				m.mapPage(0x3000, 0x3000, false)
				m.mapPage(0x4000, mmioBase, true)
			},
			init: []memb{{mmioBase + 6, le32(0xCAFE)}}, wantRegs: regs{rax: 0xCAFE}, wantFlags: noFlag,
			wantIO: []ioRec{rd(mmioBase+6, le32(0xCAFE))}},
		{name: "addr32 movl %eax, (%ebx)", st: long64State, code: []byte{0x67, 0x89, 0x03},
			regs: regs{rax: 1, rbx: 0xFFFFFFFF_00000000 | mm}, wantIO: []ioRec{wr(mm, le32(1))}, wantFlags: noFlag},
		{name: "movl %fs:8, %eax", st: long64State, code: []byte{0x64, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00},
			setup: func(s *State, m *testMem) { s.Seg[x86.FS].Base = mmioBase },
			init:  []memb{{mmioBase + 8, le32(0x5555)}}, wantRegs: regs{rax: 0x5555}, wantFlags: noFlag},
		{name: "64-bit mode ignores the DS base", st: long64State, code: []byte{0x8b, 0x03},
			regs:  regs{rbx: mm},
			setup: func(s *State, m *testMem) { s.Seg[x86.DS].Base = 0x1000 },
			init:  []memb{{mm, le32(0x99)}}, wantRegs: regs{rax: 0x99}, wantFlags: noFlag},
		{name: "movw %ax, %ds:0x1234 (32-bit, 66 a3)", st: prot32State, code: []byte{0x66, 0xa3, 0x34, 0x12, 0x00, 0x00},
			regs: regs{rax: 0xBEEF}, setup: func(s *State, m *testMem) { s.Seg[x86.DS].Base = 0x10000 },
			wantMem: []memb{{0x11234, le16(0xBEEF)}}, wantFlags: noFlag},
		// 16-bit addressing.
		{name: "real: movw %ax, 0x1234", st: func() *State { return realState(0x100) }, code: []byte{0xa3, 0x34, 0x12},
			regs: regs{rax: 0x4242}, wantMem: []memb{{0x1000 + 0x1234, le16(0x4242)}}, wantFlags: noFlag},
		{name: "real: mov (%bx,%si), %al wraps at 64K", st: realDataA000, code: []byte{0x8a, 0x00},
			regs: regs{rbx: 0xFFF0, rsi: 0x20}, wantRegs: regs{rax: 0x10}, wantFlags: noFlag,
			wantIO: []ioRec{rd(0xA0010, []byte{0x10})}},
		{name: "real: mov 4(%bp), %ax uses SS", st: func() *State {
			s := realState(0x100)
			s.Seg[x86.SS].Base = 0xA0000
			return s
		}, code: []byte{0x8b, 0x46, 0x04}, regs: regs{rbp: 0x10}, wantRegs: regs{rax: 0x1514}, wantFlags: noFlag},
		{name: "real: word at offset FFFF is #GP", st: func() *State { return realState(0x100) }, code: []byte{0x89, 0x07},
			regs: regs{rbx: 0xFFFF}, wantExc: x86.VectorGP + 1},
		{name: "prot16: mov %ax, (%bx,%di)", st: func() *State { return prot16State(0xA0000) }, code: []byte{0x89, 0x01},
			rip: 0x100, regs: regs{rax: 0x1234, rbx: 0x10, rdi: 0x1},
			setup:  func(s *State, m *testMem) { s.Seg[x86.CS].Base = 0x1000 },
			wantIO: []ioRec{wr(0xA0011, le16(0x1234))}, wantFlags: noFlag},
		{name: "real: addr32 movl %eax, (%ebx)", st: func() *State { return realState(0) }, code: []byte{0x67, 0x66, 0x89, 0x03},
			regs: regs{rax: 0x01020304, rbx: 0x3000}, wantMem: []memb{{0x3000, le32(0x01020304)}}, wantFlags: noFlag},
		{name: "real: IP wraps past FFFF", st: func() *State { return realState(0x100) }, code: []byte{0x89, 0x07},
			rip: 0xFFFE, regs: regs{rbx: 0x10, rax: 0x55}, wantRIP: ptr(0), wantMem: []memb{{0x1010, le16(0x55)}}, wantFlags: noFlag},
		{name: "movzbl (%rbx), %eax", st: long64State, code: []byte{0x0f, 0xb6, 0x03},
			regs: regs{rax: ^uint64(0), rbx: mm}, init: []memb{{mm, []byte{0x80}}}, wantRegs: regs{rax: 0x80}, wantFlags: noFlag},
		{name: "movzwq (%rbx), %rax", st: long64State, code: []byte{0x48, 0x0f, 0xb7, 0x03},
			regs: regs{rax: ^uint64(0), rbx: mm}, init: []memb{{mm, le16(0x8001)}}, wantRegs: regs{rax: 0x8001}, wantFlags: noFlag},
		{name: "movsbw (%rbx), %ax", st: long64State, code: []byte{0x66, 0x0f, 0xbe, 0x03},
			regs: regs{rax: 0x12345678, rbx: mm}, init: []memb{{mm, []byte{0x80}}}, wantRegs: regs{rax: 0x1234FF80}, wantFlags: noFlag},
		{name: "movswl (%rbx), %eax", st: long64State, code: []byte{0x0f, 0xbf, 0x03},
			regs: regs{rax: ^uint64(0), rbx: mm}, init: []memb{{mm, le16(0x8000)}}, wantRegs: regs{rax: 0xFFFF8000}, wantFlags: noFlag},
		{name: "movslq (%rbx), %rax", st: long64State, code: []byte{0x48, 0x63, 0x03},
			regs: regs{rbx: mm}, init: []memb{{mm, le32(0x80000000)}}, wantRegs: regs{rax: 0xFFFFFFFF80000000}, wantFlags: noFlag},
		{name: "movntil %eax, (%ebx)", st: prot32State, code: []byte{0x0f, 0xc3, 0x03},
			regs: regs{rax: 0x5A5A5A5A, rbx: mm}, wantIO: []ioRec{wr(mm, le32(0x5A5A5A5A))}, wantFlags: noFlag},
		{name: "movbe (%rbx), %rax", st: long64State, code: []byte{0x48, 0x0f, 0x38, 0xf0, 0x03},
			regs: regs{rbx: mm}, init: []memb{{mm, []byte{1, 2, 3, 4, 5, 6, 7, 8}}}, wantRegs: regs{rax: 0x0102030405060708}, wantFlags: noFlag},
		{name: "movbe %ax, (%rbx)", st: long64State, code: []byte{0x66, 0x0f, 0x38, 0xf1, 0x03},
			regs: regs{rax: 0x1122, rbx: mm}, wantIO: []ioRec{wr(mm, []byte{0x11, 0x22})}, wantFlags: noFlag},
		{name: "movbe %eax, %ecx is #UD", st: long64State, code: []byte{0x0f, 0x38, 0xf0, 0xc8}, wantExc: x86.VectorUD + 1},
		{name: "mulq (%rbx)", st: long64State, code: []byte{0x48, 0xf7, 0x23}, regs: regs{rax: 1 << 63, rbx: mm},
			init: []memb{{mm, le64b(6)}}, wantRegs: regs{rax: 0, rdx: 3}, wantFlags: noFlag},
		{name: "divb (%rbx) by 0 is #DE", st: long64State, code: []byte{0xf6, 0x33}, regs: regs{rax: 7, rbx: mm},
			init: []memb{{mm, []byte{0}}}, wantRegs: regs{rax: 7}, wantExc: x86.VectorDE + 1},
		{name: "hlt is not emulated", st: long64State, code: []byte{0xf4}, wantNE: true},
	})
}

func TestALUMem(t *testing.T) {
	runCases(t, []execCase{
		{name: "addl %eax, (%rbx)", st: long64State, code: []byte{0x01, 0x03},
			regs: regs{rax: 1, rbx: mm}, init: []memb{{mm, le32(0xFFFFFFFF)}},
			wantIO:    []ioRec{rd(mm, le32(0xFFFFFFFF)), wr(mm, le32(0))},
			wantFlags: cF | pF | aF | zF},
		{name: "orb $0x80, (%rbx)", st: long64State, code: []byte{0x80, 0x0b, 0x80},
			regs: regs{rbx: mm}, flags: cF | oF, init: []memb{{mm, []byte{0x01}}},
			wantMem: []memb{{mm, []byte{0x81}}}, wantFlags: pF | sF},
		{name: "subw (%rbx), %cx", st: long64State, code: []byte{0x66, 0x2b, 0x0b},
			regs: regs{rbx: mm, rcx: 0xFFFF_0001}, init: []memb{{mm, le16(2)}},
			wantRegs: regs{rcx: 0xFFFF_FFFF}, wantFlags: cF | pF | aF | sF},
		{name: "adcl $1, (%rbx) with CF", st: long64State, code: []byte{0x83, 0x13, 0x01},
			regs: regs{rbx: mm}, flags: cF, init: []memb{{mm, le32(0x7FFFFFFE)}},
			wantMem: []memb{{mm, le32(0x80000000)}}, wantFlags: pF | aF | sF | oF},
		{name: "sbbb %al, (%rbx)", st: long64State, code: []byte{0x18, 0x03},
			regs: regs{rax: 0, rbx: mm}, flags: cF, init: []memb{{mm, []byte{0}}},
			wantMem: []memb{{mm, []byte{0xFF}}}, wantFlags: cF | pF | aF | sF},
		{name: "andq $-16, (%rbx)", st: long64State, code: []byte{0x48, 0x83, 0x23, 0xf0},
			regs: regs{rbx: mm}, init: []memb{{mm, le64b(0x800000000000001F)}},
			wantMem: []memb{{mm, le64b(0x8000000000000010)}}, wantFlags: sF},
		{name: "xorl (%rbx), %eax zero-extends", st: long64State, code: []byte{0x33, 0x03},
			regs: regs{rax: 0xFFFFFFFF_0000FFFF, rbx: mm}, init: []memb{{mm, le32(0xFFFF)}},
			wantRegs: regs{rax: 0}, wantFlags: pF | zF},
		{name: "cmpl $5, (%rbx) does not write", st: long64State, code: []byte{0x83, 0x3b, 0x05},
			regs: regs{rbx: mm}, init: []memb{{mm, le32(3)}},
			wantIO: []ioRec{rd(mm, le32(3))}, wantFlags: cF | aF | sF},
		{name: "testl %eax, (%rbx)", st: long64State, code: []byte{0x85, 0x03},
			regs: regs{rax: 0xF0, rbx: mm}, flags: cF | oF, init: []memb{{mm, le32(0x0F)}},
			wantIO: []ioRec{rd(mm, le32(0x0F))}, wantFlags: pF | zF},
		{name: "testb $0x80, (%rbx)", st: long64State, code: []byte{0xf6, 0x03, 0x80},
			regs: regs{rbx: mm}, init: []memb{{mm, []byte{0x80}}}, wantFlags: sF},
		{name: "incl (%rbx) keeps CF", st: long64State, code: []byte{0xff, 0x03},
			regs: regs{rbx: mm}, flags: cF, init: []memb{{mm, le32(0x7FFFFFFF)}},
			wantMem: []memb{{mm, le32(0x80000000)}}, wantFlags: cF | pF | aF | sF | oF},
		{name: "decw (%rbx)", st: long64State, code: []byte{0x66, 0xff, 0x0b},
			regs: regs{rbx: mm}, init: []memb{{mm, le16(0)}},
			wantMem: []memb{{mm, le16(0xFFFF)}}, wantFlags: pF | aF | sF},
		{name: "notq (%rbx) leaves flags", st: long64State, code: []byte{0x48, 0xf7, 0x13},
			regs: regs{rbx: mm}, flags: zF, init: []memb{{mm, le64b(0xFF)}},
			wantMem: []memb{{mm, le64b(^uint64(0xFF))}}, wantFlags: zF},
		{name: "negb (%rbx)", st: long64State, code: []byte{0xf6, 0x1b},
			regs: regs{rbx: mm}, init: []memb{{mm, []byte{1}}},
			wantMem: []memb{{mm, []byte{0xFF}}}, wantFlags: cF | pF | aF | sF},
		{name: "negb (%rbx) of 0 clears CF", st: long64State, code: []byte{0xf6, 0x1b},
			regs: regs{rbx: mm}, flags: cF, init: []memb{{mm, []byte{0}}},
			wantMem: []memb{{mm, []byte{0}}}, wantFlags: pF | zF},
		{name: "xchg %eax, (%rbx)", st: long64State, code: []byte{0x87, 0x03},
			regs: regs{rax: 0xFFFFFFFF_00000001, rbx: mm}, init: []memb{{mm, le32(2)}},
			wantRegs: regs{rax: 2}, wantIO: []ioRec{rd(mm, le32(2)), wr(mm, le32(1))}, wantFlags: 0},
		{name: "cmpxchgl %ecx, (%rbx) equal", st: long64State, code: []byte{0x0f, 0xb1, 0x0b},
			regs: regs{rax: 5, rcx: 9, rbx: mm}, init: []memb{{mm, le32(5)}},
			wantRegs: regs{rax: 5}, wantMem: []memb{{mm, le32(9)}}, wantFlags: zF | pF},
		{name: "cmpxchgl %ecx, (%rbx) not equal", st: long64State, code: []byte{0x0f, 0xb1, 0x0b},
			regs: regs{rax: 0xFFFFFFFF_00000004, rcx: 9, rbx: mm}, init: []memb{{mm, le32(5)}},
			wantRegs: regs{rax: 5}, wantIO: []ioRec{rd(mm, le32(5)), wr(mm, le32(5))}, wantFlags: cF | pF | aF | sF},
		{name: "xaddl %ecx, (%rbx)", st: long64State, code: []byte{0x0f, 0xc1, 0x0b},
			regs: regs{rcx: 0xFFFFFFFF, rbx: mm}, init: []memb{{mm, le32(1)}},
			wantRegs: regs{rcx: 1}, wantMem: []memb{{mm, le32(0)}}, wantFlags: cF | pF | aF | zF},
		{name: "sete (%rbx)", st: long64State, code: []byte{0x0f, 0x94, 0x03},
			regs: regs{rbx: mm}, flags: zF, wantIO: []ioRec{wr(mm, []byte{1})}, wantFlags: zF},
		{name: "setb (%rbx)", st: long64State, code: []byte{0x0f, 0x92, 0x03},
			regs: regs{rbx: mm}, flags: zF, wantIO: []ioRec{wr(mm, []byte{0})}, wantFlags: zF},
		{name: "cmovnel (%rbx), %eax false still reads and zero-extends", st: long64State, code: []byte{0x0f, 0x45, 0x03},
			regs: regs{rax: 0xFFFFFFFF_00000007, rbx: mm}, flags: zF, init: []memb{{mm, le32(9)}},
			wantRegs: regs{rax: 7}, wantIO: []ioRec{rd(mm, le32(9))}, wantFlags: zF},
		{name: "shll (%rbx)", st: long64State, code: []byte{0xd1, 0x23},
			regs: regs{rbx: mm}, init: []memb{{mm, le32(0xC0000001)}},
			wantMem: []memb{{mm, le32(0x80000002)}}, wantFlags: cF | sF},
		{name: "shrb $3, (%rbx)", st: long64State, code: []byte{0xc0, 0x2b, 0x03},
			regs: regs{rbx: mm}, init: []memb{{mm, []byte{0x8C}}},
			wantMem: []memb{{mm, []byte{0x11}}}, wantFlags: cF | pF | oF},
		{name: "sarw %cl, (%rbx)", st: long64State, code: []byte{0x66, 0xd3, 0x3b},
			regs: regs{rbx: mm, rcx: 4}, init: []memb{{mm, le16(0x8010)}},
			wantMem: []memb{{mm, le16(0xF801)}}, wantFlags: sF},
		{name: "rolq $1, (%rbx) keeps SF ZF PF", st: long64State, code: []byte{0x48, 0xd1, 0x03},
			regs: regs{rbx: mm}, flags: zF | pF, init: []memb{{mm, le64b(0x8000000000000000)}},
			wantMem: []memb{{mm, le64b(1)}}, wantFlags: zF | pF | cF | oF},
		{name: "rcrl %cl, (%rbx) through CF", st: long64State, code: []byte{0xd3, 0x1b},
			regs: regs{rbx: mm, rcx: 1}, flags: cF, init: []memb{{mm, le32(2)}},
			wantMem: []memb{{mm, le32(0x80000001)}}, wantFlags: oF},
		{name: "shll by 0 keeps the flags", st: long64State, code: []byte{0xd3, 0x23},
			regs: regs{rbx: mm, rcx: 0x20}, flags: cF | oF, init: []memb{{mm, le32(5)}},
			wantMem: []memb{{mm, le32(5)}}, wantFlags: cF | oF},
		{name: "movw %ds, (%rbx)", st: long64State, code: []byte{0x8c, 0x1b},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, le16(0x10))}, wantFlags: noFlag},
		{name: "cmovel (%rbx), %eax", st: long64State, code: []byte{0x0f, 0x44, 0x03},
			regs: regs{rax: 7, rbx: mm}, flags: zF, init: []memb{{mm, le32(9)}}, wantRegs: regs{rax: 9}, wantFlags: zF},
	})
}

func TestBitOps(t *testing.T) {
	runCases(t, []execCase{
		{name: "btl $3, (%rbx)", st: long64State, code: []byte{0x0f, 0xba, 0x23, 0x03},
			regs: regs{rbx: mm}, flags: zF, init: []memb{{mm, le32(8)}},
			wantIO: []ioRec{rd(mm, le32(8))}, wantFlags: cF | zF},
		{name: "btsl %eax, (%rbx) beyond the dword", st: long64State, code: []byte{0x0f, 0xab, 0x03},
			regs: regs{rax: 35, rbx: mm}, init: []memb{{mm + 4, le32(0)}},
			wantIO: []ioRec{rd(mm+4, le32(0)), wr(mm+4, le32(8))}, wantFlags: 0},
		{name: "btsl %eax, (%rbx) negative offset", st: long64State, code: []byte{0x0f, 0xab, 0x03},
			regs: regs{rax: 0xFFFFFFFF, rbx: mm}, init: []memb{{mm - 4, le32(0x80000000)}},
			wantIO: []ioRec{rd(mm-4, le32(0x80000000)), wr(mm-4, le32(0x80000000))}, wantFlags: cF},
		{name: "btrq %rax, (%rbx)", st: long64State, code: []byte{0x48, 0x0f, 0xb3, 0x03},
			regs: regs{rax: 64 + 63, rbx: mm}, init: []memb{{mm + 8, le64b(1 << 63)}},
			wantMem: []memb{{mm + 8, le64b(0)}}, wantFlags: cF},
		{name: "btcw $17, (%rbx) masks the immediate", st: long64State, code: []byte{0x66, 0x0f, 0xba, 0x3b, 0x11},
			regs: regs{rbx: mm}, init: []memb{{mm, le16(0)}},
			wantIO: []ioRec{rd(mm, le16(0)), wr(mm, le16(2))}, wantFlags: 0},
		{name: "real: btrw %ax, (%bx) negative", st: realDataA000, code: []byte{0x0f, 0xb3, 0x07},
			regs: regs{rax: 0xFFF0, rbx: 0x100}, init: []memb{{0xA00FE, le16(0xFFFF)}},
			wantIO: []ioRec{rd(0xA00FE, le16(0xFFFF)), wr(0xA00FE, le16(0xFFFE))}, wantFlags: cF},
	})
}

func TestPushPop(t *testing.T) {
	runCases(t, []execCase{
		{name: "pushl (%ebx)", st: prot32State, code: []byte{0xff, 0x33},
			regs: regs{rbx: mm, rsp: 0x8000}, init: []memb{{mm, le32(0xAABBCCDD)}},
			wantRegs: regs{rsp: 0x7FFC}, wantMem: []memb{{0x7FFC, le32(0xAABBCCDD)}}, wantFlags: noFlag},
		{name: "popl (%ebx)", st: prot32State, code: []byte{0x8f, 0x03},
			regs: regs{rbx: mm, rsp: 0x8000}, init: []memb{{0x8000, le32(0x01020304)}},
			wantRegs: regs{rsp: 0x8004}, wantIO: []ioRec{wr(mm, le32(0x01020304))}, wantFlags: noFlag},
		{name: "popl 4(%esp) uses the incremented ESP", st: prot32State, code: []byte{0x8f, 0x44, 0x24, 0x04},
			regs: regs{rsp: 0x8000}, init: []memb{{0x8000, le32(0x77)}},
			wantRegs: regs{rsp: 0x8004}, wantMem: []memb{{0x8008, le32(0x77)}}, wantFlags: noFlag},
		{name: "pushq (%rbx)", st: long64State, code: []byte{0xff, 0x33},
			regs: regs{rbx: mm, rsp: 0x8000}, init: []memb{{mm, le64b(0x1122334455667788)}},
			wantRegs: regs{rsp: 0x7FF8}, wantMem: []memb{{0x7FF8, le64b(0x1122334455667788)}}, wantFlags: noFlag},
		{name: "pushw (%rbx)", st: long64State, code: []byte{0x66, 0xff, 0x33},
			regs: regs{rbx: mm, rsp: 0x8000}, init: []memb{{mm, le16(0x1234)}},
			wantRegs: regs{rsp: 0x7FFE}, wantMem: []memb{{0x7FFE, le16(0x1234)}}, wantFlags: noFlag},
		{name: "popq (%rsp)", st: long64State, code: []byte{0x8f, 0x04, 0x24},
			regs: regs{rsp: 0x8000}, init: []memb{{0x8000, le64b(0x42)}},
			wantRegs: regs{rsp: 0x8008}, wantMem: []memb{{0x8008, le64b(0x42)}}, wantFlags: noFlag},
		{name: "prot32 with a 16-bit stack: SP wraps into #SS", st: stack16,
			code: []byte{0xff, 0x33}, regs: regs{rbx: mm, rsp: 0xABCD0002}, init: []memb{{mm, le32(0x99)}},
			wantRegs: regs{rsp: 0xABCD0002}, wantExc: x86.VectorSS + 1},
		{name: "prot32 with a 16-bit stack keeps the upper ESP", st: stack16,
			code: []byte{0xff, 0x33}, regs: regs{rbx: mm, rsp: 0xABCD0004}, init: []memb{{mm, le32(0x99)}},
			wantRegs: regs{rsp: 0xABCD0000}, wantMem: []memb{{0x10000, le32(0x99)}}, wantFlags: noFlag},
		{name: "real: pushw (%bx)", st: func() *State { return realState(0x100) }, code: []byte{0xff, 0x37},
			regs: regs{rbx: 0x10, rsp: 0x200}, init: []memb{{0x1010, le16(0x5150)}},
			wantRegs: regs{rsp: 0x1FE}, wantMem: []memb{{0x11FE, le16(0x5150)}}, wantFlags: noFlag},
		{name: "real: popw (%bx)", st: func() *State { return realState(0x100) }, code: []byte{0x8f, 0x07},
			regs: regs{rbx: 0x10, rsp: 0xFFFE}, init: []memb{{0x10FFE, le16(0x6160)}},
			wantRegs: regs{rsp: 0}, wantMem: []memb{{0x1010, le16(0x6160)}}, wantFlags: noFlag},
	})
}

// stack16 is flat 32-bit protected mode with a 16-bit stack segment at
// 10000H.
func stack16() *State {
	s := prot32State()
	s.Seg[x86.SS] = dataSeg(0x10000, 0xFFFF, false)
	return s
}

// realDataA000 is real mode with code at 1000H and every data segment at
// A0000H (the low device window).
func realDataA000() *State {
	s := realState(0x100)
	for _, r := range []x86.SegReg{x86.DS, x86.ES, x86.SS, x86.FS, x86.GS} {
		s.Seg[r].Base, s.Seg[r].Selector = 0xA0000, 0xA000
	}
	return s
}

func ptr(v uint64) *uint64 { return &v }

// TestLegacyStackAndSegments covers the forms the native differential
// cannot run in a 64-bit process: PUSHA/POPA, BOUND, LDS/LES, ENTER/LEAVE
// with 16-bit stacks, and segment loads in real and protected mode.
func TestLegacyStackAndSegments(t *testing.T) {
	// A GDT at 0x600: 0x08 flat code, 0x10 flat data, 0x18 data DPL 3,
	// 0x20 read-only data, 0x28 not present, 0x30 expand-up data at base
	// 0x12340 (accessed bit clear).
	gdt := []memb{{0x600, le64b(0)}, {0x608, le64b(0x00cf9b000000ffff)}, {0x610, le64b(0x00cf93000000ffff)},
		{0x618, le64b(0x00cff3000000ffff)}, {0x620, le64b(0x00cf91000000ffff)}, {0x628, le64b(0x00cf13000000ffff)},
		{0x630, le64b(0x0000910123400fff)}}
	withGDT := func(s *State) { s.GDTR = TableReg{Base: 0x600, Limit: 0x37} }
	prot := func() *State { s := prot32State(); withGDT(s); return s }
	runCases(t, []execCase{
		{name: "pushal", st: prot32State, code: []byte{0x60},
			regs:     regs{rax: 1, rcx: 2, rdx: 3, rbx: 4, rsp: 0x8000, rbp: 6, rsi: 7, rdi: 8},
			wantRegs: regs{rsp: 0x7FE0}, wantFlags: noFlag,
			wantMem: []memb{{0x7FE0, append(append(append(append(le32(8), le32(7)...), le32(6)...), le32(0x8000)...),
				append(append(append(le32(4), le32(3)...), le32(2)...), le32(1)...)...)}}},
		{name: "popaw skips SP", st: func() *State { return realState(0) }, code: []byte{0x61},
			regs: regs{rsp: 0x7000}, init: []memb{{0x7000, []byte{8, 0, 7, 0, 6, 0, 0x99, 0x99, 4, 0, 3, 0, 2, 0, 1, 0}}},
			wantRegs: regs{rdi: 8, rsi: 7, rbp: 6, rbx: 4, rdx: 3, rcx: 2, rax: 1, rsp: 0x7010}, wantFlags: noFlag},
		{name: "boundl in range", st: prot32State, code: []byte{0x62, 0x03}, regs: regs{rax: 5, rbx: 0x9000},
			init: []memb{{0x9000, append(le32(0xFFFFFFFB), le32(5)...)}}, wantFlags: noFlag},
		{name: "boundl below is #BR", st: prot32State, code: []byte{0x62, 0x03}, regs: regs{rax: 0xFFFFFFFA, rbx: 0x9000},
			init: []memb{{0x9000, append(le32(0xFFFFFFFB), le32(5)...)}}, wantExc: x86.VectorBR + 1},
		{name: "ldsl loads DS from the GDT and sets the accessed bit", st: prot, code: []byte{0xc5, 0x03},
			regs: regs{rbx: 0x9000}, init: append(gdt, memb{0x9000, append(le32(0x1234), le16(0x30)...)}),
			wantRegs: regs{rax: 0x1234}, wantFlags: noFlag, wantMem: []memb{{0x635, []byte{0x91}}},
			check: func(t *testing.T, s *State, m *testMem) {
				if d := s.Seg[x86.DS]; d.Selector != 0x30 || d.Base != 0x12340 || d.Limit != 0xFFF || d.Type != 1 {
					t.Errorf("DS = %+v", d)
				}
			}},
		{name: "lesl of a not-present segment is #NP(sel)", st: prot, code: []byte{0xc4, 0x03},
			regs: regs{rbx: 0x9000}, init: append(gdt, memb{0x9000, append(le32(1), le16(0x28)...)}),
			wantExc: x86.VectorNP + 1, wantCode: 0x28},
		{name: "lssl of a read-only segment is #GP(sel)", st: prot, code: []byte{0x0f, 0xb2, 0x03},
			regs: regs{rbx: 0x9000}, init: append(gdt, memb{0x9000, append(le32(1), le16(0x20)...)}),
			wantExc: x86.VectorGP + 1, wantCode: 0x20},
		{name: "movw (%ebx), %es beyond the GDT limit is #GP(sel)", st: prot, code: []byte{0x8e, 0x03},
			regs: regs{rbx: 0x9000}, init: append(gdt, memb{0x9000, le16(0x43)}), wantExc: x86.VectorGP + 1, wantCode: 0x40},
		{name: "real mode: movw (%bx), %es is base sel*16", st: func() *State { return realState(0) }, code: []byte{0x8e, 0x07},
			regs: regs{rbx: 0x900}, init: []memb{{0x900, le16(0x1234)}}, wantFlags: noFlag,
			check: func(t *testing.T, s *State, m *testMem) {
				if d := s.Seg[x86.ES]; d.Selector != 0x1234 || d.Base != 0x12340 {
					t.Errorf("ES = %+v", d)
				}
			}},
		{name: "real mode: enter $4, $0 with a 16-bit stack", st: func() *State { return realState(0) }, code: []byte{0xc8, 4, 0, 0},
			regs: regs{rsp: 0x7000, rbp: 0x1234}, wantRegs: regs{rsp: 0x6FFA, rbp: 0x6FFE}, wantMem: []memb{{0x6FFE, le16(0x1234)}}, wantFlags: noFlag},
		{name: "real mode: leave", st: func() *State { return realState(0) }, code: []byte{0xc9},
			regs: regs{rsp: 0x100, rbp: 0x6FFE}, init: []memb{{0x6FFE, le16(0x4321)}}, wantRegs: regs{rsp: 0x7000, rbp: 0x4321}, wantFlags: noFlag},
		{name: "enterl $0, $2 copies a frame pointer", st: prot32State, code: []byte{0xc8, 0, 0, 2},
			regs: regs{rsp: 0x8000, rbp: 0x9000}, init: []memb{{0x8FFC, le32(0xAAAA)}},
			wantRegs: regs{rsp: 0x7FF4, rbp: 0x7FFC},
			wantMem:  []memb{{0x7FF4, append(append(le32(0x7FFC), le32(0xAAAA)...), le32(0x9000)...)}}, wantFlags: noFlag},
		{name: "lgdt at CPL 3 is #GP(0)", st: func() *State {
			s := prot32State()
			s.Seg[x86.SS].DPL = 3
			return s
		}, code: []byte{0x0f, 0x01, 0x13}, regs: regs{rbx: 0x9000}, wantExc: x86.VectorGP + 1},
		{name: "lgdtw loads a 24-bit base", st: func() *State { return realState(0) }, code: []byte{0x0f, 0x01, 0x17},
			regs: regs{rbx: 0x900}, init: []memb{{0x900, []byte{0xff, 0x00, 0x11, 0x22, 0x33, 0x44}}}, wantFlags: noFlag,
			check: func(t *testing.T, s *State, m *testMem) {
				if s.GDTR != (TableReg{Base: 0x332211, Limit: 0xFF}) {
					t.Errorf("GDTR = %+v", s.GDTR)
				}
			}},
	})
}
