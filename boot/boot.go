// Package boot puts guest images into guest memory: the Loader interface
// every image format implements, and the flat loader (Image), which builds
// the vCPU state to enter a flat binary in real, protected (flat 32-bit,
// paging off) or long mode (walkvm's identity map of the first 4 GiB with
// 2 MiB pages).
//
// Layout walkvm owns in low RAM (documented for guest authors):
//
//	0x00500–0x0052f  GDT (GDTBase): null, flat code32 (0x08), flat data32
//	                 (0x10), code64 (0x18), code16 (0x20), data16 (0x28)
//	0x9a000          PML4 (long entry only)
//	0x9b000          PDPT
//	0x9c000–0x9ffff  four page directories, 2 MiB pages, identity 0–4 GiB
package boot

import (
	"encoding/binary"
	"fmt"
	"strings"

	"walkvm/boot/loader"
	"walkvm/kvm"
	"walkvm/memory"
	"walkvm/x86"
)

// Mode is the CPU mode a flat image is entered in.
type Mode int

// Entry modes.
const (
	Real Mode = iota
	Protected
	Long
)

var modeNames = []string{"real", "protected", "long"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode reads "real", "protected" or "long".
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("entry mode %q: want one of %s", s, strings.Join(modeNames, ", "))
}

// Fixed GPAs of walkvm's boot structures.
const (
	DefaultLoad = 0x1000
	GDTBase     = 0x500
	PML4Base    = 0x9a000
	PDPTBase    = 0x9b000
	PDBase      = 0x9c000 // four consecutive PDs
	bootAreaEnd = 0xa0000

	SelCode32 = 0x08
	SelData32 = 0x10
	SelCode64 = 0x18
	SelCode16 = 0x20
	SelData16 = 0x28
)

// gdt is walkvm's GDT for flat images and plain ELF kernels, indexed by
// selector>>3.
var gdt = [...]uint64{
	0,
	loader.DescCode32,
	loader.DescData32,
	loader.DescCode64,
	loader.DescCode16,
	loader.DescData16,
}

// Loader puts one kind of guest image into guest memory. The machine calls
// Plan with its memory map before it maps RAM, then Load once RAM exists.
type Loader interface {
	// Plan claims in mm what the loader will write (mm.Claim: the image,
	// its boot structures), which must be RAM and clear of each other, and
	// may add ranges it needs kept free (mm.Add with KindReserved). An
	// error says what does not fit, and where.
	Plan(mm *memory.Map) error
	// Load writes the image and its boot structures into ram, inside what
	// Plan claimed, and returns how to enter it.
	Load(ram *memory.RAM) (*Entry, error)
}

// Entry is how the boot vCPU enters a loaded image.
type Entry struct {
	Mode  Mode // the mode the registers below set up
	Regs  kvm.Regs
	Sregs kvm.Sregs
	// Written lists the boot structures the loader wrote besides the
	// image (GDT, page tables, boot information).
	Written []memory.Range
}

// Image is a flat binary and where it goes.
type Image struct {
	Data []byte
	Load uint64
	Mode Mode
}

// Flat is the flat Loader for img: the image at img.Load, entered there in
// img.Mode with walkvm's GDT (and, for long mode, its identity map).
func Flat(img Image) Loader { return flat{img} }

type flat struct{ img Image }

// The flat loader's boot structures.
var (
	gdtRange        = memory.Range{Name: "walkvm's GDT", Start: GDTBase, Size: uint64(len(gdt)) * 8}
	pageTablesRange = memory.Range{Name: "walkvm's long-mode page tables", Start: PML4Base, Size: bootAreaEnd - PML4Base}
)

// Plan implements Loader.
func (f flat) Plan(mm *memory.Map) error {
	img := f.img
	if len(img.Data) == 0 {
		return fmt.Errorf("image is empty")
	}
	size := uint64(len(img.Data))
	end := img.Load + size
	if end < img.Load {
		return fmt.Errorf("image of %d bytes at %#x wraps the address space", size, img.Load)
	}
	if img.Load < gdtRange.End() {
		return fmt.Errorf("image at %#x overlaps %s (load at %#x or above)", img.Load, gdtRange, gdtRange.End())
	}
	if img.Mode != Real && img.Mode != Protected && img.Mode != Long {
		return fmt.Errorf("unknown entry mode %v", img.Mode)
	}
	for _, r := range f.written() {
		if err := mm.Claim(r.Name, r.Start, r.Size); err != nil {
			return err
		}
	}
	if err := mm.Claim("image", img.Load, size); err != nil {
		return err
	}
	if img.Mode == Real && end > memory.HoleStart {
		return fmt.Errorf("real-mode image at %#x-%#x must end below %#x", img.Load, end-1, memory.HoleStart)
	}
	return nil
}

// writtenFor lists the boot structures walkvm writes to enter an image in
// mode: its GDT, and for long mode its identity map.
func writtenFor(mode Mode) []memory.Range {
	if mode == Long {
		return []memory.Range{gdtRange, pageTablesRange}
	}
	return []memory.Range{gdtRange}
}

// written lists the boot structures the flat loader writes.
func (f flat) written() []memory.Range { return writtenFor(f.img.Mode) }

// Load implements Loader: it copies the image into ram, writes walkvm's GDT
// (and page tables for long mode) and returns the entry state.
func (f flat) Load(ram *memory.RAM) (*Entry, error) {
	img := f.img
	size := uint64(len(img.Data))
	dst, err := ram.Slice(img.Load, size)
	if err != nil {
		return nil, fmt.Errorf("image of %d bytes at %#x does not fit in guest RAM (%d MiB): %w", size, img.Load, ram.Size()>>20, err)
	}
	copy(dst, img.Data)
	return enter(ram, img.Mode, img.Load, img.Load, f.written())
}

// enter writes walkvm's GDT (and for long mode its identity map) and
// returns the state that enters rip in mode. In protected and long mode
// the stack ends at stack; in real mode CS is rip's paragraph when rip is
// above 64 KiB, and the stack ends just below rip (SS:SP =
// CS-0x1000:0xfff0+IP then).
func enter(ram *memory.RAM, mode Mode, rip, stack uint64, written []memory.Range) (*Entry, error) {
	for i, d := range gdt {
		if err := ram.WriteUint64(GDTBase+uint64(i)*8, d); err != nil {
			return nil, err
		}
	}
	e := &Entry{Mode: mode, Written: written}
	regs, sregs := &e.Regs, &e.Sregs
	*regs = kvm.Regs{RFLAGS: 2, RIP: rip, RSP: stack}
	sregs.GDT = kvm.Descriptor{Base: GDTBase, Limit: uint16(len(gdt)*8 - 1)}
	sregs.IDT = kvm.Descriptor{Limit: 0x3ff}
	sregs.TR = kvm.Segment{Limit: 0xffff, Typ: 11, Present: 1} // busy TSS
	sregs.LDT = kvm.Segment{Limit: 0xffff, Typ: 2, Present: 1} // LDT
	sregs.CR0 = x86.CR0ET
	switch mode {
	case Real:
		cs := uint16(0)
		if rip > 0xffff {
			cs = uint16(rip >> 4)
			regs.RIP = rip & 0xf
		}
		ss := cs
		regs.RSP = regs.RIP
		if cs != 0 {
			ss = cs - 0x1000
			regs.RSP = 0x10000 + regs.RIP - 0x10
		}
		sregs.CS = realSeg(cs, 11)
		sregs.SS = realSeg(ss, 3)
		for _, s := range []*kvm.Segment{&sregs.DS, &sregs.ES, &sregs.FS, &sregs.GS} {
			*s = realSeg(cs, 3)
		}
	case Protected:
		sregs.CR0 |= x86.CR0PE
		sregs.CS = gdtSeg(SelCode32)
		setData(sregs, gdtSeg(SelData32))
	case Long:
		if err := identityMap(ram); err != nil {
			return nil, err
		}
		sregs.CR0 |= x86.CR0PE | x86.CR0PG
		sregs.CR3 = PML4Base
		sregs.CR4 = x86.CR4PAE
		sregs.EFER = x86.EFERLME | x86.EFERLMA
		sregs.CS = gdtSeg(SelCode64)
		setData(sregs, gdtSeg(SelData32))
	default:
		return nil, fmt.Errorf("unknown entry mode %v", mode)
	}
	return e, nil
}

// Load plans and loads l into ram laid out as mm: for tools and tests that
// build RAM themselves.
func Load(ram *memory.RAM, mm *memory.Map, l Loader) (*Entry, error) {
	if err := l.Plan(mm); err != nil {
		return nil, err
	}
	return l.Load(ram)
}

func realSeg(sel uint16, typ uint8) kvm.Segment {
	return kvm.Segment{Base: uint64(sel) << 4, Limit: 0xffff, Selector: sel, Typ: typ, Present: 1, S: 1}
}

// gdtSeg is the segment register loaded with selector sel of walkvm's GDT.
func gdtSeg(sel uint16) kvm.Segment {
	s := DecodeDescriptor(gdt[sel>>3])
	s.Selector = sel
	return s
}

func setData(s *kvm.Sregs, seg kvm.Segment) {
	s.DS, s.ES, s.FS, s.GS, s.SS = seg, seg, seg, seg, seg
}

// identityMap maps 0–4 GiB 1:1 with 2 MiB pages (present, writable,
// supervisor) at PML4Base.
func identityMap(ram *memory.RAM) error {
	const p, rw, ps = 1, 2, 0x80
	var buf [8]byte
	put := func(gpa, v uint64) error {
		binary.LittleEndian.PutUint64(buf[:], v)
		return ram.Write(gpa, buf[:])
	}
	if err := put(PML4Base, PDPTBase|p|rw); err != nil {
		return fmt.Errorf("long-mode page tables: %w", err)
	}
	for i := uint64(0); i < 4; i++ {
		if err := put(PDPTBase+i*8, (PDBase+i*0x1000)|p|rw); err != nil {
			return err
		}
		for j := uint64(0); j < 512; j++ {
			if err := put(PDBase+i*0x1000+j*8, (i<<30|j<<21)|p|rw|ps); err != nil {
				return err
			}
		}
	}
	return nil
}
