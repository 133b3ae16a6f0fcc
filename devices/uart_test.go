package devices

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// irqRec is an IRQLine that records what a device drives. It counts rising
// edges (what an edge-triggered IOAPIC pin latches) and calls that repeat
// the present level, which a device must not make.
type irqRec struct {
	mu        sync.Mutex
	level     bool
	rises     int
	edges     int // rising edges not yet taken by takeEdges
	calls     int
	redundant int
}

func (r *irqRec) SetLevel(high bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if high == r.level {
		r.redundant++
	}
	if high && !r.level {
		r.rises++
		r.edges++
	}
	r.level = high
	return nil
}

func (r *irqRec) get() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.level
}

// takeEdges returns whether an edge was latched and clears the latch, as an
// interrupt controller's IRR bit does when the interrupt is delivered.
func (r *irqRec) takeEdges() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.edges > 0
	r.edges = 0
	return e
}

// uartStep is one register access, the value a read must return (want < 0:
// any), and the IIR (read without side effects) and IRQ line level after it.
type uartStep struct {
	write bool
	off   uint64
	v     byte
	want  int
	iir   byte
	line  bool
}

func uw(off uint64, v, iir byte, line bool) uartStep {
	return uartStep{write: true, off: off, v: v, want: -1, iir: iir, line: line}
}

func ur(off uint64, want int, iir byte, line bool) uartStep {
	return uartStep{off: off, want: want, iir: iir, line: line}
}

func (u *UART) peekIIR() byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.iir()
}

func runUARTSteps(t *testing.T, u *UART, irq *irqRec, steps []uartStep) {
	t.Helper()
	for i, s := range steps {
		b := []byte{s.v}
		var err error
		what := fmt.Sprintf("step %d: write %#x to offset %d", i, s.v, s.off)
		if s.write {
			err = u.Write(s.off, b)
		} else {
			what = fmt.Sprintf("step %d: read offset %d", i, s.off)
			err = u.Read(s.off, b)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if s.want >= 0 && b[0] != byte(s.want) {
			t.Errorf("%s = %#x, want %#x", what, b[0], s.want)
		}
		if got := u.peekIIR(); got != s.iir {
			t.Errorf("%s: IIR then %#x, want %#x", what, got, s.iir)
		}
		if got := irq.get(); got != s.line {
			t.Errorf("%s: IRQ line %v, want %v", what, got, s.line)
		}
	}
	if irq.redundant != 0 {
		t.Errorf("%d SetLevel calls repeated the line's level", irq.redundant)
	}
}

// TestUARTLinuxProbe replays the register accesses of Linux 6.1's 8250
// driver: autoconfig (scratch test on IER, loopback test, the LCR 0xBF
// EFR probe, FIFO test reading IIR bits 7:6 = 3, the 16550A variant probes
// that must all fail so the port stays a 16550A), then startup (FIFO
// clears, the THRE re-assertion test and the TXEN test) and set_termios.
func TestUARTLinuxProbe(t *testing.T) {
	irq := &irqRec{}
	u := NewUARTIRQ(nil, irq)
	const (
		none = iirNoInt
		fifo = iirFIFO | iirNoInt
	)
	steps := []uartStep{
		// autoconfig: IER scratch test.
		ur(uartIER, 0, none, false),
		uw(uartIER, 0, none, false),
		ur(uartIER, 0, none, false),
		uw(uartIER, 0x0f, iirTHRI, false), // THRI on: THRE pending, but OUT2 is off
		ur(uartIER, 0x0f, iirTHRI, false),
		uw(uartIER, 0, none, false),
		ur(uartMCR, 0, none, false),
		ur(uartLCR, 0, none, false),
		// Loopback test: MCR LOOP|OUT2|RTS reads back DCD|CTS in MSR[7:4].
		uw(uartMCR, 0x1a, none, false),
		ur(uartMSR, 0x92, none, false), // DCD|CTS, DSR dropped: delta DSR
		uw(uartMCR, 0, none, false),
		// EFR probe with LCR 0xBF: a 16550A has no EFR, offset 2 is FCR.
		uw(uartLCR, 0xbf, none, false),
		uw(uartIIR, 0, none, false),
		uw(uartLCR, 0, none, false),
		uw(uartIIR, fcrFIFO, fifo, false),
		ur(uartIIR, fifo, fifo, false), // >>6 == 3: 16550A
		// autoconfig_16550a: EFR with DLAB (ST16C650V1) must read non-zero.
		uw(uartLCR, 0x80, fifo, false),
		ur(uartIIR, fifo, fifo, false),
		uw(uartLCR, 0xbf, fifo, false),
		ur(uartIIR, fifo, fifo, false),
		// National Semiconductor SuperIO: EXCR1 must not track MCR.LOOP.
		uw(uartLCR, 0, fifo, false),
		ur(uartMCR, 0, fifo, false),
		uw(uartLCR, 0xe0, fifo, false),
		ur(uartIIR, fifo, fifo, false),
		uw(uartLCR, 0, fifo, false),
		uw(uartMCR, mcrLoop, fifo, false),
		uw(uartLCR, 0xe0, fifo, false),
		ur(uartIIR, fifo, fifo, false),
		uw(uartLCR, 0, fifo, false),
		uw(uartMCR, 0, fifo, false),
		// TI16750: IIR bit 5 must stay clear with FCR bit 5.
		uw(uartIIR, 0x21, fifo, false),
		ur(uartIIR, fifo, fifo, false),
		uw(uartIIR, 0x01, fifo, false),
		uw(uartLCR, 0x80, fifo, false),
		uw(uartIIR, 0x21, fifo, false),
		ur(uartIIR, fifo, fifo, false),
		uw(uartIIR, 0x01, fifo, false),
		uw(uartLCR, 0, fifo, false),
		// XScale: IER bit 6 (UUE) must not stick.
		ur(uartIER, 0, fifo, false),
		uw(uartIER, 0x40, fifo, false),
		ur(uartIER, 0, fifo, false),
		uw(uartIER, 0, fifo, false),
		// Restore, clear FIFOs, clear IER.
		uw(uartLCR, 0, fifo, false),
		uw(uartMCR, 0, fifo, false),
		uw(uartIIR, fcrFIFO, fifo, false),
		uw(uartIIR, fcrFIFO|fcrRXCLR|fcrTXCLR, fifo, false),
		uw(uartIIR, 0, none, false),
		ur(uartRBR, 0, none, false),
		uw(uartIER, 0, none, false),
		// startup: clear FIFOs, read LSR/RBR/IIR/MSR (LSR must not be 0xff).
		uw(uartIIR, fcrFIFO, fifo, false),
		uw(uartIIR, fcrFIFO|fcrRXCLR|fcrTXCLR, fifo, false),
		uw(uartIIR, 0, none, false),
		ur(uartLSR, 0x60, none, false),
		ur(uartRBR, 0, none, false),
		ur(uartIIR, none, none, false),
		ur(uartMSR, 0xbb, none, false), // DCD|DSR|CTS and the deltas of the loopback toggles
		uw(uartLCR, 0x03, none, false),
		// THRE test: IIR says THRE, reading it clears it, IER 0 -> THRI
		// raises it again (else Linux marks UART_BUG_THRE).
		uw(uartIER, ierTHRI, iirTHRI, false),
		ur(uartIIR, iirTHRI, none, false),
		uw(uartIER, 0, none, false),
		uw(uartIER, ierTHRI, iirTHRI, false),
		ur(uartIIR, iirTHRI, none, false),
		uw(uartIER, 0, none, false),
		// set_mctrl: DTR|RTS|OUT2 connects the interrupt to the line.
		uw(uartMCR, mcrOUT2|mcrRTS|mcrDTR, none, false),
		// TXEN test: the line rises with THRI and falls when IIR is read.
		uw(uartIER, ierTHRI, iirTHRI, true),
		ur(uartLSR, 0x60, iirTHRI, true),
		ur(uartIIR, iirTHRI, none, false),
		uw(uartIER, 0, none, false),
		ur(uartLSR, 0x60, none, false),
		ur(uartRBR, 0, none, false),
		ur(uartIIR, none, none, false),
		ur(uartMSR, 0xb0, none, false),
		uw(uartIER, ierRLSI|ierRDI, none, false),
		// set_termios: 115200 8N1, FIFO with an 8-byte trigger.
		uw(uartLCR, 0x83, none, false),
		uw(uartRBR, 1, none, false),
		uw(uartIER, 0, none, false),
		uw(uartLCR, 0x03, none, false),
		ur(uartIER, ierRLSI|ierRDI, none, false),
		uw(uartIIR, fcrFIFO, fifo, false),
		uw(uartIIR, 0x81, fifo, false),
	}
	runUARTSteps(t, u, irq, steps)
	if irq.rises != 1 {
		t.Errorf("line rose %d times, want once (TXEN test)", irq.rises)
	}
}

// linux8250 is the part of Linux's 8250 driver that moves bytes by
// interrupt: start_tx sets IER.THRI, the handler loops over IIR/LSR and
// writes at most a FIFO's worth (16 bytes) per THRE interrupt, stop_tx
// clears IER.THRI when the buffer is empty; received bytes are read while
// LSR.DR is set.
type linux8250 struct {
	t    *testing.T
	u    *UART
	irq  *irqRec
	ier  byte
	xmit []byte
	rx   []byte
}

func (d *linux8250) in(off uint64) byte {
	var b [1]byte
	if err := d.u.Read(off, b[:]); err != nil {
		d.t.Fatal(err)
	}
	return b[0]
}

func (d *linux8250) out(off uint64, v byte) {
	if err := d.u.Write(off, []byte{v}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *linux8250) write(s string) {
	d.xmit = append(d.xmit, s...)
	if d.ier&ierTHRI == 0 {
		d.ier |= ierTHRI
		d.out(uartIER, d.ier)
	}
}

func (d *linux8250) handleIRQ() bool {
	iir := d.in(uartIIR)
	if iir&iirNoInt != 0 {
		return false
	}
	lsr := d.in(uartLSR)
	for n := 0; lsr&(lsrDR|lsrBI) != 0 && n < 256; n++ {
		d.rx = append(d.rx, d.in(uartRBR))
		lsr = d.in(uartLSR)
	}
	d.in(uartMSR)
	if lsr&lsrTHRE != 0 && d.ier&ierTHRI != 0 {
		for n := 0; n < UARTFIFOSize && len(d.xmit) > 0; n++ {
			d.out(uartRBR, d.xmit[0])
			d.xmit = d.xmit[1:]
		}
		if len(d.xmit) == 0 {
			d.ier &^= ierTHRI
			d.out(uartIER, d.ier)
		}
	}
	return true
}

// deliver runs the interrupt handler for every latched edge, looping like
// serial8250_interrupt until a pass finds nothing to do.
func (d *linux8250) deliver() {
	for d.irq.takeEdges() {
		for d.handleIRQ() {
		}
	}
}

func newLinux8250(t *testing.T, out *bytes.Buffer) *linux8250 {
	irq := &irqRec{}
	d := &linux8250{t: t, u: NewUARTIRQ(out, irq), irq: irq}
	d.out(uartLCR, 0x03)
	d.out(uartMCR, mcrOUT2|mcrRTS|mcrDTR)
	d.out(uartIIR, 0x81)
	d.ier = ierRLSI | ierRDI
	d.out(uartIER, d.ier)
	return d
}

// TestUARTLinuxTTY: tty writes longer than the FIFO go out completely by
// THRE interrupts alone (without them Linux stalls after 16 bytes), and
// typed bytes arrive by received-data and timeout interrupts.
func TestUARTLinuxTTY(t *testing.T) {
	var out bytes.Buffer
	d := newLinux8250(t, &out)
	msg := strings.Repeat("walkvm boots Linux; ", 10)
	for i := 0; i < len(msg); i += 37 {
		d.write(msg[i:min(i+37, len(msg))])
		d.deliver()
	}
	if out.String() != msg {
		t.Fatalf("transmitted %d of %d bytes: %q", out.Len(), len(msg), out.String())
	}
	if d.ier&ierTHRI != 0 || d.irq.get() {
		t.Errorf("after the write: IER %#x, line %v; want THRI off, line low", d.ier, d.irq.get())
	}
	if d.irq.rises < len(msg) {
		t.Errorf("%d rising edges for %d bytes, want one per byte at least", d.irq.rises, len(msg))
	}
	typed := []byte("ls -l\r")
	n, err := d.u.Receive(typed)
	if err != nil || n != len(typed) {
		t.Fatalf("Receive = %d, %v", n, err)
	}
	if got := d.u.peekIIR(); got != iirFIFO|iirCTI {
		t.Errorf("IIR with %d bytes under an 8-byte trigger = %#x, want timeout 0xcc", n, got)
	}
	d.deliver()
	if string(d.rx) != string(typed) || d.irq.get() {
		t.Errorf("received %q, line %v", d.rx, d.irq.get())
	}
	if d.irq.redundant != 0 {
		t.Errorf("%d SetLevel calls repeated the line's level", d.irq.redundant)
	}
}

// TestUARTPolled is kvm-unit-tests' serial init and output: no interrupt
// line, LSR bit 5 polled before each byte.
func TestUARTPolled(t *testing.T) {
	var out bytes.Buffer
	u := NewUART(&out)
	for _, w := range [][2]byte{{uartLCR, 0x03}, {uartLCR, 0x83}, {uartRBR, 0x01}, {uartIER, 0}, {uartLCR, 0x03}, {uartIER, 0}, {uartIIR, 0}, {uartMCR, 0x03}} {
		if err := u.Write(uint64(w[0]), w[1:]); err != nil {
			t.Fatal(err)
		}
	}
	var b [1]byte
	for _, c := range []byte("PASS\n") {
		if err := u.Read(uartLSR, b[:]); err != nil || b[0]&lsrTHRE == 0 {
			t.Fatalf("LSR = %#x, %v", b[0], err)
		}
		if err := u.Write(uartRBR, []byte{c}); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != "PASS\n" {
		t.Errorf("transmitted %q", out.String())
	}
}

// TestUARTPriority: with every interrupt enabled and every source active,
// IIR reports them in the datasheet's order as each is cleared.
func TestUARTPriority(t *testing.T) {
	irq := &irqRec{}
	u := NewUARTIRQ(nil, irq)
	const on = true
	runUARTSteps(t, u, irq, []uartStep{
		uw(uartMCR, mcrOUT2, iirNoInt, false),
		uw(uartMCR, mcrOUT2|mcrLoop, iirNoInt, false), // loopback: DSR and CTS drop (deltas)
		uw(uartRBR, 'a', iirNoInt, false),             // looped back into RBR
		uw(uartRBR, 'b', iirNoInt, false),             // RBR full, FIFOs off: overrun
		uw(uartMCR, mcrOUT2, iirNoInt, false),
		uw(uartIER, 0x0f, iirRLSI, on),
		ur(uartIIR, iirRLSI, iirRLSI, on), // reading IIR does not clear line status
		ur(uartLSR, lsrTHRE|lsrTEMT|lsrOE|lsrDR, iirRDI, on),
		ur(uartLSR, lsrTHRE|lsrTEMT|lsrDR, iirRDI, on),
		ur(uartRBR, 'a', iirTHRI, on),
		ur(uartIIR, iirTHRI, iirMSI, on), // THRE cleared by the read
		ur(uartMSR, 0xb0|msrDCTS|msrDDSR, iirNoInt, false),
		uw(uartRBR, 'c', iirTHRI, on), // THR write: THRE again
		uw(uartIER, 0x0d, iirNoInt, false),
		uw(uartIER, 0x0f, iirTHRI, on),
		uw(uartMCR, 0, iirTHRI, false), // OUT2 off disconnects the line
		uw(uartMCR, mcrOUT2, iirTHRI, on),
		uw(uartMCR, mcrOUT2|mcrLoop, iirTHRI, false), // loopback disconnects it too
		uw(uartIER, 0, iirNoInt, false),
	})
}

// TestUARTTrigger: with the FIFO on, data below the trigger level reports a
// character timeout, at or above it received data; the FIFO holds 16 bytes
// and Receive says how many fitted.
func TestUARTTrigger(t *testing.T) {
	for _, tc := range []struct {
		fcr     byte
		trigger int
	}{{0x01, 1}, {0x41, 4}, {0x81, 8}, {0xc1, 14}} {
		t.Run(fmt.Sprintf("fcr%#x", tc.fcr), func(t *testing.T) {
			u := NewUART(nil)
			u.Write(uartIIR, []byte{tc.fcr})
			u.Write(uartIER, []byte{ierRDI})
			for i := 1; i <= UARTFIFOSize; i++ {
				if n, err := u.Receive([]byte{byte(i)}); n != 1 || err != nil {
					t.Fatalf("byte %d: Receive = %d, %v", i, n, err)
				}
				want := byte(iirFIFO | iirCTI)
				if i >= tc.trigger {
					want = iirFIFO | iirRDI
				}
				if got := u.peekIIR(); got != want {
					t.Errorf("%d bytes: IIR %#x, want %#x", i, got, want)
				}
			}
			if n, _ := u.Receive([]byte{0xee}); n != 0 {
				t.Errorf("a full FIFO took %d more bytes", n)
			}
			var b [1]byte
			for i := 1; i <= UARTFIFOSize; i++ {
				u.Read(uartRBR, b[:])
				if b[0] != byte(i) {
					t.Fatalf("byte %d read as %d", i, b[0])
				}
			}
			if u.Read(uartLSR, b[:]); b[0] != lsrTHRE|lsrTEMT {
				t.Errorf("LSR after draining = %#x (no overrun: Receive refused the extra byte)", b[0])
			}
		})
	}
}

// TestUARTReceive: Receive honours the FIFO mode and loopback, RXSpace
// signals a read, and FCR clears the receive FIFO.
func TestUARTReceive(t *testing.T) {
	u := NewUART(nil)
	if n, _ := u.Receive([]byte("xyz")); n != 1 {
		t.Errorf("FIFOs off: Receive took %d bytes, want 1 (RBR)", n)
	}
	var b [1]byte
	u.Read(uartRBR, b[:])
	select {
	case <-u.RXSpace():
	default:
		t.Error("RXSpace did not signal after a read")
	}
	if u.Read(uartRBR, b[:]); b[0] != 'x' {
		t.Errorf("RBR read again = %q, want the last byte 'x'", b[0])
	}
	u.Write(uartIIR, []byte{fcrFIFO})
	if n, _ := u.Receive([]byte(strings.Repeat("y", 20))); n != UARTFIFOSize {
		t.Errorf("FIFO on: Receive took %d bytes", n)
	}
	u.Write(uartIIR, []byte{fcrFIFO | fcrRXCLR})
	if u.Read(uartLSR, b[:]); b[0]&lsrDR != 0 {
		t.Errorf("LSR after FCR clear = %#x", b[0])
	}
	u.Write(uartMCR, []byte{mcrLoop})
	if n, _ := u.Receive([]byte("z")); n != 0 {
		t.Errorf("loopback: Receive took %d bytes", n)
	}
	u.Write(uartRBR, []byte{'q'})
	if u.Read(uartRBR, b[:]); b[0] != 'q' {
		t.Errorf("loopback read %q", b[0])
	}
}

// TestUARTConcurrent: guest accesses from several vCPUs and the terminal's
// Receive at once (run with -race).
func TestUARTConcurrent(t *testing.T) {
	irq := &irqRec{}
	u := NewUARTIRQ(nil, irq)
	u.Write(uartMCR, []byte{mcrOUT2})
	u.Write(uartIIR, []byte{fcrFIFO})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			for i := 0; i < 500; i++ {
				u.Write(uartIER, []byte{byte(i & 0x0f)})
				u.Read(uartIIR, b[:])
				u.Write(uartRBR, []byte{'.'})
				u.Read(uartRBR, b[:])
				u.Receive([]byte("ab"))
			}
		}()
	}
	wg.Wait()
	if irq.redundant != 0 {
		t.Errorf("%d SetLevel calls repeated the line's level", irq.redundant)
	}
}

// BenchmarkUARTTransmit is one THR write with THRE interrupts on: the
// console's hot path. It must not allocate.
func BenchmarkUARTTransmit(b *testing.B) {
	u := NewUARTIRQ(nil, &irqRec{})
	u.Write(uartMCR, []byte{mcrOUT2})
	u.Write(uartIER, []byte{ierTHRI})
	c := []byte{'x'}
	b.ReportAllocs()
	for b.Loop() {
		u.Write(uartRBR, c)
	}
}
