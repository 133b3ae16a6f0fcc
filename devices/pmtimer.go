package devices

import (
	"encoding/binary"
	"time"
)

// PMTimerHz is the ACPI power-management timer's frequency (ACPI 6.5,
// 4.8.3.3): 3.579545 MHz.
const PMTimerHz = 3579545

// PMTimer is the ACPI PM timer (PM_TMR_BLK, PMTimerPort): a 24-bit counter
// at PMTimerHz read from a monotonic clock, with bits 31:24 zero (the FADT
// must leave TMR_VAL_EXT clear). Reads of 1, 2 or 4 bytes at any offset
// return those bytes of the 32-bit value; writes are ignored. It has no
// state of its own, so it needs no lock.
type PMTimer struct {
	elapsed func() time.Duration
}

// NewPMTimer returns a PM timer counting from the time elapsed reports
// (nil: the time since NewPMTimer, on Go's monotonic clock).
func NewPMTimer(elapsed func() time.Duration) *PMTimer {
	if elapsed == nil {
		start := time.Now()
		elapsed = func() time.Duration { return time.Since(start) }
	}
	return &PMTimer{elapsed: elapsed}
}

// Count is the counter's present value.
func (p *PMTimer) Count() uint32 {
	ns := uint64(max(p.elapsed(), 0))
	ticks := ns/1e9*PMTimerHz + ns%1e9*PMTimerHz/1e9
	return uint32(ticks & 0xffffff)
}

// Read implements memory.Device.
func (p *PMTimer) Read(off uint64, data []byte) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], p.Count())
	n := copy(data, b[min(off, 4):])
	fill(data[n:], 0xff)
	return nil
}

// Write implements memory.Device.
func (p *PMTimer) Write(off uint64, data []byte) error { return nil }
