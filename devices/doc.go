// Package devices holds walkvm's device models: a 16550 UART for the guest's
// console, a debug-exit port that ends the run with a status, and RAM-like
// MMIO test windows that record every access. Each implements
// memory.Device and sits on the PIO or MMIO bus.
package devices

import "encoding/binary"

// Standard places, shared by the machine and the guests.
const (
	COM1Port       = 0x3f8
	DebugExitPort  = 0xf4
	TestWindowHigh = 0xff000000 // like QEMU pc-testdev iomem
	TestWindowLow  = 0xd0000    // in the PC hole, reachable from real mode
	TestWindowSize = 0x10000
)

// le reads up to 8 little-endian bytes as a value.
func le(b []byte) uint64 {
	var buf [8]byte
	copy(buf[:], b)
	return binary.LittleEndian.Uint64(buf[:])
}
