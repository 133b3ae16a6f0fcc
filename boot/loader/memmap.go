package loader

import (
	"fmt"
	"sort"

	"walkvm/memory"
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

// MemoryMap is the memory map a PC firmware would report for the machine's
// memory map mm:
//
//   - RAM below 1 MiB is usable up to EBDA (0x9fc00); [EBDA, 1 MiB) is
//     always reserved (EBDA, VGA, option ROMs, BIOS), whatever backs it;
//   - RAM from 1 MiB is usable; firmware memory and reserved ranges are
//     reserved;
//   - MMIO windows and holes are left out (the guest finds its devices
//     elsewhere);
//   - adjacent entries of one type are merged, and the map is sorted.
func MemoryMap(mm *memory.Map) []MapEntry {
	var m []MapEntry
	add := func(addr, end uint64, t MapType) {
		if end > addr {
			m = append(m, MapEntry{Addr: addr, Size: end - addr, Type: t})
		}
	}
	for _, r := range mm.Ranges() {
		t := MapReserved
		switch r.Kind {
		case memory.KindRAM:
			t = MapRAM
		case memory.KindFirmware, memory.KindReserved:
		default:
			continue
		}
		add(r.Start, min(r.End(), EBDA), t)
		add(max(r.Start, BIOSEnd), r.End(), t)
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
	return out
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
