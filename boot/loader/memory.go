package loader

import (
	"errors"
	"fmt"
	"sort"
)

// Memory is guest memory as a loader sees it: bounds-checked reads and
// writes at a guest-physical address. *memory.RAM implements it.
type Memory interface {
	Read(gpa uint64, b []byte) error
	Write(gpa uint64, b []byte) error
}

// Kind says what backs a region of the guest-physical address space.
type Kind int

// Region kinds.
const (
	// RAM is guest memory the guest may use.
	RAM Kind = iota + 1
	// Reserved is guest memory the guest must leave alone (firmware
	// tables live there); a loader may write its tables into it.
	Reserved
	// MMIO is a window devices answer; nothing is loaded there and the
	// memory map leaves it out.
	MMIO
)

var kindNames = [...]string{RAM: "RAM", Reserved: "reserved", MMIO: "MMIO"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Region is a piece of the guest-physical address space, [Base, Base+Size).
type Region struct {
	Base, Size uint64
	Kind       Kind
}

// End is the first address after the region.
func (r Region) End() uint64 { return r.Base + r.Size }

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
	EBDA = 0x9fc00
	// BIOSEnd is the end of the legacy area (VGA, option ROMs, BIOS).
	BIOSEnd = 0x100000
	// Below4G is the end of the 32-bit physical address space.
	Below4G = 1 << 32
)

// ErrRegions says the machine's region list is not usable.
var ErrRegions = errors.New("machine memory regions")

// checkRegions returns the regions sorted by base after checking that none
// is empty, wraps or overlaps another.
func checkRegions(regions []Region) ([]Region, error) {
	rs := append([]Region(nil), regions...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Base < rs[j].Base })
	for i, r := range rs {
		if r.Kind < RAM || r.Kind > MMIO {
			return nil, fmt.Errorf("%w: region %#x+%#x has unknown %v", ErrRegions, r.Base, r.Size, r.Kind)
		}
		if r.Size == 0 || r.End() < r.Base {
			return nil, fmt.Errorf("%w: %v region at %#x has size %#x", ErrRegions, r.Kind, r.Base, r.Size)
		}
		if i > 0 && r.Base < rs[i-1].End() {
			p := rs[i-1]
			return nil, fmt.Errorf("%w: %v region %#x-%#x overlaps %v region %#x-%#x", ErrRegions, r.Kind, r.Base, r.End()-1, p.Kind, p.Base, p.End()-1)
		}
	}
	return rs, nil
}
