package ownpath

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/trace"
	"walkvm/x86"
)

// fakeCPU is a vCPU without KVM for the entry points: registers in real
// mode, KVM_TRANSLATE the identity (paging is off).
type fakeCPU struct {
	regs       kvm.Regs
	sregs      kvm.Sregs2
	translates int
	injected   []uint8
	// unmapped says KVM_TRANSLATE finds no translation for la; else it
	// is the identity.
	unmapped func(la uint64) bool
}

func (f *fakeCPU) SyncedRegs() *kvm.Regs         { return &f.regs }
func (f *fakeCPU) SyncedSregs() *kvm.Sregs       { return &kvm.Sregs{} }
func (f *fakeCPU) GetRegs(r *kvm.Regs) error     { *r = f.regs; return nil }
func (f *fakeCPU) SetRegs(r *kvm.Regs) error     { f.regs = *r; return nil }
func (f *fakeCPU) GetSregs(s *kvm.Sregs) error   { return nil }
func (f *fakeCPU) SetSregs(s *kvm.Sregs) error   { return nil }
func (f *fakeCPU) GetSregs2(s *kvm.Sregs2) error { *s = f.sregs; return nil }
func (f *fakeCPU) GetXSave(x *kvm.XSave) error   { return nil }
func (f *fakeCPU) SetXSave(x *kvm.XSave) error   { return nil }
func (f *fakeCPU) GetFPU(p *kvm.FPU) error       { return nil }
func (f *fakeCPU) SetFPU(p *kvm.FPU) error       { return nil }
func (f *fakeCPU) XCR0() (uint64, error)         { return 1, nil }
func (f *fakeCPU) Translate(la uint64) (uint64, bool, error) {
	f.translates++
	if f.unmapped != nil && f.unmapped(la) {
		return 0, false, nil
	}
	return la, true, nil
}
func (f *fakeCPU) InjectException(v uint8, hasErr bool, code uint32) error {
	f.injected = append(f.injected, v)
	return nil
}

func realSeg(sel uint16, typ uint8) kvm.Segment {
	return kvm.Segment{Base: uint64(sel) << 4, Limit: 0xffff, Selector: sel, Typ: typ, Present: 1, S: 1}
}

// newEntryPath is a Path over RAM with code at 0x1000 in real mode, the
// MMIO test window at 0xd0000 (DS = 0xd000) and unassigned space above.
func newEntryPath(t testing.TB, code []byte, tr *trace.Tracer) (*Path, *fakeCPU, *devices.TestWindow) {
	t.Helper()
	ram := memory.NewRAMFromSlice(make([]byte, 0xa0000))
	if err := ram.Write(0x1000, code); err != nil {
		t.Fatal(err)
	}
	bus := memory.NewBus("mmio")
	w := devices.NewTestWindow(devices.TestWindowLow, 0x1000)
	if err := bus.Register("w", devices.TestWindowLow, 0x1000, w); err != nil {
		t.Fatal(err)
	}
	cpu := &fakeCPU{regs: kvm.Regs{RIP: 0x1000, RFLAGS: 2}}
	cpu.sregs.CS = realSeg(0, 11)
	cpu.sregs.DS, cpu.sregs.ES, cpu.sregs.SS = realSeg(0xd000, 3), realSeg(0xd000, 3), realSeg(0, 3)
	cpu.sregs.CR0 = x86.CR0ET
	p := New(Config{VCPU: 2, CPU: cpu, RAM: ram, Bus: bus, Verify: VerifyStrict, Trace: tr})
	return p, cpu, w
}

// mmioEntry calls the path's entry point for MMIO exit e, as the loop
// does.
func mmioEntry(p *Path, e *kvm.Exit) error {
	if e.MMIO.IsWrite != 0 {
		return p.MMIOWrite(e)
	}
	return p.MMIORead(e)
}

func mmioExit(seq, gpa uint64, n uint32, write bool, v uint64) *kvm.Exit {
	m := &kvm.MMIOExit{PhysAddr: gpa, Len: n}
	if write {
		m.IsWrite = 1
		for i := range 8 {
			m.Data[i] = byte(v >> (8 * i))
		}
	}
	return &kvm.Exit{Kind: kvm.KindMMIO, Reason: kvm.ExitMMIO, Seq: seq, MMIO: m}
}

// The read-exit entry point on its own: it loads the state, agrees with
// KVM's access, lets the device serve it, counts and traces.
func TestMMIOReadEntry(t *testing.T) {
	var out bytes.Buffer
	// mov 0x10(%bx),%ax with BX = 0x20: DS:0x30 = GPA 0xd0030.
	p, cpu, w := newEntryPath(t, []byte{0x8b, 0x47, 0x10}, trace.NewTracer(&out))
	cpu.regs.RBX = 0x20
	if err := w.Write(0x30, []byte{0x34, 0x12}); err != nil {
		t.Fatal(err)
	}
	e := mmioExit(1, 0xd0030, 2, false, 0)
	if err := p.MMIORead(e); err != nil {
		t.Fatal(err)
	}
	if e.MMIO.Data[0] != 0x34 || e.MMIO.Data[1] != 0x12 {
		t.Errorf("device data % x", e.MMIO.Data[:2])
	}
	s := p.Stats()
	if s.MMIO.Reads != 1 || s.MMIO.Agreed != 1 || s.Walks.Nonpaging == 0 || s.Translate.Checks == 0 || cpu.translates == 0 {
		t.Errorf("stats %+v %+v %+v, %d translates", s.MMIO, s.Walks, s.Translate, cpu.translates)
	}
	if names := s.ModeNames(); len(names) != 1 || names[0] != "real" {
		t.Errorf("modes %v", names)
	}
	p.EndExit(e)
	var rec map[string]any
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rec["vcpu"] != 2.0 || rec["verdict"] != "agree" || rec["kvm_gpa"] != "0xd0030" || rec["gpa"] != "0xd0030" || rec["bytes"] != "8b4710" {
		t.Errorf("trace %s", out.String())
	}
	// The same exit again (BeginExit and the entry point both load): the
	// mode is logged once.
	if err := p.BeginExit(e); err != nil || s.Modes[0].Exits != 1 {
		t.Errorf("reloaded the same exit: %v, %d exits logged", err, s.Modes[0].Exits)
	}
}

// The write-exit entry point finds the instruction behind RIP, and an
// access where nothing is mapped is all ones and counted.
func TestMMIOWriteEntry(t *testing.T) {
	// mov %ax,0x40(%bx), then RIP is past it.
	p, cpu, w := newEntryPath(t, []byte{0x89, 0x47, 0x40}, nil)
	cpu.regs.RIP, cpu.regs.RBX, cpu.regs.RAX = 0x1003, 0x10, 0xbeef
	if err := p.MMIOWrite(mmioExit(1, 0xd0050, 2, true, 0xbeef)); err != nil {
		t.Fatal(err)
	}
	if got := w.Bytes()[0x50:0x52]; got[0] != 0xef || got[1] != 0xbe {
		t.Errorf("window holds % x", got)
	}
	if s := p.Stats(); s.MMIO.Writes != 1 || s.MMIO.Agreed != 1 {
		t.Errorf("mmio %+v", s.MMIO)
	}
	// KVM's write does not match the instruction: strict stops.
	err := p.MMIOWrite(mmioExit(2, 0xd0060, 2, true, 0xbeef))
	if err == nil || !strings.Contains(err.Error(), "on vCPU 2 in real mode") {
		t.Errorf("mismatch: %v", err)
	}
	// An unassigned read: mov 0x10(%bx),%ax with DS:BX past the window.
	p, cpu, _ = newEntryPath(t, []byte{0x8b, 0x47, 0x10}, nil)
	cpu.regs.RBX = 0x2000
	e := mmioExit(1, 0xd2010, 2, false, 0)
	if err := p.MMIORead(e); err != nil {
		t.Fatal(err)
	}
	if e.MMIO.Data[0] != 0xff || e.MMIO.Data[1] != 0xff || p.Stats().Unassigned.MMIOReads != 1 {
		t.Errorf("data % x, counted %d", e.MMIO.Data[:2], p.Stats().Unassigned.MMIOReads)
	}
}

// An instruction KVM gave up on is completed: registers written back.
func TestEmulationFailureEntry(t *testing.T) {
	// mov (%bx),%ax
	p, cpu, w := newEntryPath(t, []byte{0x8b, 0x07}, nil)
	if err := w.Write(0, []byte{0x78, 0x56}); err != nil {
		t.Fatal(err)
	}
	e := &kvm.Exit{Kind: kvm.KindEmulationFailure, Reason: kvm.ExitInternalError, Seq: 1,
		EmulationFailure: &kvm.EmulationFailure{Suberror: kvm.InternalErrorEmulation, Flags: kvm.EmulationFlagInstructionBytes,
			InsnSize: 2, InsnBytes: [15]byte{0x8b, 0x07}}}
	if err := p.EmulationFailure(e); err != nil {
		t.Fatal(err)
	}
	if cpu.regs.RAX != 0x5678 || cpu.regs.RIP != 0x1002 || p.Stats().MMIO.CompletedInUserspace != 1 {
		t.Errorf("rax %#x rip %#x, %+v", cpu.regs.RAX, cpu.regs.RIP, p.Stats().MMIO)
	}
}

// The entry points allocate nothing with tracing off.
func TestEntryAllocs(t *testing.T) {
	p, cpu, _ := newEntryPath(t, []byte{0x8b, 0x47, 0x10}, nil)
	cpu.regs.RBX = 0x20
	e := mmioExit(0, 0xd0030, 2, false, 0)
	a := testing.AllocsPerRun(100, func() {
		e.Seq++
		if err := p.MMIORead(e); err != nil {
			t.Fatal(err)
		}
		p.EndExit(e)
	})
	if a != 0 {
		t.Errorf("a read exit allocates %v times", a)
	}
}
