// Package multiboot loads multiboot (version 1) kernels: ELF images with a
// multiboot header in their first 8 KiB, and images of any format whose
// header carries the load addresses (flags bit 16, the "a.out kludge").
// It builds the multiboot information structure (memory sizes, command
// line, one module, the memory map) and returns the entry state the
// specification prescribes: 32-bit flat protected mode, paging off,
// EAX = 0x2BADB002, EBX = the information structure.
//
// Reference: the Multiboot Specification version 0.6.96, §3.1 (OS image
// format), §3.2 (machine state) and §3.3 (boot information format).
package multiboot

import (
	"encoding/binary"
	"fmt"
)

// Magic numbers.
const (
	HeaderMagic = 0x1BADB002 // in the OS image's header
	BootMagic   = 0x2BADB002 // in EAX at entry
	// SearchLimit: the header lies wholly within the image's first 8 KiB,
	// 32-bit aligned.
	SearchLimit = 8192
)

// Header flags (§3.1.2). Bits 0-15 are requirements a loader must meet or
// refuse the image; bits 16-31 are optional features.
const (
	FlagPageAlign = 1 << 0  // modules page-aligned
	FlagMemInfo   = 1 << 1  // mem_* and mmap_* wanted
	FlagVideoMode = 1 << 2  // a video mode wanted
	FlagAddress   = 1 << 16 // the header's address fields are valid
	supported     = FlagPageAlign | FlagMemInfo
)

// Header is a multiboot header found in an image.
type Header struct {
	Offset int // file offset of the magic
	Flags  uint32
	// Address fields, valid with FlagAddress.
	HeaderAddr, LoadAddr, LoadEndAddr, BSSEndAddr, EntryAddr uint32
}

// FindHeader looks for a multiboot header (magic, flags and checksum
// summing to zero) at 32-bit aligned offsets in the first SearchLimit bytes
// of b. It reports whether one is there; an error says that one is there
// but cut short by the end of the file.
func FindHeader(b []byte) (Header, bool, error) {
	le := binary.LittleEndian
	n := min(len(b), SearchLimit)
	for off := 0; off+12 <= n; off += 4 {
		if le.Uint32(b[off:]) != HeaderMagic {
			continue
		}
		flags, sum := le.Uint32(b[off+4:]), le.Uint32(b[off+8:])
		if HeaderMagic+flags+sum != 0 {
			continue
		}
		h := Header{Offset: off, Flags: flags}
		if flags&FlagAddress != 0 {
			if off+32 > len(b) {
				return h, true, fmt.Errorf("multiboot header at file offset %#x: flags bit 16 (address fields) set but the file ends at %#x, before the address fields end at %#x", off, len(b), off+32)
			}
			h.HeaderAddr, h.LoadAddr, h.LoadEndAddr = le.Uint32(b[off+12:]), le.Uint32(b[off+16:]), le.Uint32(b[off+20:])
			h.BSSEndAddr, h.EntryAddr = le.Uint32(b[off+24:]), le.Uint32(b[off+28:])
		}
		return h, true, nil
	}
	return Header{}, false, nil
}

// check refuses requirements walkvm cannot meet (§3.1.2: a boot loader
// that does not understand a set bit 0-15 must fail).
func (h Header) check() error {
	if r := h.Flags & 0xffff &^ supported; r != 0 {
		what := "unknown requirement"
		if r&FlagVideoMode != 0 {
			what = "a video mode (bit 2): walkvm has no display"
		}
		return fmt.Errorf("multiboot header at file offset %#x: flags %#x ask for %s", h.Offset, h.Flags, what)
	}
	return nil
}

// aout is where an a.out-kludge image goes: file bytes [Off, Off+Size) at
// Load, zeros up to BSSEnd, entry at Entry.
type aout struct {
	Off, Size, Load, BSSEnd, Entry uint64
}

// aoutLayout checks the address fields against each other and the file
// (§3.1.3).
func (h Header) aoutLayout(fileSize int) (aout, error) {
	at := func(format string, a ...any) error {
		return fmt.Errorf("multiboot header at file offset %#x: "+format, append([]any{h.Offset}, a...)...)
	}
	if h.LoadAddr > h.HeaderAddr {
		return aout{}, at("load_addr %#x is above header_addr %#x", h.LoadAddr, h.HeaderAddr)
	}
	lead := uint64(h.HeaderAddr - h.LoadAddr)
	if lead > uint64(h.Offset) {
		return aout{}, at("header_addr %#x - load_addr %#x = %#x puts the load start before the file's first byte", h.HeaderAddr, h.LoadAddr, lead)
	}
	a := aout{Off: uint64(h.Offset) - lead, Load: uint64(h.LoadAddr), Entry: uint64(h.EntryAddr)}
	if h.LoadEndAddr == 0 {
		a.Size = uint64(fileSize) - a.Off
	} else {
		if h.LoadEndAddr <= h.LoadAddr {
			return aout{}, at("load_end_addr %#x is not above load_addr %#x", h.LoadEndAddr, h.LoadAddr)
		}
		a.Size = uint64(h.LoadEndAddr - h.LoadAddr)
		if a.Off+a.Size > uint64(fileSize) {
			return aout{}, at("load_end_addr %#x needs file bytes %#x-%#x, past the end of the %d-byte file", h.LoadEndAddr, a.Off, a.Off+a.Size-1, fileSize)
		}
	}
	a.BSSEnd = a.Load + a.Size
	if h.BSSEndAddr != 0 {
		if uint64(h.BSSEndAddr) < a.BSSEnd {
			return aout{}, at("bss_end_addr %#x is below the end of the loaded text and data %#x", h.BSSEndAddr, a.BSSEnd)
		}
		a.BSSEnd = uint64(h.BSSEndAddr)
	}
	if a.Entry < a.Load || a.Entry >= a.BSSEnd {
		return aout{}, at("entry_addr %#x is outside the image at %#x-%#x", a.Entry, a.Load, a.BSSEnd-1)
	}
	return a, nil
}
