package devices

import "fmt"

// ExitRequest is what a guest's write to the debug-exit port returns: the
// run ends with Status. The vCPU loop matches it with errors.As.
type ExitRequest struct {
	Status int
}

func (e *ExitRequest) Error() string {
	return fmt.Sprintf("guest requested exit with status %d", e.Status)
}

// DebugExit ends the run: a write of value v gives exit status v & 0xff.
// Reads return 0.
type DebugExit struct{}

// Read implements memory.Device.
func (DebugExit) Read(off uint64, data []byte) error {
	clear(data)
	return nil
}

// Write implements memory.Device.
func (DebugExit) Write(off uint64, data []byte) error {
	return &ExitRequest{Status: int(le(data) & 0xff)}
}
