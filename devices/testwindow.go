package devices

import (
	"sync"

	"walkvm/x86"
)

// Access is one recorded access to a test window.
type Access struct {
	GPA   uint64
	Size  int
	Write bool
	Value uint64 // little-endian value of the first 8 bytes
}

// TestWindow is RAM-like MMIO: reads return what was last written (zero at
// first) and every access is recorded. The record keeps the first
// RecordLimit accesses, preallocated so the MMIO path allocates nothing;
// Count goes on counting. One mutex guards the contents, the record and
// the counts, taken once per access.
type TestWindow struct {
	mu     sync.Mutex
	base   uint64
	mem    []byte
	log    []Access // capacity RecordLimit
	reads  uint64
	writes uint64
}

// RecordLimit is how many accesses a test window keeps.
const RecordLimit = 4096

// NewTestWindow returns a window of size bytes at GPA base.
func NewTestWindow(base, size uint64) *TestWindow {
	return &TestWindow{base: base, mem: make([]byte, size), log: make([]Access, 0, RecordLimit)}
}

// Base is the window's GPA.
func (w *TestWindow) Base() uint64 { return w.base }

// Size is the window's length in bytes.
func (w *TestWindow) Size() uint64 { return uint64(len(w.mem)) }

// record keeps the access while the record has room; w.mu is held.
func (w *TestWindow) record(off uint64, data []byte, write bool) {
	if len(w.log) < cap(w.log) {
		w.log = append(w.log, Access{GPA: w.base + off, Size: len(data), Write: write, Value: x86.Value(data)})
	}
}

// Read implements memory.Device. The bus guarantees off+len(data) <=
// size, so nothing between Lock and Unlock can panic.
func (w *TestWindow) Read(off uint64, data []byte) error {
	w.mu.Lock()
	copyAccess(data, w.mem[off:])
	w.reads++
	w.record(off, data, false)
	w.mu.Unlock()
	return nil
}

// Write implements memory.Device, as Read.
func (w *TestWindow) Write(off uint64, data []byte) error {
	w.mu.Lock()
	copyAccess(w.mem[off:], data)
	w.writes++
	w.record(off, data, true)
	w.mu.Unlock()
	return nil
}

// Accesses returns a copy of the recorded accesses, oldest first.
func (w *TestWindow) Accesses() []Access {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Access(nil), w.log...)
}

// Counts returns how many reads and writes the window has served.
func (w *TestWindow) Counts() (reads, writes uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reads, w.writes
}

// Bytes returns a copy of the window's contents.
func (w *TestWindow) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.mem...)
}
