package devices

import (
	"fmt"

	"walkvm/x86"
)

// Stopper ends the run at a device's request. The machine hands one to each
// device that can end a run; the run ends once the vCPU's current exit is
// done, and no vCPU enters the guest again. Safe for use from several vCPU
// threads; the first request wins.
type Stopper interface {
	// Exit ends the run with the guest's status (a debug-exit write).
	Exit(status int)
	// Reset ends the run as the guest's reset request (an i8042 reset
	// pulse, a write to the reset control register).
	Reset()
}

// StopFuncs adapts two functions to Stopper; a nil one ignores its request.
type StopFuncs struct {
	OnExit  func(status int)
	OnReset func()
}

// Exit implements Stopper.
func (s StopFuncs) Exit(status int) {
	if s.OnExit != nil {
		s.OnExit(status)
	}
}

// Reset implements Stopper.
func (s StopFuncs) Reset() {
	if s.OnReset != nil {
		s.OnReset()
	}
}

// DebugExitForm says how a debug-exit write becomes an exit status.
type DebugExitForm int

const (
	// DebugExitWalkvm: a write of v ends the run with status v & 0xff
	// (walkvm's own guests: 0 is a pass).
	DebugExitWalkvm DebugExitForm = iota
	// DebugExitQEMU: QEMU's isa-debug-exit, whose process exits with
	// (v<<1)|1, of which a shell sees the low 8 bits. kvm-unit-tests'
	// scripts read 1 as pass, 3 as fail, 77 (v = 38) as skip.
	DebugExitQEMU
)

func (f DebugExitForm) String() string {
	switch f {
	case DebugExitWalkvm:
		return "walkvm"
	case DebugExitQEMU:
		return "qemu"
	}
	return fmt.Sprintf("DebugExitForm(%d)", int(f))
}

// ParseDebugExitForm reads a form by name ("walkvm" or "qemu").
func ParseDebugExitForm(s string) (DebugExitForm, error) {
	for _, f := range []DebugExitForm{DebugExitWalkvm, DebugExitQEMU} {
		if f.String() == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("debug-exit form %q: want walkvm or qemu", s)
}

// Status is the exit status a written value v gives.
func (f DebugExitForm) Status(v uint64) int {
	if f == DebugExitQEMU {
		return int((v<<1 | 1) & 0xff)
	}
	return int(v & 0xff)
}

// DebugExit ends the run on any write (1, 2 or 4 bytes: `outb` or `outl`)
// through its Stopper, with the status its Form gives. Reads return 0.
// QEMU's isa-debug-exit is at DebugExitPort with DebugExitPorts ports
// (iobase=0xf4,iosize=0x4).
type DebugExit struct {
	form DebugExitForm
	stop Stopper
}

// NewDebugExit returns a debug-exit device of the given form that ends runs
// through stop.
func NewDebugExit(form DebugExitForm, stop Stopper) *DebugExit {
	return &DebugExit{form: form, stop: stop}
}

// Read implements memory.Device.
func (d *DebugExit) Read(off uint64, data []byte) error {
	clear(data)
	return nil
}

// Write implements memory.Device.
func (d *DebugExit) Write(off uint64, data []byte) error {
	d.stop.Exit(d.form.Status(x86.Value(data)))
	return nil
}
