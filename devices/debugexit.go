package devices

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

// DebugExit ends the run: a write of value v gives status v (`vmm run`
// exits with v & 0xff). Reads return 0.
type DebugExit struct {
	stop Stopper
}

// NewDebugExit returns a debug-exit port that ends runs through stop.
func NewDebugExit(stop Stopper) *DebugExit { return &DebugExit{stop: stop} }

// Read implements memory.Device.
func (d *DebugExit) Read(off uint64, data []byte) error {
	clear(data)
	return nil
}

// Write implements memory.Device.
func (d *DebugExit) Write(off uint64, data []byte) error {
	d.stop.Exit(int(le(data)))
	return nil
}
