package devices

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
	"walkvm/x86"
)

// dev is a memory.Device, for the helpers below.
type dev interface {
	Read(off uint64, data []byte) error
	Write(off uint64, data []byte) error
}

func rd(t *testing.T, d dev, off uint64, n int) uint64 {
	t.Helper()
	b := make([]byte, n)
	if err := d.Read(off, b); err != nil {
		t.Fatalf("read %d bytes at %#x: %v", n, off, err)
	}
	return x86.Value(b)
}

func wr(t *testing.T, d dev, off uint64, n int, v uint64) {
	t.Helper()
	b := binary.LittleEndian.AppendUint64(nil, v)[:n]
	if err := d.Write(off, b); err != nil {
		t.Fatalf("write %#x (%d bytes) at %#x: %v", v, n, off, err)
	}
}

// fwRead is kvm-unit-tests' fwcfg_get_u: outw key to 0x510, then n inb from 0x511.
func fwRead(t *testing.T, f *FwCfg, key uint16, n int) uint64 {
	wr(t, f, 0, 2, uint64(key))
	var v uint64
	for i := 0; i < n; i++ {
		v |= rd(t, f, 1, 1) << (8 * i)
	}
	return v
}

func TestFwCfg(t *testing.T) {
	f := NewFwCfg(128<<20, 4)
	for _, tc := range []struct {
		key  uint16
		n    int
		want uint64
	}{
		{FwCfgSignature, 4, 0x554d4551}, // "QEMU"
		{FwCfgID, 4, 1},
		{FwCfgRAMSize, 8, 128 << 20},
		{FwCfgNbCPUs, 2, 4},
		{FwCfgMaxCPUs, 2, 4},
		{FwCfgNbCPUs | 0x4000, 2, 4}, // the write-channel bit is ignored
		{0x02, 16, 0},                // UUID: not offered
		{0x19, 4, 0},                 // file directory: empty
		{0x8003, 8, 0},               // arch-local (E820): none
		{0x3fff, 8, 0},
		{FwCfgNbCPUs, 8, 4}, // bytes past the end read 0
	} {
		if got := fwRead(t, f, tc.key, tc.n); got != tc.want {
			t.Errorf("key %#x, %d bytes = %#x, want %#x", tc.key, tc.n, got, tc.want)
		}
	}
	// Selecting rewinds; data reads work at either port; other sizes do nothing.
	wr(t, f, 0, 2, FwCfgSignature)
	if a, b := rd(t, f, 0, 1), rd(t, f, 1, 1); a != 'Q' || b != 'E' {
		t.Errorf("signature bytes %#x %#x", a, b)
	}
	wr(t, f, 0, 1, 0x05) // byte write: ignored
	wr(t, f, 0, 4, 0x05)
	if got := rd(t, f, 1, 1); got != 'M' {
		t.Errorf("after ignored writes read %#x, want 'M'", got)
	}
	if got := rd(t, f, 0, 2); got != 0xffff {
		t.Errorf("2-byte read = %#x, want all ones", got)
	}
}

func TestPCTestDev(t *testing.T) {
	var flushed []uint64
	p := NewPCTestDev(func(gpa uint64) error { flushed = append(flushed, gpa); return nil })
	steps := []struct {
		write bool
		off   uint64
		n     int
		v     uint64
	}{
		{true, 0, 4, 0x12345678},
		{false, 0, 4, 0x12345678},
		{false, 1, 2, 0x3456},
		{false, 3, 1, 0x12},
		{true, 2, 1, 0xab},
		{false, 0, 4, 0x12ab5678},
		{true, 1, 2, 0xcdef},
		{false, 0, 4, 0x12cdef78},
		{false, 8, 4, 0x12cdef78}, // 0xe8: the same register
		{false, 10, 1, 0xcd},
		{true, 9, 2, 0x0102},
		{false, 0, 4, 0x12010278},
		{false, 4, 4, 0xffffffff}, // flush port has no read side
	}
	for i, s := range steps {
		if s.write {
			wr(t, p, s.off, s.n, s.v)
		} else if got := rd(t, p, s.off, s.n); got != s.v {
			t.Errorf("step %d: read %d bytes at %#x = %#x, want %#x", i, s.n, PCTestDevPort+s.off, got, s.v)
		}
	}
	wr(t, p, 4, 4, 0x1234567)
	wr(t, p, 4, 1, 0x99) // not a 4-byte write: ignored
	if n, last := p.Flushes(); n != 1 || last != 0x1234000 || len(flushed) != 1 || flushed[0] != 0x1234000 {
		t.Errorf("flushes %d, last %#x, callback saw %#x", n, last, flushed)
	}
	if p.Scratch() != 0x12010278 {
		t.Errorf("Scratch() = %#x", p.Scratch())
	}
	bad := NewPCTestDev(func(uint64) error { return errors.New("mprotect failed") })
	if err := bad.Write(4, []byte{0, 0x10, 0, 0}); err == nil {
		t.Error("a failing flush was not reported")
	}
	nop := NewPCTestDev(nil)
	wr(t, nop, 4, 4, 0x5000)
	if n, last := nop.Flushes(); n != 1 || last != 0x5000 {
		t.Errorf("without a FlushPageFunc: %d flushes, last %#x", n, last)
	}
}

func TestPCTestDevIRQ(t *testing.T) {
	type set struct {
		irq  int
		high bool
	}
	var got []set
	p := NewPCTestDevIRQ(func(irq int, high bool) error { got = append(got, set{irq, high}); return nil })
	wr(t, p, 14, 1, 1)
	wr(t, p, 14, 1, 0)
	wr(t, p, 0, 1, 0x80) // !!data
	wr(t, p, 23, 1, 2)
	wr(t, p, 11, 4, 1)      // realmode's outl at 0x200b: one byte per port
	wr(t, p, 5, 2, 0x0100)  // 2-byte: IRQ 5 low, IRQ 6 high
	wr(t, p, 22, 4, 0x0101) // past the last port: dropped
	want := []set{{14, true}, {14, false}, {0, true}, {23, true},
		{11, true}, {12, false}, {13, false}, {14, false},
		{5, false}, {6, true},
		{22, true}, {23, true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("IRQ lines set %v, want %v", got, want)
	}
	if err := NewPCTestDevIRQ(nil).Write(3, []byte{1}); err == nil {
		t.Error("no error without an interrupt controller")
	}
}

func TestPCIConfig(t *testing.T) {
	var ended []int
	p := NewPCIConfig(StopFuncs{OnReset: func() { ended = append(ended, 0) }})
	// Linux's pci_check_type1.
	wr(t, p, 3, 1, 0x01)
	if got := rd(t, p, 0, 4); got != 0 {
		t.Errorf("address after a byte write at 0xcfb = %#x", got)
	}
	wr(t, p, 0, 4, 0x80000000)
	if got := rd(t, p, 0, 4); got != 0x80000000 {
		t.Errorf("address = %#x", got)
	}
	for _, a := range []struct {
		off uint64
		n   int
	}{{4, 4}, {4, 2}, {6, 2}, {7, 1}} {
		if got := rd(t, p, a.off, a.n); got != 1<<(8*a.n)-1 {
			t.Errorf("config data %d bytes at %#x = %#x", a.n, PCIConfigPort+a.off, got)
		}
	}
	wr(t, p, 4, 4, 0x1234) // dropped
	if got := rd(t, p, 4, 4); got != 0xffffffff {
		t.Errorf("config data after a write = %#x", got)
	}
	wr(t, p, 1, 1, 0x02)
	if got := rd(t, p, 1, 1); got != 0x02 || len(ended) != 0 {
		t.Errorf("RCR = %#x, ended %v", got, ended)
	}
	wr(t, p, 1, 1, 0x06)
	if len(ended) != 1 || ended[0] != 0 {
		t.Errorf("RCR reset ended the run %d times, want one reset", len(ended))
	}
}

// rtcRead is CMOS_READ: outb index to 0x70, inb 0x71.
func rtcRead(t *testing.T, r *RTC, idx byte) byte {
	wr(t, r, 0, 1, uint64(idx))
	return byte(rd(t, r, 1, 1))
}

func rtcWrite(t *testing.T, r *RTC, idx, v byte) {
	wr(t, r, 0, 1, uint64(idx))
	wr(t, r, 1, 1, uint64(v))
}

func TestRTCTime(t *testing.T) {
	now := time.Date(2025, time.March, 9, 21, 7, 58, 0, time.UTC) // a Sunday
	r := NewRTC(RTCConfig{Now: func() time.Time { return now }})
	for _, tc := range []struct {
		regB byte
		want [8]byte // sec, min, hour, wday, mday, month, year, century
	}{
		{0x02, [8]byte{0x58, 0x07, 0x21, 0x01, 0x09, 0x03, 0x25, 0x20}}, // 24h BCD (reset)
		{0x06, [8]byte{58, 7, 21, 1, 9, 3, 25, 20}},                     // 24h binary
		{0x00, [8]byte{0x58, 0x07, 0x89, 0x01, 0x09, 0x03, 0x25, 0x20}}, // 12h BCD: 9 PM
		{0x04, [8]byte{58, 7, 0x89, 1, 9, 3, 25, 20}},                   // 12h binary
	} {
		rtcWrite(t, r, rtcRegB, tc.regB)
		for i, reg := range rtcTimeRegs {
			if got := rtcRead(t, r, reg); got != tc.want[i] {
				t.Errorf("B=%#x: register %#x = %#x, want %#x", tc.regB, reg, got, tc.want[i])
			}
		}
	}
	rtcWrite(t, r, rtcRegB, rtcResetB)
	for _, tc := range []struct{ reg, want byte }{
		{rtcRegA, 0x26}, {rtcRegB, 0x02}, {rtcRegC, 0}, {rtcRegD, 0x80},
	} {
		if got := rtcRead(t, r, tc.reg); got != tc.want {
			t.Errorf("register %#x = %#x, want %#x", tc.reg, got, tc.want)
		}
	}
	// NMI mask bit in the index is ignored; the index port reads all ones.
	wr(t, r, 0, 1, 0x80|rtcMinutes)
	if got := rd(t, r, 1, 1); got != 0x07 {
		t.Errorf("minutes with NMI masked = %#x", got)
	}
	if got := rd(t, r, 0, 1); got != 0xff {
		t.Errorf("index port = %#x", got)
	}
	// outw 0x70: index in AL, data in AH.
	wr(t, r, 0, 2, 0x7700|0x40)
	if got := rtcRead(t, r, 0x40); got != 0x77 {
		t.Errorf("CMOS 0x40 after outw = %#x", got)
	}
	// Register A: UIP stays clear; C and D are read-only.
	rtcWrite(t, r, rtcRegA, 0xa6)
	rtcWrite(t, r, rtcRegD, 0)
	if a, d := rtcRead(t, r, rtcRegA), rtcRead(t, r, rtcRegD); a != 0x26 || d != 0x80 {
		t.Errorf("A = %#x, D = %#x", a, d)
	}
}

// TestRTCSet: hwclock's sequence (B.SET, write the time, clear SET) moves
// the clock, and a single register write without SET does too.
func TestRTCSet(t *testing.T) {
	now := time.Date(2025, time.March, 9, 21, 7, 58, 0, time.UTC)
	r := NewRTC(RTCConfig{Now: func() time.Time { return now }})
	rtcWrite(t, r, rtcRegB, rtcResetB|rtcBSET)
	for _, w := range [][2]byte{{rtcSeconds, 0x30}, {rtcMinutes, 0x45}, {rtcHours, 0x01}, {rtcDayOfMonth, 0x29}, {rtcMonth, 0x02}, {rtcYear, 0x24}} {
		rtcWrite(t, r, w[0], w[1])
	}
	now = now.Add(5 * time.Second) // frozen while SET
	if got := rtcRead(t, r, rtcSeconds); got != 0x30 {
		t.Errorf("seconds while SET = %#x", got)
	}
	rtcWrite(t, r, rtcRegB, rtcResetB)
	now = now.Add(10 * time.Second)
	want := [8]byte{0x40, 0x45, 0x01, 0x05, 0x29, 0x02, 0x24, 0x20} // Thu 2024-02-29 01:45:40
	for i, reg := range rtcTimeRegs {
		if got := rtcRead(t, r, reg); got != want[i] {
			t.Errorf("after setting: register %#x = %#x, want %#x", reg, got, want[i])
		}
	}
	rtcWrite(t, r, rtcCentury, 0x21)
	if got := rtcRead(t, r, rtcYear); got != 0x24 || rtcRead(t, r, rtcCentury) != 0x21 {
		t.Errorf("after writing the century: year %#x century %#x", got, rtcRead(t, r, rtcCentury))
	}
	// 12-hour mode: 12 AM is hour 0.
	rtcWrite(t, r, rtcRegB, rtcBSET)
	rtcWrite(t, r, rtcHours, 0x12)
	rtcWrite(t, r, rtcRegB, 0x02)
	if got := rtcRead(t, r, rtcHours); got != 0x00 {
		t.Errorf("12 AM read back in 24h mode as %#x", got)
	}
}

func TestRTCCMOS(t *testing.T) {
	for _, tc := range []struct {
		name         string
		below, above uint64
		cpus         int
		want         map[byte]byte
	}{
		{"128M", 128 << 20, 0, 1, map[byte]byte{
			0x15: 0x80, 0x16: 0x02, 0x17: 0xff, 0x18: 0xff, 0x30: 0xff, 0x31: 0xff, // 127 MiB: capped at 0xffff KiB
			0x34: 0x00, 0x35: 0x07, 0x5b: 0, 0x5c: 0, 0x5d: 0, 0x5f: 0, 0x10: 0, 0x14: 0,
			0x2e: 0x02, 0x2f: 0x80, // 0x80+0x02+0xff+0xff
		}},
		{"3G+5G", 3 << 30, 5 << 30, 4, map[byte]byte{
			0x17: 0xff, 0x18: 0xff, 0x30: 0xff, 0x31: 0xff, 0x34: 0x00, 0x35: 0xbf, // (3G-16M)/64K = 0xbf00
			0x5b: 0x00, 0x5c: 0x40, 0x5d: 0x01, 0x5f: 3, // 5G/64K = 0x14000
		}},
		{"1M", 1 << 20, 0, 0, map[byte]byte{0x17: 0, 0x18: 0, 0x34: 0, 0x35: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRTC(RTCConfig{RAMBelow4G: tc.below, RAMAbove4G: tc.above, CPUs: tc.cpus})
			for idx, want := range tc.want {
				if got := rtcRead(t, r, idx); got != want {
					t.Errorf("CMOS %#x = %#x, want %#x", idx, got, want)
				}
			}
		})
	}
	r := NewRTC(RTCConfig{})
	for idx := byte(0x0e); idx < 0x80; idx++ {
		if idx == rtcCentury {
			continue
		}
		rtcWrite(t, r, idx, idx^0x5a)
		if got := rtcRead(t, r, idx); got != idx^0x5a {
			t.Errorf("CMOS RAM %#x read back %#x", idx, got)
		}
	}
}

// kbdStep is one i8042 access: a write of v to the data or command port,
// or a read of the data (want) or status port, with the IRQ 1 and IRQ 12
// levels after it.
type kbdStep struct {
	cmd, write bool
	v          byte
	kbd, aux   bool
}

func kw(cmd bool, v byte, kbd, aux bool) kbdStep {
	return kbdStep{cmd: cmd, write: true, v: v, kbd: kbd, aux: aux}
}
func kr(cmd bool, want byte, kbd, aux bool) kbdStep {
	return kbdStep{cmd: cmd, v: want, kbd: kbd, aux: aux}
}

// TestI8042Linux replays Linux's i8042 probe (flush, self test, read and
// write the command byte, the AUX loop and interrupt test) and atkbd's
// keyboard probe; every command that expects a reply gets one.
func TestI8042Linux(t *testing.T) {
	kbd, aux := &irqRec{}, &irqRec{}
	k := NewI8042(kbd, aux, nil)
	data, cmd := k.Data(), k.Command()
	const c, d = true, false
	steps := []kbdStep{
		kr(c, 0x1c, false, false), // i8042_flush: nothing waiting
		kw(c, 0xaa, true, false),  // self test
		kr(c, 0x1d, true, false),
		kr(d, 0x55, false, false),
		kw(c, 0x20, true, false), // read CTR
		kr(d, 0x47, false, false),
		kw(c, 0x60, false, false), // write CTR: interrupts off, both ports disabled
		kw(d, 0x74, false, false),
		kr(c, 0x14, false, false), // last write was data
		kw(c, 0xd3, false, false), // AUX loop: 0x5a comes back as aux data
		kw(d, 0x5a, false, false),
		kr(c, 0x35, false, false),
		kr(d, 0x5a, false, false),
		kw(c, 0xa7, false, false), // toggle aux
		kw(c, 0x20, false, false),
		kr(d, 0x74, false, false),
		kw(c, 0xa8, false, false),
		kw(c, 0x20, false, false),
		kr(d, 0x54, false, false),
		kw(c, 0x60, false, false), // AUX IRQ test: aux interrupt on
		kw(d, 0x56, false, false),
		kw(c, 0xd3, false, false),
		kw(d, 0xa5, false, true),
		kr(d, 0xa5, false, false),
		kw(c, 0x60, false, false), // keyboard port on with its interrupt
		kw(d, 0x47, false, false),
		kw(c, 0xab, true, false), // keyboard interface test
		kr(d, 0x00, false, false),
		kw(d, 0xf2, true, false), // atkbd: get ID, translated
		kr(d, 0xfa, true, false), // each read drops the line and raises it for the next byte
		kr(d, 0xab, true, false),
		kr(d, 0x41, false, false),
		kw(d, 0xed, true, false), // set LEDs + parameter
		kr(d, 0xfa, false, false),
		kw(d, 0x00, true, false),
		kr(d, 0xfa, false, false),
		kw(d, 0xff, true, false), // reset
		kr(d, 0xfa, true, false),
		kr(d, 0xaa, false, false),
		kr(d, 0xaa, false, false), // nothing more: the last byte again
		kw(d, 0xee, true, false),
		kr(d, 0xee, false, false),
		kw(d, 0x12, true, false), // not a command: resend
		kr(d, 0xfe, false, false),
		kw(c, 0xd4, false, false), // to the mouse: there is none
		kw(d, 0xf2, false, true),
		kr(c, 0x35, false, true),
		kr(d, 0xfe, false, false),
		kw(c, 0xad, false, false), // keyboard disabled: no keyboard interrupt
		kw(c, 0xd2, false, false),
		kw(d, 0x99, false, false),
		kw(c, 0xae, true, false),
		kr(d, 0x99, false, false),
	}
	for i, s := range steps {
		port, name := data, "data"
		if s.cmd {
			port, name = cmd, "command"
		}
		b := []byte{s.v}
		if s.write {
			if err := port.Write(0, b); err != nil {
				t.Fatalf("step %d: write %#x to %s: %v", i, s.v, name, err)
			}
		} else {
			if err := port.Read(0, b); err != nil {
				t.Fatalf("step %d: read %s: %v", i, name, err)
			}
			if b[0] != s.v {
				t.Errorf("step %d: %s port read %#x, want %#x", i, name, b[0], s.v)
			}
		}
		if kbd.get() != s.kbd || aux.get() != s.aux {
			t.Errorf("step %d (%s %#x): IRQ1 %v IRQ12 %v, want %v %v", i, name, s.v, kbd.get(), aux.get(), s.kbd, s.aux)
		}
	}
	if kbd.redundant+aux.redundant != 0 {
		t.Errorf("%d SetLevel calls repeated the line's level", kbd.redundant+aux.redundant)
	}
}

func TestI8042Reset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cmd   byte
		data  []byte
		reset bool
	}{
		{"0xfe", 0xfe, nil, true},
		{"0xf0", 0xf0, nil, true},
		{"0xfc", 0xfc, nil, true},
		{"0xff", 0xff, nil, false},
		{"0xf1", 0xf1, nil, false},
		{"outport-reset", 0xd1, []byte{0xce}, true},
		{"outport-a20", 0xd1, []byte{0xcf}, false},
		{"0xdd", 0xdd, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ended []int
			k := NewI8042(nil, nil, StopFuncs{OnReset: func() { ended = append(ended, 0) }})
			if err := k.Command().Write(0, []byte{tc.cmd}); err != nil {
				t.Fatal(err)
			}
			for _, b := range tc.data {
				if err := k.Data().Write(0, []byte{b}); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(ended) == 1 && ended[0] == 0; got != tc.reset || len(ended) > 1 {
				t.Errorf("ended %v, want reset %v", ended, tc.reset)
			}
		})
	}
	k := NewI8042(nil, nil, nil)
	k.Command().Write(0, []byte{0xdd})
	k.Command().Write(0, []byte{0xd0})
	if got := rd(t, k.Data(), 0, 1); got != 0xcd {
		t.Errorf("output port after A20 off = %#x, want 0xcd", got)
	}
}

func TestPMTimer(t *testing.T) {
	for _, tc := range []struct {
		at   time.Duration
		want uint32
	}{
		{0, 0},
		{time.Microsecond, 3},
		{time.Second, PMTimerHz},
		{4*time.Second + 700*time.Millisecond, (4*PMTimerHz + 7*PMTimerHz/10) & 0xffffff},
		{10 * time.Hour, uint32((36000 * PMTimerHz) & 0xffffff)},
		{-time.Second, 0},
	} {
		at := tc.at
		p := NewPMTimer(func() time.Duration { return at })
		if got := rd(t, p, 0, 4); got != uint64(tc.want) {
			t.Errorf("at %v: %#x, want %#x", tc.at, got, tc.want)
		}
		if got := rd(t, p, 1, 2); got != uint64(tc.want>>8&0xffff) {
			t.Errorf("at %v: 2 bytes at offset 1 = %#x", tc.at, got)
		}
		if got := rd(t, p, 3, 1); got != 0 {
			t.Errorf("at %v: bits 31:24 = %#x", tc.at, got)
		}
	}
	p := NewPMTimer(nil)
	a := p.Count()
	time.Sleep(2 * time.Millisecond)
	if b := p.Count(); (b-a)&0xffffff < 3579*2 {
		t.Errorf("real clock: %d ticks in 2 ms", (b-a)&0xffffff)
	}
}

// TestPCDevicesConcurrent: every device served from several goroutines at
// once (run with -race).
func TestPCDevicesConcurrent(t *testing.T) {
	devs := []dev{
		NewFwCfg(1<<30, 2), NewPCTestDev(nil), NewPCIConfig(nil), NewRTC(RTCConfig{}),
		NewI8042(&irqRec{}, &irqRec{}, nil).Data(), NewPMTimer(nil),
	}
	k := NewI8042(&irqRec{}, &irqRec{}, nil)
	devs = append(devs, k.Data(), k.Command())
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var b [4]byte
			for i := 0; i < 300; i++ {
				for _, d := range devs {
					off := uint64(i+g) & 1
					d.Write(off, b[:1+i%2])
					d.Read(off, b[:1])
				}
			}
		}(g)
	}
	wg.Wait()
}

// BenchmarkRTCRead is a CMOS_READ of the seconds: index write, data read.
func BenchmarkRTCRead(b *testing.B) {
	r := NewRTC(RTCConfig{})
	idx, v := []byte{rtcSeconds}, []byte{0}
	b.ReportAllocs()
	for b.Loop() {
		r.Write(0, idx)
		r.Read(1, v)
	}
}
