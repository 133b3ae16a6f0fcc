package mmu

import "fmt"

// WalkerKind names the walker as KVM's paging_tmpl.h instantiations do.
type WalkerKind uint8

const (
	Nonpaging WalkerKind = iota // no paging: linear = physical
	Paging32                    // 32-bit paging (PTTYPE 32)
	Paging64                    // PAE, 4-level and 5-level paging (PTTYPE 64)
	EPT                         // extended page tables (PTTYPE_EPT)
)

var walkerNames = [...]string{"nonpaging", "paging32", "paging64", "ept"}

func (k WalkerKind) String() string {
	if int(k) < len(walkerNames) {
		return walkerNames[k]
	}
	return fmt.Sprintf("walker%d", uint8(k))
}

// MaxLevels is the deepest walk: 5-level paging or 5-level EPT.
const MaxLevels = 5

// Format describes a paging-structure format: everything the one walk loop
// needs to know about where a format keeps its bits. Reserved-bit masks
// depend on the mode and CPUID as well and are computed per Context.
type Format struct {
	Walker     WalkerKind
	Levels     uint8 // levels from the root; PAE counts the PDPT
	EntryBytes uint8 // 4 or 8
	IndexBits  uint8 // linear-address bits per level: 10 or 9
	// LargeLevels has bit l set when an entry at level l with PageSize set
	// maps a page (subject to CR4.PSE and the reserved-bit checks).
	LargeLevels uint8

	Present  uint64 // the entry is present when any of these bits is set
	Readable uint64 // 0: every present entry allows reads
	Writable uint64
	User     uint64 // 0: the format has no U/S (EPT)
	NX       uint64 // execute-disable bit, 0 if none
	Exec     uint64 // execute-allow bit (EPT), 0 if none
	PageSize uint64
	Accessed uint64
	Dirty    uint64
	MemType  uint64 // EPT memory type of a leaf, bits 5:3
	AddrMask uint64 // address bits of a table or 4-KByte page
}

// PageShift is log2 of the size mapped by one entry at level (1 = 4 KiB).
func (f *Format) PageShift(level uint8) uint {
	return 12 + uint(f.IndexBits)*uint(level-1)
}

const (
	bitP   = 1 << 0
	bitRW  = 1 << 1
	bitUS  = 1 << 2
	bitA   = 1 << 5
	bitD   = 1 << 6
	bitPS  = 1 << 7
	bitXD  = 1 << 63
	eptR   = 1 << 0
	eptW   = 1 << 1
	eptX   = 1 << 2
	eptPS  = 1 << 7
	eptA   = 1 << 8
	eptD   = 1 << 9
	eptRWX = eptR | eptW | eptX
)

// The formats, one value per instantiation (SDM Vol. 3A §4.3-4.5, Vol. 3C
// §29.3.2).
var (
	formatPaging32 = Format{
		Walker: Paging32, Levels: 2, EntryBytes: 4, IndexBits: 10, LargeLevels: 1 << 2,
		Present: bitP, Writable: bitRW, User: bitUS, PageSize: bitPS,
		Accessed: bitA, Dirty: bitD, AddrMask: 0xFFFFF000,
	}
	formatPAE = Format{
		Walker: Paging64, Levels: 3, EntryBytes: 8, IndexBits: 9, LargeLevels: 1 << 2,
		Present: bitP, Writable: bitRW, User: bitUS, NX: bitXD, PageSize: bitPS,
		Accessed: bitA, Dirty: bitD, AddrMask: bits(12, 51),
	}
	formatPaging4 = Format{
		Walker: Paging64, Levels: 4, EntryBytes: 8, IndexBits: 9, LargeLevels: 1<<2 | 1<<3,
		Present: bitP, Writable: bitRW, User: bitUS, NX: bitXD, PageSize: bitPS,
		Accessed: bitA, Dirty: bitD, AddrMask: bits(12, 51),
	}
	formatPaging5 = Format{
		Walker: Paging64, Levels: 5, EntryBytes: 8, IndexBits: 9, LargeLevels: 1<<2 | 1<<3,
		Present: bitP, Writable: bitRW, User: bitUS, NX: bitXD, PageSize: bitPS,
		Accessed: bitA, Dirty: bitD, AddrMask: bits(12, 51),
	}
	formatEPT4 = Format{
		Walker: EPT, Levels: 4, EntryBytes: 8, IndexBits: 9, LargeLevels: 1<<2 | 1<<3,
		Present: eptRWX, Readable: eptR, Writable: eptW, Exec: eptX, PageSize: eptPS,
		Accessed: eptA, Dirty: eptD, MemType: bits(3, 5), AddrMask: bits(12, 51),
	}
	formatEPT5 = Format{
		Walker: EPT, Levels: 5, EntryBytes: 8, IndexBits: 9, LargeLevels: 1<<2 | 1<<3,
		Present: eptRWX, Readable: eptR, Writable: eptW, Exec: eptX, PageSize: eptPS,
		Accessed: eptA, Dirty: eptD, MemType: bits(3, 5), AddrMask: bits(12, 51),
	}
)
