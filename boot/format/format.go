// Package format tells a guest image's boot format from its bytes: a Linux
// bzImage, a multiboot kernel (ELF, or any file whose multiboot header has
// the load addresses), an ELF kernel with a PVH entry note, another ELF, or
// a flat binary.
package format

import (
	"fmt"

	"walkvm/boot/elfload"
	"walkvm/boot/linux"
	"walkvm/boot/multiboot"
	"walkvm/boot/pvh"
)

// Kind is an image's boot format.
type Kind int

// Boot formats, in the order Detect tries them.
const (
	// Flat is a raw binary loaded at an address the user gives.
	Flat Kind = iota
	// BzImage is a Linux bzImage (boot flag 0xAA55 and "HdrS" in its setup
	// header), booted through the 64-bit boot protocol (package linux).
	BzImage
	// MultibootAout is an image whose multiboot header has the address
	// fields (flags bit 16), loaded by them (package multiboot).
	MultibootAout
	// MultibootELF is an ELF with a multiboot header in its first 8 KiB,
	// loaded by its program headers (package multiboot).
	MultibootELF
	// PVH is an ELF with a XEN_ELFNOTE_PHYS32_ENTRY note (package pvh).
	PVH
	// ELF is any other ELF executable: its PT_LOADs at p_paddr, entered at
	// e_entry in a mode the user gives (package elfload).
	ELF
)

var kindNames = [...]string{Flat: "flat", BzImage: "bzImage", MultibootAout: "multiboot (a.out kludge)", MultibootELF: "multiboot ELF", PVH: "PVH ELF", ELF: "ELF"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("format(%d)", int(k))
}

// Detect says which format b is and why. A file that starts like a format
// but is malformed gets that kind and an error saying what is wrong: the
// caller should not fall back to another format.
//
// Order: bzImage (its signature sits at fixed offsets); a multiboot header
// in the first 8 KiB (so a multiboot ELF that also has a PVH note boots
// the multiboot way, as GRUB would); ELF with a PVH note; other ELF; flat.
func Detect(b []byte) (Kind, string, error) {
	if linux.IsBzImage(b) {
		h, err := linux.ParseHeader(b)
		if err != nil {
			return BzImage, "boot flag 0xaa55 at 0x1fe and \"HdrS\" at 0x202", err
		}
		return BzImage, fmt.Sprintf("\"HdrS\" at 0x202, boot protocol %d.%02d, protected-mode code at file offset %#x", h.Version>>8, h.Version&0xff, h.PMOffset), nil
	}
	h, ok, err := multiboot.FindHeader(b)
	if err != nil {
		return MultibootAout, fmt.Sprintf("multiboot header at file offset %#x", h.Offset), err
	}
	isELF := elfload.IsELF(b)
	if ok {
		if h.Flags&multiboot.FlagAddress != 0 {
			return MultibootAout, fmt.Sprintf("multiboot header at file offset %#x, flags %#x with address fields (bit 16): load_addr %#x, entry_addr %#x", h.Offset, h.Flags, h.LoadAddr, h.EntryAddr), nil
		}
		if !isELF {
			return MultibootAout, fmt.Sprintf("multiboot header at file offset %#x", h.Offset), fmt.Errorf("multiboot header at file offset %#x has no address fields (flags %#x lacks bit 16) and the file is not ELF: walkvm cannot tell where to load it", h.Offset, h.Flags)
		}
		f, err := elfload.Parse(b)
		if err != nil {
			return MultibootELF, fmt.Sprintf("ELF with a multiboot header at file offset %#x", h.Offset), err
		}
		return MultibootELF, fmt.Sprintf("%s with a multiboot header at file offset %#x (flags %#x), entry %#x", describe(f), h.Offset, h.Flags, f.Entry), nil
	}
	if isELF {
		f, err := elfload.Parse(b)
		if err != nil {
			return ELF, "\\x7fELF magic", err
		}
		entry, ok, err := pvh.EntryPoint(f, b)
		if err != nil {
			return PVH, describe(f) + " with a Xen PHYS32_ENTRY note", err
		}
		if ok {
			return PVH, fmt.Sprintf("%s with a PVH entry note (Xen, XEN_ELFNOTE_PHYS32_ENTRY) at %#x", describe(f), entry), nil
		}
		return ELF, fmt.Sprintf("%s without a multiboot header or PVH note: entered at e_entry %#x", describe(f), f.Entry), nil
	}
	return Flat, "no bzImage setup header, multiboot header or ELF magic: a flat binary", nil
}

func describe(f *elfload.File) string {
	m := "EM_386"
	if f.Machine == elfload.EMX86_64 {
		m = "EM_X86_64"
	}
	return fmt.Sprintf("ELFCLASS%d %s", 32*f.Class, m)
}
