package ownpath

import (
	"io"
	"testing"

	"walkvm/devices"
	"walkvm/memory"
	"walkvm/trace"
)

// Under -verify off without a trace an MMIO exit goes to the device as
// KVM reports it: the window serves it, unassigned space reads all ones
// and drops writes, each access is counted, and the path reads no vCPU
// state (it has no CPU to read) and allocates nothing.
func TestServeUnchecked(t *testing.T) {
	bus := memory.NewBus("mmio")
	w := devices.NewTestWindow(devices.TestWindowLow, 0x1000)
	if err := bus.Register("w", devices.TestWindowLow, 0x1000, w); err != nil {
		t.Fatal(err)
	}
	p := New(Config{RAM: memory.NewRAMFromSlice(make([]byte, 0xa0000)), Bus: bus, Verify: VerifyOff})
	if err := p.MMIOWrite(mmioExit(1, 0xd0010, 4, true, 0x12345678)); err != nil {
		t.Fatal(err)
	}
	if got := w.Bytes()[0x10:0x14]; string(got) != "\x78\x56\x34\x12" {
		t.Errorf("window holds % x", got)
	}
	e := mmioExit(2, 0xd0012, 2, false, 0)
	if err := p.MMIORead(e); err != nil || e.MMIO.Data[0] != 0x34 || e.MMIO.Data[1] != 0x12 {
		t.Errorf("read % x, %v", e.MMIO.Data[:2], err)
	}
	e = mmioExit(3, 0xe0000, 4, false, 0)
	if err := p.MMIORead(e); err != nil || string(e.MMIO.Data[:4]) != "\xff\xff\xff\xff" {
		t.Errorf("unassigned read % x, %v", e.MMIO.Data[:4], err)
	}
	if err := p.MMIOWrite(mmioExit(4, 0xe0000, 1, true, 1)); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.MMIO.Reads != 2 || s.MMIO.Writes != 2 || s.MMIO.Agreed+s.MMIO.Disagreed != 0 ||
		s.Unassigned.MMIOReads != 1 || s.Unassigned.MMIOWrites != 1 || s.Walks.Nonpaging != 0 {
		t.Errorf("stats %+v %+v %+v", s.MMIO, s.Unassigned, s.Walks)
	}
	if r, wr := w.Counts(); r != 1 || wr != 1 {
		t.Errorf("window counted %d reads, %d writes", r, wr)
	}
	read, write := mmioExit(5, 0xd0020, 4, false, 0), mmioExit(6, 0xd0020, 4, true, 7)
	if a := testing.AllocsPerRun(100, func() {
		if err := p.MMIOWrite(write); err != nil {
			t.Fatal(err)
		}
		if err := p.MMIORead(read); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("an unchecked exit allocates %v times", a)
	}
}

// Only an unchecked path hands its MMIO exits to the loop (DirectMMIO),
// with the bus and the statistics serve uses.
func TestDirectMMIO(t *testing.T) {
	bus := memory.NewBus("mmio")
	ram := memory.NewRAMFromSlice(make([]byte, 0x1000))
	for _, c := range []struct {
		verify Verify
		trace  bool
		direct bool
	}{
		{VerifyOff, false, true},
		{VerifyOff, true, false},
		{VerifyWarn, false, false},
		{VerifyStrict, false, false},
		{VerifyExec, false, false},
	} {
		cfg := Config{RAM: ram, Bus: bus, Verify: c.verify}
		if c.trace {
			cfg.Trace = trace.NewTracer(io.Discard)
		}
		p := New(cfg)
		b, s := p.DirectMMIO()
		if c.direct && (b != bus || s != p.Stats()) || !c.direct && b != nil {
			t.Errorf("%v, trace %v: DirectMMIO gives bus %p, stats %p; the path has %p, %p", c.verify, c.trace, b, s, bus, p.Stats())
		}
	}
}
