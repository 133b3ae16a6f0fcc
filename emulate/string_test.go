package emulate

import (
	"testing"

	"walkvm/x86"
)

func TestString(t *testing.T) {
	runCases(t, []execCase{
		{name: "movsb", st: long64State, code: []byte{0xa4},
			regs: regs{rsi: mm, rdi: 0x9000}, init: []memb{{mm, []byte{0x42}}},
			wantRegs: regs{rsi: mm + 1, rdi: 0x9001}, wantMem: []memb{{0x9000, []byte{0x42}}}, wantFlags: 0},
		{name: "movsb with DF", st: long64State, code: []byte{0xa4}, flags: x86.FlagDF,
			regs: regs{rsi: mm, rdi: 0x9000}, init: []memb{{mm, []byte{0x42}}},
			wantRegs: regs{rsi: mm - 1, rdi: 0x8FFF}, wantMem: []memb{{0x9000, []byte{0x42}}}, wantFlags: 0},
		{name: "rep movsl into MMIO", st: long64State, code: []byte{0xf3, 0xa5},
			regs: regs{rsi: 0x9000, rdi: mm, rcx: 3}, init: []memb{{0x9000, []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0}}},
			wantRegs: regs{rsi: 0x900C, rdi: mm + 12, rcx: 0},
			wantIO:   []ioRec{wr(mm, le32(1)), wr(mm+4, le32(2)), wr(mm+8, le32(3))}, wantFlags: 0},
		{name: "rep movsq with rcx=0 does nothing", st: long64State, code: []byte{0xf3, 0x48, 0xa5},
			regs: regs{rsi: 0x9000, rdi: mm, rcx: 0}, wantRegs: regs{rsi: 0x9000, rdi: mm}, wantIO: []ioRec{}, wantFlags: 0},
		{name: "rep stosw with DF", st: long64State, code: []byte{0x66, 0xf3, 0xab}, flags: x86.FlagDF,
			regs:     regs{rax: 0xABCD, rdi: mm + 4, rcx: 3},
			wantRegs: regs{rdi: mm - 2, rcx: 0},
			wantIO:   []ioRec{wr(mm+4, le16(0xABCD)), wr(mm+2, le16(0xABCD)), wr(mm, le16(0xABCD))}, wantFlags: 0},
		{name: "lodsb", st: long64State, code: []byte{0xac},
			regs: regs{rax: 0x1100, rsi: mm}, init: []memb{{mm, []byte{0x22}}},
			wantRegs: regs{rax: 0x1122, rsi: mm + 1}, wantFlags: 0},
		{name: "repe cmpsb stops at the first difference", st: long64State, code: []byte{0xf3, 0xa6},
			regs:     regs{rsi: 0x9000, rdi: 0xA000, rcx: 10},
			init:     []memb{{0x9000, []byte("abcX")}, {0xA000, []byte("abcY")}},
			wantRegs: regs{rsi: 0x9004, rdi: 0xA004, rcx: 6}, wantFlags: cF | sF | aF | pF},
		{name: "repne scasb finds the byte", st: long64State, code: []byte{0xf2, 0xae},
			regs: regs{rax: 'c', rdi: mm, rcx: 100}, init: []memb{{mm, []byte("abcd")}},
			wantRegs: regs{rdi: mm + 3, rcx: 97}, wantFlags: zF | pF},
		{name: "rep lodsb reads every element", st: long64State, code: []byte{0xf3, 0xac},
			regs: regs{rsi: mm, rcx: 3}, init: []memb{{mm, []byte{1, 2, 3}}},
			wantRegs: regs{rax: 3, rsi: mm + 3, rcx: 0},
			wantIO:   []ioRec{rd(mm, []byte{1}), rd(mm+1, []byte{2}), rd(mm+2, []byte{3})}, wantFlags: 0},
		{name: "repne movsb acts as rep", st: long64State, code: []byte{0xf2, 0xa4}, flags: zF,
			regs: regs{rsi: 0x9000, rdi: mm, rcx: 2}, init: []memb{{0x9000, []byte{5, 6}}},
			wantRegs: regs{rcx: 0}, wantIO: []ioRec{wr(mm, []byte{5}), wr(mm+1, []byte{6})}, wantFlags: zF},
		{name: "repe scasw stops at the first mismatch", st: long64State, code: []byte{0x66, 0xf3, 0xaf},
			regs: regs{rax: 0x1111, rdi: mm, rcx: 5}, init: []memb{{mm, []byte{0x11, 0x11, 0x11, 0x11, 0x12, 0x11}}},
			wantRegs: regs{rdi: mm + 6, rcx: 2}, wantFlags: cF | aF | sF | pF},
		{name: "repne cmpsl runs out of count", st: long64State, code: []byte{0xf2, 0xa7},
			regs:     regs{rsi: 0x9000, rdi: 0xA000, rcx: 2},
			init:     []memb{{0x9000, []byte{1, 0, 0, 0, 2, 0, 0, 0}}, {0xA000, []byte{3, 0, 0, 0, 4, 0, 0, 0}}},
			wantRegs: regs{rsi: 0x9008, rdi: 0xA008, rcx: 0}, wantFlags: cF | aF | sF},
		{name: "addr32 rep stosb uses ECX and EDI", st: long64State, code: []byte{0x67, 0xf3, 0xaa},
			regs:     regs{rax: 7, rdi: 0xFFFFFFFF_00000000 | mm, rcx: 0xFFFFFFFF_00000002},
			wantRegs: regs{rdi: mm + 2, rcx: 0}, wantIO: []ioRec{wr(mm, []byte{7}), wr(mm+1, []byte{7})}, wantFlags: 0},
		{name: "real: rep movsb wraps SI and DI at 64K", st: func() *State { return realState(0x100) }, code: []byte{0xf3, 0xa4},
			regs:     regs{rsi: 0xABCD_FFFF, rdi: 0xFFFE, rcx: 0x10003},
			setup:    func(s *State, m *testMem) { s.Seg[x86.ES].Base = mmioLow },
			init:     []memb{{0x1000 + 0xFFFF, []byte{9}}, {0x1000, []byte{8, 7}}},
			wantRegs: regs{rsi: 0xABCD_0002, rdi: 0x0001, rcx: 0x10000},
			wantIO:   []ioRec{wr(mmioLow+0xFFFE, []byte{9}), wr(mmioLow+0xFFFF, []byte{8}), wr(mmioLow, []byte{7})}, wantFlags: 0},
		{name: "prot32: rep movsl 16-bit address size via 67", st: prot32State, code: []byte{0x67, 0xf3, 0xa5},
			regs: regs{rsi: 0x10, rdi: 0x20, rcx: 0xFFFF0001}, init: []memb{{0x10, le32(0x55)}},
			wantRegs: regs{rsi: 0x14, rdi: 0x24, rcx: 0xFFFF0000}, wantMem: []memb{{0x20, le32(0x55)}}, wantFlags: 0},
		{name: "rep stosb stopped by MaxRep leaves RIP", st: long64State, code: []byte{0xf3, 0xaa},
			regs:     regs{rax: 1, rdi: 0x9000, rcx: DefaultMaxRep + 5},
			wantRegs: regs{rdi: 0x9000 + DefaultMaxRep, rcx: 5}, wantRIP: ptr(0x2000), wantFlags: 0},
		{name: "rep movsb faults mid-way with progress kept", st: long64State, code: []byte{0xf3, 0xa4},
			regs: regs{rsi: 0x9000, rdi: 0x7FFE, rcx: 4},
			setup: func(s *State, m *testMem) {
				m.mapPage(0x2000, 0x2000, false)
				m.mapPage(0x9000, 0x9000, false)
				m.mapPage(0x7000, 0x7000, true)
			},
			wantExc: x86.VectorPF + 1, wantCode: x86.PFErrWrite,
			wantRegs: regs{rsi: 0x9002, rdi: 0x8000, rcx: 2}},
	})
}
