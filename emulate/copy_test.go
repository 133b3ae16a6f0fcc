package emulate

import (
	"bytes"
	"errors"
	"testing"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

func decodeBytes(t testing.TB, s *State, code []byte) *decode.Inst {
	t.Helper()
	inst := &decode.Inst{}
	if err := decode.Decode(code, s.DecodeMode(), inst); err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestExecuteOnCopy runs instructions on a copy: the device's data comes
// from the exit, writes are recorded, the input state and memory do not
// change and no walk commits accessed or dirty flags.
func TestExecuteOnCopy(t *testing.T) {
	type write struct {
		gpa  uint64
		data []byte
	}
	cases := []struct {
		name    string
		code    []byte
		regs    regs
		flags   uint64
		mmio    []MMIOData
		ram     []memb
		want    regs
		wantFl  uint64 // status flags, noFlag to skip
		writes  []write
		wantExc int
	}{
		{name: "movl 0x10(%rbx), %eax", code: []byte{0x8b, 0x43, 0x10}, regs: regs{rax: ^uint64(0), rbx: mm},
			mmio: []MMIOData{{mm + 0x10, le32(0x11223344)}}, want: regs{rax: 0x11223344}, wantFl: noFlag},
		{name: "addl %eax, (%rbx)", code: []byte{0x01, 0x03}, regs: regs{rax: 2, rbx: mm},
			mmio: []MMIOData{{mm, le32(0xFFFFFFFF)}}, want: regs{rax: 2}, wantFl: cF | aF,
			writes: []write{{mm, le32(1)}}},
		{name: "rep movsb from MMIO into RAM", code: []byte{0xf3, 0xa4}, regs: regs{rsi: mm, rdi: 0x9000, rcx: 3},
			mmio: []MMIOData{{mm, []byte{7, 8, 9}}}, want: regs{rsi: mm + 3, rdi: 0x9003, rcx: 0}, wantFl: noFlag,
			writes: []write{{0x9000, []byte{7}}, {0x9001, []byte{8}}, {0x9002, []byte{9}}}},
		{name: "pushq (%rbx) from MMIO", code: []byte{0xff, 0x33}, regs: regs{rbx: mm, rsp: 0x8000},
			mmio: []MMIOData{{mm, le64b(0x0102030405060708)}}, want: regs{rsp: 0x7FF8}, wantFl: noFlag,
			writes: []write{{0x7FF8, le64b(0x0102030405060708)}}},
		{name: "xaddl %ecx, (%rbx)", code: []byte{0x0f, 0xc1, 0x0b}, regs: regs{rcx: 5, rbx: mm},
			mmio: []MMIOData{{mm, le32(10)}}, want: regs{rcx: 10}, wantFl: pF,
			writes: []write{{mm, le32(15)}}},
		{name: "divl (%rbx) by zero is #DE", code: []byte{0xf7, 0x33}, regs: regs{rax: 9, rbx: mm},
			mmio: []MMIOData{{mm, le32(0)}}, want: regs{rax: 9}, wantExc: x86.VectorDE + 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := long64State()
			m := newTestMem()
			s.RIP = 0x2000
			for r, v := range c.regs {
				s.GPR[r] = v
			}
			s.RFLAGS |= c.flags
			ramBefore := append([]byte(nil), m.ram...)
			before := *s
			inst := decodeBytes(t, s, c.code)
			e := &Emulator{Mem: m}
			var fx Effects
			err := e.ExecuteOnCopy(s, inst, c.mmio, &fx)
			if *s != before {
				t.Fatal("the input state changed")
			}
			if !bytes.Equal(m.ram, ramBefore) || len(m.log) != 0 {
				t.Fatalf("memory changed or a device was accessed: %+v", m.log)
			}
			for _, tr := range m.trans {
				if tr.In.Commit {
					t.Fatalf("a walk at %#x commits accessed/dirty flags", tr.LA)
				}
			}
			if c.wantExc != 0 {
				var x *x86.Exception
				if !errors.As(err, &x) || int(x.Vector)+1 != c.wantExc {
					t.Fatalf("got %v, want vector %d", err, c.wantExc-1)
				}
				if fx.State.GPR != before.GPR || fx.State.RIP != before.RIP {
					t.Fatal("a faulting copy changed registers")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for r, v := range c.want {
				if fx.State.GPR[r] != v {
					t.Errorf("%v = %#x, want %#x", r, fx.State.GPR[r], v)
				}
			}
			if fx.State.RIP != 0x2000+uint64(len(c.code)) {
				t.Errorf("rip %#x", fx.State.RIP)
			}
			if c.wantFl != noFlag && fx.State.RFLAGS&arith != c.wantFl {
				t.Errorf("flags %#x, want %#x", fx.State.RFLAGS&arith, c.wantFl)
			}
			if len(fx.Writes) != len(c.writes) {
				t.Fatalf("%d writes, want %d", len(fx.Writes), len(c.writes))
			}
			for i, w := range c.writes {
				if fx.Writes[i].GPA != w.gpa || !bytes.Equal(fx.WriteData(i), w.data) {
					t.Errorf("write %d: %#x % x, want %#x % x", i, fx.Writes[i].GPA, fx.WriteData(i), w.gpa, w.data)
				}
			}
		})
	}
}

// TestExecuteOnCopyUndefined: the Result carries the instruction's
// undefined flags.
func TestExecuteOnCopyUndefined(t *testing.T) {
	s := long64State()
	m := newTestMem()
	s.RIP = 0x2000
	s.GPR[rbx] = mm
	var fx Effects
	e := &Emulator{Mem: m}
	if err := e.ExecuteOnCopy(s, decodeBytes(t, s, []byte{0xf7, 0x23}), []MMIOData{{mm, le32(3)}}, &fx); err != nil { // mull (%rbx)
		t.Fatal(err)
	}
	if fx.Result.Undefined != undefMul {
		t.Errorf("undefined %#x, want %#x", fx.Result.Undefined, uint64(undefMul))
	}
}

func TestExecuteOnCopyAllocs(t *testing.T) {
	s := long64State()
	m := newTestMem()
	m.noLog = true
	s.RIP = 0x2000
	s.GPR[rbx] = mm
	inst := decodeBytes(t, s, []byte{0x01, 0x03}) // addl %eax, (%rbx)
	e := &Emulator{Mem: m}
	fx := &Effects{}
	mmio := []MMIOData{{mm, le32(1)}}
	if n := testing.AllocsPerRun(100, func() {
		if err := e.ExecuteOnCopy(s, inst, mmio, fx); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per ExecuteOnCopy", n)
	}
}

// BenchmarkExecuteOnCopy is `-verify exec`'s cost for an MMIO
// read-modify-write.
func BenchmarkExecuteOnCopy(b *testing.B) {
	s := long64State()
	m := newTestMem()
	m.noLog = true
	s.RIP = 0x2000
	s.GPR[rbx] = mm
	inst := decodeBytes(b, s, []byte{0x01, 0x03}) // addl %eax, (%rbx)
	e := &Emulator{Mem: m}
	fx := &Effects{}
	mmio := []MMIOData{{mm, le32(1)}}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ExecuteOnCopy(s, inst, mmio, fx); err != nil {
			b.Fatal(err)
		}
	}
}
