package emulate

import (
	"testing"

	"walkvm/emulate/decode"
	"walkvm/x86"
)

// BenchmarkFetchResolve measures what the MMIO path does on every exit:
// fetch and decode the instruction at CS:RIP and resolve its memory operand
// to guest-physical pieces, for a typical MMIO MOV in each code size.
func BenchmarkFetchResolve(b *testing.B) {
	cases := []struct {
		name string
		st   func() *State
		code []byte
		regs regs
	}{
		// movw %ax, 2(%bx,%si) in real mode (device window at A0000)
		{"16", realDataA000, []byte{0x89, 0x40, 0x02}, regs{rbx: 0x100, rsi: 0x10}},
		// movl %eax, 0x10(%ebx,%ecx,4)
		{"32", prot32State, []byte{0x89, 0x44, 0x8b, 0x10}, regs{rbx: mmioBase, rcx: 3}},
		// movl 0x10(%rbx), %eax
		{"64", long64State, []byte{0x8b, 0x43, 0x10}, regs{rbx: mm}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := c.st()
			m := newTestMem()
			m.noLog = true
			s.RIP = defaultRIP(s)
			for r, v := range c.regs {
				s.GPR[r] = v
			}
			m.put((s.Seg[x86.CS].Base+s.RIP)&0xFFFFFFFF, c.code)
			e := &Emulator{Mem: m}
			var acc MemRefs
			b.ReportAllocs()
			for b.Loop() {
				inst, err := e.Fetch(s)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.Resolve(s, inst, &acc); err != nil || acc.N != 1 {
					b.Fatal(err, acc.N)
				}
			}
		})
	}
}

// BenchmarkStep executes an MMIO store (decode, resolve, device write).
func BenchmarkStep(b *testing.B) {
	s := long64State()
	m := newTestMem()
	m.noLog = true
	s.RIP = 0x2000
	s.GPR[rbx] = mm
	m.put(0x2000, []byte{0x89, 0x43, 0x10}) // movl %eax, 0x10(%rbx)
	e := &Emulator{Mem: m}
	b.ReportAllocs()
	for b.Loop() {
		s.RIP = 0x2000
		if _, err := e.Step(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolve is the resolve step alone (the instruction decoded
// once): segmentation, checks and translation of one operand.
func BenchmarkResolve(b *testing.B) {
	s := long64State()
	m := newTestMem()
	m.noLog = true
	s.RIP = 0x2000
	s.GPR[rbx] = mm
	m.put(0x2000, []byte{0x8b, 0x43, 0x10}) // movl 0x10(%rbx), %eax
	e := &Emulator{Mem: m}
	inst, err := e.Fetch(s)
	if err != nil {
		b.Fatal(err)
	}
	var acc MemRefs
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Resolve(s, inst, &acc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeResolve is the target measure: decode a typical
// MMIO MOV from its bytes and resolve its operand to guest-physical pieces
// (one translation through the test memory), in each code size.
func BenchmarkDecodeResolve(b *testing.B) {
	cases := []struct {
		name string
		st   func() *State
		code []byte
		regs regs
	}{
		{"16", realDataA000, []byte{0x89, 0x40, 0x02}, regs{rbx: 0x100, rsi: 0x10}},
		{"32", prot32State, []byte{0x89, 0x44, 0x8b, 0x10}, regs{rbx: mmioBase, rcx: 3}},
		{"64", long64State, []byte{0x8b, 0x43, 0x10}, regs{rbx: mm}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := c.st()
			m := newTestMem()
			m.noLog = true
			for r, v := range c.regs {
				s.GPR[r] = v
			}
			e := &Emulator{Mem: m}
			var inst decode.Inst
			var acc MemRefs
			mode := s.DecodeMode()
			b.ReportAllocs()
			for b.Loop() {
				if err := decode.Decode(c.code, mode, &inst); err != nil {
					b.Fatal(err)
				}
				if err := e.Resolve(s, &inst, &acc); err != nil || acc.N != 1 {
					b.Fatal(err, acc.N)
				}
			}
		})
	}
}

// BenchmarkStepHostFPU executes an x87 and an SSE arithmetic instruction
// with an MMIO operand, which run on the host's floating-point unit.
func BenchmarkStepHostFPU(b *testing.B) {
	for _, c := range []struct {
		name string
		code []byte
	}{
		{"fadds", []byte{0xd8, 0x03}},       // fadds (%rbx)
		{"addps", []byte{0x0f, 0x58, 0x03}}, // addps (%rbx), %xmm0
	} {
		b.Run(c.name, func(b *testing.B) {
			s := long64State()
			m := newTestMem()
			m.noLog = true
			s.RIP = 0x2000
			s.GPR[rbx] = mm
			m.put(0x2000, c.code)
			withVec(s)
			e := &Emulator{Mem: m}
			if _, err := e.Step(s); err != nil { // maps the executable page
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.RIP = 0x2000
				if _, err := e.Step(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
