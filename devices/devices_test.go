package devices

import (
	"bytes"
	"sync"
	"testing"
)

func TestUART(t *testing.T) {
	var out bytes.Buffer
	u := NewUART(&out)
	one := func(off uint64) byte {
		var b [1]byte
		if err := u.Read(off, b[:]); err != nil {
			t.Fatal(err)
		}
		return b[0]
	}
	for _, c := range []byte("hi\n") {
		if err := u.Write(uartRBR, []byte{c}); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != "hi\n" {
		t.Errorf("transmitted %q", out.String())
	}
	if got := one(uartLSR); got != lsrTHRE|lsrTEMT {
		t.Errorf("LSR = %#x, want transmitter empty and no data ready", got)
	}
	if got := one(uartIIR); got != iirNoInt {
		t.Errorf("IIR = %#x", got)
	}
	u.Write(uartIIR, []byte{fcrFIFO})
	if got := one(uartIIR); got != iirFIFO|iirNoInt {
		t.Errorf("IIR with FIFOs = %#x", got)
	}
	u.Write(uartSCR, []byte{0x5a})
	if got := one(uartSCR); got != 0x5a {
		t.Errorf("SCR = %#x", got)
	}
	// Divisor latch: DLAB redirects offsets 0 and 1 and transmits nothing.
	u.Write(uartLCR, []byte{lcrDLAB | 3})
	u.Write(uartRBR, []byte{0x01})
	u.Write(uartIER, []byte{0x00})
	if one(uartRBR) != 0x01 || out.Len() != 3 {
		t.Errorf("DLL = %#x, output %q", one(uartRBR), out.String())
	}
	u.Write(uartLCR, []byte{3})
	if got := one(uartRBR); got != 0 {
		t.Errorf("RBR with nothing received = %#x", got)
	}
	// Loopback: MCR DTR|RTS show as DSR|CTS; DCD dropped (delta DCD).
	u.Write(uartMCR, []byte{mcrLoop | 0x03})
	if got := one(uartMSR); got != 0x38 {
		t.Errorf("MSR in loopback = %#x, want 0x38", got)
	}
}

// stopRecorder records a device's requests to end the run.
type stopRecorder struct {
	exits  []int
	resets int
}

func (s *stopRecorder) Exit(status int) { s.exits = append(s.exits, status) }
func (s *stopRecorder) Reset()          { s.resets++ }

func TestDebugExit(t *testing.T) {
	var s stopRecorder
	d := NewDebugExit(DebugExitWalkvm, &s)
	if err := d.Write(0, []byte{0x2a, 0x01}); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(0, []byte{0x3f, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if len(s.exits) != 2 || s.exits[0] != 0x2a || s.exits[1] != 0x3f || s.resets != 0 {
		t.Fatalf("requests %+v", s)
	}
	var b [1]byte
	if err := d.Read(0, b[:]); err != nil || b[0] != 0 {
		t.Fatalf("read %#x, %v", b[0], err)
	}
}

func TestTestWindow(t *testing.T) {
	w := NewTestWindow(TestWindowHigh, TestWindowSize)
	if err := w.Write(0x10, []byte{0x78, 0x56, 0x34, 0x12}); err != nil {
		t.Fatal(err)
	}
	var b [2]byte
	if err := w.Read(0x12, b[:]); err != nil || b != [2]byte{0x34, 0x12} {
		t.Fatalf("read back %x, %v", b, err)
	}
	want := []Access{
		{GPA: TestWindowHigh + 0x10, Size: 4, Write: true, Value: 0x12345678},
		{GPA: TestWindowHigh + 0x12, Size: 2, Value: 0x1234},
	}
	got := w.Accesses()
	if len(got) != len(want) {
		t.Fatalf("recorded %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("access %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for i := 0; i < RecordLimit+10; i++ {
		w.Write(0, b[:1])
	}
	if r, wr := w.Counts(); r != 1 || wr != RecordLimit+11 {
		t.Errorf("counts %d reads %d writes", r, wr)
	}
	if len(w.Accesses()) != RecordLimit {
		t.Errorf("record grew past its limit: %d", len(w.Accesses()))
	}
}

// vCPUs share a test window: concurrent accesses of every size each land
// whole, and each is counted (go test -race checks the locking).
func TestTestWindowConcurrent(t *testing.T) {
	w := NewTestWindow(TestWindowHigh, TestWindowSize)
	const vcpus, rounds = 4, 300
	sizes := []int{1, 2, 3, 4, 8}
	var wg sync.WaitGroup
	for v := range vcpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := uint64(v) * 0x100
			for i := range rounds {
				for j, n := range sizes {
					off := base + uint64(j)*0x10
					b := make([]byte, n)
					for k := range b {
						b[k] = byte(v<<4 | i + k)
					}
					if err := w.Write(off, b); err != nil {
						t.Error(err)
						return
					}
					got := make([]byte, n)
					if err := w.Read(off, got); err != nil || string(got) != string(b) {
						t.Errorf("vCPU %d read back % x, wrote % x (%v)", v, got, b, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	n := uint64(vcpus * rounds * len(sizes))
	if r, wr := w.Counts(); r != n || wr != n {
		t.Errorf("counts %d reads, %d writes, want %d each", r, wr, n)
	}
	if len(w.Accesses()) != RecordLimit {
		t.Errorf("%d accesses recorded, want %d", len(w.Accesses()), RecordLimit)
	}
}

// copyAccess copies as copy does, whatever the sizes.
func TestCopyAccess(t *testing.T) {
	src := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, c := range []struct{ dst, src int }{
		{1, 1}, {2, 2}, {3, 3}, {4, 4}, {8, 8}, {16, 16}, {4, 16}, {16, 4}, {2, 8}, {8, 1}, {0, 4}, {4, 0},
	} {
		got, want := make([]byte, c.dst), make([]byte, c.dst)
		copyAccess(got, src[:c.src])
		copy(want, src[:c.src])
		if string(got) != string(want) {
			t.Errorf("%d bytes into %d: % x, want % x", c.src, c.dst, got, want)
		}
	}
}

func BenchmarkTestWindowWrite(b *testing.B) {
	w := NewTestWindow(TestWindowHigh, TestWindowSize)
	var v [4]byte
	b.ReportAllocs()
	for b.Loop() {
		w.Write(0x40, v[:])
	}
}
