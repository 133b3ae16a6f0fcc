package memory

import (
	"fmt"
	"sort"
)

// Kind is what a range of the guest-physical address space is.
type Kind uint8

// Range kinds.
const (
	// KindRAM is guest RAM, registered with KVM as a memslot.
	KindRAM Kind = iota + 1
	// KindReserved is kept free of RAM and devices: KVM's private pages,
	// ranges a loader needs left alone.
	KindReserved
	// KindMMIO is a device's MMIO window.
	KindMMIO
	// KindHole is address space that is not RAM, where device windows may
	// sit (the PC hole); a window added there is carved out of it.
	KindHole
)

var kindNames = [...]string{KindRAM: "RAM", KindReserved: "reserved", KindMMIO: "MMIO", KindHole: "hole"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Range is a named range of guest-physical addresses.
type Range struct {
	Name  string
	Start uint64
	Size  uint64
	Kind  Kind
}

// End is the first address after the range.
func (r Range) End() uint64 { return r.Start + r.Size }

func (r Range) String() string {
	return fmt.Sprintf("%s at %#x-%#x", r.Name, r.Start, r.End()-1)
}

func (r Range) overlaps(start, size uint64) bool { return start < r.End() && r.Start < start+size }

// Map is the machine's guest-physical memory map as data: the ranges of
// RAM, reserved space, MMIO windows and holes, and the claims a loader
// makes inside RAM for what it writes there. Ranges never overlap, except
// that an MMIO window is carved out of a hole; claims lie wholly in RAM and
// never overlap each other.
type Map struct {
	ranges []Range // sorted by Start
	claims []Range // sorted by Start; Kind is KindRAM
}

// Add adds r to the map.
func (m *Map) Add(r Range) error {
	if r.Size == 0 || r.Start+r.Size < r.Start {
		return fmt.Errorf("memory map: %s range %#x+%#x is empty or wraps", r.Name, r.Start, r.Size)
	}
	var keep []Range
	for _, o := range m.ranges {
		if !o.overlaps(r.Start, r.Size) {
			keep = append(keep, o)
			continue
		}
		if o.Kind != KindHole || r.Kind != KindMMIO {
			return fmt.Errorf("memory map: %s (%v) overlaps %s (%v)", r, r.Kind, o, o.Kind)
		}
		// The window is carved out of the hole.
		if o.Start < r.Start {
			keep = append(keep, Range{Name: o.Name, Start: o.Start, Size: r.Start - o.Start, Kind: o.Kind})
		}
		if o.End() > r.End() {
			keep = append(keep, Range{Name: o.Name, Start: r.End(), Size: o.End() - r.End(), Kind: o.Kind})
		}
	}
	m.ranges = append(keep, r)
	sort.Slice(m.ranges, func(i, j int) bool { return m.ranges[i].Start < m.ranges[j].Start })
	return nil
}

// Ranges lists the ranges in address order.
func (m *Map) Ranges() []Range { return m.ranges }

// RAM lists the RAM ranges in address order.
func (m *Map) RAM() []Range {
	var out []Range
	for _, r := range m.ranges {
		if r.Kind == KindRAM {
			out = append(out, r)
		}
	}
	return out
}

// Find returns the range that holds addr.
func (m *Map) Find(addr uint64) (Range, bool) {
	for _, r := range m.ranges {
		if addr >= r.Start && addr < r.End() {
			return r, true
		}
	}
	return Range{}, false
}

// IsRAM reports whether [start, start+size) is wholly RAM.
func (m *Map) IsRAM(start, size uint64) bool {
	for _, r := range m.ranges {
		if r.Kind != KindRAM || start < r.Start || start >= r.End() {
			continue
		}
		if size <= r.End()-start {
			return true
		}
		// Adjacent RAM ranges continue it.
		size -= r.End() - start
		start = r.End()
	}
	return size == 0
}

// Claim records that a loader writes name at [start, start+size): the
// range must be RAM and clear of every other claim. The error names what
// it overlaps.
func (m *Map) Claim(name string, start, size uint64) error {
	c := Range{Name: name, Start: start, Size: size, Kind: KindRAM}
	if size == 0 || start+size < start {
		return fmt.Errorf("%s of %d bytes at %#x is empty or wraps the address space", name, size, start)
	}
	for _, o := range m.claims {
		if o.overlaps(start, size) {
			return fmt.Errorf("%s overlaps %s", c, o)
		}
	}
	for _, o := range m.ranges {
		if o.Kind != KindRAM && o.overlaps(start, size) {
			return fmt.Errorf("%s overlaps %s", c, o)
		}
	}
	if !m.IsRAM(start, size) {
		return fmt.Errorf("%s does not fit in guest RAM (%d MiB)", c, m.ramSize()>>20)
	}
	m.claims = append(m.claims, c)
	sort.Slice(m.claims, func(i, j int) bool { return m.claims[i].Start < m.claims[j].Start })
	return nil
}

// Claims lists the loader's claims in address order.
func (m *Map) Claims() []Range { return m.claims }

func (m *Map) ramSize() uint64 {
	var n uint64
	for _, r := range m.RAM() {
		n += r.Size
	}
	return n
}

// The legacy PC hole: VGA memory and option/BIOS ROM space, not RAM.
const (
	HoleStart = 0xA0000
	HoleEnd   = 0x100000
)

// MaxRAM keeps RAM below the 32-bit MMIO space (test window at 0xff000000,
// KVM's TSS pages at 0xfffbc000).
const MaxRAM = 3 << 30

// MinRAM is enough for the low 640 KiB and the first MiB above the hole.
const MinRAM = 2 << 20

// PCMap is a PC's memory map with size bytes of RAM (a multiple of 4 KiB,
// MinRAM..MaxRAM): RAM below 640 KiB, the PC hole, RAM from 1 MiB.
func PCMap(size uint64) (*Map, error) {
	if size%4096 != 0 || size < MinRAM || size > MaxRAM {
		return nil, fmt.Errorf("guest RAM size %d: must be a multiple of 4 KiB between %d MiB and %d MiB", size, MinRAM>>20, MaxRAM>>20)
	}
	m := &Map{}
	for _, r := range []Range{
		{Name: "low RAM", Start: 0, Size: HoleStart, Kind: KindRAM},
		{Name: "the PC hole", Start: HoleStart, Size: HoleEnd - HoleStart, Kind: KindHole},
		{Name: "RAM", Start: HoleEnd, Size: size - HoleEnd, Kind: KindRAM},
	} {
		if err := m.Add(r); err != nil {
			return nil, err
		}
	}
	return m, nil
}
