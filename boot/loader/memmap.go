package loader

import (
	"fmt"
	"sort"
)

// MapType is an address-range type as the e820 BIOS call reports it (ACPI
// spec §15, "System Address Map Interfaces"); multiboot's mmap and PVH's
// memmap use the same numbers.
type MapType uint32

// Address-range types.
const (
	MapRAM      MapType = 1 // AddressRangeMemory: usable RAM
	MapReserved MapType = 2 // AddressRangeReserved
	MapACPI     MapType = 3 // AddressRangeACPI: ACPI tables, reclaimable
	MapNVS      MapType = 4 // AddressRangeNVS
)

// MapEntry is one range of the guest-visible memory map.
type MapEntry struct {
	Addr, Size uint64
	Type       MapType
}

// End is the first address after the entry.
func (e MapEntry) End() uint64 { return e.Addr + e.Size }

// MemoryMap translates the machine's regions into the memory map a PC
// firmware would report:
//
//   - RAM below 1 MiB is usable up to EBDA (0x9fc00); [EBDA, 1 MiB) is
//     always reserved (EBDA, VGA, option ROMs, BIOS), whatever backs it;
//   - RAM from 1 MiB is usable; Reserved regions are reserved;
//   - MMIO regions are left out (the guest finds its devices elsewhere);
//   - adjacent entries of one type are merged, and the map is sorted.
func MemoryMap(regions []Region) ([]MapEntry, error) {
	rs, err := checkRegions(regions)
	if err != nil {
		return nil, err
	}
	var m []MapEntry
	add := func(addr, end uint64, t MapType) {
		if end > addr {
			m = append(m, MapEntry{Addr: addr, Size: end - addr, Type: t})
		}
	}
	for _, r := range rs {
		switch r.Kind {
		case RAM:
			add(r.Base, min(r.End(), EBDA), MapRAM)
			add(max(r.Base, BIOSEnd), r.End(), MapRAM)
		case Reserved:
			add(r.Base, min(r.End(), EBDA), MapReserved)
			add(max(r.Base, BIOSEnd), r.End(), MapReserved)
		}
	}
	add(EBDA, BIOSEnd, MapReserved)
	sort.Slice(m, func(i, j int) bool { return m[i].Addr < m[j].Addr })
	out := m[:0]
	for _, e := range m {
		if n := len(out); n > 0 && out[n-1].Type == e.Type && out[n-1].End() == e.Addr {
			out[n-1].Size += e.Size
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// LowerUpper gives the amounts of RAM a BIOS reports as "lower" and
// "upper" memory, in KiB: the usable RAM from address 0, and the usable RAM
// from 1 MiB up to the first hole (multiboot's mem_lower and mem_upper).
func LowerUpper(m []MapEntry) (lower, upper uint32) {
	for _, e := range m {
		if e.Type == MapRAM && e.Addr == 0 {
			lower = uint32(min(e.Size, EBDA) >> 10)
		}
		if e.Type == MapRAM && e.Addr <= BIOSEnd && e.End() > BIOSEnd {
			upper = uint32(min(e.End()-BIOSEnd, Below4G-BIOSEnd) >> 10)
		}
	}
	return lower, upper
}

// RAMTop is the end of the highest usable RAM below limit (0 if none).
func RAMTop(m []MapEntry, limit uint64) uint64 {
	var top uint64
	for _, e := range m {
		if e.Type == MapRAM && e.Addr < limit {
			top = max(top, min(e.End(), limit))
		}
	}
	return top
}

func (e MapEntry) String() string {
	return fmt.Sprintf("%#x-%#x type %d", e.Addr, e.End()-1, e.Type)
}
