package loader

import (
	"fmt"

	"walkvm/memory"
)

// Memory is guest memory as a loader sees it: bounds-checked reads and
// writes at a guest-physical address. *memory.RAM implements it.
type Memory interface {
	Read(gpa uint64, b []byte) error
	Write(gpa uint64, b []byte) error
}

// Range is a piece of guest memory a loader wrote, and what it holds.
type Range struct {
	Base, Size uint64
	What       string
}

// End is the first address after the range.
func (r Range) End() uint64 { return r.Base + r.Size }

func (r Range) String() string {
	return fmt.Sprintf("%s %#x-%#x", r.What, r.Base, r.End()-1)
}

// PC memory-map constants (the traditional PC's layout below 1 MiB).
const (
	// EBDA is the start of the last KiB of base memory, where a BIOS keeps
	// its extended data area: RAM ends here for the guest.
	EBDA = memory.EBDA
	// BIOSEnd is the end of the legacy area (VGA, option ROMs, BIOS).
	BIOSEnd = memory.HoleEnd
	// Below4G is the end of the 32-bit physical address space.
	Below4G = 1 << 32
)
