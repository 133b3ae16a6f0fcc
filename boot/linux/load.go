package linux

import (
	"encoding/binary"
	"fmt"

	"walkvm/boot/loader"
	"walkvm/memory"
)

// GDT selectors the 64-bit boot protocol requires (__BOOT_CS, __BOOT_DS).
const (
	SelBootCS = 0x10
	SelBootDS = 0x18
)

// DefaultLoad is where a kernel that is not relocatable and gives no
// pref_address goes.
const DefaultLoad = 0x100000

// Config is what a Linux boot is given besides the image.
type Config struct {
	Cmdline string
	// Initrd, when non-nil, is the initial ramdisk.
	Initrd []byte
	// Map is the machine's memory map: the e820 map is derived from it
	// (loader.MemoryMap), and its claims are kept clear.
	Map *memory.Map
	// RSDP is the ACPI RSDP's address for boot_params.acpi_rsdp_addr; 0
	// leaves the kernel to scan for it.
	RSDP uint64
}

// Load loads bzImage image and its boot data into mem.
//
// Placement: the protected-mode code goes at pref_address (a relocatable
// kernel at the first kernel_alignment-aligned address from there where
// init_size bytes are free RAM), and [load, load+init_size) is kept free
// for the decompressor. The zero page, the command line, the GDT, a
// one-page stack and the page tables (PML4, PDPT and four page
// directories mapping 0-4 GiB 1:1 with 2 MiB pages) go as high as they fit
// in base memory below the EBDA (0x9fc00), else below 4 GiB. The initrd
// goes page-aligned as high as it fits below both initrd_addr_max and
// 4 GiB.
func Load(mem loader.Memory, image []byte, cfg Config) (*loader.Entry, error) {
	h, err := ParseHeader(image)
	if err != nil {
		return nil, err
	}
	if uint64(len(cfg.Cmdline)) > uint64(h.CmdlineSize) {
		return nil, fmt.Errorf("bzImage: command line of %d bytes is longer than cmdline_size %d at 0x238", len(cfg.Cmdline), h.CmdlineSize)
	}
	e820 := loader.MemoryMap(cfg.Map)
	if len(e820) > E820Max {
		return nil, fmt.Errorf("bzImage: %d e820 entries, the zero page holds %d", len(e820), E820Max)
	}
	pl := loader.NewPlacer(cfg.Map)
	pm := image[h.PMOffset:]
	if len(pm) <= Entry64 {
		return nil, fmt.Errorf("bzImage: protected-mode code of %d bytes at file offset %#x ends before the 64-bit entry point at +%#x", len(pm), h.PMOffset, Entry64)
	}
	size := max(uint64(h.InitSize), uint64(len(pm)))
	load, err := placeKernel(pl, h, size)
	if err != nil {
		return nil, err
	}

	var initrd uint64
	if len(cfg.Initrd) > 0 {
		hi := min(uint64(h.InitrdAddrMax)+1, loader.Below4G)
		initrd, err = pl.Place("initrd", uint64(len(cfg.Initrd)), 4096, loader.BIOSEnd, hi, true)
		if err != nil {
			return nil, fmt.Errorf("bzImage: initrd of %d bytes below initrd_addr_max %#x: %w", len(cfg.Initrd), h.InitrdAddrMax, err)
		}
	}

	gdt := []uint64{0, 0, loader.DescCode64, loader.DescData32}
	var b loader.Block
	zpOff := b.Add(ZeroPageSize, 4096)
	ptOff := b.Add(6*4096, 4096)
	stackOff := b.Add(4096, 4096)
	gdtOff := b.Add(uint64(8*len(gdt)), 16)
	cmdOff := b.String(cfg.Cmdline)
	base, err := placeLow(pl, "Linux boot data", b.Size())
	if err != nil {
		return nil, fmt.Errorf("bzImage: zero page, page tables and command line (%d bytes): %w", b.Size(), err)
	}
	buf := b.Bytes()
	le := binary.LittleEndian

	zp := buf[zpOff : zpOff+ZeroPageSize]
	copy(zp[OffSetupSects:h.HeaderEnd], image[OffSetupSects:h.HeaderEnd])
	zp[OffTypeOfLoader] = TypeOfLoaderUndefined
	zp[OffLoadFlags] = (zp[OffLoadFlags] | LoadedHigh) &^ (CanUseHeap | KeepSegs)
	le.PutUint16(zp[OffHeapEndPtr:], 0)
	le.PutUint32(zp[OffCmdLinePtr:], uint32(base+cmdOff))
	le.PutUint32(zp[OffRamdiskImage:], uint32(initrd))
	le.PutUint32(zp[OffRamdiskSize:], uint32(len(cfg.Initrd)))
	le.PutUint64(zp[OffACPIRSDPAddr:], cfg.RSDP)
	zp[OffE820Entries] = byte(len(e820))
	for i, e := range e820 {
		p := zp[OffE820Table+i*E820EntrySize:]
		le.PutUint64(p, e.Addr)
		le.PutUint64(p[8:], e.Size)
		le.PutUint32(p[16:], uint32(e.Type))
	}

	pml4 := base + ptOff
	identityMap(buf[ptOff:ptOff+6*4096], pml4)
	for i, d := range gdt {
		le.PutUint64(buf[gdtOff+uint64(8*i):], d)
	}

	if err := mem.Write(load, pm); err != nil {
		return nil, fmt.Errorf("bzImage: protected-mode code at %#x: %w", load, err)
	}
	if err := loader.Zero(mem, load+uint64(len(pm)), size-uint64(len(pm))); err != nil {
		return nil, fmt.Errorf("bzImage: clearing init_size area: %w", err)
	}
	if len(cfg.Initrd) > 0 {
		if err := mem.Write(initrd, cfg.Initrd); err != nil {
			return nil, fmt.Errorf("bzImage: initrd at %#x: %w", initrd, err)
		}
	}
	if err := mem.Write(base, buf); err != nil {
		return nil, fmt.Errorf("bzImage: boot data at %#x: %w", base, err)
	}
	return &loader.Entry{
		Mode:     loader.Long64,
		RIP:      load + Entry64,
		RSI:      base + zpOff,
		RSP:      base + stackOff + 4096,
		CR0:      loader.CR0PE | loader.CR0ET | loader.CR0PG,
		CR3:      pml4,
		CR4:      loader.CR4PAE,
		EFER:     loader.EFERLME | loader.EFERLMA,
		GDTBase:  base + gdtOff,
		GDT:      gdt,
		CS:       SelBootCS,
		DS:       SelBootDS,
		Occupied: pl.Claimed(),
	}, nil
}

// placeKernel claims [load, load+size) for the protected-mode code and the
// decompressor's room.
func placeKernel(pl *loader.Placer, h *Header, size uint64) (uint64, error) {
	const what = "Linux kernel (init_size)"
	pref := h.PrefAddress
	if pref == 0 {
		pref = DefaultLoad
	}
	if !h.Relocatable {
		if err := pl.Claim(what, pref, size); err != nil {
			return 0, fmt.Errorf("bzImage: kernel is not relocatable and pref_address %#x + %#x bytes (init_size) does not fit: %w", pref, size, err)
		}
		return pref, nil
	}
	align := uint64(h.KernelAlignment)
	lo := (pref + align - 1) &^ (align - 1)
	load, err := pl.Place(what, size, align, lo, loader.Below4G, false)
	if err != nil {
		return 0, fmt.Errorf("bzImage: %#x bytes (init_size) aligned to kernel_alignment %#x from pref_address %#x: %w", size, align, pref, err)
	}
	return load, nil
}

// placeLow places boot data as high as it fits in base memory, else below
// 4 GiB.
func placeLow(pl *loader.Placer, what string, size uint64) (uint64, error) {
	a, err := pl.Place(what, size, 4096, 0x1000, loader.EBDA, true)
	if err == nil {
		return a, nil
	}
	return pl.Place(what, size, 4096, loader.BIOSEnd, loader.Below4G, true)
}

// identityMap fills six pages at gpa pml4 (PML4, PDPT, four page
// directories) mapping 0-4 GiB to itself with 2 MiB pages, present and
// writable (SDM Vol. 3A §4.5).
func identityMap(pt []byte, pml4 uint64) {
	const p, rw, ps = 1, 2, 0x80
	le := binary.LittleEndian
	pdpt := pml4 + 0x1000
	le.PutUint64(pt, pdpt|p|rw)
	for i := uint64(0); i < 4; i++ {
		pd := pdpt + 0x1000 + i*0x1000
		le.PutUint64(pt[0x1000+8*i:], pd|p|rw)
		for j := uint64(0); j < 512; j++ {
			le.PutUint64(pt[0x2000+i*0x1000+8*j:], i<<30|j<<21|p|rw|ps)
		}
	}
}

// IdentityLimit is the end of what the entry page tables map.
const IdentityLimit = loader.Below4G
