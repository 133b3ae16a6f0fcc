package devices

import "fmt"

// EndFunc ends the run with an exit status. Devices that end a run (the
// debug-exit port, the i8042's reset line) call it; the machine implements
// it by stopping every vCPU. It is safe to call from any vCPU thread, more
// than once (the first status wins).
type EndFunc func(status int)

// ExitRequest is what a debug-exit write returns when the device has no
// EndFunc: the run ends with Status. The vCPU loop matches it with
// errors.As.
type ExitRequest struct {
	Status int
}

func (e *ExitRequest) Error() string {
	return fmt.Sprintf("guest requested exit with status %d", e.Status)
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

// DebugExit ends the run on any write (1, 2 or 4 bytes: `outb` or `outl`),
// with the status its Form gives, through End, or when End is nil by
// returning an *ExitRequest. Reads return 0. QEMU's isa-debug-exit is at
// DebugExitPort with DebugExitPorts ports (iobase=0xf4,iosize=0x4).
type DebugExit struct {
	Form DebugExitForm
	End  EndFunc
}

// NewDebugExit returns a debug-exit device of the given form that ends runs
// through end.
func NewDebugExit(form DebugExitForm, end EndFunc) *DebugExit {
	return &DebugExit{Form: form, End: end}
}

// Read implements memory.Device.
func (DebugExit) Read(off uint64, data []byte) error {
	clear(data)
	return nil
}

// Write implements memory.Device.
func (d DebugExit) Write(off uint64, data []byte) error {
	status := d.Form.Status(le(data))
	if d.End != nil {
		d.End(status)
		return nil
	}
	return &ExitRequest{Status: status}
}
