// Package pvh loads an ELF kernel through the PVH boot ABI (Xen's x86/HVM
// direct boot, xen/include/public/arch-x86/hvm/start_info.h, as Linux,
// QEMU and Firecracker use it): PT_LOAD segments at p_paddr, an
// hvm_start_info with the command line, the initrd as module 0 and a
// memory map, and entry at the XEN_ELFNOTE_PHYS32_ENTRY address in flat
// 32-bit protected mode with paging off and EBX pointing at the start info.
package pvh

import (
	"encoding/binary"
	"fmt"

	"walkvm/boot/elfload"
	"walkvm/boot/loader"
	"walkvm/memory"
)

// The PVH entry note and hvm_start_info layout.
const (
	NoteName        = "Xen"
	NotePhys32Entry = 18 // XEN_ELFNOTE_PHYS32_ENTRY

	StartInfoMagic  = 0x336ec578 // XEN_HVM_START_MAGIC_VALUE
	StartInfoVer    = 1          // version 1 has the memory map
	StartInfoSize   = 56
	ModSize         = 32 // hvm_modlist_entry: paddr, size, cmdline_paddr, reserved
	MemmapEntrySize = 24 // hvm_memmap_table_entry: addr, size, type u32, reserved u32

	OffMagic         = 0
	OffVersion       = 4
	OffFlags         = 8
	OffNrModules     = 12
	OffModlistPaddr  = 16
	OffCmdlinePaddr  = 24
	OffRSDPPaddr     = 32
	OffMemmapPaddr   = 40
	OffMemmapEntries = 48

	// StructLimit: Linux maps only the first GiB when it reads the start
	// info, the module list and the memory map.
	StructLimit = 1 << 30
)

// GDT selectors of the entry state.
const (
	SelCode = 0x08
	SelData = 0x10
	SelTSS  = 0x18
)

// EntryPoint finds the XEN_ELFNOTE_PHYS32_ENTRY note of ELF file f (parsed
// from image) and returns its 32-bit entry address. The descriptor is 4
// bytes or, as Linux writes it on x86_64, 8.
func EntryPoint(f *elfload.File, image []byte) (uint32, bool, error) {
	notes, err := f.Notes(image)
	if err != nil {
		return 0, false, err
	}
	for _, n := range notes {
		if n.Name != NoteName || n.Type != NotePhys32Entry {
			continue
		}
		switch len(n.Desc) {
		case 4:
			return binary.LittleEndian.Uint32(n.Desc), true, nil
		case 8:
			v := binary.LittleEndian.Uint64(n.Desc)
			if v >= loader.Below4G {
				return 0, true, fmt.Errorf("ELF note at file offset %#x (Xen, XEN_ELFNOTE_PHYS32_ENTRY): entry %#x is not a 32-bit address", n.Offset, v)
			}
			return uint32(v), true, nil
		default:
			return 0, true, fmt.Errorf("ELF note at file offset %#x (Xen, XEN_ELFNOTE_PHYS32_ENTRY): descriptor of %d bytes, want 4 or 8", n.Offset, len(n.Desc))
		}
	}
	return 0, false, nil
}

// Config is what a PVH boot is given besides the image.
type Config struct {
	Cmdline string
	// Initrd, when non-nil, is module 0.
	Initrd []byte
	// Map is the machine's memory map: the PVH memmap is derived from it
	// (loader.MemoryMap), and its claims are kept clear.
	Map *memory.Map
	// RSDP is the ACPI RSDP's address for rsdp_paddr; 0: none given.
	RSDP uint64
}

// Load loads ELF kernel image with a PVH note into mem.
//
// Placement: the PT_LOAD segments at p_paddr; the start info, module
// list, memory map, command line and GDT in one block as high as it fits
// in base memory below the EBDA (0x9fc00), else below 1 GiB; the initrd
// page-aligned as high as it fits below 4 GiB; none of them over a
// segment.
func Load(mem loader.Memory, image []byte, cfg Config) (*loader.Entry, error) {
	f, err := elfload.Parse(image)
	if err != nil {
		return nil, fmt.Errorf("PVH: %w", err)
	}
	entry, ok, err := EntryPoint(f, image)
	if err != nil {
		return nil, fmt.Errorf("PVH: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("PVH: no XEN_ELFNOTE_PHYS32_ENTRY note (name %q, type %d) in the ELF's PT_NOTE segments", NoteName, NotePhys32Entry)
	}
	inside := false
	for _, p := range f.Loads() {
		inside = inside || (uint64(entry) >= p.PAddr && uint64(entry)-p.PAddr < p.MemSz)
	}
	if !inside {
		return nil, fmt.Errorf("PVH: entry %#x (XEN_ELFNOTE_PHYS32_ENTRY) is in no PT_LOAD segment", entry)
	}
	m := loader.MemoryMap(cfg.Map)
	pl := loader.NewPlacer(cfg.Map)
	if _, err := f.Load(mem, pl, image); err != nil {
		return nil, fmt.Errorf("PVH: %w", err)
	}

	var initrd uint64
	if len(cfg.Initrd) > 0 {
		initrd, err = pl.Place("initrd", uint64(len(cfg.Initrd)), 4096, loader.BIOSEnd, loader.Below4G, true)
		if err != nil {
			return nil, fmt.Errorf("PVH: initrd of %d bytes: %w", len(cfg.Initrd), err)
		}
	}

	gdt := []uint64{0, loader.DescCode32, loader.DescData32, loader.DescTSS32Busy}
	var b loader.Block
	siOff := b.Add(StartInfoSize, 8)
	modOff := b.Add(ModSize, 8)
	mapOff := b.Add(uint64(MemmapEntrySize*len(m)), 8)
	gdtOff := b.Add(uint64(8*len(gdt)), 8)
	cmdOff := b.String(cfg.Cmdline)
	base, err := pl.Place("PVH start info", b.Size(), 4096, 0x1000, loader.EBDA, true)
	if err != nil {
		base, err = pl.Place("PVH start info", b.Size(), 4096, loader.BIOSEnd, StructLimit, true)
	}
	if err != nil {
		return nil, fmt.Errorf("PVH: start info, memory map and command line (%d bytes) below 1 GiB: %w", b.Size(), err)
	}
	buf := b.Bytes()
	le := binary.LittleEndian
	si := buf[siOff:]
	le.PutUint32(si[OffMagic:], StartInfoMagic)
	le.PutUint32(si[OffVersion:], StartInfoVer)
	le.PutUint64(si[OffCmdlinePaddr:], base+cmdOff)
	le.PutUint64(si[OffRSDPPaddr:], cfg.RSDP)
	le.PutUint64(si[OffMemmapPaddr:], base+mapOff)
	le.PutUint32(si[OffMemmapEntries:], uint32(len(m)))
	if len(cfg.Initrd) > 0 {
		le.PutUint32(si[OffNrModules:], 1)
		le.PutUint64(si[OffModlistPaddr:], base+modOff)
		le.PutUint64(buf[modOff:], initrd)
		le.PutUint64(buf[modOff+8:], uint64(len(cfg.Initrd)))
	}
	for i, e := range m {
		p := buf[mapOff+uint64(i*MemmapEntrySize):]
		le.PutUint64(p, e.Addr)
		le.PutUint64(p[8:], e.Size)
		le.PutUint32(p[16:], uint32(e.Type))
	}
	for i, d := range gdt {
		le.PutUint64(buf[gdtOff+uint64(8*i):], d)
	}
	if len(cfg.Initrd) > 0 {
		if err := mem.Write(initrd, cfg.Initrd); err != nil {
			return nil, fmt.Errorf("PVH: initrd at %#x: %w", initrd, err)
		}
	}
	if err := mem.Write(base, buf); err != nil {
		return nil, fmt.Errorf("PVH: start info at %#x: %w", base, err)
	}
	return &loader.Entry{
		Mode:     loader.Protected32,
		RIP:      uint64(entry),
		RBX:      base + siOff,
		CR0:      loader.CR0PE | loader.CR0ET,
		GDTBase:  base + gdtOff,
		GDT:      gdt,
		CS:       SelCode,
		DS:       SelData,
		TR:       SelTSS,
		Occupied: pl.Claimed(),
	}, nil
}
