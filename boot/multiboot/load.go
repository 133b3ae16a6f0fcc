package multiboot

import (
	"encoding/binary"
	"fmt"

	"walkvm/boot/elfload"
	"walkvm/boot/loader"
	"walkvm/memory"
)

// Boot information flags (§3.3): which fields of the information structure
// are valid.
const (
	InfoMemory     = 1 << 0 // mem_lower, mem_upper
	InfoCmdline    = 1 << 2 // cmdline
	InfoMods       = 1 << 3 // mods_count, mods_addr
	InfoMemMap     = 1 << 6 // mmap_length, mmap_addr
	InfoLoaderName = 1 << 9 // boot_loader_name
)

// Offsets in the boot information structure (§3.3).
const (
	OffFlags      = 0
	OffMemLower   = 4
	OffMemUpper   = 8
	OffCmdline    = 16
	OffModsCount  = 20
	OffModsAddr   = 24
	OffMmapLength = 44
	OffMmapAddr   = 48
	OffLoaderName = 64
	InfoSize      = 116 // through the framebuffer fields, all zero
	ModSize       = 16  // mod_start, mod_end, string, reserved
	MmapEntrySize = 24  // size (= 20, not counting itself), base_addr, length, type
)

// LoaderName is the boot_loader_name walkvm gives.
const LoaderName = "walkvm"

// GDT selectors of the entry state.
const (
	SelCode = 0x08
	SelData = 0x10
)

// Areas the information and modules are kept out of: kvm-unit-tests
// writes its AP trampoline on page 0, s3 and realmode code at 0x1000, and
// realmode.flat lives at 0x8000-0xdfff.
var guestAreas = []loader.Range{
	{Base: 0, Size: 0x2000, What: "page 0 and 0x1000 (guests put code there)"},
	{Base: 0x8000, Size: 0x6000, What: "0x8000-0xdfff (guests put code there)"},
}

// Config is what a multiboot boot is given besides the image.
type Config struct {
	// Name is the image's name, the first word of the command line
	// (kvm-unit-tests takes argv[0] from it).
	Name string
	// Append is the rest of the command line.
	Append string
	// Initrd, when non-nil, is passed as the one module; InitrdName is its
	// string ("initrd" if empty).
	Initrd     []byte
	InitrdName string
	// Map is the machine's memory map: the multiboot mmap is derived
	// from it (loader.MemoryMap), and its claims are kept clear.
	Map *memory.Map
}

// Load loads a multiboot image and its boot information into mem.
//
// Placement: the image goes where its ELF program headers (p_paddr) or
// address fields say. The boot information structure, memory map, module
// list, command line, module string, boot loader name and walkvm's
// three-entry GDT go in one block, as high as it fits in base memory below
// the EBDA (0x9fc00), outside the image and outside page 0, page 0x1000
// and 0x8000-0xdfff; where base memory is full, as high as it fits below
// 4 GiB. The module's bytes go page-aligned as high as they fit in RAM
// below 4 GiB, outside the image: at the top of RAM they stay clear of the
// heap kvm-unit-tests grows upwards from the image's end to mem_upper.
func Load(mem loader.Memory, image []byte, cfg Config) (*loader.Entry, error) {
	h, ok, err := FindHeader(image)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("multiboot: no header (magic %#x with a valid checksum) in the first %d bytes", HeaderMagic, SearchLimit)
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	m := loader.MemoryMap(cfg.Map)
	pl := loader.NewPlacer(cfg.Map)
	var entry uint64
	if h.Flags&FlagAddress != 0 {
		entry, err = loadAout(mem, pl, image, h)
	} else {
		entry, err = loadELF(mem, pl, image, h)
	}
	if err != nil {
		return nil, err
	}
	for _, a := range guestAreas {
		pl.Avoid(a.What, a.Base, a.Size)
	}

	// The module's bytes.
	var modAddr uint64
	if cfg.Initrd != nil {
		modAddr, err = pl.Place("multiboot module", max(uint64(len(cfg.Initrd)), 1), 4096, loader.BIOSEnd, loader.Below4G, true)
		if err != nil {
			return nil, fmt.Errorf("multiboot module of %d bytes: %w", len(cfg.Initrd), err)
		}
	}

	// The information block: fixed-size parts first, strings after.
	cmdline := cfg.Name
	if cfg.Append != "" {
		cmdline += " " + cfg.Append
	}
	modName := cfg.InitrdName
	if modName == "" {
		modName = "initrd"
	}
	gdt := []uint64{0, loader.DescCode32, loader.DescData32}
	var b loader.Block
	infoOff := b.Add(InfoSize, 16)
	gdtOff := b.Add(uint64(8*len(gdt)), 8)
	mmapOff := b.Add(uint64(MmapEntrySize*len(m)), 8)
	modOff := b.Add(ModSize, 8)
	nameOff := b.String(LoaderName)
	cmdOff := b.String(cmdline)
	modNameOff := b.String(modName)
	base, err := pl.Place("multiboot information", b.Size(), 4096, 0, loader.EBDA, true)
	if err != nil {
		base, err = pl.Place("multiboot information", b.Size(), 4096, loader.BIOSEnd, loader.Below4G, true)
	}
	if err != nil {
		return nil, fmt.Errorf("multiboot information (%d bytes, command line %d bytes): %w", b.Size(), len(cmdline), err)
	}
	buf := b.Bytes()
	le := binary.LittleEndian
	info := buf[infoOff:]
	flags := uint32(InfoMemory | InfoCmdline | InfoMods | InfoMemMap | InfoLoaderName)
	lower, upper := loader.LowerUpper(m)
	le.PutUint32(info[OffFlags:], flags)
	le.PutUint32(info[OffMemLower:], lower)
	le.PutUint32(info[OffMemUpper:], upper)
	le.PutUint32(info[OffCmdline:], uint32(base+cmdOff))
	le.PutUint32(info[OffModsAddr:], uint32(base+modOff))
	le.PutUint32(info[OffMmapLength:], uint32(MmapEntrySize*len(m)))
	le.PutUint32(info[OffMmapAddr:], uint32(base+mmapOff))
	le.PutUint32(info[OffLoaderName:], uint32(base+nameOff))
	for i, e := range m {
		p := buf[mmapOff+uint64(i*MmapEntrySize):]
		le.PutUint32(p, MmapEntrySize-4)
		le.PutUint64(p[4:], e.Addr)
		le.PutUint64(p[12:], e.Size)
		le.PutUint32(p[20:], uint32(e.Type))
	}
	if cfg.Initrd != nil {
		le.PutUint32(info[OffModsCount:], 1)
		le.PutUint32(buf[modOff:], uint32(modAddr))
		le.PutUint32(buf[modOff+4:], uint32(modAddr+uint64(len(cfg.Initrd))))
		le.PutUint32(buf[modOff+8:], uint32(base+modNameOff))
	}
	for i, d := range gdt {
		le.PutUint64(buf[gdtOff+uint64(8*i):], d)
	}
	if err := mem.Write(base, buf); err != nil {
		return nil, fmt.Errorf("multiboot information at %#x: %w", base, err)
	}
	if cfg.Initrd != nil {
		if err := mem.Write(modAddr, cfg.Initrd); err != nil {
			return nil, fmt.Errorf("multiboot module at %#x: %w", modAddr, err)
		}
	}
	return &loader.Entry{
		Mode:     loader.Protected32,
		RIP:      entry,
		RAX:      BootMagic,
		RBX:      base + infoOff,
		CR0:      loader.CR0PE | loader.CR0ET,
		GDTBase:  base + gdtOff,
		GDT:      gdt,
		CS:       SelCode,
		DS:       SelData,
		Occupied: pl.Claimed(),
	}, nil
}

// loadELF loads the PT_LOAD segments and returns the physical entry point:
// e_entry, translated from p_vaddr to p_paddr when it lies in a segment
// linked at a different virtual address (as GRUB does).
func loadELF(mem loader.Memory, pl *loader.Placer, image []byte, h Header) (uint64, error) {
	f, err := elfload.Parse(image)
	if err != nil {
		return 0, fmt.Errorf("multiboot ELF (header at file offset %#x): %w", h.Offset, err)
	}
	if _, err := f.Load(mem, pl, image); err != nil {
		return 0, fmt.Errorf("multiboot ELF: %w", err)
	}
	entry := f.Entry
	for _, p := range f.Loads() {
		if p.VAddr != p.PAddr && entry >= p.VAddr && entry-p.VAddr < p.MemSz {
			entry = entry - p.VAddr + p.PAddr
			break
		}
	}
	if entry >= loader.Below4G {
		return 0, fmt.Errorf("multiboot ELF: entry point %#x (e_entry %#x) is not a 32-bit address", entry, f.Entry)
	}
	return entry, nil
}

// loadAout loads an image by its header's address fields.
func loadAout(mem loader.Memory, pl *loader.Placer, image []byte, h Header) (uint64, error) {
	a, err := h.aoutLayout(len(image))
	if err != nil {
		return 0, err
	}
	what := fmt.Sprintf("multiboot image (load_addr %#x)", a.Load)
	if !pl.Backed(a.Load, a.BSSEnd-a.Load) {
		return 0, fmt.Errorf("multiboot header at file offset %#x: image at load_addr %#x .. %#x (load_end_addr/bss_end_addr) is not in guest RAM", h.Offset, a.Load, a.BSSEnd)
	}
	if err := pl.Claim(what, a.Load, a.BSSEnd-a.Load); err != nil {
		return 0, err
	}
	if err := mem.Write(a.Load, image[a.Off:a.Off+a.Size]); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if err := loader.Zero(mem, a.Load+a.Size, a.BSSEnd-a.Load-a.Size); err != nil {
		return 0, fmt.Errorf("%s: zeroing bss: %w", what, err)
	}
	return a.Entry, nil
}
