package ownpath

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"walkvm/devices"
	"walkvm/emulate"
	"walkvm/kvm"
	"walkvm/x86"
)

// completingCPU plays KVM completing an instruction: each Run with
// immediate_exit set makes the next scripted MMIO exit, or, when none is
// left, installs the registers (and vector state) KVM would leave and
// returns EINTR, with an exception queued when the script says so.
type completingCPU struct {
	*fakeCPU
	immediate bool
	exits     []kvm.MMIOExit // the exits completion makes, in order
	run       kvm.MMIOExit   // kvm_run's MMIO area
	after     kvm.Regs       // the registers after the instruction
	event     kvm.VCPUEvents // the exception KVM queued
	xsave     [2]kvm.XSave   // vector state before and after
	completed bool
	runs      int
	// onComplete, when set, runs as KVM finishes the instruction (its
	// writes to RAM).
	onComplete func()
}

func (c *completingCPU) SetImmediateExit(on bool) { c.immediate = on }

func (c *completingCPU) Run() error {
	c.runs++
	if !c.immediate {
		return errors.New("the path entered the guest")
	}
	if len(c.exits) > 0 {
		c.run, c.exits = c.exits[0], c.exits[1:]
		return nil
	}
	c.fakeCPU.regs, c.completed = c.after, true
	if c.onComplete != nil {
		c.onComplete()
	}
	return kvm.ErrInterrupted
}

func (c *completingCPU) ReadExit(e *kvm.Exit) error {
	*e = kvm.Exit{Kind: kvm.KindMMIO, Reason: kvm.ExitMMIO, Seq: e.Seq, MMIO: &c.run}
	return nil
}

func (c *completingCPU) GetVCPUEvents(e *kvm.VCPUEvents) error { *e = c.event; return nil }

func (c *completingCPU) GetXSave(x *kvm.XSave) error {
	if c.completed {
		*x = c.xsave[1]
	} else {
		*x = c.xsave[0]
	}
	return nil
}

// newExecPath is newEntryPath under -verify exec with a completing vCPU.
func newExecPath(t testing.TB, code []byte) (*Path, *completingCPU, *devices.TestWindow) {
	t.Helper()
	p, cpu, w := newEntryPath(t, code, nil)
	cc := &completingCPU{fakeCPU: cpu}
	cfg := p.cfg
	cfg.CPU, cfg.Verify, cfg.Stats = cc, VerifyExec, nil
	return New(cfg), cc, w
}

func TestExecRead(t *testing.T) {
	const flagsArith = x86.FlagCF | x86.FlagPF | x86.FlagAF | x86.FlagZF | x86.FlagSF | x86.FlagOF
	for _, c := range []struct {
		name   string
		code   []byte
		setup  func(c *completingCPU)
		data   uint64 // the window's word at DS:BX = 0xd0000
		after  func(r *kvm.Regs)
		fields []string // nil: agreement
	}{
		{
			name: "mov agrees", code: []byte{0x8b, 0x07}, data: 0x5678,
			after: func(r *kvm.Regs) { r.RAX, r.RIP = 0x5678, 0x1002 },
		},
		{
			name: "mov with KVM's wrong register", code: []byte{0x8b, 0x07}, data: 0x5678,
			after:  func(r *kvm.Regs) { r.RAX, r.RIP = 0x5679, 0x1002 },
			fields: []string{"rax"},
		},
		{
			// and (%bx),%ax: AF is undefined, ZF is not. 0x00f0 & 0x0f00 = 0.
			name: "and differs only in an undefined flag", code: []byte{0x23, 0x07}, data: 0x0f00,
			setup: func(c *completingCPU) { c.regs.RAX = 0xf0 },
			after: func(r *kvm.Regs) {
				r.RAX, r.RIP = 0, 0x1002
				r.RFLAGS = r.RFLAGS&^flagsArith | x86.FlagZF | x86.FlagPF | x86.FlagAF
			},
		},
		{
			name: "and differs in ZF", code: []byte{0x23, 0x07}, data: 0x0f00,
			setup: func(c *completingCPU) { c.regs.RAX = 0xf0 },
			after: func(r *kvm.Regs) {
				r.RAX, r.RIP = 0, 0x1002
				r.RFLAGS = r.RFLAGS&^flagsArith | x86.FlagPF
			},
			fields: []string{"rflags"},
		},
		{
			// addw $1,(%bx): KVM writes the sum back while completing.
			name: "read-modify-write agrees", code: []byte{0x83, 0x07, 0x01}, data: 0x1233,
			setup: func(c *completingCPU) {
				c.exits = []kvm.MMIOExit{{PhysAddr: 0xd0000, Len: 2, IsWrite: 1, Data: [8]byte{0x34, 0x12}}}
			},
			after: func(r *kvm.Regs) { r.RIP, r.RFLAGS = 0x1003, 2 },
		},
		{
			name: "read-modify-write with KVM's wrong sum", code: []byte{0x83, 0x07, 0x01}, data: 0x1233,
			setup: func(c *completingCPU) {
				c.exits = []kvm.MMIOExit{{PhysAddr: 0xd0000, Len: 2, IsWrite: 1, Data: [8]byte{0x35, 0x12}}}
			},
			after:  func(r *kvm.Regs) { r.RIP, r.RFLAGS = 0x1003, 2 },
			fields: []string{"mmio 0xd0000", "kvm write 0xd0000"},
		},
		{
			// rep lodsw, CX = 3: KVM reads the next two elements while
			// completing.
			name: "rep lods over three exits", code: []byte{0xf3, 0xad}, data: 0x1111,
			setup: func(c *completingCPU) {
				c.regs.RCX = 3
				c.exits = []kvm.MMIOExit{{PhysAddr: 0xd0002, Len: 2}, {PhysAddr: 0xd0004, Len: 2}}
			},
			after: func(r *kvm.Regs) { r.RAX, r.RCX, r.RSI, r.RIP = 0x5555, 0, 6, 0x1002 },
		},
		{
			// divw (%bx) by 0: #DE, RIP stays.
			name: "both fault", code: []byte{0xf7, 0x37}, data: 0,
			setup: func(c *completingCPU) { c.event.E.Pending, c.event.E.Nr = 1, x86.VectorDE },
			after: func(r *kvm.Regs) {},
		},
		{
			name: "walkvm faults, KVM does not", code: []byte{0xf7, 0x37}, data: 0,
			after:  func(r *kvm.Regs) {},
			fields: []string{"fault"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, cpu, w := newExecPath(t, c.code)
			cpu.regs.RBX = 0
			if c.setup != nil {
				c.setup(cpu)
			}
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], c.data)
			for i := range uint64(3) {
				if err := w.Write(2*i, []byte{byte(c.data) + 0x22*byte(i), byte(c.data>>8) + 0x22*byte(i)}); err != nil {
					t.Fatal(err)
				}
			}
			cpu.after = cpu.regs
			c.after(&cpu.after)
			err := p.MMIORead(mmioExit(1, 0xd0000, 2, false, 0))
			s := p.Stats()
			if !cpu.completed || cpu.immediate {
				t.Errorf("completed %v, immediate_exit left %v", cpu.completed, cpu.immediate)
			}
			var d *Disagreement
			if c.fields == nil {
				if err != nil {
					t.Fatal(err)
				}
				if s.Results.Checked != 1 || s.Results.Disagreed != 0 || s.MMIO.Agreed != s.MMIO.Reads+s.MMIO.Writes {
					t.Errorf("stats %+v %+v", s.Results, s.MMIO)
				}
				return
			}
			if !errors.As(err, &d) || d.What != "result" || !slices.Equal(d.Fields, c.fields) {
				t.Fatalf("got %v (fields %v), want a result disagreement on %v", err, fieldsOf(d), c.fields)
			}
			if s.Results.Disagreed != 1 || s.MMIO.Disagreed != 1 {
				t.Errorf("stats %+v %+v", s.Results, s.MMIO)
			}
		})
	}
}

func fieldsOf(d *Disagreement) []string {
	if d == nil {
		return nil
	}
	return d.Fields
}

// movups (%bx),%xmm1 (KVM emulates SSE moves): the vector state before
// comes from the vCPU before completion, KVM's after it.
func TestExecReadVector(t *testing.T) {
	for _, agree := range []bool{true, false} {
		p, cpu, w := newExecPath(t, []byte{0x0f, 0x10, 0x0f})
		cpu.sregs.CR4 = x86.CR4OSFXSR
		data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		if err := w.Write(0, data); err != nil {
			t.Fatal(err)
		}
		var f emulate.FPUState
		f.FCW, f.MXCSR = 0x37f, 0x1f80
		if err := f.MarshalXSAVE(cpu.xsave[0].Bytes()); err != nil {
			t.Fatal(err)
		}
		copy(f.XMM[1][:], data)
		if !agree {
			f.XMM[1][15] ^= 0xff
		}
		if err := f.MarshalXSAVE(cpu.xsave[1].Bytes()); err != nil {
			t.Fatal(err)
		}
		cpu.after = cpu.regs
		cpu.after.RIP = 0x1003
		cpu.exits = []kvm.MMIOExit{{PhysAddr: 0xd0008, Len: 8}}
		e := mmioExit(1, 0xd0000, 8, false, 0)
		err := p.MMIORead(e)
		var d *Disagreement
		switch {
		case agree && err != nil:
			t.Fatal(err)
		case !agree && (!errors.As(err, &d) || !slices.Equal(d.Fields, []string{"xmm1"})):
			t.Fatalf("got %v, want a disagreement on xmm1", err)
		}
	}
}

// At a write exit the instruction is executed from the rewound state: a
// PUSH of a memory operand onto an MMIO stack must write the operand.
func TestExecWrite(t *testing.T) {
	for _, c := range []struct {
		name   string
		data   uint64 // what KVM wrote
		fields []string
	}{
		{"push writes the operand", 0xbeef, nil},
		{"KVM pushes something else", 0xbeee, []string{"kvm write 0xd0040"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// push (%si) in real mode; SS = 0xd000, so the stack is MMIO.
			p, cpu, _ := newExecPath(t, []byte{0xff, 0x34})
			cpu.sregs.SS, cpu.sregs.DS = realSeg(0xd000, 3), realSeg(0, 3)
			cpu.regs.RSI, cpu.regs.RSP, cpu.regs.RIP = 0x2000, 0x40, 0x1002
			if err := p.cfg.RAM.Write(0x2000, []byte{0xef, 0xbe}); err != nil {
				t.Fatal(err)
			}
			err := p.MMIOWrite(mmioExit(1, 0xd0040, 2, true, c.data))
			if cpu.runs != 0 {
				t.Errorf("a write exit ran the vCPU %d times", cpu.runs)
			}
			s := p.Stats()
			var d *Disagreement
			switch {
			case c.fields == nil && err != nil:
				t.Fatal(err)
			case c.fields == nil && (s.Results.Checked != 1 || s.MMIO.Agreed != 1):
				t.Errorf("stats %+v %+v", s.Results, s.MMIO)
			case c.fields != nil && (!errors.As(err, &d) || !slices.Equal(d.Fields, c.fields)):
				t.Fatalf("got %v, want a disagreement on %v", err, c.fields)
			}
		})
	}
}

// Under exec a write exit and a read exit allocate nothing either.
func TestExecAllocs(t *testing.T) {
	// mov %ax,(%bx); mov (%bx),%ax
	p, cpu, _ := newExecPath(t, []byte{0x89, 0x07, 0x8b, 0x07})
	cpu.regs.RAX = 0x1234
	start := cpu.regs
	cpu.after = start
	cpu.after.RIP = 0x1004
	w := mmioExit(0, 0xd0000, 2, true, 0x1234)
	r := mmioExit(0, 0xd0000, 2, false, 0)
	a := testing.AllocsPerRun(100, func() {
		cpu.regs, cpu.completed = start, false
		cpu.regs.RIP = 0x1002
		w.Seq = r.Seq + 1
		if err := p.MMIOWrite(w); err != nil {
			t.Fatal(err)
		}
		r.Seq = w.Seq + 1
		if err := p.MMIORead(r); err != nil {
			t.Fatal(err)
		}
	})
	if a != 0 {
		t.Errorf("a write and a read exit under exec allocate %v times", a)
	}
	if s := p.Stats(); s.Results.Checked == 0 || s.Results.Disagreed != 0 {
		t.Errorf("results %+v", s.Results)
	}
}

func TestParseVerify(t *testing.T) {
	for _, s := range []string{"off", "warn", "strict", "exec"} {
		v, err := ParseVerify(s)
		if err != nil || v.String() != s {
			t.Errorf("ParseVerify(%q) = %v, %v", s, v, err)
		}
	}
	if _, err := ParseVerify("full"); err == nil {
		t.Error("ParseVerify accepted full")
	}
	if VerifyExec <= VerifyStrict {
		t.Error("exec is not above strict")
	}
}

// 66 0F 7F /r is MOVDQA from %xmm0 (16 bytes); the 0F 7F /r behind the 66
// is MOVQ from %mm0 (8 bytes). KVM's first 8-byte exit fits both; the
// data says which.
func TestWriteExitResolvedByData(t *testing.T) {
	for _, v := range []Verify{VerifyStrict, VerifyExec} {
		p, cpu, _ := newExecPath(t, []byte{0x66, 0x0f, 0x7f, 0x07})
		p.cfg.Verify = v
		cpu.sregs.CR4 = x86.CR4OSFXSR
		cpu.regs.RIP = 0x1004
		var f emulate.FPUState
		// All x87 tags valid: at a write exit of an MMX store the
		// state already shows the MMX transition.
		f.FCW, f.MXCSR, f.FTWX = 0x37f, 0x1f80, 0xff
		copy(f.XMM[0][:], []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		if err := f.MarshalXSAVE(cpu.xsave[0].Bytes()); err != nil {
			t.Fatal(err)
		}
		if err := p.MMIOWrite(mmioExit(1, 0xd0000, 8, true, 0x0807060504030201)); err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if got := p.exit.rec.Insn(); len(got) != 4 {
			t.Errorf("%v: traced % x, want the 4-byte movdqa", v, got)
		}
		// %mm0 (zero here) writes zeros: that exit is the MOVQ's.
		if err := p.MMIOWrite(mmioExit(2, 0xd0000, 8, true, 0)); err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if got := p.exit.rec.Insn(); len(got) != 3 {
			t.Errorf("%v: traced % x, want the 3-byte movq", v, got)
		}
		// Data neither writes.
		err := p.MMIOWrite(mmioExit(3, 0xd0000, 8, true, 0x1111))
		var d *Disagreement
		if !errors.As(err, &d) {
			t.Errorf("%v: data neither reading writes matched: %v", v, err)
		}
	}
}

// addw $1,(%bx) across RAM (0x9ffff) and unassigned MMIO (0xa0000): KVM
// writes the RAM byte itself while completing; walkvm's execution must use
// the byte as it was before.
func TestExecReadRAMBeforeCompletion(t *testing.T) {
	p, cpu, _ := newExecPath(t, []byte{0x83, 0x07, 0x01})
	cpu.sregs.DS = realSeg(0x9fff, 3)
	cpu.regs.RBX = 0xf
	if err := p.cfg.RAM.Write(0x9ffff, []byte{0x29}); err != nil {
		t.Fatal(err)
	}
	cpu.after = cpu.regs
	cpu.after.RIP, cpu.after.RFLAGS = 0x1003, 0x82 // 0xff29 + 1 = 0xff2a: SF
	cpu.exits = []kvm.MMIOExit{{PhysAddr: 0xa0000, Len: 1, IsWrite: 1, Data: [8]byte{0xff}}}
	cpu.onComplete = func() { _ = p.cfg.RAM.Write(0x9ffff, []byte{0x2a}) }
	if err := p.MMIORead(mmioExit(1, 0xa0000, 1, false, 0)); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Results.Checked != 1 {
		t.Errorf("results %+v", s.Results)
	}
}

// KVM reads POPA's slots and LGDT's limit and base with exits of their
// own: an exit inside such an access agrees.
func TestReadInParts(t *testing.T) {
	for _, c := range []struct {
		name string
		code []byte
		gpa  uint64
		n    uint32
	}{
		{"popa, third slot", []byte{0x61}, 0xd0004, 2},
		{"lgdt, the base", []byte{0x0f, 0x01, 0x17}, 0xd0002, 4}, // lgdt (%bx)
	} {
		p, cpu, _ := newEntryPath(t, c.code, nil)
		cpu.sregs.SS = realSeg(0xd000, 3)
		if err := p.MMIORead(mmioExit(1, c.gpa, c.n, false, 0)); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// mov (%bx),%ax reads one word: a byte inside it is no fragment.
	p, _, _ := newEntryPath(t, []byte{0x8b, 0x07}, nil)
	if err := p.MMIORead(mmioExit(1, 0xd0001, 1, false, 0)); err == nil {
		t.Error("a byte inside a plain read agreed")
	}
}
