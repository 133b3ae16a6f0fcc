package emulate

import (
	"bytes"
	"strings"
	"testing"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

func decodeAt(t *testing.T, e *Emulator, s *State) *decode.Inst {
	t.Helper()
	inst, err := e.Fetch(s)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return inst
}

func TestResolve(t *testing.T) {
	type want struct {
		linear uint64
		size   uint16
		read   bool
		write  bool
		pieces []Piece
	}
	tests := []struct {
		name  string
		st    func() *State
		code  []byte
		regs  regs
		setup func(s *State, m *testMem)
		want  []want
	}{
		{name: "movl %eax, 0x10(%ebx,%ecx,4)", st: prot32State, code: []byte{0x89, 0x44, 0x8b, 0x10},
			regs: regs{rbx: mmioBase, rcx: 3}, want: []want{{mmioBase + 0x1C, 4, false, true, []Piece{{mmioBase + 0x1C, 4}}}}},
		{name: "orl $1, (%rbx) is a read-modify-write", st: long64State, code: []byte{0x83, 0x0b, 0x01},
			regs: regs{rbx: mm}, want: []want{{mm, 4, true, true, []Piece{{mm, 4}}}}},
		{name: "split over pages", st: long64State, code: []byte{0x8b, 0x03}, regs: regs{rbx: 0x5FFD},
			setup: func(s *State, m *testMem) {
				m.mapPage(0x2000, 0x2000, false)
				m.mapPage(0x5000, mmioBase, false)
				m.mapPage(0x6000, 0x9000, false)
			}, want: []want{{0x5FFD, 4, true, false, []Piece{{mmioBase + 0xFFD, 3}, {0x9000, 1}}}}},
		{name: "rep movsl: source then destination", st: long64State, code: []byte{0xf3, 0xa5},
			regs: regs{rsi: 0x9000, rdi: mm, rcx: 4},
			want: []want{{0x9000, 4, true, false, []Piece{{0x9000, 4}}}, {mm, 4, false, true, []Piece{{mm, 4}}}}},
		{name: "cmpsb reads both", st: long64State, code: []byte{0xa6},
			regs: regs{rsi: 0x9000, rdi: mm},
			want: []want{{0x9000, 1, true, false, []Piece{{0x9000, 1}}}, {mm, 1, true, false, []Piece{{mm, 1}}}}},
		{name: "pushq (%rbx): operand then stack", st: long64State, code: []byte{0xff, 0x33},
			regs: regs{rbx: mm, rsp: 0x8000},
			want: []want{{mm, 8, true, false, []Piece{{mm, 8}}}, {0x7FF8, 8, false, true, []Piece{{0x7FF8, 8}}}}},
		{name: "popl 4(%esp): stack then operand at the new ESP", st: prot32State, code: []byte{0x8f, 0x44, 0x24, 0x04},
			regs: regs{rsp: 0x8000},
			want: []want{{0x8000, 4, true, false, []Piece{{0x8000, 4}}}, {0x8008, 4, false, true, []Piece{{0x8008, 4}}}}},
		{name: "pushf writes the stack", st: long64State, code: []byte{0x9c},
			regs: regs{rsp: 0x8000}, want: []want{{0x7FF8, 8, false, true, []Piece{{0x7FF8, 8}}}}},
		{name: "call rel32 pushes the return address", st: prot32State, code: []byte{0xe8, 0, 0, 0, 0},
			regs: regs{rsp: 0x8000}, want: []want{{0x7FFC, 4, false, true, []Piece{{0x7FFC, 4}}}}},
		{name: "ret reads the return address", st: long64State, code: []byte{0xc3},
			regs: regs{rsp: 0x8000}, want: []want{{0x8000, 8, true, false, []Piece{{0x8000, 8}}}}},
		{name: "leave pops rbp from where rbp points", st: long64State, code: []byte{0xc9},
			regs: regs{rsp: 0x7000, rbp: 0x8000}, want: []want{{0x8000, 8, true, false, []Piece{{0x8000, 8}}}}},
		{name: "lret reads offset then selector", st: prot32State, code: []byte{0xcb},
			regs: regs{rsp: 0x8000}, want: []want{{0x8000, 4, true, false, []Piece{{0x8000, 4}}}, {0x8004, 4, true, false, []Piece{{0x8004, 4}}}}},
		{name: "lret in 64-bit mode pops 4-byte halves", st: long64State, code: []byte{0xcb},
			regs: regs{rsp: 0x8000}, want: []want{{0x8000, 4, true, false, []Piece{{0x8000, 4}}}, {0x8004, 4, true, false, []Piece{{0x8004, 4}}}}},
		{name: "pop %ds with a 32-bit operand reads the selector's two bytes", st: prot32State, code: []byte{0x1f},
			regs: regs{rsp: 0x8000}, want: []want{{0x8000, 2, true, false, []Piece{{0x8000, 2}}}}},
		{name: "push %es with a 32-bit operand writes two bytes at the slot's bottom", st: prot32State, code: []byte{0x06},
			regs: regs{rsp: 0x8000}, want: []want{{0x7FFC, 2, false, true, []Piece{{0x7FFC, 2}}}}},
		{name: "xlat reads DS:[rBX + AL]", st: prot32State, code: []byte{0xd7},
			regs: regs{rbx: mmioBase, rax: 0x1234}, want: []want{{mmioBase + 0x34, 1, true, false, []Piece{{mmioBase + 0x34, 1}}}}},
		{name: "insb writes ES:rDI", st: long64State, code: []byte{0x6c},
			regs: regs{rdi: mm}, want: []want{{mm, 1, false, true, []Piece{{mm, 1}}}}},
		{name: "btsl %eax, (%rbx) addresses the bit string", st: long64State, code: []byte{0x0f, 0xab, 0x03},
			regs: regs{rax: 100, rbx: mm}, want: []want{{mm + 12, 4, true, true, []Piece{{mm + 12, 4}}}}},
		{name: "real: segment base applies", st: func() *State { return realState(0x100) }, code: []byte{0x89, 0x07},
			regs: regs{rbx: 0x20}, want: []want{{0x1020, 2, false, true, []Piece{{0x1020, 2}}}}},
		{name: "no memory operand", st: long64State, code: []byte{0x90}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.st()
			m := newTestMem()
			s.RIP = defaultRIP(s)
			for r, v := range tc.regs {
				s.GPR[r] = v
			}
			if tc.setup != nil {
				tc.setup(s, m)
			}
			la := s.Seg[x86.CS].Base + s.RIP
			if p, ok := m.pages[la>>12]; ok {
				la = p.gpa | la&0xFFF
			}
			m.put(la, tc.code)
			before := *s
			e := &Emulator{Mem: m}
			inst := decodeAt(t, e, s)
			var acc MemRefs
			if err := e.Resolve(s, inst, &acc); err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if *s != before || len(m.log) != 0 {
				t.Errorf("Resolve changed state or touched the device: %+v", m.log)
			}
			for _, r := range m.trans {
				if r.In.Commit {
					t.Errorf("Resolve committed a walk of %#x", r.LA)
				}
			}
			if acc.N != len(tc.want) {
				t.Fatalf("%d accesses, want %d: %+v", acc.N, len(tc.want), acc)
			}
			for i, w := range tc.want {
				a := &acc.A[i]
				if a.Linear != w.linear || a.Size != w.size || a.Read != w.read || a.Write != w.write || int(a.N) != len(w.pieces) {
					t.Errorf("access %d = %v, want %+v", i, a, w)
					continue
				}
				for j, p := range w.pieces {
					if a.Pieces[j] != p {
						t.Errorf("access %d piece %d = %+v, want %+v", i, j, a.Pieces[j], p)
					}
					if !a.Contains(p.GPA, int(p.Size)) || a.Contains(p.GPA, int(p.Size)+1) {
						t.Errorf("Contains wrong for piece %+v", p)
					}
				}
			}
		})
	}
}

// TestRewind resolves a write exit the way the MMIO path must: the string
// instruction and PUSH already ran, so their registers are rewound first.
func TestRewind(t *testing.T) {
	tests := []struct {
		name string
		code []byte
		regs regs
		df   bool
		lost x86.Reg // a register Rewind cannot restore (0: none)
	}{
		{"stosl", []byte{0xab}, regs{rdi: mm}, false, 0},
		{"rep stosw DF", []byte{0x66, 0xf3, 0xab}, regs{rdi: mm + 8, rcx: 3}, true, 0},
		{"movsb", []byte{0xa4}, regs{rsi: 0x9000, rdi: mm}, false, 0},
		{"pushq (%rbx)", []byte{0xff, 0x33}, regs{rbx: 0x9000, rsp: mm + 0x40}, false, 0},
		// ENTER's old rBP is in the memory it pushed, not in a register.
		{"enter $0x1238,$0", []byte{0xc8, 0x38, 0x12, 0x00}, regs{rsp: mm + 0x40, rbp: 0x1122}, false, x86.RBP},
		{"enter $0x10,$1", []byte{0xc8, 0x10, 0x00, 0x01}, regs{rsp: mm + 0x40, rbp: 0x1122}, false, x86.RBP},
		{"enterw $0x8,$0", []byte{0x66, 0xc8, 0x08, 0x00, 0x00}, regs{rsp: mm + 0x40, rbp: 0x1122}, false, x86.RBP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := long64State()
			m := newTestMem()
			s.RIP = 0x2000
			if tc.df {
				s.RFLAGS |= x86.FlagDF
			}
			for r, v := range tc.regs {
				s.GPR[r] = v
			}
			m.put(0x2000, tc.code)
			e := &Emulator{Mem: m, MaxRep: 1}
			var want MemRefs
			inst := decodeAt(t, e, s)
			if err := e.Resolve(s, inst, &want); err != nil {
				t.Fatal(err)
			}
			before := *s
			if _, err := e.Step(s); err != nil {
				t.Fatal(err)
			}
			after := *s
			after.RIP = before.RIP
			Rewind(&after, inst)
			if tc.lost != 0 {
				after.GPR[tc.lost] = before.GPR[tc.lost]
			}
			if after.GPR != before.GPR {
				t.Errorf("rewound registers %x, want %x", after.GPR, before.GPR)
			}
			var got MemRefs
			if err := e.Resolve(&after, inst, &got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("after Rewind %+v, want %+v", got, want)
			}
		})
	}
}

func TestNotEmulatedError(t *testing.T) {
	s := long64State()
	m := newTestMem()
	s.RIP = 0x2000
	m.put(0x2000, []byte{0x0f, 0xa2}) // cpuid
	_, err := (&Emulator{Mem: m}).Step(s)
	ne, ok := err.(*NotEmulatedError)
	if !ok || ne.Op != decode.CPUID || !bytes.Equal(ne.Bytes[:ne.Len], []byte{0x0f, 0xa2}) {
		t.Fatalf("got %v", err)
	}
	if got := Disasm(ne.Bytes[:ne.Len], decode.Mode64, 0x2000); got != "cpuid" {
		t.Errorf("Disasm = %q", got)
	}
}

// Disasm uses x86asm's AT&T text, the decoder's own rendering for encodings
// x86asm rejects (the blank shift-group /6 that CPUs execute as SAL), and
// says why for bytes neither decodes.
func TestDisasm(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want string
	}{
		{[]byte{0x48, 0xf7, 0x23}, "mulq (%rbx)"},
		{[]byte{0xc0, 0xf0, 0x01}, ""}, // filled in below from the decoder
		{[]byte{0x0f}, "(bad: decode: instruction truncated)"},
	} {
		want := c.want
		if want == "" {
			var in decode.Inst
			if err := decode.Decode(c.b, decode.Mode64, &in); err != nil {
				t.Fatal(err)
			}
			want = in.String()
		}
		if got := Disasm(c.b, decode.Mode64, 0); got != want || strings.HasPrefix(got, "(bad)") {
			t.Errorf("Disasm(% x) = %q, want %q", c.b, got, want)
		}
	}
}
