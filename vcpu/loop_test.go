package vcpu

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/trace"
	"walkvm/x86"
)

// fakeCPU is a vCPU without KVM: each Run returns the next of its exits;
// after the last it "runs the guest" until kicked (immediate exit), as a
// guest that never exits again.
type fakeCPU struct {
	mu        sync.Mutex
	exits     []kvm.Exit
	next      int
	immediate atomic.Bool
	regs      kvm.Regs
	runErr    error
	onRun     func() // called at every entry
}

func (f *fakeCPU) Run() error {
	if f.onRun != nil {
		f.onRun()
	}
	if f.immediate.Load() {
		return kvm.ErrInterrupted
	}
	f.mu.Lock()
	if f.runErr != nil {
		f.mu.Unlock()
		return f.runErr
	}
	if f.next < len(f.exits) {
		f.next++
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	for !f.immediate.Load() {
		time.Sleep(50 * time.Microsecond)
	}
	return kvm.ErrInterrupted
}

func (f *fakeCPU) ReadExit(e *kvm.Exit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := e.Seq
	*e = f.exits[f.next-1]
	e.Seq = seq
	return nil
}

func (f *fakeCPU) SetImmediateExit(on bool)     { f.immediate.Store(on) }
func (f *fakeCPU) GetRegs(r *kvm.Regs) error    { *r = f.regs; return nil }
func (f *fakeCPU) GetSregs(s *kvm.Sregs) error  { *s = kvm.Sregs{}; return nil }
func (f *fakeCPU) isImmediate() bool            { return f.immediate.Load() }
func (f *fakeCPU) add(e ...kvm.Exit) *fakeCPU   { f.exits = append(f.exits, e...); return f }
func (f *fakeCPU) withRegs(r kvm.Regs) *fakeCPU { f.regs = r; return f }
func newFake(e ...kvm.Exit) *fakeCPU            { return (&fakeCPU{}).add(e...) }

func (f *fakeCPU) exitsLeft() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.exits) - f.next
}

// rewind makes the fake replay its exits from the first.
func (f *fakeCPU) rewind() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = 0
	f.immediate.Store(false)
}

// mmioRecorder is an MMIO handler that records its calls.
type mmioRecorder struct {
	calls []string
	err   error
}

func (h *mmioRecorder) MMIORead(e *kvm.Exit) error {
	h.calls = append(h.calls, "read")
	copy(e.MMIO.Bytes(), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	return h.err
}

func (h *mmioRecorder) MMIOWrite(e *kvm.Exit) error {
	h.calls = append(h.calls, "write")
	return h.err
}

func (h *mmioRecorder) EmulationFailure(e *kvm.Exit) error {
	h.calls = append(h.calls, "emulation-failure")
	return h.err
}

// portDev is a port device that records writes and reads a counter.
type portDev struct {
	writes [][]byte
	reads  int
}

func (d *portDev) Read(off uint64, data []byte) error {
	d.reads++
	for i := range data {
		data[i] = byte(d.reads)
	}
	return nil
}

func (d *portDev) Write(off uint64, data []byte) error {
	d.writes = append(d.writes, append([]byte(nil), data...))
	return nil
}

func mmioExit(gpa uint64, n uint32, write bool) kvm.Exit {
	m := &kvm.MMIOExit{PhysAddr: gpa, Len: n}
	if write {
		m.IsWrite = 1
	}
	return kvm.Exit{Kind: kvm.KindMMIO, Reason: kvm.ExitMMIO, MMIO: m}
}

func ioExit(port uint16, size uint8, out bool, data []byte) kvm.Exit {
	return kvm.Exit{Kind: kvm.KindIO, Reason: kvm.ExitIO,
		IO: kvm.IOAccess{Port: port, Size: size, Out: out, Count: uint32(len(data) / int(size)), Data: data}}
}

func newTestLoop(t *testing.T, cpu *fakeCPU) (*Loop, *portDev, *mmioRecorder) {
	t.Helper()
	pio := memory.NewBus("pio")
	dev := &portDev{}
	if err := pio.Register("dev", 0x80, 4, dev); err != nil {
		t.Fatal(err)
	}
	h := &mmioRecorder{}
	return &Loop{Index: 0, CPU: cpu, PIO: pio, MMIO: h, Stats: trace.NewStats(0)}, dev, h
}

// Every exit kind, handled without KVM.
func TestHandle(t *testing.T) {
	for _, c := range []struct {
		name  string
		exit  kvm.Exit
		regs  kvm.Regs
		herr  error
		done  bool
		kind  EndKind
		want  string // in the end's error
		check func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder)
	}{
		{name: "mmio read", exit: mmioExit(0xff000000, 4, false), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if len(h.calls) != 1 || h.calls[0] != "read" || binary.LittleEndian.Uint32(e.MMIO.Data[:]) != 0x04030201 {
				t.Errorf("calls %v data % x", h.calls, e.MMIO.Data)
			}
		}},
		{name: "mmio write", exit: mmioExit(0xff000000, 8, true), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if len(h.calls) != 1 || h.calls[0] != "write" {
				t.Errorf("calls %v", h.calls)
			}
		}},
		{name: "mmio handler error", exit: mmioExit(0xd0000, 4, true), herr: errors.New("disagrees"),
			done: true, kind: EndFailure, want: "MMIO exit at GPA 0xd0000: disagrees"},
		{name: "port out", exit: ioExit(0x81, 1, true, []byte{0x5a}), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if len(dev.writes) != 1 || dev.writes[0][0] != 0x5a {
				t.Errorf("device saw %v", dev.writes)
			}
		}},
		{name: "port in", exit: ioExit(0x80, 2, false, make([]byte, 2)), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if dev.reads != 1 || e.IO.Data[0] != 1 || e.IO.Data[1] != 1 {
				t.Errorf("reads %d data % x", dev.reads, e.IO.Data)
			}
		}},
		{name: "string port in, count 3", exit: ioExit(0x80, 2, false, make([]byte, 6)), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if dev.reads != 3 || string(e.IO.Data) != "\x01\x01\x02\x02\x03\x03" {
				t.Errorf("reads %d data % x", dev.reads, e.IO.Data)
			}
		}},
		{name: "string port out, count 2", exit: ioExit(0x80, 4, true, []byte{1, 2, 3, 4, 5, 6, 7, 8}), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if len(dev.writes) != 2 || dev.writes[1][0] != 5 {
				t.Errorf("device saw %v", dev.writes)
			}
		}},
		{name: "unassigned port in", exit: ioExit(0x60, 1, false, []byte{0, 0}), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if string(e.IO.Data) != "\xff\xff" || l.Stats.Unassigned.PortReads != 2 {
				t.Errorf("data % x, counted %d", e.IO.Data, l.Stats.Unassigned.PortReads)
			}
		}},
		{name: "unassigned port out", exit: ioExit(0x64, 1, true, []byte{0xfe}), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if l.Stats.Unassigned.PortWrites != 1 || len(dev.writes) != 0 {
				t.Errorf("counted %d", l.Stats.Unassigned.PortWrites)
			}
		}},
		{name: "port access across the device's end", exit: ioExit(0x83, 2, false, []byte{0, 0}), check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if string(e.IO.Data) != "\xff\xff" || dev.reads != 0 {
				t.Errorf("data % x, device reads %d", e.IO.Data, dev.reads)
			}
		}},
		{name: "hlt", exit: kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT}, done: true, kind: EndHalted},
		{name: "hlt with interrupts enabled", exit: kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT}, regs: kvm.Regs{RFLAGS: x86.FlagIF | 2},
			done: true, kind: EndHalted},
		{name: "triple fault", exit: kvm.Exit{Kind: kvm.KindShutdown, Reason: kvm.ExitShutdown}, done: true, kind: EndShutdown, want: "triple fault"},
		{name: "internal error", exit: kvm.Exit{Kind: kvm.KindInternalError, Reason: kvm.ExitInternalError,
			Internal: kvm.InternalError{Suberror: kvm.InternalErrorDeliveryEv, Data: []uint64{0x80000b0e}}},
			done: true, kind: EndFailure, want: "suberror 3"},
		{name: "emulation failure completed", exit: kvm.Exit{Kind: kvm.KindEmulationFailure, Reason: kvm.ExitInternalError,
			EmulationFailure: &kvm.EmulationFailure{Suberror: kvm.InternalErrorEmulation}},
			check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
				if len(h.calls) != 1 || h.calls[0] != "emulation-failure" {
					t.Errorf("calls %v", h.calls)
				}
			}},
		{name: "emulation failure not completed", exit: kvm.Exit{Kind: kvm.KindEmulationFailure, Reason: kvm.ExitInternalError,
			EmulationFailure: &kvm.EmulationFailure{Suberror: kvm.InternalErrorEmulation}}, herr: errors.New("cannot"),
			done: true, kind: EndFailure, want: "emulation failure: cannot"},
		{name: "system event reset", exit: kvm.Exit{Kind: kvm.KindSystemEvent, Reason: kvm.ExitSystemEvent,
			SystemEvent: kvm.SystemEvent{Type: kvm.SystemEventReset}}, done: true, kind: EndReset},
		{name: "system event shutdown", exit: kvm.Exit{Kind: kvm.KindSystemEvent, Reason: kvm.ExitSystemEvent,
			SystemEvent: kvm.SystemEvent{Type: kvm.SystemEventShutdown}}, done: true, kind: EndPowerOff},
		{name: "system event crash", exit: kvm.Exit{Kind: kvm.KindSystemEvent, Reason: kvm.ExitSystemEvent,
			SystemEvent: kvm.SystemEvent{Type: kvm.SystemEventCrash}}, done: true, kind: EndFailure, want: "system event 3"},
		{name: "fail entry", exit: kvm.Exit{Kind: kvm.KindFailEntry, Reason: kvm.ExitFailEntry,
			FailEntry: kvm.FailEntryExit{HardwareEntryFailureReason: 0x21}}, done: true, kind: EndFailure, want: "hardware reason 0x21"},
		{name: "interrupted", exit: kvm.Exit{Kind: kvm.KindInterrupted}, check: func(t *testing.T, e *kvm.Exit, l *Loop, dev *portDev, h *mmioRecorder) {
			if l.CPU.(*fakeCPU).isImmediate() {
				t.Errorf("immediate exit still set")
			}
		}},
		{name: "debug", exit: kvm.Exit{Kind: kvm.KindDebug, Reason: kvm.ExitDebug, Debug: kvm.DebugExit{Exception: 1, PC: 0x1000}},
			done: true, kind: EndFailure, want: "exception 1 at 0x1000"},
		{name: "unhandled reason", exit: kvm.Exit{Kind: kvm.KindOther, Reason: kvm.ExitHypercall}, done: true, kind: EndFailure, want: "hypercall"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cpu := newFake().withRegs(c.regs)
			cpu.SetImmediateExit(true)
			l, dev, h := newTestLoop(t, cpu)
			h.err = c.herr
			e := c.exit
			end, done := l.Handle(&e)
			if done != c.done || end.Kind != c.kind {
				t.Fatalf("end %+v done %v, want %v %v", end, done, c.kind, c.done)
			}
			if c.want != "" && (end.Err == nil || !strings.Contains(end.Err.Error(), c.want)) {
				t.Errorf("error %v, want one mentioning %q", end.Err, c.want)
			}
			if end.Kind == EndFailure || end.Kind == EndShutdown {
				if end.Dump == "" || end.ExitStatus() != StatusFailed {
					t.Errorf("failure without a dump, or status %d", end.ExitStatus())
				}
			}
			if c.check != nil {
				c.check(t, &e, l, dev, h)
			}
		})
	}
}

// directRecorder is an mmioRecorder that hands its MMIO exits to the
// loop (DirectMMIO) when it has a bus.
type directRecorder struct {
	mmioRecorder
	bus   *memory.Bus
	stats *trace.Stats
}

func (h *directRecorder) DirectMMIO() (*memory.Bus, *trace.Stats) { return h.bus, h.stats }

// A loop serves the MMIO exits of a DirectMMIO handler with a bus on that
// bus, counted in the handler's statistics, and the handler sees only the
// rest; without a bus, or in a loop with an observer, the handler sees
// every exit.
func TestLoopDirectMMIO(t *testing.T) {
	write := mmioExit(0xff000010, 4, true)
	copy(write.MMIO.Data[:], []byte{1, 2, 3, 4})
	read := mmioExit(0xff000010, 4, false)
	unassigned := mmioExit(0xfe000000, 2, false)
	ef := kvm.Exit{Kind: kvm.KindEmulationFailure, Reason: kvm.ExitInternalError, EmulationFailure: &kvm.EmulationFailure{}}
	hlt := kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT}
	for _, c := range []struct {
		name      string
		direct    bool
		observed  bool
		wantCalls []string
	}{
		{"direct", true, false, []string{"emulation-failure"}},
		{"no bus", false, false, []string{"write", "read", "read", "emulation-failure"}},
		{"observed", true, true, []string{"write", "read", "read", "emulation-failure"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bus := memory.NewBus("mmio")
			w := devices.NewTestWindow(0xff000000, 0x1000)
			if err := bus.Register("w", 0xff000000, 0x1000, w); err != nil {
				t.Fatal(err)
			}
			h := &directRecorder{stats: trace.NewStats(0)}
			if c.direct {
				h.bus = bus
			}
			for _, e := range []*kvm.Exit{&read, &unassigned} {
				*e.MMIO = kvm.MMIOExit{PhysAddr: e.MMIO.PhysAddr, Len: e.MMIO.Len}
			}
			l, _, _ := newTestLoop(t, newFake(write, read, unassigned, ef, hlt))
			l.MMIO = h
			if c.observed {
				l.Observer = &observer{}
			}
			var g Group
			if end := g.Run([]*Loop{l}, 0); end.Kind != EndHalted {
				t.Fatalf("end %+v", end)
			}
			if strings.Join(h.calls, " ") != strings.Join(c.wantCalls, " ") {
				t.Errorf("handler calls %v, want %v", h.calls, c.wantCalls)
			}
			if l.Stats.Exits.MMIO != 3 || l.Stats.Exits.EmulationFailure != 1 {
				t.Errorf("loop counted %+v", l.Stats.Exits)
			}
			if !c.direct || c.observed {
				return
			}
			if got := w.Bytes()[0x10:0x14]; string(got) != "\x01\x02\x03\x04" {
				t.Errorf("window holds % x", got)
			}
			if string(read.MMIO.Data[:4]) != "\x01\x02\x03\x04" || string(unassigned.MMIO.Data[:2]) != "\xff\xff" {
				t.Errorf("read % x, unassigned read % x", read.MMIO.Data[:4], unassigned.MMIO.Data[:2])
			}
			if s := h.stats; s.MMIO.Reads != 2 || s.MMIO.Writes != 1 || s.Unassigned.MMIOReads != 1 || s.Unassigned.MMIOWrites != 0 {
				t.Errorf("handler's statistics %+v %+v", s.MMIO, s.Unassigned)
			}
		})
	}
}

// The plain MMIO handler: all ones where nothing is mapped; every access
// counted.
func TestBusMMIO(t *testing.T) {
	bus := memory.NewBus("mmio")
	w := devices.NewTestWindow(0xff000000, 0x1000)
	if err := bus.Register("w", 0xff000000, 0x1000, w); err != nil {
		t.Fatal(err)
	}
	h := &BusMMIO{Bus: bus, Stats: trace.NewStats(0)}
	write := mmioExit(0xff000010, 4, true)
	copy(write.MMIO.Data[:], []byte{1, 2, 3, 4})
	read := mmioExit(0xff000012, 2, false)
	unassigned := mmioExit(0xfe000000, 4, false)
	// A length KVM should never send is clamped to the data array.
	huge := mmioExit(0xff000000, 1<<20, false)
	for _, e := range []*kvm.Exit{&write, &read, &unassigned, &huge} {
		var err error
		if e.MMIO.IsWrite != 0 {
			err = h.MMIOWrite(e)
		} else {
			err = h.MMIORead(e)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if read.MMIO.Data[0] != 3 || read.MMIO.Data[1] != 4 {
		t.Errorf("read back % x", read.MMIO.Data[:2])
	}
	if unassigned.MMIO.Data != [8]byte{0xff, 0xff, 0xff, 0xff} || h.Stats.Unassigned.MMIOReads != 1 {
		t.Errorf("unassigned read % x, counted %d", unassigned.MMIO.Data, h.Stats.Unassigned.MMIOReads)
	}
	if h.Stats.MMIO.Reads != 3 || h.Stats.MMIO.Writes != 1 {
		t.Errorf("counted %d reads, %d writes", h.Stats.MMIO.Reads, h.Stats.MMIO.Writes)
	}
	ef := kvm.Exit{Kind: kvm.KindEmulationFailure, EmulationFailure: &kvm.EmulationFailure{}}
	if err := h.EmulationFailure(&ef); err == nil {
		t.Errorf("the bus completed an instruction")
	}
}

// observer records the exits it sees.
type observer struct{ begins, ends []uint64 }

func (o *observer) BeginExit(e *kvm.Exit) error { o.begins = append(o.begins, e.Seq); return nil }
func (o *observer) EndExit(e *kvm.Exit)         { o.ends = append(o.ends, e.Seq) }

// A run through a Group: exits are numbered, observed and counted, and the
// debug-exit device's request ends the run with its status.
func TestRunDebugExit(t *testing.T) {
	var g Group
	cpu := newFake(ioExit(0x81, 1, true, []byte{1}), mmioExit(0xff000000, 4, false), ioExit(devices.DebugExitPort, 1, true, []byte{0x2a}),
		kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT})
	l, _, _ := newTestLoop(t, cpu)
	if err := l.PIO.Register("debug-exit", devices.DebugExitPort, 1, devices.NewDebugExit(devices.DebugExitWalkvm, &g)); err != nil {
		t.Fatal(err)
	}
	obs := &observer{}
	l.Observer = obs
	end := g.Run([]*Loop{l}, 0)
	if end.Kind != EndDebugExit || end.Status != 0x2a || end.ExitStatus() != 0x2a || end.VCPU != 0 {
		t.Fatalf("end %+v", end)
	}
	if cpu.exitsLeft() != 1 {
		t.Errorf("the guest ran on after the debug exit: %d exits left", cpu.exitsLeft())
	}
	if len(obs.begins) != 3 || obs.begins[2] != 3 || len(obs.ends) != 3 {
		t.Errorf("observed %v / %v", obs.begins, obs.ends)
	}
	if s := l.Stats; s.Exits.Total != 3 || s.Exits.IO != 2 || s.Exits.MMIO != 1 {
		t.Errorf("counted %+v", s.Exits)
	}
}

// A failing KVM_RUN ends the run with the vCPU named.
func TestRunFailure(t *testing.T) {
	var g Group
	cpu := newFake()
	cpu.runErr = errors.New("EFAULT")
	l, _, _ := newTestLoop(t, cpu)
	l.Index = 3
	end := g.Run([]*Loop{l}, 0)
	if end.Kind != EndFailure || end.VCPU != 3 || !strings.Contains(end.Err.Error(), "vCPU 3: KVM_RUN: EFAULT") {
		t.Fatalf("end %+v", end)
	}
}

// An end on any vCPU stops all others; the end names the vCPU whose exit
// or device request ended the run; a time limit stops them all.
func TestGroupStopsAll(t *testing.T) {
	for _, c := range []struct {
		name    string
		ender   int // the vCPU that ends the run, -1 none
		exit    kvm.Exit
		kind    EndKind
		timeout time.Duration
	}{
		{"halt on vCPU 2", 2, kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT}, EndHalted, 0},
		{"debug exit on vCPU 3", 3, ioExit(devices.DebugExitPort, 1, true, []byte{7}), EndDebugExit, 0},
		{"triple fault on vCPU 0", 0, kvm.Exit{Kind: kvm.KindShutdown, Reason: kvm.ExitShutdown}, EndShutdown, 0},
		{"timeout", -1, kvm.Exit{}, EndTimeout, 20 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			var g Group
			debugExit := devices.NewDebugExit(devices.DebugExitWalkvm, &g)
			var loops []*Loop
			var cpus []*fakeCPU
			for i := range 4 {
				cpu := newFake()
				// Every vCPU does some port I/O first.
				for range 10 {
					cpu.add(ioExit(0x80, 1, true, []byte{byte(i)}))
				}
				if i == c.ender {
					cpu.add(c.exit)
				}
				l, _, _ := newTestLoop(t, cpu)
				l.Index = i
				if err := l.PIO.Register("debug-exit", devices.DebugExitPort, 1, debugExit); err != nil {
					t.Fatal(err)
				}
				loops, cpus = append(loops, l), append(cpus, cpu)
			}
			done := make(chan End)
			go func() { done <- g.Run(loops, c.timeout) }()
			var end End
			select {
			case end = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the other vCPUs were not stopped")
			}
			if end.Kind != c.kind || end.VCPU != c.ender {
				t.Fatalf("end %+v, want %v on vCPU %d", end, c.kind, c.ender)
			}
			for i, l := range loops {
				if !l.stop.Load() || l.tid.Load() != 0 {
					t.Errorf("vCPU %d still marked running", i)
				}
				if i == c.ender && cpus[i].exitsLeft() != 0 {
					t.Errorf("vCPU %d ended with exits left", i)
				}
			}
			// The group runs again.
			for _, cpu := range cpus {
				cpu.rewind()
			}
			if c.timeout == 0 {
				if again := g.Run(loops, 0); again.Kind != c.kind {
					t.Errorf("second run ended %+v", again)
				}
			}
		})
	}
}

// A stop from outside the vCPUs' threads (the machine, a test) names no
// vCPU.
func TestGroupFinishFromOutside(t *testing.T) {
	var g Group
	l, _, _ := newTestLoop(t, newFake())
	done := make(chan End)
	go func() { done <- g.Run([]*Loop{l}, 0) }()
	for l.tid.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	g.Reset()
	if end := <-done; end.Kind != EndReset || end.VCPU != -1 || end.ExitStatus() != 0 {
		t.Fatalf("end %+v", end)
	}
	if end := g.Run(nil, 0); end.Kind != EndFailure {
		t.Errorf("a run of no vCPUs: %+v", end)
	}
}

// Quit (Ctrl-A x, a signal) ends a run with the status asked for.
func TestGroupQuit(t *testing.T) {
	var g Group
	l, _, _ := newTestLoop(t, newFake())
	done := make(chan End)
	go func() { done <- g.Run([]*Loop{l}, 0) }()
	for l.tid.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	g.Quit(143)
	if end := <-done; end.Kind != EndQuit || end.VCPU != -1 || end.ExitStatus() != 143 || end.Kind.String() != "quit" {
		t.Fatalf("end %+v (%v)", end, end.Kind)
	}
}

func TestEndExitStatus(t *testing.T) {
	for _, c := range []struct {
		end  End
		want int
	}{
		{End{Kind: EndHalted}, 0},
		{End{Kind: EndDebugExit, Status: 0x1ff}, 0xff},
		{End{Kind: EndDebugExit, Status: 3}, 3},
		{End{Kind: EndReset}, 0},
		{End{Kind: EndPowerOff}, 0},
		{End{Kind: EndTimeout}, 124},
		{End{Kind: EndShutdown}, 125},
		{End{Kind: EndFailure}, 125},
		{End{Kind: EndQuit}, 0},
		{End{Kind: EndQuit, Status: 130}, 130},
	} {
		if got := c.end.ExitStatus(); got != c.want {
			t.Errorf("%v: status %d, want %d", c.end.Kind, got, c.want)
		}
	}
}

// timeObserver records each exit's times.
type timeObserver struct{ t, d []int64 }

func (o *timeObserver) BeginExit(e *kvm.Exit) error { return nil }
func (o *timeObserver) EndExit(e *kvm.Exit) {
	if e.Timed {
		o.t, o.d = append(o.t, e.TimeNS), append(o.d, e.DurNS)
	}
}

// With a Clock the loop times every exit: arrival times in order, each
// handling not negative; without one, nothing is timed.
func TestLoopClock(t *testing.T) {
	for _, timed := range []bool{true, false} {
		var g Group
		cpu := newFake()
		for range 20 {
			cpu.add(ioExit(0x81, 1, true, []byte{1}))
		}
		cpu.add(kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT})
		l, _, _ := newTestLoop(t, cpu)
		obs := &timeObserver{}
		l.Observer = obs
		if timed {
			l.Clock = trace.NewClock()
		}
		if end := g.Run([]*Loop{l}, 0); end.Kind != EndHalted {
			t.Fatalf("end %+v", end)
		}
		if !timed {
			if len(obs.t) != 0 {
				t.Errorf("untimed loop timed %d exits", len(obs.t))
			}
			continue
		}
		if len(obs.t) != 21 {
			t.Fatalf("%d exits timed, want 21", len(obs.t))
		}
		for i := range obs.t {
			if obs.d[i] < 0 || i > 0 && obs.t[i] < obs.t[i-1]+obs.d[i-1] {
				t.Errorf("exit %d at %d ns for %d ns, after exit %d at %d for %d", i, obs.t[i], obs.d[i], i-1, obs.t[max(i-1, 0)], obs.d[max(i-1, 0)])
			}
		}
	}
}

// Timing an exit allocates nothing.
func TestLoopClockAllocs(t *testing.T) {
	cpu := newFake()
	for range 200 {
		cpu.add(ioExit(0x90, 1, true, []byte{1})) // unassigned: dropped
	}
	l, _, _ := newTestLoop(t, cpu)
	l.Clock = trace.NewClock()
	if a := testing.AllocsPerRun(100, func() {
		if l.stepObserved() {
			t.Fatal("the run ended")
		}
	}); a != 0 {
		t.Errorf("a timed exit allocates %v times", a)
	}
}

// BenchmarkStep is one port-I/O exit through the loop's stepObserved,
// with and without the exit timing a trace asks for (steps, the loop
// without either, is BenchmarkLoopExit's, in package ownpath).
func BenchmarkStep(b *testing.B) {
	for _, timed := range []bool{false, true} {
		b.Run(map[bool]string{false: "untimed", true: "timed"}[timed], func(b *testing.B) {
			cpu := newFake(ioExit(0x90, 1, true, []byte{1}))
			l := &Loop{CPU: cpu, PIO: memory.NewBus("pio"), MMIO: &mmioRecorder{}}
			if timed {
				l.Clock = trace.NewClock()
			}
			b.ReportAllocs()
			for b.Loop() {
				cpu.next = 0 // replay the one exit
				if l.stepObserved() {
					b.Fatal("the run ended")
				}
			}
		})
	}
}

// Every vCPU holds a P while its guest runs, so a Group keeps GOMAXPROCS at
// its vCPUs plus one while it runs, even where the machine has one CPU, and
// gives it back after.
func TestGroupProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, n := range []int{1, 3} {
		var g Group
		var loops []*Loop
		seen := make([]atomic.Int32, n)
		for i := range n {
			cpu := newFake()
			cpu.onRun = func() {
				seen[i].Store(int32(runtime.GOMAXPROCS(0)))
				// vCPU 0 halts once every vCPU has entered.
				for j := range seen {
					for k := 0; i == 0 && seen[j].Load() == 0 && k < 5000; k++ {
						time.Sleep(time.Millisecond)
					}
				}
			}
			cpu.add(ioExit(0x80, 1, true, []byte{1}))
			if i == 0 {
				cpu.add(kvm.Exit{Kind: kvm.KindHLT, Reason: kvm.ExitHLT})
			}
			l, _, _ := newTestLoop(t, cpu)
			l.Index = i
			loops = append(loops, l)
		}
		if end := g.Run(loops, 0); end.Kind != EndHalted {
			t.Fatalf("%d vCPUs: end %+v", n, end)
		}
		for i := range seen {
			if got := seen[i].Load(); got < int32(n+1) {
				t.Errorf("%d vCPUs: vCPU %d ran with GOMAXPROCS %d, want at least %d", n, i, got, n+1)
			}
		}
		if got := runtime.GOMAXPROCS(0); got != 1 {
			t.Errorf("%d vCPUs: GOMAXPROCS %d after the run, want 1 back", n, got)
		}
	}
}
