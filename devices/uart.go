package devices

import (
	"fmt"
	"io"
	"sync"
)

// 16550A register offsets (DLAB=0 unless noted) and bits, in the names of
// the National Semiconductor PC16550D datasheet.
const (
	uartRBR = 0 // receive buffer (read) / THR transmit holding (write) / DLL with DLAB
	uartIER = 1 // interrupt enable / DLM with DLAB
	uartIIR = 2 // interrupt identification (read) / FCR FIFO control (write)
	uartLCR = 3
	uartMCR = 4
	uartLSR = 5
	uartMSR = 6
	uartSCR = 7

	ierRDI  = 0x01 // received data available
	ierTHRI = 0x02 // transmitter holding register empty
	ierRLSI = 0x04 // receiver line status
	ierMSI  = 0x08 // modem status

	iirNoInt = 0x01
	iirMSI   = 0x00 // modem status changed (lowest priority)
	iirTHRI  = 0x02 // transmitter holding register empty
	iirRDI   = 0x04 // received data at or above the trigger level
	iirRLSI  = 0x06 // receiver line status: overrun, parity, framing, break (highest)
	iirCTI   = 0x0c // character timeout: data below the trigger level (priority of RDI)
	iirID    = 0x0f
	iirFIFO  = 0xc0 // both bits set while FCR enables the FIFOs

	fcrFIFO   = 0x01 // enable both FIFOs
	fcrRXCLR  = 0x02 // clear the receive FIFO
	fcrTXCLR  = 0x04 // clear the transmit FIFO
	fcrKeep   = 0xc9 // bits that stick: trigger level, DMA mode, enable
	fcrTrigMs = 0xc0 // receive trigger level: 1, 4, 8 or 14 bytes

	lcrDLAB = 0x80

	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08 // on a PC, gates the UART's interrupt onto the ISA IRQ line
	mcrLoop = 0x10

	lsrDR   = 0x01 // data ready
	lsrOE   = 0x02 // overrun error
	lsrBI   = 0x10 // break interrupt
	lsrErr  = 0x1e // overrun, parity, framing, break: the line-status interrupt's sources
	lsrTHRE = 0x20 // transmit holding register empty
	lsrTEMT = 0x40 // transmitter empty

	msrDCTS  = 0x01
	msrDDSR  = 0x02
	msrTERI  = 0x04
	msrDDCD  = 0x08
	msrCTS   = 0x10
	msrDSR   = 0x20
	msrRI    = 0x40
	msrDCD   = 0x80
	msrDelta = 0x0f

	// UARTFIFOSize is the depth of the 16550A's receive FIFO.
	UARTFIFOSize = 16
)

// uartTrigger is the receive FIFO trigger level for FCR bits 7:6.
var uartTrigger = [4]int{1, 4, 8, 14}

// UART is a 16550A. Transmission is instantaneous: a byte written to THR
// goes to Out at once, so LSR always reports the transmitter empty (THRE and
// TEMT) and, with IER.THRI set, a transmitter-holding-register-empty
// interrupt is pending again right after every THR write. Received bytes come
// from Receive into a 16-byte FIFO (one byte, RBR, while the FIFOs are off).
//
// The interrupt identification follows the datasheet's priorities: line
// status (IIR 0x06) over received data (0x04, or 0x0c "character timeout"
// while the FIFO holds fewer bytes than its trigger level: there is no
// timer, so the timeout counts as elapsed at once) over THRE (0x02) over
// modem status (0x00). Reading IIR while it reports THRE clears that
// interrupt until the next THR write or an IER write that turns THRI on, as
// on a real 16550 and in QEMU (Linux's 8250 driver depends on both).
//
// The interrupt output reaches the IRQ line only while MCR.OUT2 is set and
// loopback is off, as on a PC's COM port. The line is recomputed after every
// register access that can change it (reads of IER, LCR, MCR and SCR and
// writes of LCR, SCR and the divisor latch cannot) and every Receive, and
// driven only when its level changes; a THR write that clears a pending
// THRE interrupt and raises it again when the byte has gone drives the
// line low and then high, so an edge-triggered interrupt controller sees
// one edge per byte as it would from hardware.
//
// The modem inputs read DCD, DSR and CTS asserted (a terminal is attached);
// in loopback they follow MCR (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD) and
// transmitted bytes come back on the receive side.
type UART struct {
	mu  sync.Mutex
	Out io.Writer // transmitted bytes

	irq  IRQLine
	line bool // level last driven on irq

	ier, lcr, mcr, scr, fcr byte
	dll, dlm                byte
	lsrErr                  byte // sticky LSR error bits (overrun, break), cleared by reading LSR
	msrDelta                byte // MSR delta bits, cleared by reading MSR
	thrIPending             bool

	rx     [UARTFIFOSize]byte
	rxHead int
	rxLen  int
	rbr    byte // the byte last read from RBR, read again when nothing is waiting

	rxSpace chan struct{}
	tx      [1]byte
}

// NewUART returns a UART writing to out (nil discards) whose interrupt goes
// nowhere: a guest that polls LSR (walkvm's own guests, kvm-unit-tests) needs
// no more.
func NewUART(out io.Writer) *UART { return NewUARTIRQ(out, nil) }

// NewUARTIRQ returns a UART writing to out (nil discards) that drives irq (nil:
// no interrupt line), as Linux's 8250 driver needs (IRQ 4 for COM1).
func NewUARTIRQ(out io.Writer, irq IRQLine) *UART {
	if out == nil {
		out = io.Discard
	}
	return &UART{Out: out, irq: irq, dll: 0x0c, rxSpace: make(chan struct{}, 1)} // 9600 baud reset divisor
}

// Read implements memory.Device.
func (u *UART) Read(off uint64, data []byte) error {
	var err error
	u.mu.Lock()
	for i := range data {
		if data[i], err = u.readReg(off + uint64(i)); err != nil {
			break
		}
	}
	u.mu.Unlock()
	return err
}

// Write implements memory.Device.
func (u *UART) Write(off uint64, data []byte) error {
	var err error
	u.mu.Lock()
	for i, v := range data {
		if err = u.writeReg(off+uint64(i), v); err != nil {
			break
		}
	}
	u.mu.Unlock()
	return err
}

// Receive puts bytes from the terminal into the receive FIFO and returns how
// many fit (none in loopback, where the serial input is disconnected). The
// caller keeps the rest and tries again after RXSpace signals.
func (u *UART) Receive(b []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mcr&mcrLoop != 0 {
		return 0, nil
	}
	n := min(len(b), u.rxCap()-u.rxLen)
	for _, c := range b[:n] {
		u.push(c)
	}
	return n, u.sync()
}

// RXSpace signals (without blocking the guest) each time the guest takes a
// byte from the receive FIFO, so a terminal reader holding bytes that did not
// fit knows when to try again.
func (u *UART) RXSpace() <-chan struct{} { return u.rxSpace }

func (u *UART) fifo() bool { return u.fcr&fcrFIFO != 0 }

func (u *UART) rxCap() int {
	if u.fifo() {
		return UARTFIFOSize
	}
	return 1
}

// push appends a received byte; a full FIFO (or a full RBR with the FIFOs
// off) keeps its contents and reports an overrun.
func (u *UART) push(c byte) {
	if u.rxLen == u.rxCap() {
		u.lsrErr |= lsrOE
		return
	}
	u.rx[(u.rxHead+u.rxLen)%UARTFIFOSize] = c
	u.rxLen++
}

func (u *UART) clearRX() {
	u.rxHead, u.rxLen = 0, 0
	u.lsrErr &^= lsrBI
}

func (u *UART) lsr() byte {
	v := lsrTHRE | lsrTEMT | u.lsrErr
	if u.rxLen > 0 {
		v |= lsrDR
	}
	return v
}

// modemInputs is the MSR's upper nibble: CTS, DSR, RI and DCD.
func (u *UART) modemInputs() byte {
	if u.mcr&mcrLoop == 0 {
		return msrDCD | msrDSR | msrCTS
	}
	m := u.mcr
	return (m&mcrRTS)<<3 | (m&mcrDTR)<<5 | (m&mcrOUT1)<<4 | (m&mcrOUT2)<<4
}

// pending is the interrupt identification (IIR bits 3:0) of the
// highest-priority enabled interrupt, or iirNoInt.
func (u *UART) pending() byte {
	switch {
	case u.ier&ierRLSI != 0 && u.lsrErr&lsrErr != 0:
		return iirRLSI
	case u.ier&ierRDI != 0 && u.rxLen > 0:
		if u.fifo() && u.rxLen < uartTrigger[u.fcr>>6] {
			return iirCTI
		}
		return iirRDI
	case u.ier&ierTHRI != 0 && u.thrIPending:
		return iirTHRI
	case u.ier&ierMSI != 0 && u.msrDelta != 0:
		return iirMSI
	}
	return iirNoInt
}

func (u *UART) iir() byte {
	v := u.pending()
	if u.fifo() {
		v |= iirFIFO
	}
	return v
}

// sync drives the interrupt line to its present level if that changed.
func (u *UART) sync() error {
	level := u.pending() != iirNoInt && u.mcr&(mcrOUT2|mcrLoop) == mcrOUT2
	if level == u.line || u.irq == nil {
		u.line = level
		return nil
	}
	if err := u.irq.SetLevel(level); err != nil {
		return fmt.Errorf("uart: drive IRQ line %v: %w", level, err)
	}
	u.line = level
	return nil
}

func (u *UART) readReg(off uint64) (byte, error) {
	dlab := u.lcr&lcrDLAB != 0
	switch off {
	case uartRBR:
		if dlab {
			return u.dll, nil
		}
		if u.rxLen > 0 {
			u.rbr = u.rx[u.rxHead]
			u.rxHead = (u.rxHead + 1) % UARTFIFOSize
			u.rxLen--
			if u.rxLen == 0 {
				u.lsrErr &^= lsrBI
			}
			select {
			case u.rxSpace <- struct{}{}:
			default:
			}
		}
		return u.rbr, u.sync()
	case uartIER:
		if dlab {
			return u.dlm, nil
		}
		return u.ier, nil
	case uartIIR:
		v := u.iir()
		if v&iirID == iirTHRI {
			u.thrIPending = false
			return v, u.sync()
		}
		return v, nil
	case uartLCR:
		return u.lcr, nil
	case uartMCR:
		return u.mcr, nil
	case uartLSR:
		v := u.lsr()
		u.lsrErr = 0
		return v, u.sync()
	case uartMSR:
		v := u.modemInputs() | u.msrDelta
		u.msrDelta = 0
		return v, u.sync()
	case uartSCR:
		return u.scr, nil
	}
	return 0xff, nil
}

func (u *UART) writeReg(off uint64, v byte) error {
	dlab := u.lcr&lcrDLAB != 0
	switch off {
	case uartRBR:
		if dlab {
			u.dll = v
			return nil
		}
		return u.transmit(v)
	case uartIER:
		if dlab {
			u.dlm = v
			return nil
		}
		changed := (u.ier ^ v) & 0x0f
		u.ier = v & 0x0f
		if changed&ierTHRI != 0 {
			// Turning THRI on with THR empty raises the interrupt even if
			// reading IIR had cleared it.
			u.thrIPending = u.ier&ierTHRI != 0
		}
	case uartIIR: // FCR
		if (u.fcr^v)&fcrFIFO != 0 {
			v |= fcrRXCLR | fcrTXCLR
		}
		if v&fcrRXCLR != 0 {
			u.clearRX()
		}
		// The transmit FIFO is always empty: nothing to clear.
		u.fcr = v & fcrKeep
	case uartLCR:
		u.lcr = v
		return nil // the interrupt state does not read LCR
	case uartMCR:
		old := u.modemInputs()
		u.mcr = v & 0x1f
		now := u.modemInputs()
		d := old ^ now
		u.msrDelta |= (d & (msrCTS | msrDSR | msrDCD)) >> 4 // DCTS, DDSR, DDCD
		if old&msrRI != 0 && now&msrRI == 0 {
			u.msrDelta |= msrTERI
		}
	case uartSCR:
		u.scr = v
		return nil // nor SCR
	default:
		return nil // LSR and MSR are read-only
	}
	return u.sync()
}

// transmit sends v: the THRE interrupt drops while the byte is in THR and
// comes back when it has gone.
func (u *UART) transmit(v byte) error {
	u.thrIPending = false
	if err := u.sync(); err != nil {
		return err
	}
	var werr error
	if u.mcr&mcrLoop != 0 {
		u.push(v)
	} else {
		u.tx[0] = v
		if _, err := u.Out.Write(u.tx[:]); err != nil {
			werr = fmt.Errorf("uart: transmit: %w", err)
		}
	}
	u.thrIPending = true
	if err := u.sync(); err != nil {
		return err
	}
	return werr
}
