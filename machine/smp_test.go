package machine

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"walkvm/devices"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/trace"
	"walkvm/vcpu"
)

// fakeVCPU is a vCPU without KVM for SMP runs: each Run makes the next exit
// of its script, over and over, until it is kicked (immediate exit). With
// last set, once it and each of its peers made stopAfter exits it makes the
// exit last and then none.
type fakeVCPU struct {
	script    []kvm.Exit
	last      *kvm.Exit
	stopAfter int
	peers     []*fakeVCPU

	mu        sync.Mutex
	n         int
	made      atomic.Int64 // n, for the peers
	stopped   bool
	cur       kvm.Exit
	immediate atomic.Bool
}

// due says whether the stopping exit is due.
func (f *fakeVCPU) due() bool {
	if f.last == nil || f.n < f.stopAfter {
		return false
	}
	for _, p := range f.peers {
		if p.made.Load() < int64(f.stopAfter) {
			return false
		}
	}
	return true
}

func (f *fakeVCPU) Run() error {
	if f.immediate.Load() {
		return kvm.ErrInterrupted
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.stopped:
		for !f.immediate.Load() {
			f.mu.Unlock()
			time.Sleep(10 * time.Microsecond)
			f.mu.Lock()
		}
		return kvm.ErrInterrupted
	case f.due():
		f.cur, f.stopped = *f.last, true
	default:
		f.cur = f.script[f.n%len(f.script)]
	}
	f.n++
	f.made.Store(int64(f.n))
	return nil
}

func (f *fakeVCPU) ReadExit(e *kvm.Exit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := e.Seq
	*e = f.cur
	e.Seq = seq
	return nil
}

func (f *fakeVCPU) SetImmediateExit(on bool)    { f.immediate.Store(on) }
func (f *fakeVCPU) GetRegs(r *kvm.Regs) error   { *r = kvm.Regs{}; return nil }
func (f *fakeVCPU) GetSregs(s *kvm.Sregs) error { *s = kvm.Sregs{}; return nil }

func mmio(gpa uint64, n uint32, write bool, v uint64) kvm.Exit {
	m := &kvm.MMIOExit{PhysAddr: gpa, Len: n}
	if write {
		m.IsWrite = 1
		binary.LittleEndian.PutUint64(m.Data[:], v)
	}
	return kvm.Exit{Kind: kvm.KindMMIO, Reason: kvm.ExitMMIO, MMIO: m}
}

func pio(port uint16, out bool, data ...byte) kvm.Exit {
	return kvm.Exit{Kind: kvm.KindIO, Reason: kvm.ExitIO, IO: kvm.IOAccess{Port: port, Size: uint8(len(data)), Out: out, Count: 1, Data: data}}
}

// Four vCPUs exit at once into the machine's shared devices (their own
// slots of the MMIO test window, pc-testdev's scratch register, fw_cfg, the
// UART, an unassigned port) until one writes the debug-exit port: the run
// ends with its status, every vCPU stops, and each vCPU's statistics are
// its own and add up in the total. Run with -race, this covers the SMP
// paths without KVM.
func TestSMPDevicesAndDebugExit(t *testing.T) {
	const n, stopper, status = 4, 2, 42
	var console syncBuffer
	log := logrus.New()
	log.SetOutput(io.Discard)
	m := &Machine{memSize: 64 << 20, vcpus: n, Log: log}
	m.RAM = memory.NewRAMFromSlice(make([]byte, 1<<20))
	if err := m.addDevices(m.pcDevices(), &console); err != nil {
		t.Fatal(err)
	}
	fakes := make([]*fakeVCPU, n)
	loops := make([]*vcpu.Loop, n)
	for i := range fakes {
		slot := devices.TestWindowHigh + uint64(i)*0x100
		f := &fakeVCPU{script: []kvm.Exit{
			mmio(slot, 4, true, uint64(0xc0de0000+i)),
			mmio(slot, 4, false, 0),
			mmio(slot+8, 8, true, uint64(i)<<32|7),
			pio(devices.PCTestDevPort+uint16(i), true, byte(i)),
			pio(devices.PCTestDevPort, false, 0, 0, 0, 0),
			pio(devices.FwCfgPort, true, devices.FwCfgNbCPUs, 0),
			pio(devices.FwCfgPort+1, false, 0),
			pio(devices.COM1Port, true, byte('a'+i)),
			pio(0x1234, false, 0),
		}}
		fakes[i] = f
		loops[i] = &vcpu.Loop{Index: i, CPU: f, PIO: m.PIO, MMIO: &vcpu.BusMMIO{Bus: m.MMIO}, Stats: trace.NewStats(i), Log: m.Log}
	}
	stop := fakes[stopper]
	stop.stopAfter = 200
	stop.last = &kvm.Exit{}
	*stop.last = pio(devices.DebugExitPort, true, status)
	for i, f := range fakes {
		if i != stopper {
			stop.peers = append(stop.peers, f)
		}
	}
	done := make(chan vcpu.End)
	go func() { done <- m.RunLoops(loops, 0) }()
	var end vcpu.End
	select {
	case end = <-done:
	case <-time.After(30 * time.Second):
		m.group.Finish(vcpu.End{Kind: vcpu.EndTimeout, VCPU: -1})
		t.Fatalf("the debug exit did not stop the run: %+v", <-done)
	}
	if end.Kind != vcpu.EndDebugExit || end.Status != status || end.VCPU != stopper || end.ExitStatus() != status {
		t.Fatalf("run ended %+v, want the debug exit %d of vCPU %d", end, status, stopper)
	}
	per := make([]*trace.Stats, n)
	for i, l := range loops {
		per[i] = l.Stats
		if got := l.Stats.Exits.Total; got == 0 {
			t.Errorf("vCPU %d made no exits", i)
		}
	}
	total := trace.Total(per)
	var sum uint64
	for _, s := range per {
		sum += s.Exits.Total
	}
	if total.Exits.Total != sum || len(total.VCPUs) != n {
		t.Errorf("total %d exits over %d vCPUs, the vCPUs made %d", total.Exits.Total, len(total.VCPUs), sum)
	}
	if u := total.Unassigned; u.PortReads == 0 {
		t.Errorf("unassigned port reads not counted: %+v", u)
	}
	// Each vCPU's slot holds its own last write.
	for i := range n {
		b := make([]byte, 4)
		if err := m.MMIO.Read(devices.TestWindowHigh+uint64(i)*0x100, b); err != nil {
			t.Fatal(err)
		}
		if v := binary.LittleEndian.Uint32(b); v != uint32(0xc0de0000+i) {
			t.Errorf("vCPU %d's slot holds %#x", i, v)
		}
	}
	if !bytes.ContainsAny(console.Bytes(), "abcd") {
		t.Errorf("console %q", console.Bytes())
	}
}

// syncBuffer is a bytes.Buffer for several writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}
