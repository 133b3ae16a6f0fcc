package devices

import (
	"io"
	"sync"
)

// 16550 register offsets (DLAB=0 unless noted) and bits.
const (
	uartRBR = 0 // receive buffer (read) / THR transmit holding (write) / DLL with DLAB
	uartIER = 1 // interrupt enable / DLM with DLAB
	uartIIR = 2 // interrupt identification (read) / FCR FIFO control (write)
	uartLCR = 3
	uartMCR = 4
	uartLSR = 5
	uartMSR = 6
	uartSCR = 7

	lcrDLAB  = 0x80
	lsrTHRE  = 0x20 // transmit holding register empty
	lsrTEMT  = 0x40 // transmitter empty
	iirNoInt = 0x01
	iirFIFO  = 0xc0
	fcrFIFO  = 0x01
	mcrLoop  = 0x10
)

// UART is a 16550A with nothing attached to its receive side: transmitted
// bytes go to Out, the transmitter is always empty, no data ever arrives
// and no interrupt is raised (walkvm has no interrupt controller).
type UART struct {
	mu       sync.Mutex
	Out      io.Writer
	ier, lcr byte
	mcr, scr byte
	fcr      byte
	dll, dlm byte
	tx       [1]byte
}

// NewUART returns a UART writing to out (nil discards).
func NewUART(out io.Writer) *UART {
	if out == nil {
		out = io.Discard
	}
	return &UART{Out: out, dll: 0x0c} // 9600 baud reset divisor
}

// Read implements memory.Device.
func (u *UART) Read(off uint64, data []byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range data {
		data[i] = u.reg(off + uint64(i))
	}
	return nil
}

func (u *UART) reg(off uint64) byte {
	dlab := u.lcr&lcrDLAB != 0
	switch off {
	case uartRBR:
		if dlab {
			return u.dll
		}
		return 0
	case uartIER:
		if dlab {
			return u.dlm
		}
		return u.ier
	case uartIIR:
		if u.fcr&fcrFIFO != 0 {
			return iirFIFO | iirNoInt
		}
		return iirNoInt
	case uartLCR:
		return u.lcr
	case uartMCR:
		return u.mcr
	case uartLSR:
		return lsrTHRE | lsrTEMT
	case uartMSR:
		if u.mcr&mcrLoop != 0 {
			// Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
			m := u.mcr
			return (m&0x02)<<3 | (m&0x01)<<5 | (m&0x04)<<4 | (m&0x08)<<4
		}
		return 0
	case uartSCR:
		return u.scr
	}
	return 0xff
}

// Write implements memory.Device.
func (u *UART) Write(off uint64, data []byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, v := range data {
		if err := u.setReg(off+uint64(i), v); err != nil {
			return err
		}
	}
	return nil
}

func (u *UART) setReg(off uint64, v byte) error {
	dlab := u.lcr&lcrDLAB != 0
	switch off {
	case uartRBR:
		if dlab {
			u.dll = v
			return nil
		}
		if u.mcr&mcrLoop != 0 {
			return nil // looped back into a receiver nobody reads
		}
		u.tx[0] = v
		_, err := u.Out.Write(u.tx[:])
		return err
	case uartIER:
		if dlab {
			u.dlm = v
		} else {
			u.ier = v & 0x0f
		}
	case uartIIR:
		u.fcr = v
	case uartLCR:
		u.lcr = v
	case uartMCR:
		u.mcr = v & 0x1f
	case uartSCR:
		u.scr = v
	}
	return nil
}
