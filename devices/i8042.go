package devices

import (
	"fmt"
	"sync"
)

// i8042 status bits, controller commands, command-byte (CTR) bits and
// keyboard commands, in the names of QEMU's hw/input/pckbd.c and Linux's
// drivers/input/serio/i8042.h.
const (
	i8042StrOBF    = 0x01 // output buffer full
	i8042StrSys    = 0x04 // system flag: self test passed
	i8042StrCmd    = 0x08 // last write was to the command port
	i8042StrUnlock = 0x10 // keyboard not inhibited
	i8042StrAuxOBF = 0x20 // the output buffer holds aux (mouse) data

	i8042CmdReadCTR     = 0x20
	i8042CmdWriteCTR    = 0x60
	i8042CmdAuxDisable  = 0xa7
	i8042CmdAuxEnable   = 0xa8
	i8042CmdAuxTest     = 0xa9
	i8042CmdSelfTest    = 0xaa
	i8042CmdKbdTest     = 0xab
	i8042CmdKbdDisable  = 0xad
	i8042CmdKbdEnable   = 0xae
	i8042CmdReadInput   = 0xc0
	i8042CmdReadOutput  = 0xd0
	i8042CmdWriteOutput = 0xd1
	i8042CmdKbdLoop     = 0xd2 // next data byte comes back as keyboard data
	i8042CmdAuxLoop     = 0xd3 // next data byte comes back as aux data
	i8042CmdAuxSend     = 0xd4 // next data byte goes to the aux device
	i8042CmdDisableA20  = 0xdd
	i8042CmdEnableA20   = 0xdf
	i8042CmdPulse       = 0xf0 // 0xf0-0xff: pulse output port bits 3:0 that are 0

	i8042CtrKbdInt = 0x01
	i8042CtrAuxInt = 0x02
	i8042CtrSys    = 0x04
	i8042CtrKbdDis = 0x10
	i8042CtrAuxDis = 0x20
	i8042CtrXlate  = 0x40

	i8042OutReset = 0x01 // output port: 0 holds the CPU in reset
	i8042OutA20   = 0x02

	i8042SelfTestOK = 0x55

	kbdAck      = 0xfa
	kbdResend   = 0xfe
	kbdBATOK    = 0xaa
	kbdSetLEDs  = 0xed
	kbdEcho     = 0xee
	kbdScanSet  = 0xf0
	kbdGetID    = 0xf2
	kbdSetRate  = 0xf3
	kbdReset    = 0xff
	i8042Buffer = 16
)

// I8042 is the PC keyboard controller with a keyboard and no mouse, on
// ports 0x60 (data, Data()) and 0x64 (status and command, Command()); 0x61
// is the PIT's speaker port, which stays in KVM.
//
// It answers the commands Linux's i8042 and atkbd drivers send so that
// neither waits for a timeout: read/write the command byte (0x20/0x60),
// self test (0xaa -> 0x55), interface tests (0xa9, 0xab -> 0x00), port
// enable/disable (0xa7/0xa8/0xad/0xae), input/output port reads, the
// keyboard and aux loop-back commands (0xd2/0xd3, used by Linux's AUX
// probe), and keyboard commands (reset -> ACK, 0xaa; get ID -> ACK, 0xab,
// 0x83 or 0x41 with translation; echo; everything else ACK). Bytes sent to
// the absent mouse (0xd4) come back as 0xfe (resend), so a probe gives up at
// once.
//
// Pulsing output port bit 0 (command 0xfe, or any 0xf0-0xff with bit 0
// clear) or writing the output port with bit 0 clear (0xd1) resets the
// machine: the run ends as a reset request (Stopper.Reset), as Firecracker
// ends it for Linux's reboot=k.
//
// Replies queue in a 16-byte output buffer. Keyboard data raises IRQ 1 and
// aux data IRQ 12 while the command byte enables them; reading the data port
// drops the line and raises it again if more data waits, so each byte is
// an edge.
type I8042 struct {
	mu               sync.Mutex
	kbdIRQ, auxIRQ   IRQLine
	kbdLine, auxLine bool
	stop             Stopper

	status  byte // i8042StrSys, i8042StrCmd; OBF bits come from the queue
	ctr     byte
	outport byte
	cmd     byte // controller command waiting for its data byte
	kbdCmd  byte // keyboard command waiting for its parameter
	last    byte // the byte last read from the data port

	out    [i8042Buffer]i8042Byte
	head   int
	queued int
}

type i8042Byte struct {
	v   byte
	aux bool
}

// NewI8042 returns a controller that drives kbdIRQ (IRQ 1) and auxIRQ
// (IRQ 12) (either may be nil) and ends the run through stop on a reset
// (nil: resets are ignored). Its command byte starts as a PC BIOS leaves
// it: keyboard and aux interrupts on, system flag, scan-code translation.
func NewI8042(kbdIRQ, auxIRQ IRQLine, stop Stopper) *I8042 {
	return &I8042{
		kbdIRQ: kbdIRQ, auxIRQ: auxIRQ, stop: stop,
		status:  i8042StrSys | i8042StrCmd,
		ctr:     i8042CtrKbdInt | i8042CtrAuxInt | i8042CtrSys | i8042CtrXlate,
		outport: i8042OutReset | i8042OutA20 | 0xcc,
	}
}

// I8042Port is one of the controller's two ports.
type I8042Port struct {
	k       *I8042
	command bool
}

// Data is the data port, 0x60.
func (k *I8042) Data() *I8042Port { return &I8042Port{k: k} }

// Command is the status/command port, 0x64.
func (k *I8042) Command() *I8042Port { return &I8042Port{k: k, command: true} }

// Read implements memory.Device.
func (p *I8042Port) Read(off uint64, data []byte) error {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	for i := range data {
		if p.command {
			data[i] = k.statusReg()
			continue
		}
		data[i], err = k.readData()
		if err != nil {
			return err
		}
	}
	return nil
}

// Write implements memory.Device.
func (p *I8042Port) Write(off uint64, data []byte) error {
	k := p.k
	k.mu.Lock()
	reset := false
	var err error
	for _, v := range data {
		var r bool
		if p.command {
			r, err = k.command(v)
		} else {
			r, err = k.writeData(v)
		}
		reset = reset || r
		if err != nil {
			break
		}
	}
	k.mu.Unlock()
	if reset && k.stop != nil {
		k.stop.Reset()
	}
	return err
}

func (k *I8042) statusReg() byte {
	v := k.status | i8042StrUnlock
	if k.queued > 0 {
		v |= i8042StrOBF
		if k.out[k.head].aux {
			v |= i8042StrAuxOBF
		}
	}
	return v
}

func (k *I8042) queue(v byte, aux bool) {
	if k.queued == i8042Buffer {
		return
	}
	k.out[(k.head+k.queued)%i8042Buffer] = i8042Byte{v, aux}
	k.queued++
}

func (k *I8042) readData() (byte, error) {
	if k.queued == 0 {
		return k.last, nil
	}
	k.last = k.out[k.head].v
	k.head = (k.head + 1) % i8042Buffer
	k.queued--
	// The byte has left the output buffer: the line drops, and rises again
	// for the next byte.
	if err := k.drive(false, false); err != nil {
		return k.last, err
	}
	return k.last, k.sync()
}

func (k *I8042) sync() error {
	var kbd, aux bool
	if k.queued > 0 {
		if k.out[k.head].aux {
			aux = k.ctr&i8042CtrAuxInt != 0
		} else {
			kbd = k.ctr&i8042CtrKbdInt != 0 && k.ctr&i8042CtrKbdDis == 0
		}
	}
	return k.drive(kbd, aux)
}

func (k *I8042) drive(kbd, aux bool) error {
	if kbd != k.kbdLine {
		if k.kbdIRQ != nil {
			if err := k.kbdIRQ.SetLevel(kbd); err != nil {
				return fmt.Errorf("i8042: drive keyboard IRQ %v: %w", kbd, err)
			}
		}
		k.kbdLine = kbd
	}
	if aux != k.auxLine {
		if k.auxIRQ != nil {
			if err := k.auxIRQ.SetLevel(aux); err != nil {
				return fmt.Errorf("i8042: drive aux IRQ %v: %w", aux, err)
			}
		}
		k.auxLine = aux
	}
	return nil
}

// command serves a write to port 0x64; it reports whether the machine is
// reset.
func (k *I8042) command(v byte) (bool, error) {
	k.status |= i8042StrCmd
	k.cmd = 0
	switch {
	case v == i8042CmdReadCTR:
		k.queue(k.ctr, false)
	case v == i8042CmdWriteCTR, v == i8042CmdWriteOutput, v == i8042CmdKbdLoop, v == i8042CmdAuxLoop, v == i8042CmdAuxSend:
		k.cmd = v
	case v == i8042CmdAuxDisable:
		k.ctr |= i8042CtrAuxDis
	case v == i8042CmdAuxEnable:
		k.ctr &^= i8042CtrAuxDis
	case v == i8042CmdAuxTest, v == i8042CmdKbdTest:
		k.queue(0x00, false)
	case v == i8042CmdSelfTest:
		k.status |= i8042StrSys
		k.queue(i8042SelfTestOK, false)
	case v == i8042CmdKbdDisable:
		k.ctr |= i8042CtrKbdDis
	case v == i8042CmdKbdEnable:
		k.ctr &^= i8042CtrKbdDis
	case v == i8042CmdReadInput:
		k.queue(0x80, false) // keyboard not inhibited
	case v == i8042CmdReadOutput:
		k.queue(k.outport, false)
	case v == i8042CmdDisableA20:
		k.outport &^= i8042OutA20
	case v == i8042CmdEnableA20:
		k.outport |= i8042OutA20
	case v >= i8042CmdPulse:
		if v&i8042OutReset == 0 {
			return true, nil
		}
	}
	return false, k.sync()
}

// writeData serves a write to port 0x60; it reports whether the machine is
// reset.
func (k *I8042) writeData(v byte) (bool, error) {
	k.status &^= i8042StrCmd
	cmd := k.cmd
	k.cmd = 0
	switch cmd {
	case i8042CmdWriteCTR:
		k.ctr = v
	case i8042CmdWriteOutput:
		k.outport = v
		if v&i8042OutReset == 0 {
			return true, nil
		}
	case i8042CmdKbdLoop:
		k.queue(v, false)
	case i8042CmdAuxLoop:
		k.queue(v, true)
	case i8042CmdAuxSend:
		k.queue(kbdResend, true) // no mouse
	default:
		k.keyboard(v)
	}
	return false, k.sync()
}

// keyboard is the keyboard's answer to a byte from the host.
func (k *I8042) keyboard(v byte) {
	if c := k.kbdCmd; c != 0 {
		k.kbdCmd = 0
		k.queue(kbdAck, false)
		if c == kbdScanSet && v == 0 { // query the scan-code set
			k.queue(k.xlate(0x02, 0x41), false)
		}
		return
	}
	switch v {
	case kbdReset:
		k.queue(kbdAck, false)
		k.queue(kbdBATOK, false)
	case kbdGetID:
		k.queue(kbdAck, false)
		k.queue(0xab, false)
		k.queue(k.xlate(0x83, 0x41), false)
	case kbdEcho:
		k.queue(kbdEcho, false)
	case kbdSetLEDs, kbdSetRate, kbdScanSet:
		k.kbdCmd = v
		k.queue(kbdAck, false)
	default:
		if v >= 0xf4 { // enable, disable, set defaults, the set-3 key modes, resend
			k.queue(kbdAck, false)
		} else {
			k.queue(kbdResend, false)
		}
	}
}

// xlate returns plain, or translated when the controller translates scan
// codes to set 1.
func (k *I8042) xlate(plain, translated byte) byte {
	if k.ctr&i8042CtrXlate != 0 {
		return translated
	}
	return plain
}
