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
	// KindFirmware is guest memory a PC's firmware keeps for itself (the
	// EBDA, the BIOS area, firmware tables): registered with KVM like RAM,
	// so that the guest reads memory there, but reported reserved in the
	// guest's memory map (e820), so that it does not allocate it. A device
	// window added there is carved out of it, as from a hole.
	KindFirmware
)

var kindNames = [...]string{KindRAM: "RAM", KindReserved: "reserved", KindMMIO: "MMIO", KindHole: "hole", KindFirmware: "firmware"}

// Backed says whether the kind is guest memory (a memslot): RAM or
// firmware.
func (k Kind) Backed() bool { return k == KindRAM || k == KindFirmware }

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
// RAM, firmware memory, reserved space, MMIO windows and holes, and the
// claims a loader makes in guest memory for what it writes there. Ranges
// never overlap, except that an MMIO window is carved out of a hole or of
// firmware memory; claims lie wholly in guest memory (RAM or firmware) and
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
		if (o.Kind != KindHole && o.Kind != KindFirmware) || r.Kind != KindMMIO {
			return fmt.Errorf("memory map: %s (%v) overlaps %s (%v)", r, r.Kind, o, o.Kind)
		}
		// The window is carved out of the hole or firmware memory.
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

// Backed lists the guest memory (RAM and firmware ranges) in address
// order, adjacent ranges joined: what is registered with KVM.
func (m *Map) Backed() []Range {
	var out []Range
	for _, r := range m.ranges {
		if !r.Kind.Backed() {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End() == r.Start {
			out[n-1].Size += r.Size
			continue
		}
		out = append(out, Range{Name: "guest memory", Start: r.Start, Size: r.Size, Kind: KindRAM})
	}
	return out
}

// Clone returns a copy of the map that changes independently.
func (m *Map) Clone() *Map {
	return &Map{ranges: append([]Range(nil), m.ranges...), claims: append([]Range(nil), m.claims...)}
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
	return m.is(start, size, func(k Kind) bool { return k == KindRAM })
}

// IsBacked reports whether [start, start+size) is wholly guest memory (RAM
// or firmware).
func (m *Map) IsBacked(start, size uint64) bool { return m.is(start, size, Kind.Backed) }

func (m *Map) is(start, size uint64, kind func(Kind) bool) bool {
	if start+size < start {
		return false
	}
	for _, r := range m.ranges {
		if !kind(r.Kind) || start < r.Start || start >= r.End() {
			continue
		}
		if size <= r.End()-start {
			return true
		}
		// Adjacent ranges continue it.
		size -= r.End() - start
		start = r.End()
	}
	return size == 0
}

// Claim records that a loader writes name at [start, start+size): the
// range must be guest memory (RAM or firmware) and clear of every other
// claim. The error names what it overlaps.
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
		if !o.Kind.Backed() && o.overlaps(start, size) {
			return fmt.Errorf("%s overlaps %s", c, o)
		}
	}
	if !m.IsBacked(start, size) {
		return fmt.Errorf("%s does not fit in guest RAM (%d MiB)", c, m.ramSize()>>20)
	}
	m.claims = append(m.claims, c)
	sort.Slice(m.claims, func(i, j int) bool { return m.claims[i].Start < m.claims[j].Start })
	return nil
}

// Claims lists the loader's claims in address order (Kind KindRAM).
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

// EBDA is where a PC's base memory ends for the guest: a BIOS keeps its
// extended data area in the last KiB below 640 KiB.
const EBDA = 0x9fc00

// MaxRAM keeps RAM below the 32-bit MMIO space (test window at 0xff000000,
// KVM's TSS pages at 0xfffbc000).
const MaxRAM = 3 << 30

// MinRAM is enough for the low 640 KiB and the first MiB above the hole.
const MinRAM = 2 << 20

// PCMap is a PC's memory map with size bytes of RAM (a multiple of 4 KiB,
// MinRAM..MaxRAM): RAM below 640 KiB, the PC hole, RAM from 1 MiB. It is
// the machine of flat images, which may probe the hole.
func PCMap(size uint64) (*Map, error) {
	return pcMap(size, []Range{
		{Name: "low RAM", Start: 0, Size: HoleStart, Kind: KindRAM},
		{Name: "the PC hole", Start: HoleStart, Size: HoleEnd - HoleStart, Kind: KindHole},
	})
}

// FirmwareMap is the memory map of a PC as its firmware leaves it for a
// kernel, with size bytes of RAM (as PCMap): RAM below the EBDA, the EBDA
// and the BIOS area up to 1 MiB as firmware memory (backed, so that a
// kernel's scans of the BIOS area read memory, and reserved in its memory
// map), RAM from 1 MiB. Linux needs RAM below 640 KiB and scans the EBDA
// and 0xe0000-0xfffff for the MP and ACPI tables.
func FirmwareMap(size uint64) (*Map, error) {
	return pcMap(size, []Range{
		{Name: "low RAM", Start: 0, Size: EBDA, Kind: KindRAM},
		{Name: "the EBDA", Start: EBDA, Size: HoleStart - EBDA, Kind: KindFirmware},
		{Name: "the BIOS area", Start: HoleStart, Size: HoleEnd - HoleStart, Kind: KindFirmware},
	})
}

// pcMap is low, then RAM from 1 MiB to size.
func pcMap(size uint64, low []Range) (*Map, error) {
	if size%4096 != 0 || size < MinRAM || size > MaxRAM {
		return nil, fmt.Errorf("guest RAM size %d: must be a multiple of 4 KiB between %d MiB and %d MiB", size, MinRAM>>20, MaxRAM>>20)
	}
	m := &Map{}
	for _, r := range append(low, Range{Name: "RAM", Start: HoleEnd, Size: size - HoleEnd, Kind: KindRAM}) {
		if err := m.Add(r); err != nil {
			return nil, err
		}
	}
	return m, nil
}
