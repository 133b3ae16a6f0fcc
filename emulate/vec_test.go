package emulate

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"walkvm/x86"
)

var seq32 = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(0xA0 + i)
	}
	return b
}()

// vecCase wraps a case with a vector state whose XMMn/YMMHn are filled with
// 0x10*n+i, checks the state with check and that it is marked dirty when
// dirty is set.
func vecCase(tc execCase, dirty bool, check func(t *testing.T, f *FPUState)) execCase {
	setup := tc.setup
	tc.setup = func(s *State, m *testMem) {
		src := withVec(s)
		for r := range src.f.XMM {
			for i := range 16 {
				src.f.XMM[r][i] = byte(0x10*r + i)
				src.f.YMMH[r][i] = byte(0x10*r + i + 0x80)
			}
		}
		if setup != nil {
			setup(s, m)
		}
	}
	tc.check = func(t *testing.T, s *State, m *testMem) {
		if s.Vec.Dirty() != dirty {
			t.Errorf("vector state dirty = %v, want %v", s.Vec.Dirty(), dirty)
		}
		if check != nil {
			f, err := s.Vec.State()
			if err != nil {
				t.Fatal(err)
			}
			check(t, f)
		}
	}
	if tc.wantFlags == 0 {
		tc.wantFlags = noFlag
	}
	return tc
}

func xmmWant(t *testing.T, f *FPUState, r int, lo, hi []byte) {
	t.Helper()
	if !bytes.Equal(f.XMM[r][:], lo) {
		t.Errorf("xmm%d = % x, want % x", r, f.XMM[r][:], lo)
	}
	if hi != nil && !bytes.Equal(f.YMMH[r][:], hi) {
		t.Errorf("ymmh%d = % x, want % x", r, f.YMMH[r][:], hi)
	}
}

func orig(r, off int) []byte {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(0x10*r + i + off)
	}
	return b
}

func TestVectorMoves(t *testing.T) {
	zero12 := make([]byte, 12)
	runCases(t, []execCase{
		vecCase(execCase{name: "movd %xmm1, (%rbx)", st: long64State, code: []byte{0x66, 0x0f, 0x7e, 0x0b},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, []byte{0x10, 0x11, 0x12, 0x13})}}, false, nil),
		vecCase(execCase{name: "movd (%rbx), %xmm1 zeroes the rest", st: long64State, code: []byte{0x66, 0x0f, 0x6e, 0x0b},
			regs: regs{rbx: mm}, init: []memb{{mm, seq32[:4]}}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 1, append(append([]byte{}, seq32[:4]...), zero12...), orig(1, 0x80))
		}),
		vecCase(execCase{name: "movq (%rbx), %xmm1", st: long64State, code: []byte{0xf3, 0x0f, 0x7e, 0x0b},
			regs: regs{rbx: mm}, init: []memb{{mm, seq32[:8]}}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 1, append(append([]byte{}, seq32[:8]...), make([]byte, 8)...), nil)
		}),
		vecCase(execCase{name: "movq %xmm1, (%rbx)", st: long64State, code: []byte{0x66, 0x0f, 0xd6, 0x0b},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, orig(1, 0)[:8])}}, false, nil),
		vecCase(execCase{name: "movq %rax, %xmm1", st: long64State, code: []byte{0x66, 0x48, 0x0f, 0x6e, 0xc8},
			regs: regs{rax: 0x0807060504030201}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 1, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0}, nil)
		}),
		vecCase(execCase{name: "movd %xmm1, %eax zero-extends", st: long64State, code: []byte{0x66, 0x0f, 0x7e, 0xc8},
			regs: regs{rax: ^uint64(0)}, wantRegs: regs{rax: 0x13121110}}, false, nil),
		vecCase(execCase{name: "movdqu (%rbx), %xmm2 unaligned", st: long64State, code: []byte{0xf3, 0x0f, 0x6f, 0x13},
			regs: regs{rbx: mm + 3}, init: []memb{{mm + 3, seq32[:16]}}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 2, seq32[:16], orig(2, 0x80))
		}),
		vecCase(execCase{name: "movdqu %xmm2, (%rbx)", st: long64State, code: []byte{0xf3, 0x0f, 0x7f, 0x13},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, orig(2, 0))}}, false, nil),
		vecCase(execCase{name: "movdqa (%rbx), %xmm3", st: long64State, code: []byte{0x66, 0x0f, 0x6f, 0x1b},
			regs: regs{rbx: mm}, init: []memb{{mm, seq32[:16]}}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 3, seq32[:16], nil)
		}),
		vecCase(execCase{name: "movdqa %xmm3, (%rbx) misaligned is #GP", st: long64State, code: []byte{0x66, 0x0f, 0x7f, 0x1b},
			regs: regs{rbx: mm + 8}, wantExc: x86.VectorGP + 1, wantIO: []ioRec{}}, false, nil),
		vecCase(execCase{name: "movups %xmm9, (%rbx)", st: long64State, code: []byte{0x44, 0x0f, 0x11, 0x0b},
			regs: regs{rbx: mm + 1}, wantIO: []ioRec{wr(mm+1, orig(9, 0))}}, false, nil),
		vecCase(execCase{name: "movaps (%rbx), %xmm9 misaligned is #GP", st: long64State, code: []byte{0x44, 0x0f, 0x28, 0x0b},
			regs: regs{rbx: mm + 4}, wantExc: x86.VectorGP + 1}, false, nil),
		vecCase(execCase{name: "movss (%rbx), %xmm1", st: long64State, code: []byte{0xf3, 0x0f, 0x10, 0x0b},
			regs: regs{rbx: mm}, init: []memb{{mm, seq32[:4]}}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 1, append(append([]byte{}, seq32[:4]...), zero12...), nil)
		}),
		vecCase(execCase{name: "movsd %xmm1, (%rbx)", st: long64State, code: []byte{0xf2, 0x0f, 0x11, 0x0b},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, orig(1, 0)[:8])}}, false, nil),
		vecCase(execCase{name: "vmovdqu (%rbx), %xmm4 zeroes YMM upper", st: long64State, code: []byte{0xc5, 0xfa, 0x6f, 0x23},
			regs: regs{rbx: mm}, init: []memb{{mm, seq32[:16]}}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 4, seq32[:16], make([]byte, 16))
		}),
		vecCase(execCase{name: "vmovdqu (%rbx), %ymm4", st: long64State, code: []byte{0xc5, 0xfe, 0x6f, 0x23},
			regs: regs{rbx: mm}, init: []memb{{mm, seq32}}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 4, seq32[:16], seq32[16:])
		}),
		vecCase(execCase{name: "vmovdqu %ymm5, (%rbx)", st: long64State, code: []byte{0xc5, 0xfe, 0x7f, 0x2b},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, append(orig(5, 0), orig(5, 0x80)...))}}, false, nil),
		vecCase(execCase{name: "vmovdqa (%rbx), %ymm6 needs 32-byte alignment", st: long64State, code: []byte{0xc5, 0xfd, 0x6f, 0x33},
			regs: regs{rbx: mm + 16}, wantExc: x86.VectorGP + 1}, false, nil),
		vecCase(execCase{name: "vmovdqa %xmm6, (%rbx)", st: long64State, code: []byte{0xc5, 0xf9, 0x7f, 0x33},
			regs: regs{rbx: mm + 16}, wantIO: []ioRec{wr(mm+16, orig(6, 0))}}, false, nil),
		vecCase(execCase{name: "vmovd (%rbx), %xmm1 zeroes up to bit 255", st: long64State, code: []byte{0xc5, 0xf9, 0x6e, 0x0b},
			regs: regs{rbx: mm}, init: []memb{{mm, seq32[:4]}}}, true, func(t *testing.T, f *FPUState) {
			xmmWant(t, f, 1, append(append([]byte{}, seq32[:4]...), zero12...), make([]byte, 16))
		}),
		vecCase(execCase{name: "vmovq %xmm2, (%rbx)", st: long64State, code: []byte{0xc5, 0xf9, 0xd6, 0x13},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, orig(2, 0)[:8])}}, false, nil),
		vecCase(execCase{name: "vmovdqu without XCR0.AVX is #UD", st: long64State, code: []byte{0xc5, 0xfa, 0x6f, 0x23},
			regs: regs{rbx: mm}, setup: func(s *State, m *testMem) { s.XCR0 = 3 }, wantExc: x86.VectorUD + 1}, false, nil),
		vecCase(execCase{name: "movdqu with CR0.TS is #NM", st: long64State, code: []byte{0xf3, 0x0f, 0x6f, 0x13},
			regs: regs{rbx: mm}, setup: func(s *State, m *testMem) { s.CR0 |= x86.CR0TS }, wantExc: x86.VectorNM + 1}, false, nil),
		vecCase(execCase{name: "movdqu without CR4.OSFXSR is #UD", st: long64State, code: []byte{0xf3, 0x0f, 0x6f, 0x13},
			regs: regs{rbx: mm}, setup: func(s *State, m *testMem) { s.CR4 &^= x86.CR4OSFXSR }, wantExc: x86.VectorUD + 1}, false, nil),
		vecCase(execCase{name: "movq (%rbx), %mm1", st: long64State, code: []byte{0x0f, 0x6f, 0x0b},
			regs: regs{rbx: mm}, init: []memb{{mm, seq32[:8]}}}, true, func(t *testing.T, f *FPUState) {
			want := append(append([]byte{}, seq32[:8]...), 0xFF, 0xFF, 0, 0, 0, 0, 0, 0)
			if !bytes.Equal(f.FPR[1][:], want) || f.FTWX != 0xFF || f.top() != 0 {
				t.Errorf("mm1 = % x tags %#x top %d", f.FPR[1][:], f.FTWX, f.top())
			}
		}),
	})
}

func TestVectorNoState(t *testing.T) {
	runCases(t, []execCase{{name: "movdqu without vector state", st: long64State, code: []byte{0xf3, 0x0f, 0x6f, 0x13},
		regs: regs{rbx: mm}, wantNE: true}})
}

func f32b(v float32) []byte { return binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)) }
func f64b(v float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)) }

// x87Case runs code with ST(0..n-1) loaded with vals (ST(0) first).
func x87Case(tc execCase, fcw uint16, vals []float64, check func(t *testing.T, f *FPUState)) execCase {
	setup := tc.setup
	tc.setup = func(s *State, m *testMem) {
		src := withVec(s)
		src.f.FCW = fcw
		for i := len(vals) - 1; i >= 0; i-- {
			e, _ := Float64ToExt80(math.Float64bits(vals[i]))
			src.f.push(e)
		}
		if setup != nil {
			setup(s, m)
		}
	}
	tc.check = func(t *testing.T, s *State, m *testMem) {
		f, err := s.Vec.State()
		if err != nil {
			t.Fatal(err)
		}
		if check != nil {
			check(t, f)
		}
	}
	tc.wantFlags = noFlag
	return tc
}

func stWant(t *testing.T, f *FPUState, i uint, v float64) {
	t.Helper()
	if f.stEmpty(i) {
		t.Errorf("st(%d) empty, want %v", i, v)
		return
	}
	got, _, _ := Ext80ToFloat64(f.ST(i), RoundNearest)
	if got != math.Float64bits(v) && !(math.IsNaN(v) && got == fmt64.indef) {
		t.Errorf("st(%d) = %v, want %v", i, math.Float64frombits(got), v)
	}
}

func TestX87(t *testing.T) {
	const rcUp = fcwInit | RoundUp<<10
	runCases(t, []execCase{
		x87Case(execCase{name: "flds (%rbx)", st: long64State, code: []byte{0xd9, 0x03},
			regs: regs{rbx: mm}, init: []memb{{mm, f32b(1.5)}}}, fcwInit, []float64{2}, func(t *testing.T, f *FPUState) {
			stWant(t, f, 0, 1.5)
			stWant(t, f, 1, 2)
			if f.top() != 6 || f.FTWX != 0xC0 || f.FSW&FSWC1 != 0 {
				t.Errorf("top %d tags %#x fsw %#x", f.top(), f.FTWX, f.FSW)
			}
			if f.LastOpcode != 0x103 || f.LastIP != 0x2000 || f.LastDP != mm {
				t.Errorf("fop %#x fip %#x fdp %#x", f.LastOpcode, f.LastIP, f.LastDP)
			}
		}),
		x87Case(execCase{name: "fldl (%rbx)", st: long64State, code: []byte{0xdd, 0x03},
			regs: regs{rbx: mm}, init: []memb{{mm, f64b(-3.25)}}}, fcwInit, nil, func(t *testing.T, f *FPUState) {
			stWant(t, f, 0, -3.25)
		}),
		x87Case(execCase{name: "fstps (%rbx) pops", st: long64State, code: []byte{0xd9, 0x1b},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, f32b(0.5))}}, fcwInit, []float64{0.5, 7}, func(t *testing.T, f *FPUState) {
			stWant(t, f, 0, 7)
			if f.top() != 7 || f.FTWX != 0x80 {
				t.Errorf("top %d tags %#x", f.top(), f.FTWX)
			}
		}),
		x87Case(execCase{name: "fsts (%rbx) rounds up with RC=up and sets C1", st: long64State, code: []byte{0xd9, 0x13},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, le32(math.Float32bits(0.1)))}}, rcUp, []float64{0.1}, func(t *testing.T, f *FPUState) {
			if f.FSW&(FSWPE|FSWC1) != FSWPE|FSWC1 {
				t.Errorf("fsw %#x, want PE and C1", f.FSW)
			}
			stWant(t, f, 0, 0.1)
		}),
		x87Case(execCase{name: "fsts (%rbx) truncates with RC=zero", st: long64State, code: []byte{0xd9, 0x13},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, le32(math.Float32bits(0.1)-1))}}, fcwInit|RoundZero<<10, []float64{0.1}, nil),
		x87Case(execCase{name: "fstps (%rbx) overflow to m32 is infinity", st: long64State, code: []byte{0xd9, 0x1b},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, f32b(float32(math.Inf(1))))}}, fcwInit, []float64{1e300}, func(t *testing.T, f *FPUState) {
			if f.FSW&(FSWOE|FSWPE) != FSWOE|FSWPE || f.FSW&FSWES != 0 {
				t.Errorf("fsw %#x", f.FSW)
			}
		}),
		x87Case(execCase{name: "fstpl (%rbx) on an empty stack stores the indefinite", st: long64State, code: []byte{0xdd, 0x1b},
			regs: regs{rbx: mm}, wantIO: []ioRec{wr(mm, le64b(0xFFF8000000000000))}}, fcwInit, nil, func(t *testing.T, f *FPUState) {
			if f.FSW&(FSWIE|FSWSF|FSWC1) != FSWIE|FSWSF || f.top() != 1 {
				t.Errorf("fsw %#x top %d", f.FSW, f.top())
			}
		}),
		x87Case(execCase{name: "fstps with unmasked IE on empty stack stores nothing", st: long64State, code: []byte{0xd9, 0x1b},
			regs: regs{rbx: mm}, wantIO: []ioRec{}}, fcwInit&^1, nil, func(t *testing.T, f *FPUState) {
			if f.FSW&(FSWIE|FSWSF|FSWES|FSWB) != FSWIE|FSWSF|FSWES|FSWB || f.top() != 0 {
				t.Errorf("fsw %#x top %d", f.FSW, f.top())
			}
		}),
		x87Case(execCase{name: "flds on a full stack pushes the indefinite", st: long64State, code: []byte{0xd9, 0x03},
			regs: regs{rbx: mm}, init: []memb{{mm, f32b(1)}}}, fcwInit, []float64{1, 2, 3, 4, 5, 6, 7, 8}, func(t *testing.T, f *FPUState) {
			if f.FSW&(FSWIE|FSWSF|FSWC1) != FSWIE|FSWSF|FSWC1 || f.ST(0) != Ext80Indefinite {
				t.Errorf("fsw %#x st0 %+v", f.FSW, f.ST(0))
			}
			stWant(t, f, 1, 1)
		}),
		x87Case(execCase{name: "pending x87 exception raises #MF", st: long64State, code: []byte{0xd9, 0x03},
			regs: regs{rbx: mm}, setup: func(s *State, m *testMem) {
				f, _ := s.Vec.State()
				f.FSW |= FSWES | FSWIE
			}, wantExc: x86.VectorMF + 1, wantIO: []ioRec{}}, fcwInit&^1, nil, nil),
		x87Case(execCase{name: "flds with CR0.TS is #NM", st: long64State, code: []byte{0xd9, 0x03},
			regs: regs{rbx: mm}, setup: func(s *State, m *testMem) { s.CR0 |= x86.CR0TS }, wantExc: x86.VectorNM + 1}, fcwInit, nil, nil),
		x87Case(execCase{name: "prot32: fldt then fstpt round trip", st: prot32State, code: []byte{0xdb, 0x2b},
			regs: regs{rbx: mm}, init: []memb{{mm, []byte{1, 2, 3, 4, 5, 6, 7, 0x87, 0x01, 0x40}}}}, fcwInit, nil, func(t *testing.T, f *FPUState) {
			if got := f.ST(0).Bytes(); !bytes.Equal(got[:], []byte{1, 2, 3, 4, 5, 6, 7, 0x87, 0x01, 0x40}) {
				t.Errorf("st0 % x", got)
			}
		}),
	})
}
