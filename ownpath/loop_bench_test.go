package ownpath_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"testing"

	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/ownpath"
	"walkvm/vcpu"
	"walkvm/x86"
)

// loopCPU is a vCPU without KVM that replays the exits of the bench guests
// (package bench) through the real run loop: "mmio" alternates a 4-byte
// write exit of mov %eax,(%ebx) and a read exit of mov (%ebx),%eax; "pio"
// an OUT and an IN of port 0x3ff. After limit exits it halts. Its
// registers sit in a kvm_run-like area, as KVM_CAP_SYNC_REGS leaves them.
type loopCPU struct {
	pio bool
	// stride moves RBX, and with it KVM's GPA, by that many bytes every
	// iteration: no exit repeats an earlier one.
	stride uint64
	n      int
	limit  int
	mmio   kvm.MMIOExit
	io     [8]byte
	regs   kvm.Regs
	sregs  kvm.Sregs
}

// The guest's code at 0x1000: mov %eax,(%ebx); mov (%ebx),%eax; jmp 0x1000.
var loopCode = []byte{0x89, 0x03, 0x8b, 0x03, 0xeb, 0xfa}

const (
	loopCodeGPA = 0x1000
	loopWindow  = devices.TestWindowLow // 0xd0000, outside RAM
	loopPML4    = 0x10000
)

func (c *loopCPU) Run() error {
	c.n++
	return nil
}

func (c *loopCPU) ReadExit(e *kvm.Exit) error {
	seq := e.Seq
	switch {
	case c.n > c.limit:
		*e = kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT, Seq: seq}
	case c.pio:
		*e = kvm.Exit{Kind: kvm.KindIO, Reason: kvm.ExitIO, Seq: seq}
		e.IO = kvm.IOAccess{Port: 0x3ff, Size: 1, Out: c.n%2 == 1, Count: 1, Data: c.io[:1]}
	default:
		*e = kvm.Exit{Kind: kvm.KindMMIO, Reason: kvm.ExitMMIO, Seq: seq, MMIO: &c.mmio}
		if c.stride != 0 && c.n%2 == 1 {
			c.regs.RBX = loopWindow + uint64(c.n/2)*c.stride%0x10000
		}
		c.mmio = kvm.MMIOExit{PhysAddr: c.regs.RBX, Len: 4}
		// Odd exits are the store's, with RIP past it; even ones the
		// load's, with RIP at it: 0x1002 both.
		if c.n%2 == 1 {
			c.mmio.IsWrite = 1
			binary.LittleEndian.PutUint32(c.mmio.Data[:], uint32(c.regs.RAX))
		}
	}
	return nil
}

func (c *loopCPU) SetImmediateExit(on bool)                         {}
func (c *loopCPU) GetRegs(r *kvm.Regs) error                        { *r = c.regs; return nil }
func (c *loopCPU) GetSregs(s *kvm.Sregs) error                      { *s = c.sregs; return nil }
func (c *loopCPU) SyncedRegs() *kvm.Regs                            { return &c.regs }
func (c *loopCPU) SyncedSregs() *kvm.Sregs                          { return &c.sregs }
func (c *loopCPU) SetRegs(r *kvm.Regs) error                        { c.regs = *r; return nil }
func (c *loopCPU) SetSregs(s *kvm.Sregs) error                      { c.sregs = *s; return nil }
func (c *loopCPU) GetSregs2(s *kvm.Sregs2) error                    { return fmt.Errorf("no KVM_GET_SREGS2") }
func (c *loopCPU) GetXSave(x *kvm.XSave) error                      { return nil }
func (c *loopCPU) SetXSave(x *kvm.XSave) error                      { return nil }
func (c *loopCPU) GetFPU(f *kvm.FPU) error                          { return nil }
func (c *loopCPU) SetFPU(f *kvm.FPU) error                          { return nil }
func (c *loopCPU) XCR0() (uint64, error)                            { return 1, nil }
func (c *loopCPU) InjectException(v uint8, he bool, e uint32) error { return nil }

// Translate is KVM_TRANSLATE for the guest's tables: the identity, as
// both the flat and the paged guest map it.
func (c *loopCPU) Translate(la uint64) (uint64, bool, error) { return la, true, nil }

// newLoopGuest builds RAM with the code and, for long mode, 4-level tables
// with 4 KiB pages mapping the first MiB (the window included) one to one;
// the vCPU's registers are those of the bench guest's loop.
func newLoopGuest(tb testing.TB, long bool) (*memory.RAM, *loopCPU) {
	tb.Helper()
	ram := memory.NewRAMFromSlice(make([]byte, 0xa0000))
	if err := ram.Write(loopCodeGPA, loopCode); err != nil {
		tb.Fatal(err)
	}
	c := &loopCPU{regs: kvm.Regs{RIP: loopCodeGPA + 2, RBX: loopWindow, RAX: 0x1234, RFLAGS: 2}}
	seg := kvm.Segment{Limit: 0xffffffff, Present: 1, S: 1, DB: 1, G: 1, Typ: 3, Selector: 0x10}
	c.sregs.DS, c.sregs.ES, c.sregs.SS, c.sregs.FS, c.sregs.GS = seg, seg, seg, seg, seg
	seg.Typ, seg.Selector = 11, 8
	c.sregs.CS = seg
	c.sregs.CR0 = x86.CR0PE | x86.CR0ET
	c.sregs.TR = kvm.Segment{Typ: 11, Present: 1, Limit: 0x67}
	if long {
		const pte = 0x3 // present, writable
		put := func(gpa, v uint64) {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], v)
			if err := ram.Write(gpa, b[:]); err != nil {
				tb.Fatal(err)
			}
		}
		put(loopPML4, loopPML4+0x1000|pte)
		put(loopPML4+0x1000, loopPML4+0x2000|pte)
		put(loopPML4+0x2000, loopPML4+0x3000|pte)
		for i := range uint64(256) {
			put(loopPML4+0x3000+8*i, i<<12|pte)
		}
		c.sregs.CS.L, c.sregs.CS.DB = 1, 0
		c.sregs.CR0 |= x86.CR0PG
		c.sregs.CR3, c.sregs.CR4 = loopPML4, x86.CR4PAE
		c.sregs.EFER = x86.EFERLME | x86.EFERLMA
	}
	return ram, c
}

// BenchmarkLoopExit times one exit through the whole run loop (vcpu.Loop
// with the own path as its MMIO handler and observer, as machine.OwnLoops
// wires them) of a fake vCPU replaying the bench guests' exits: the Go
// side of `vmm bench`'s run-loop figure, without KVM. mmio-stride is mmio
// with RBX moving 4 bytes every iteration, so that no exit repeats one
// before it (the site memo never applies).
func BenchmarkLoopExit(b *testing.B) {
	for _, w := range []struct {
		name      string
		pio, long bool
		stride    uint64
	}{{"mmio", false, false, 0}, {"long4k", false, true, 0}, {"pio", true, false, 0}, {"mmio-stride", false, false, 4}} {
		for _, v := range []ownpath.Verify{ownpath.VerifyOff, ownpath.VerifyStrict} {
			b.Run(w.name+"/verify="+v.String(), func(b *testing.B) {
				ram, cpu := newLoopGuest(b, w.long)
				cpu.pio, cpu.stride = w.pio, w.stride
				l := newLoop(b, ram, cpu, v)
				cpu.limit = b.N
				b.ReportAllocs()
				b.ResetTimer()
				var g vcpu.Group
				if end := g.Run([]*vcpu.Loop{l}, 0); end.Kind != vcpu.EndHalted {
					b.Fatalf("run ended with %v: %v", end.Kind, end.Err)
				}
			})
		}
	}
}

func newLoop(tb testing.TB, ram *memory.RAM, cpu *loopCPU, v ownpath.Verify) *vcpu.Loop {
	tb.Helper()
	mmio, pio := memory.NewBus("mmio"), memory.NewBus("pio")
	if err := mmio.Register("window", loopWindow, 0x10000, devices.NewTestWindow(loopWindow, 0x10000)); err != nil {
		tb.Fatal(err)
	}
	if err := pio.Register("uart", 0x3f8, 8, devices.NewUART(io.Discard)); err != nil {
		tb.Fatal(err)
	}
	// Registers are synced as machine.OwnPath syncs them: where exits
	// read them.
	p := ownpath.New(ownpath.Config{CPU: cpu, RAM: ram, Bus: mmio, PIO: pio, Verify: v, SyncRegs: v != ownpath.VerifyOff})
	l := &vcpu.Loop{CPU: cpu, PIO: pio, MMIO: p, Stats: p.Stats()}
	if p.Observes() {
		l.Observer = p
	}
	return l
}

// TestLoopExitAllocs: an exit through the loop and the own path allocates
// nothing, at every verify level: a run of 10,100 exits allocates no more
// than one of 100 (the run's goroutine and its bookkeeping), and the path
// agrees with the fake KVM at every exit.
func TestLoopExitAllocs(t *testing.T) {
	for _, long := range []bool{false, true} {
		for _, v := range []ownpath.Verify{ownpath.VerifyOff, ownpath.VerifyWarn, ownpath.VerifyStrict, ownpath.VerifyExec} {
			ram, cpu := newLoopGuest(t, long)
			l := newLoop(t, ram, cpu, v)
			run := func(n int) uint64 {
				var before, after runtime.MemStats
				cpu.n, cpu.limit = 0, n
				var g vcpu.Group
				runtime.ReadMemStats(&before)
				end := g.Run([]*vcpu.Loop{l}, 0)
				runtime.ReadMemStats(&after)
				if end.Kind != vcpu.EndHalted {
					t.Fatalf("long %v, %v: run ended with %v: %v", long, v, end.Kind, end.Err)
				}
				return after.Mallocs - before.Mallocs
			}
			// The least of three runs each: the runtime allocates now and
			// then for itself (a thread, a timer).
			short, long100 := run(100), run(10100)
			for range 2 {
				short, long100 = min(short, run(100)), min(long100, run(10100))
			}
			if long100 > short {
				t.Errorf("long %v, %v: a run of 100 exits allocates %d times, one of 10,100 %d", long, v, short, long100)
			}
			if s := l.Stats; s.MMIO.Disagreed != 0 || v != ownpath.VerifyOff && s.MMIO.Agreed == 0 {
				t.Errorf("long %v, %v: %d agreed, %d disagreed", long, v, s.MMIO.Agreed, s.MMIO.Disagreed)
			}
		}
	}
}
